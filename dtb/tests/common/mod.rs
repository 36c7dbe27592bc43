//! Test helpers: a tiny FDT writer and a xorshift PRNG.
#![allow(dead_code)]

/// Builds a version-17 flattened device tree.
#[derive(Default)]
pub struct FdtBuilder {
    structs: Vec<u8>,
    strings: Vec<u8>,
    reserved: Vec<(u64, u64)>,
}

const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const END: u32 = 9;

impl FdtBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    fn word(&mut self, w: u32) {
        self.structs.extend_from_slice(&w.to_be_bytes());
    }

    fn pad(&mut self) {
        while !self.structs.len().is_multiple_of(4) {
            self.structs.push(0);
        }
    }

    pub fn reserve(&mut self, addr: u64, size: u64) -> &mut Self {
        self.reserved.push((addr, size));
        self
    }

    pub fn begin(&mut self, name: &str) -> &mut Self {
        self.word(BEGIN_NODE);
        self.structs.extend_from_slice(name.as_bytes());
        self.structs.push(0);
        self.pad();
        self
    }

    pub fn end(&mut self) -> &mut Self {
        self.word(END_NODE);
        self
    }

    fn name_offset(&mut self, name: &str) -> u32 {
        let needle: Vec<u8> = name.bytes().chain([0]).collect();
        if let Some(pos) = self.strings.windows(needle.len()).position(|w| w == needle.as_slice()) {
            return pos as u32;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(&needle);
        off
    }

    pub fn prop(&mut self, name: &str, value: &[u8]) -> &mut Self {
        let off = self.name_offset(name);
        self.word(PROP);
        self.word(value.len() as u32);
        self.word(off);
        self.structs.extend_from_slice(value);
        self.pad();
        self
    }

    pub fn prop_cells(&mut self, name: &str, cells: &[u32]) -> &mut Self {
        let v: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
        self.prop(name, &v)
    }

    pub fn prop_u32(&mut self, name: &str, v: u32) -> &mut Self {
        self.prop_cells(name, &[v])
    }

    pub fn prop_str(&mut self, name: &str, s: &str) -> &mut Self {
        self.prop_strs(name, &[s])
    }

    pub fn prop_strs(&mut self, name: &str, list: &[&str]) -> &mut Self {
        let v: Vec<u8> = list.iter().flat_map(|s| s.bytes().chain([0])).collect();
        self.prop(name, &v)
    }

    /// A `reg` of (address, size) pairs with two cells each.
    pub fn reg2(&mut self, entries: &[(u64, u64)]) -> &mut Self {
        let cells: Vec<u32> =
            entries.iter().flat_map(|&(a, s)| [(a >> 32) as u32, a as u32, (s >> 32) as u32, s as u32]).collect();
        self.prop_cells("reg", &cells)
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let mut s = self.structs.clone();
        s.extend_from_slice(&END.to_be_bytes());
        let header = 40usize;
        let rsv = header.next_multiple_of(8);
        let rsv_len = (self.reserved.len() + 1) * 16;
        let off_struct = rsv + rsv_len;
        let off_strings = off_struct + s.len();
        let total = off_strings + self.strings.len();
        let mut out = Vec::with_capacity(total);
        for w in [
            0xd00d_feed,
            total as u32,
            off_struct as u32,
            off_strings as u32,
            rsv as u32,
            17,
            16,
            0,
            self.strings.len() as u32,
            s.len() as u32,
        ] {
            out.extend_from_slice(&u32::to_be_bytes(w));
        }
        out.resize(rsv, 0);
        for &(a, l) in self.reserved.iter().chain([&(0, 0)]) {
            out.extend_from_slice(&a.to_be_bytes());
            out.extend_from_slice(&l.to_be_bytes());
        }
        out.extend_from_slice(&s);
        out.extend_from_slice(&self.strings);
        out
    }
}

/// GIC binding: `<type number flags>` with type 1 = PPI, 0 = SPI.
pub fn ppi(n: u32, flags: u32) -> [u32; 3] {
    [1, n, flags]
}

/// Writes a board-like tree: GICv3, timer, memory, PL011 behind an alias,
/// SPE, PSCI over HVC. `extra` can add or replace nodes at the root level.
pub fn board(memory: bool, extra: impl FnOnce(&mut FdtBuilder)) -> Vec<u8> {
    let mut b = FdtBuilder::new();
    b.reserve(0x4800_0000, 0x1000);
    b.begin("")
        .prop_u32("#address-cells", 2)
        .prop_u32("#size-cells", 2)
        .prop_u32("interrupt-parent", 1)
        .prop_str("model", "Hand-made SPE board")
        .prop_strs("compatible", &["spevisor,test-board", "arm,test"]);
    b.begin("aliases").prop_str("serial0", "/soc/serial@1000").end();
    b.begin("chosen")
        .prop_str("stdout-path", "serial0:115200n8")
        .prop_str("bootargs", "spevisor.spe=off quiet")
        .prop_u32("linux,initrd-start", 0x4900_0000)
        .prop_cells("linux,initrd-end", &[0, 0x4a00_0000])
        .end();
    if memory {
        b.begin("memory@80000000")
            .prop_str("device_type", "memory")
            .reg2(&[(0x8000_0000, 0x4000_0000), (0x8_8000_0000, 0x8000_0000)])
            .end();
    }
    b.begin("cpus").prop_u32("#address-cells", 1).prop_u32("#size-cells", 0);
    for mpidr in [0u32, 1, 0x100, 0x101] {
        b.begin(&format!("cpu@{mpidr:x}"))
            .prop_str("device_type", "cpu")
            .prop_str("compatible", "arm,neoverse-n1")
            .prop_u32("reg", mpidr)
            .end();
    }
    b.end();
    b.begin("psci").prop_strs("compatible", &["arm,psci-0.2", "arm,psci"]).prop_str("method", "hvc").end();
    b.begin("interrupt-controller@2f000000")
        .prop_str("compatible", "arm,gic-v3")
        .prop_u32("#interrupt-cells", 3)
        .prop("interrupt-controller", &[])
        .prop_u32("#redistributor-regions", 2)
        .reg2(&[
            (0x2f00_0000, 0x1_0000),
            (0x2f10_0000, 0x8_0000),
            (0x3f10_0000, 0x8_0000),
            (0x2c00_0000, 0x2000),
            (0x2c01_0000, 0x2000),
            (0x2c02_f000, 0x2000),
        ])
        .prop_cells("interrupts", &ppi(9, 4))
        .prop_u32("phandle", 1)
        .end();
    let mut timer = Vec::new();
    for n in [13, 14, 11, 10] {
        timer.extend(ppi(n, 8));
    }
    b.begin("timer")
        .prop_strs("compatible", &["arm,armv8-timer"])
        .prop_cells("interrupts", &timer)
        .prop_u32("clock-frequency", 25_000_000)
        .end();
    b.begin("pmu").prop_str("compatible", "arm,neoverse-n1-pmu").prop_cells("interrupts", &ppi(7, 4)).end();
    b.begin("spe-pmu")
        .prop_str("compatible", "arm,statistical-profiling-extension-v1")
        .prop_cells("interrupts", &ppi(5, 4))
        .end();
    // A bus whose children live at 0 and are mapped at 0x1c00_0000.
    b.begin("soc")
        .prop_strs("compatible", &["simple-bus"])
        .prop_u32("#address-cells", 1)
        .prop_u32("#size-cells", 1)
        .prop_cells("ranges", &[0, 0, 0x1c00_0000, 0x10_0000]);
    b.begin("serial@1000")
        .prop_strs("compatible", &["arm,pl011", "arm,primecell"])
        .prop_cells("reg", &[0x1000, 0x1000])
        .end();
    b.end();
    extra(&mut b);
    b.end();
    b.finish()
}

/// Marsaglia's xorshift64: deterministic, good enough to pick bytes.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The QEMU fixtures, as (name, bytes).
pub fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("fixtures dir (run scripts/dump-dtbs.sh)")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dtb"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    v.sort();
    assert_eq!(v.len(), 8, "expected 8 QEMU fixtures, found {}", v.len());
    v
}
