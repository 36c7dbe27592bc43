//! The seed corpus (`fuzz/corpus/TARGET/`), made by the project's own code
//! and data. Regenerate with
//! `cargo test -p spevisor-fuzz -- --ignored write_seed_corpus`; the
//! committed files are what `cargo xtask test` fuzzes from.

use spevisor_abi::guest::machine::RAM_IPA;
use spevisor_abi::Call;
use spevisor_host::guest_dtb::{self, GuestMachine};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Little-endian byte strings, concatenated.
#[derive(Default)]
struct Bytes(Vec<u8>);

impl Bytes {
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn u16(mut self, v: u16) -> Self {
        self.0.extend(v.to_le_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend(v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend(v.to_le_bytes());
        self
    }
    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend(b);
        self
    }
}

/// Named seed files.
type Seeds = Vec<(&'static str, Vec<u8>)>;

fn guest_dtb(vcpus: u32, initrd: Option<(u64, u64)>) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let m = GuestMachine { ram_size: 64 << 20, bootargs: "console=ttyAMA0 earlycon", vcpus, initrd, gic_v2: false };
    let n = guest_dtb::write(&mut buf, &m).unwrap();
    buf.truncate(n);
    buf
}

fn dtbs() -> Seeds {
    let fixtures = repo().join("dtb/tests/fixtures");
    let qemu = |f: &str| std::fs::read(fixtures.join(f)).unwrap();
    vec![
        ("qemu-virt-gicv3-smp1-256M.dtb", qemu("virt-gicv3-smp1-256M.dtb")),
        ("qemu-virt-gicv2-smp4-2G.dtb", qemu("virt-gicv2-smp4-2G.dtb")),
        ("guest-1vcpu-initrd.dtb", guest_dtb(1, Some((RAM_IPA + (32 << 20), RAM_IPA + (33 << 20))))),
        ("guest-8vcpus.dtb", guest_dtb(8, None)),
    ]
}

fn spe() -> Seeds {
    let v = repo().join("spe/tests/vectors");
    let read = |f: &str| std::fs::read(v.join(f)).unwrap();
    vec![
        ("quipper-2rec.bin", read("quipper-2rec.bin")),
        ("spe-b1-ts0.data", read("spe-b1-ts0.data")),
        ("spe-b1-ts1.data", read("spe-b1-ts1.data")),
        ("spe-parser-frame-ld.bin", read("spe-parser-frame-ld.bin")),
    ]
}

/// ESR seeds: the ESR, then an injection context (SPSR, ELR, VBAR, SCTLR,
/// features, address, write).
fn esr() -> Seeds {
    const EL1H: u64 = 0x3c5;
    const EL0T: u64 = 0x0;
    let ctx = |b: Bytes, spsr| b.u64(spsr).u64(0xffff_8000_1000_0000).u64(0xffff_8000_0001_0800).u64(0x30d0_0980);
    vec![
        // str w1, [x0] to an unmapped IPA: EC 0x24, ISV, SAS=2, SRT=1, WnR.
        ("data-abort-store.bin", ctx(Bytes::default().u64(0x9382_0046), EL1H).u8(7).u64(0x900_0000).u8(1).0),
        // mrs x3, pmbidr_el1: EC 0x18.
        ("sysreg-read.bin", ctx(Bytes::default().u64(0x6230_9c67), EL0T).u8(0).u64(0).u8(0).0),
        ("hvc.bin", ctx(Bytes::default().u64(0x5a00_0000), EL1H).u8(1).u64(0).u8(0).0),
    ]
}

/// MMIO seeds: selector, ESR, FAR, HPFAR, ID seed, x0..x30, PC, load value.
fn mmio() -> Seeds {
    let seed = |selector: u8, esr: u32, ipa: u64| {
        let mut b = Bytes::default().u8(selector).u32(esr).u64(ipa & 0xfff).u64((ipa >> 12) << 4).u64(0);
        for r in 0..31u64 {
            b = b.u64(0x1111_1111_1111_1111u64.wrapping_mul(r + 1));
        }
        b.u64(0x4008_0000).u64(0xffff_ff80).0
    };
    vec![
        // str w1, [x0] at the PL011's DR (0x0900_0000).
        ("pl011-dr-store.bin", seed(7, 0x9382_0046, 0x0900_0000)),
        // ldrsb x2, [x0] from the GIC distributor: SSE, SF.
        ("gicd-ldrsb.bin", seed(7, 0x9322_8006, 0x0800_0004)),
        // A load without a syndrome (ISV = 0), and one in RAM.
        ("no-syndrome.bin", seed(3, 0x9200_0006, 0x0a00_0000)),
        ("in-ram.bin", seed(7, 0x9380_0006, 0x4000_1000)),
    ]
}

/// hcall programs: PA-size index, page budget, trace length, then calls:
/// selector byte, seven arguments as (kind, payload) (see `hcall::arg`).
fn hcall() -> Seeds {
    // The test's host memory starts after the image and the EL2 pool
    // (`hcall::run`'s layout: RAM at 0x4000_0000, image at 0x4020_0000).
    const HOST_FIRST: u64 = 0x4040_0000 + spevisor_hyp::mm::HYP_POOL_SIZE;
    const PAGE: u64 = spevisor_pgtable::PAGE_SIZE;
    const CALLS: [Call; 13] = [
        Call::Version,
        Call::Info,
        Call::Ping,
        Call::VmCreate,
        Call::VmDonate,
        Call::VcpuCreate,
        Call::VcpuRun,
        Call::VmDestroy,
        Call::SwitchTrace,
        Call::SpeModelAttach,
        Call::VcpuShare,
        Call::VcpuReset,
        Call::TestFault,
    ];
    let call = |b: Bytes, c: Call| b.u8(CALLS.iter().position(|&x| x == c).unwrap() as u8);
    let small = |b: Bytes, v: u8| b.u8(0).u8(v);
    // Guest IPAs by the "near" kind (`hcall::arg`, 9): pages 0..32 of RAM.
    // Host addresses in full (kind 7): libFuzzer's comparison tracing can
    // then put an address the checks compare against straight into a call.
    let host_page = |b: Bytes, page: u8| b.u8(7).u64(HOST_FIRST + u64::from(page) * PAGE);
    let ipa_page = |b: Bytes, page: u8| b.u8(9).u8(page);
    let zeros = |mut b: Bytes, n: usize| {
        for _ in 0..n {
            b = small(b, 0);
        }
        b
    };
    let mut b = Bytes::default().u8(2).u8(64).u8(4);
    b = zeros(call(b, Call::VmCreate), 7);
    // VM_DONATE vm 1, host page 4, IPA page 0, 8 pages.
    b = call(b, Call::VmDonate);
    b = small(b, 1);
    b = host_page(b, 4);
    b = ipa_page(b, 0);
    b = small(b, 8);
    b = zeros(b, 3);
    b = call(b, Call::VcpuCreate);
    b = small(b, 1);
    b = ipa_page(b, 0);
    b = zeros(b, 5);
    b = call(b, Call::VcpuShare);
    b = small(b, 1);
    b = small(b, 0);
    b = host_page(b, 20);
    b = zeros(b, 4);
    // A second donation after the share: pages 24..28 at IPA page 16.
    b = call(b, Call::VmDonate);
    b = small(b, 1);
    b = host_page(b, 24);
    b = ipa_page(b, 16);
    b = small(b, 4);
    b = zeros(b, 3);
    b = call(b, Call::VcpuRun);
    b = small(b, 1);
    b = zeros(b, 6);
    b = call(b, Call::VmDestroy);
    b = small(b, 1);
    let lifecycle = zeros(b, 6).0;
    let mut b = Bytes::default().u8(0).u8(8).u8(0);
    b = zeros(call(b, Call::VmCreate), 7);
    b = call(b, Call::VmDonate);
    b = small(b, 1);
    b = host_page(b, 0);
    b = ipa_page(b, 0);
    b = small(b, 255);
    b = zeros(b, 3);
    let no_memory = b.0;
    vec![("lifecycle.bin", lifecycle), ("donate-until-no-memory.bin", no_memory)]
}

/// vgic programs: vcpus, then (op, args...) as `vgic::run` reads them.
fn vgic() -> Seeds {
    // Distributor write: op 0, offset kind 0 (u16), size index 0 (4), value.
    let dist = |b: Bytes, off: u16, v: u64| b.u8(0).u8(0).u16(off).u8(0).u64(v);
    let mut b = Bytes::default().u8(1);
    b = dist(b, 0x0000, 0x3); // GICD_CTLR: both groups
    b = dist(b, 0x0084, 0xffff_ffff); // IGROUPR1: SPIs group 1
    b = dist(b, 0x0104, 0x0000_0006); // ISENABLER1: SPIs 33, 34
    b = dist(b, 0x0420, 0x2040_6080); // IPRIORITYR8
    b = b.u8(4).u8(33).u8(1); // SPI 33 line high
    b = b.u8(4).u8(34).u8(1);
    b = b.u8(5).u8(0).u8(27).u8(1); // the virtual timer PPI, tied
    b = b.u8(7).u8(0).u8(1); // flush vcpu 0 with one list register
    b = b.u8(8).u8(2).u8(1); // the guest took it: active, one EOI
    b = b.u8(7).u8(0).u8(4);
    let spis = b.0;
    let mut b = Bytes::default().u8(3);
    // Redistributor of vcpu 1: ISENABLER0 (SGI frame), then SGIs.
    b = b.u8(2).u8(1).u16(0x100).u8(0).u64(0xffff);
    b = b.u8(6).u8(0).u64(0x0500_0002).u8(0); // SGI 5 to vcpu 1, group 0
    b = b.u8(6).u8(1).u64(1 << 40 | 3 << 24).u8(0); // IRM: all but self
    b = b.u8(7).u8(1).u8(4);
    let sgis = b.0;
    vec![("spis-flush-fold.bin", spis), ("sgis.bin", sgis)]
}

/// pl011 programs: firmware or reset state, then (op, [extra], size, [value]).
fn pl011() -> Seeds {
    use crate::pl011::REGS;
    use spevisor_pl011::reg;
    // op: register index in the high nibble, kind in the low 2 bits.
    let index = |r: u64| REGS.iter().position(|&x| x == r).unwrap() as u8;
    let store = |b: Bytes, r: u64, v: u64| b.u8(index(r) << 4).u8(0).u64(v);
    let load = |b: Bytes, r: u64| b.u8(index(r) << 4 | 2).u8(0);
    let mut b = Bytes::default().u8(1);
    for c in b"hello\n" {
        b = store(b, reg::DR, u64::from(*c));
    }
    b = load(b, reg::FR);
    b = load(b, reg::FR);
    let polled = b.0;
    let mut b = Bytes::default().u8(1);
    b = store(b, reg::IFLS, 0x12);
    b = store(b, reg::IMSC, 0x20);
    for _ in 0..40 {
        b = store(b, reg::DR, u64::from(b'x'));
    }
    b = b.u8(3); // deliver
    b = load(b, reg::MIS);
    b = store(b, reg::ICR, 0x20);
    let irq = b.0;
    vec![("hello-polled.bin", polled), ("fill-and-deliver.bin", irq)]
}

fn linux_image() -> Seeds {
    let header = |text_offset: u64, image_size: u64, flags: u64, len: usize| {
        let mut h = vec![0u8; len];
        h[8..16].copy_from_slice(&text_offset.to_le_bytes());
        h[16..24].copy_from_slice(&image_size.to_le_bytes());
        h[24..32].copy_from_slice(&flags.to_le_bytes());
        h[56..60].copy_from_slice(b"ARM\x64");
        h
    };
    vec![
        ("linux-64M-initrd.bin", Bytes::default().u16(64).u32(1 << 20).raw(&header(0, 0x1ba_0000, 0xa, 256)).0),
        ("linux-legacy.bin", Bytes::default().u16(32).u32(0).raw(&header(0x8_0000, 0, 0, 128)).0),
        ("raw.bin", Bytes::default().u16(2).u32(4096).raw(&[0x1f, 0x20, 0x03, 0xd5]).0),
        ("gzip.bin", Bytes::default().u16(16).u32(0).raw(&[0x1f, 0x8b, 8, 0]).0),
    ]
}

fn acpi_tables() -> Seeds {
    use spevisor_efi::acpi::fixtures::{qemu_virt, RSDP, SPAN};
    assert_eq!(RSDP, crate::acpi_tables::BASE);
    vec![
        ("qemu-virt-gicv3-smp1.bin", qemu_virt(1).blob(RSDP, SPAN)),
        ("qemu-virt-gicv3-smp4.bin", qemu_virt(4).blob(RSDP, SPAN)),
    ]
}

#[test]
#[ignore = "writes fuzz/corpus/: run by hand to regenerate the seeds"]
fn write_seed_corpus() {
    let dtb = dtbs();
    let sets: [(&str, Seeds); 10] = [
        ("dtb_parse", dtb.clone()),
        ("dtb_roundtrip", dtb),
        ("spe_decode", spe()),
        ("esr", esr()),
        ("mmio", mmio()),
        ("hcall", hcall()),
        ("vgic", vgic()),
        ("pl011", pl011()),
        ("linux_image", linux_image()),
        ("acpi_tables", acpi_tables()),
    ];
    for (target, seeds) in sets {
        let dir = repo().join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, data) in seeds {
            std::fs::write(dir.join(name), data).unwrap();
        }
    }
}
