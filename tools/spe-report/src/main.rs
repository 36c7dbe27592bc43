//! Command-line entry point; see the library documentation.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Result<Vec<String>, _> = std::env::args_os().skip(1).map(|a| a.into_string()).collect();
    let result = match args {
        Ok(args) => spe_report::parse_args(&args).and_then(|cmd| {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let mut warn = std::io::stderr();
            spe_report::run(&cmd, &mut out, &mut warn).and_then(|()| {
                std::io::Write::flush(&mut out)
                    .map_err(|source| spe_report::Error::Io { what: "writing output".into(), source })
            })
        }),
        Err(bad) => Err(spe_report::Error::Usage(format!("argument is not valid UTF-8: {}", bad.to_string_lossy()))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spe-report: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
