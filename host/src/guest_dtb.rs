//! The device tree the host gives each guest: the guest machine of
//! docs/design.md ("The guest machine"), a small `virt`-like board with RAM
//! at 0x4000_0000, a PL011 at 0x0900_0000, a GICv3 (distributor and one
//! redistributor per vcpu) or, on a GICv2 host, a GICv2 (distributor and
//! CPU interface, `arm,gic-400`), the generic timer, PSCI over `hvc`, one cpu
//! node per vcpu and, for a guest given one, the initrd's place in
//! `/chosen`. Addresses and interrupt numbers are QEMU `virt`'s, so
//! software written for that board finds its devices where it expects them.
//!
//! The host writes the tree into the last `DTB_SLOT` bytes of guest RAM
//! (`vmm.rs`). Pure: the unit tests read every tree back with the parser the
//! hypervisor itself boots with.

use spevisor_abi::guest::machine::{
    gicr_size, GICC_IPA, GICC_SIZE, GICD_IPA, GICD_SIZE, GICR_IPA, MAX_VCPUS, RAM_IPA, UART_IPA,
};
use spevisor_dtb::writer::{FdtWriter, WriteError};

/// The emulated PL011's frame size.
pub const UART_SIZE: u64 = spevisor_pl011::reg::FRAME_SIZE;

/// GIC binding interrupt specifiers: `<type number flags>`.
const GIC_SPI: u32 = 0;
const GIC_PPI: u32 = 1;
const IRQ_LEVEL_HIGH: u32 = 4;
/// GICv2 binding: a PPI's flags cell carries the mask of the CPUs it is
/// wired to in bits [15:8].
const GICV2_PPI_CPU_SHIFT: u32 = 8;
/// The GIC maintenance interrupt's PPI number (INTID 25).
const MAINTENANCE_PPI: u32 = spevisor_abi::guest::machine::MAINTENANCE_INTID - 16;
/// PPI numbers (INTID − 16) of the generic timer: secure physical,
/// non-secure physical, virtual, EL2 physical (INTIDs 29, 30, 27, 26).
const TIMER_PPIS: [u32; 4] = [13, 14, 11, 10];
/// The PMU overflow interrupt's PPI number (INTID 23,
/// `spevisor_abi::guest::machine::PMU_INTID`).
const PMU_PPI: u32 = spevisor_abi::guest::machine::PMU_INTID - 16;
/// The PL011's SPI number (INTID 33).
const UART_SPI: u32 = 1;
/// The fixed clock Linux's PL011 (AMBA) driver asks for, in Hz.
pub const APB_PCLK_HZ: u32 = 24_000_000;

const PHANDLE_GIC: u32 = 1;
const PHANDLE_APB_PCLK: u32 = 2;

/// What varies from one guest to another.
#[derive(Clone, Copy, Debug)]
pub struct GuestMachine<'a> {
    /// Bytes of RAM from [`RAM_IPA`].
    pub ram_size: u64,
    /// `/chosen/bootargs`.
    pub bootargs: &'a str,
    /// vcpus, `1..=MAX_VCPUS`: one `/cpus/cpu@N` node each (MPIDR Aff0 =
    /// N) and a redistributor region of `gicr_size(vcpus)` bytes.
    pub vcpus: u32,
    /// The initrd's IPA range `[start, end)` in guest RAM, if any
    /// (`/chosen/linux,initrd-start`, `linux,initrd-end`).
    pub initrd: Option<(u64, u64)>,
    /// A GICv2 (on a GICv2 host: `vgic/v2.rs` and the hardware's virtual
    /// CPU interface) rather than a GICv3.
    pub gic_v2: bool,
}

/// Node names of the cpus (no formatting in the writer's no_std world).
const CPU_NODES: [&str; MAX_VCPUS as usize] = ["cpu@0", "cpu@1", "cpu@2", "cpu@3", "cpu@4", "cpu@5", "cpu@6", "cpu@7"];

/// Why a tree cannot be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeError {
    /// vcpus outside `1..=MAX_VCPUS`.
    Vcpus(u32),
    Write(WriteError),
}

impl core::fmt::Display for TreeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Vcpus(n) => write!(f, "{n} vcpus: a guest has 1 to {MAX_VCPUS}"),
            Self::Write(e) => write!(f, "{e}"),
        }
    }
}

impl GuestMachine<'_> {
    /// The IPA the tree is written at: the start of the last `DTB_SLOT`
    /// bytes of RAM (8-byte aligned, as the arm64 boot protocol wants).
    pub fn dtb_ipa(&self) -> u64 {
        spevisor_abi::guest::machine::dtb_ipa(self.ram_size)
    }
}

/// Writes the guest's tree into `buf`; returns its size.
pub fn write(buf: &mut [u8], m: &GuestMachine) -> Result<usize, TreeError> {
    if !(1..=MAX_VCPUS).contains(&m.vcpus) {
        return Err(TreeError::Vcpus(m.vcpus));
    }
    let mut w = FdtWriter::new(buf, &[]);
    w.begin_node("");
    w.prop_u32("#address-cells", 2);
    w.prop_u32("#size-cells", 2);
    w.prop_strs("compatible", &["spevisor,guest", "linux,dummy-virt"]);
    w.prop_str("model", "spevisor guest");
    w.prop_u32("interrupt-parent", PHANDLE_GIC);

    w.begin_node("chosen");
    w.prop_str("bootargs", m.bootargs);
    w.prop_str("stdout-path", "/pl011@9000000");
    if let Some((start, end)) = m.initrd {
        w.prop_u64s("linux,initrd-start", &[start]);
        w.prop_u64s("linux,initrd-end", &[end]);
    }
    w.end_node();

    w.begin_node("memory@40000000");
    w.prop_str("device_type", "memory");
    w.prop_u64s("reg", &[RAM_IPA, m.ram_size]);
    w.end_node();

    w.begin_node("cpus");
    w.prop_u32("#address-cells", 1);
    w.prop_u32("#size-cells", 0);
    for (aff0, name) in CPU_NODES.iter().enumerate().take(m.vcpus as usize) {
        w.begin_node(name);
        w.prop_str("device_type", "cpu");
        w.prop_str("compatible", "arm,armv8");
        w.prop_u32("reg", aff0 as u32);
        w.prop_str("enable-method", "psci");
        w.end_node();
    }
    w.end_node();

    w.begin_node("psci");
    w.prop_strs("compatible", &["arm,psci-1.0", "arm,psci-0.2"]);
    w.prop_str("method", "hvc");
    w.end_node();

    // GICv2: PPIs name the CPUs they reach (all of them).
    let ppi_flags =
        if m.gic_v2 { IRQ_LEVEL_HIGH | ((1 << m.vcpus) - 1) << GICV2_PPI_CPU_SHIFT } else { IRQ_LEVEL_HIGH };
    w.begin_node("timer");
    w.prop_strs("compatible", &["arm,armv8-timer"]);
    let mut irqs = [0u32; 12];
    for (slot, ppi) in irqs.chunks_exact_mut(3).zip(TIMER_PPIS) {
        slot.copy_from_slice(&[GIC_PPI, ppi, ppi_flags]);
    }
    w.prop_cells("interrupts", &irqs);
    w.prop_empty("always-on");
    w.end_node();

    // The guests' PMUv3 (hyp/src/pmu.rs): overflow interrupt PPI 7 (INTID 23).
    w.begin_node("pmu");
    w.prop_strs("compatible", &["arm,armv8-pmuv3"]);
    w.prop_cells("interrupts", &[GIC_PPI, PMU_PPI, ppi_flags]);
    w.end_node();

    w.begin_node("intc@8000000");
    if m.gic_v2 {
        w.prop_strs("compatible", &["arm,gic-400", "arm,cortex-a15-gic"]);
    } else {
        w.prop_str("compatible", "arm,gic-v3");
    }
    w.prop_u32("#interrupt-cells", 3);
    w.prop_empty("interrupt-controller");
    if m.gic_v2 {
        w.prop_u64s("reg", &[GICD_IPA, GICD_SIZE, GICC_IPA, GICC_SIZE]);
        w.prop_cells("interrupts", &[GIC_PPI, MAINTENANCE_PPI, ppi_flags]);
    } else {
        w.prop_u32("#redistributor-regions", 1);
        w.prop_u64s("reg", &[GICD_IPA, GICD_SIZE, GICR_IPA, gicr_size(m.vcpus)]);
    }
    w.prop_u32("phandle", PHANDLE_GIC);
    w.end_node();

    w.begin_node("apb-pclk");
    w.prop_str("compatible", "fixed-clock");
    w.prop_u32("#clock-cells", 0);
    w.prop_u32("clock-frequency", APB_PCLK_HZ);
    w.prop_str("clock-output-names", "clk24mhz");
    w.prop_u32("phandle", PHANDLE_APB_PCLK);
    w.end_node();

    w.begin_node("pl011@9000000");
    w.prop_strs("compatible", &["arm,pl011", "arm,primecell"]);
    w.prop_u64s("reg", &[UART_IPA, UART_SIZE]);
    w.prop_cells("interrupts", &[GIC_SPI, UART_SPI, IRQ_LEVEL_HIGH]);
    w.prop_cells("clocks", &[PHANDLE_APB_PCLK, PHANDLE_APB_PCLK]);
    w.prop_strs("clock-names", &["uartclk", "apb_pclk"]);
    w.end_node();

    w.end_node();
    w.finish().map_err(TreeError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;
    use spevisor_abi::guest::machine::{DTB_SLOT, GICR_SIZE};
    use spevisor_dtb::{parse, GicVersion, IntId, PsciConduit, Region, UartKind};

    const MIB: u64 = 1 << 20;

    fn machine(ram_size: u64, bootargs: &str) -> GuestMachine<'_> {
        GuestMachine { ram_size, bootargs, vcpus: 1, initrd: None, gic_v2: false }
    }

    fn tree_of(m: &GuestMachine) -> Vec<u8> {
        let mut buf = vec![0u8; DTB_SLOT as usize];
        let len = write(&mut buf, m).unwrap();
        buf.truncate(len);
        buf
    }

    fn tree(ram_size: u64, bootargs: &str) -> Vec<u8> {
        tree_of(&machine(ram_size, bootargs))
    }

    #[test]
    fn the_guest_tree_describes_the_guest_machine() {
        let dtb = tree(256 * MIB, "console=ttyAMA0 earlycon");
        let p = parse(&dtb).unwrap();
        assert_eq!(p.ram(), &[Region { base: RAM_IPA, size: 256 * MIB }]);
        assert!(p.reserved.as_slice().is_empty());
        let uart = p.console.expect("stdout-path names the PL011");
        assert_eq!(uart.kind, UartKind::Pl011);
        assert_eq!(uart.region, Region { base: UART_IPA, size: UART_SIZE });
        assert_eq!(p.gic.version, GicVersion::V3);
        assert_eq!(p.gic.distributor, Region { base: GICD_IPA, size: GICD_SIZE });
        assert_eq!(p.gic.redistributors.as_slice(), &[Region { base: GICR_IPA, size: GICR_SIZE }]);
        assert_eq!(p.timer.virt.intid, IntId(27));
        assert_eq!(p.timer.nonsecure_phys.intid, IntId(30));
        assert_eq!(p.timer.hyp_phys.intid, IntId(26));
        assert_eq!(p.pmu.map(|i| i.intid), Some(IntId(23)), "arm,armv8-pmuv3 with PPI 7");
        assert_eq!(p.psci.map(|p| p.conduit), Some(PsciConduit::Hvc));
        assert_eq!(p.cpus.mpidrs(), &[0]);
        assert_eq!(p.bootargs, Some("console=ttyAMA0 earlycon"));
        assert_eq!(p.model, Some("spevisor guest"));
        assert_eq!(p.initrd, None);
    }

    #[test]
    fn a_guest_on_a_gicv2_host_gets_a_gicv2_with_cpu_masks_in_its_ppis() {
        let dtb = tree_of(&GuestMachine { gic_v2: true, vcpus: 2, ..machine(64 * MIB, "") });
        let p = parse(&dtb).unwrap();
        assert_eq!(p.gic.version, GicVersion::V2);
        assert_eq!(p.gic.distributor, Region { base: GICD_IPA, size: GICD_SIZE });
        assert_eq!(p.gic.cpu_interface, Some(Region { base: GICC_IPA, size: GICC_SIZE }));
        assert!(p.gic.redistributors.as_slice().is_empty());
        assert_eq!(p.gic.maintenance.map(|i| i.intid), Some(IntId(25)));
        assert_eq!(p.timer.virt.intid, IntId(27));
        assert_eq!(p.pmu.map(|i| i.intid), Some(IntId(23)));
        // The raw cells: <GIC_PPI 11 (0b11 << 8 | level-high)> for the virtual timer.
        let cells: Vec<u8> = [1u32, 11, 0x304].iter().flat_map(|c| c.to_be_bytes()).collect();
        assert!(dtb.windows(cells.len()).any(|w| w == cells), "CPU mask in bits [15:8] of the flags cell");
        let gic400 = b"arm,gic-400\0arm,cortex-a15-gic\0";
        assert!(dtb.windows(gic400.len()).any(|w| w == gic400));
        // The GICv3 tree has neither.
        let v3 = tree(64 * MIB, "");
        assert!(!v3.windows(cells.len()).any(|w| w == cells));
    }

    #[test]
    fn one_cpu_node_and_one_redistributor_per_vcpu() {
        for vcpus in 1..=MAX_VCPUS {
            let p_dtb = tree_of(&GuestMachine { vcpus, ..machine(64 * MIB, "") });
            let p = parse(&p_dtb).unwrap();
            let want: Vec<u64> = (0..vcpus as u64).collect();
            assert_eq!(p.cpus.mpidrs(), &want[..], "{vcpus} vcpus");
            assert_eq!(
                p.gic.redistributors.as_slice(),
                &[Region { base: GICR_IPA, size: vcpus as u64 * 0x2_0000 }],
                "{vcpus} vcpus"
            );
            // Every cpu node says how it is started.
            let fdt = spevisor_dtb::fdt::Fdt::new(&p_dtb).unwrap();
            let cpus = fdt.find_node("/cpus").unwrap();
            let methods: Vec<_> =
                cpus.children().map(|c| c.property("enable-method").and_then(|p| p.as_str()).unwrap()).collect();
            assert_eq!(methods, vec!["psci"; vcpus as usize]);
        }
        let mut buf = vec![0u8; DTB_SLOT as usize];
        for bad in [0, MAX_VCPUS + 1] {
            assert_eq!(
                write(&mut buf, &GuestMachine { vcpus: bad, ..machine(64 * MIB, "") }),
                Err(TreeError::Vcpus(bad))
            );
        }
    }

    #[test]
    fn the_initrd_is_in_chosen() {
        let (start, end) = (RAM_IPA + 0x0f00_0000, RAM_IPA + 0x0f12_3456);
        let dtb = tree_of(&GuestMachine { initrd: Some((start, end)), ..machine(256 * MIB, "x") });
        let p = parse(&dtb).unwrap();
        assert_eq!(p.initrd, Some(Region { base: start, size: end - start }));
        assert_eq!(p.bootargs, Some("x"));
    }

    #[test]
    fn the_tree_fits_its_slot_with_a_long_command_line() {
        let long = "x".repeat(4096);
        let dtb = tree_of(&GuestMachine {
            vcpus: MAX_VCPUS,
            initrd: Some((RAM_IPA, RAM_IPA + 1)),
            ..machine(2 * MIB, &long)
        });
        assert!(dtb.len() < DTB_SLOT as usize / 2, "{} bytes", dtb.len());
        assert_eq!(parse(&dtb).unwrap().bootargs, Some(long.as_str()));
        let mut small = [0u8; 256];
        assert_eq!(write(&mut small, &machine(2 * MIB, "")), Err(TreeError::Write(WriteError::BufferTooSmall)));
    }

    #[test]
    fn the_slot_is_at_the_top_of_ram_and_aligned() {
        let m = machine(2 * MIB, "");
        assert_eq!(m.dtb_ipa(), RAM_IPA + 2 * MIB - DTB_SLOT);
        assert!(m.dtb_ipa().is_multiple_of(spevisor_dtb::DTB_ALIGN as u64));
    }
}
