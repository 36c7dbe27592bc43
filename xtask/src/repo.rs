//! Checks that the repository stands alone: no tracked file points outside
//! it, and the relative links of its Markdown documents lead to files that
//! exist. Run by `cargo test` (so by `cargo xtask test`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Text no tracked file may contain, and why. Built with `concat!` so that
/// this file does not match its own patterns.
pub const FORBIDDEN: &[(&str, &str)] = &[
    (concat!("..", "/shared"), "a directory beside the repository, which a clone does not have"),
    (concat!("DESIGN", ".md"), "the original design map outside the repository; docs/design.md replaced it"),
];

/// The repository's tracked files (relative paths), from `git ls-files`;
/// outside a git checkout (an unpacked archive), every file under `root`
/// except `target/` and `.git/`.
pub fn tracked_files(root: &Path) -> Result<Vec<PathBuf>, String> {
    if let Ok(out) = Command::new("git").arg("-C").arg(root).args(["ls-files", "-z"]).output() {
        if out.status.success() {
            return Ok(out
                .stdout
                .split(|&b| b == 0)
                .filter(|p| !p.is_empty())
                .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
                .collect());
        }
    }
    let mut files = vec![];
    walk(root, Path::new(""), &mut files)?;
    Ok(files)
}

fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let dir = root.join(rel);
    for e in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let e = e.map_err(|e| e.to_string())?;
        let name = e.file_name();
        if rel.as_os_str().is_empty() && (name == "target" || name == ".git") {
            continue;
        }
        let path = rel.join(&name);
        if e.file_type().map_err(|e| e.to_string())?.is_dir() {
            walk(root, &path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Every `(file, line number, pattern)` where a file's text contains a
/// forbidden pattern. Binary files are searched as bytes.
pub fn forbidden_mentions(files: &[(PathBuf, Vec<u8>)]) -> Vec<(PathBuf, usize, &'static str)> {
    let mut hits = vec![];
    for (path, data) in files {
        for (n, line) in data.split(|&b| b == b'\n').enumerate() {
            for (pat, _) in FORBIDDEN {
                if line.windows(pat.len()).any(|w| w == pat.as_bytes()) {
                    hits.push((path.clone(), n + 1, *pat));
                }
            }
        }
    }
    hits
}

/// Relative link targets of a Markdown text: `](target)` with no scheme and
/// not a bare `#anchor`; any `#anchor` is cut off.
pub fn relative_links(md: &str) -> Vec<String> {
    let mut links = vec![];
    let mut rest = md;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].trim();
        let target = target.split('#').next().unwrap_or("");
        if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
            links.push(target.to_string());
        }
    }
    links
}

/// Links in `md` (a file at `md_path`, relative to `root`) that lead nowhere.
pub fn broken_links(root: &Path, md_path: &Path, md: &str) -> Vec<String> {
    let base = md_path.parent().unwrap_or(Path::new(""));
    relative_links(md).into_iter().filter(|l| !root.join(base).join(l).exists()).collect()
}

#[cfg(test)]
mod unit {
    use super::*;

    fn read_all(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let files = tracked_files(root).expect("list the repository's files");
        assert!(files.iter().any(|f| f == Path::new("README.md")), "the file list has no README.md: {files:?}");
        files
            .into_iter()
            // A file deleted in the work tree but still in the index is not there to read.
            .filter_map(|f| std::fs::read(root.join(&f)).ok().map(|d| (f, d)))
            .collect()
    }

    #[test]
    fn no_tracked_file_points_outside_the_repository() {
        let hits = forbidden_mentions(&read_all(&crate::root()));
        let why: Vec<String> = hits
            .iter()
            .map(|(p, n, pat)| {
                let reason = FORBIDDEN.iter().find(|(f, _)| f == pat).map(|(_, r)| *r).unwrap_or("");
                format!("{}:{n}: {pat} ({reason})", p.display())
            })
            .collect();
        assert!(why.is_empty(), "tracked files refer outside the repository:\n{}", why.join("\n"));
    }

    #[test]
    fn forbidden_mention_is_found_in_text_and_names_its_line() {
        let bad = format!("line one\nsee {}/x\n", FORBIDDEN[0].0);
        let files = vec![(PathBuf::from("a.md"), bad.into_bytes()), (PathBuf::from("b.rs"), b"clean\n".to_vec())];
        assert_eq!(forbidden_mentions(&files), vec![(PathBuf::from("a.md"), 2, FORBIDDEN[0].0)]);
        let design = format!("// per {}\n", FORBIDDEN[1].0);
        assert_eq!(forbidden_mentions(&[(PathBuf::from("c.rs"), design.into_bytes())]).len(), 1);
        assert!(forbidden_mentions(&[(PathBuf::from("d.md"), b"see docs/design.md\n".to_vec())]).is_empty());
    }

    #[test]
    fn markdown_links_lead_to_files_that_exist() {
        let root = crate::root();
        let mut broken = vec![];
        for f in tracked_files(&root).unwrap() {
            if f.extension().is_some_and(|e| e == "md") {
                let Ok(text) = std::fs::read_to_string(root.join(&f)) else { continue };
                for l in broken_links(&root, &f, &text) {
                    broken.push(format!("{}: {l}", f.display()));
                }
            }
        }
        assert!(broken.is_empty(), "Markdown links to missing files:\n{}", broken.join("\n"));
    }

    #[test]
    fn link_check_sees_relative_links_only_and_catches_a_missing_file() {
        let md = "[a](docs/x.md) [b](https://e.org/y) [c](#top) [d](../README.md#options) [e](mailto:a@b)";
        assert_eq!(relative_links(md), vec!["docs/x.md", "../README.md"]);
        let root = crate::root();
        assert_eq!(
            broken_links(&root, Path::new("README.md"), "[x](no/such/file.md) [y](Cargo.toml)"),
            vec!["no/such/file.md"]
        );
        assert!(broken_links(&root, Path::new("spe/tests/vectors/README.md"), "[l](LICENSE-Apache-2.0)").is_empty());
    }
}
