//! A vcpu's EL1 physical timer (CNTP_CTL/CVAL/TVAL_EL0), emulated by the
//! host: the physical CNTP is the host's own scheduling timer, so EL2 traps
//! the guest's accesses (CNTHCTL_EL2.EL1PCEN = 0) and hands them over
//! (`Exit::SysReg`). The guest's counter is the host's (CNTVOFF_EL2 = 0,
//! counter reads not trapped: CNTHCTL_EL2.EL1PCTEN = 1), so the compare
//! value is used as it is.
//!
//! The interrupt is level-sensitive, as on hardware: INTID 30's line is high
//! while the timer is enabled, not masked and the counter has reached the
//! compare value (`vmm.rs` drives the vGIC's line from [`PTimer::line`] at
//! every access, when the host's timer fires for the running vcpu's
//! deadline, and when a sleeping vcpu's deadline passes). Pure, so it is
//! tested on the development machine.

use spevisor_abi::guest_sysreg::{CNTP_CTL_EL0, CNTP_CVAL_EL0, CNTP_TVAL_EL0};

/// CNTP_CTL_EL0 fields.
pub const CTL_ENABLE: u64 = 1 << 0;
pub const CTL_IMASK: u64 = 1 << 1;
/// Read-only: the timer condition is met (only while enabled).
pub const CTL_ISTATUS: u64 = 1 << 2;
/// The bits a guest's write keeps.
const CTL_WRITABLE: u64 = CTL_ENABLE | CTL_IMASK;
/// CNTP_TVAL_EL0 is a signed 32-bit count; bits [63:32] read as zero.
const TVAL_MASK: u64 = 0xffff_ffff;

/// One vcpu's timer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PTimer {
    /// ENABLE and IMASK as the guest wrote them.
    ctl: u64,
    /// The compare value.
    cval: u64,
}

impl PTimer {
    /// Whether the timer condition is met at counter `now`.
    fn condition(&self, now: u64) -> bool {
        self.ctl & CTL_ENABLE != 0 && now >= self.cval
    }

    /// The value a read of `reg` gives at counter `now` (`None`: not a
    /// register of this timer).
    pub fn read(&self, reg: u32, now: u64) -> Option<u64> {
        Some(match reg {
            CNTP_CTL_EL0 => self.ctl | if self.condition(now) { CTL_ISTATUS } else { 0 },
            CNTP_CVAL_EL0 => self.cval,
            // TimerValue = CVAL - counter, the low 32 bits.
            CNTP_TVAL_EL0 => self.cval.wrapping_sub(now) & TVAL_MASK,
            _ => return None,
        })
    }

    /// A write of `v` to `reg` at counter `now`; `false`: not a register
    /// of this timer.
    pub fn write(&mut self, reg: u32, v: u64, now: u64) -> bool {
        match reg {
            CNTP_CTL_EL0 => self.ctl = v & CTL_WRITABLE,
            CNTP_CVAL_EL0 => self.cval = v,
            // CVAL = counter + TimerValue, sign-extended from 32 bits.
            CNTP_TVAL_EL0 => self.cval = now.wrapping_add(v as u32 as i32 as i64 as u64),
            _ => return false,
        }
        true
    }

    /// The interrupt line at counter `now`: condition met, not masked.
    pub fn line(&self, now: u64) -> bool {
        self.condition(now) && self.ctl & CTL_IMASK == 0
    }

    /// When the line rises (or rose), if the timer is enabled and not
    /// masked: the compare value. A sleeping vcpu wakes then.
    pub fn wake_at(&self) -> Option<u64> {
        (self.ctl & (CTL_ENABLE | CTL_IMASK) == CTL_ENABLE).then_some(self.cval)
    }

    /// When the line will rise, if it is low at `now` and will rise
    /// without another write: the host's timer must fire then.
    pub fn deadline(&self, now: u64) -> Option<u64> {
        self.wake_at().filter(|cval| now < *cval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_compare_and_status() {
        let mut t = PTimer::default();
        assert_eq!(t.read(CNTP_CTL_EL0, 100), Some(0), "off out of reset");
        assert!(!t.line(100));
        assert!(t.write(CNTP_CVAL_EL0, 1000, 100));
        assert!(t.write(CNTP_CTL_EL0, CTL_ENABLE | CTL_ISTATUS | 0xf0, 100));
        assert_eq!(t.read(CNTP_CTL_EL0, 999), Some(CTL_ENABLE), "ISTATUS and other bits are not written");
        assert_eq!(t.deadline(999), Some(1000));
        assert!(!t.line(999));
        assert_eq!(t.read(CNTP_CTL_EL0, 1000), Some(CTL_ENABLE | CTL_ISTATUS));
        assert!(t.line(1000));
        assert_eq!(t.deadline(1000), None, "already high");
        assert_eq!(t.wake_at(), Some(1000), "a sleeper wakes even after the fact");
        // Masked: the condition still shows, the line drops.
        t.write(CNTP_CTL_EL0, CTL_ENABLE | CTL_IMASK, 1001);
        assert_eq!(t.read(CNTP_CTL_EL0, 1001), Some(CTL_ENABLE | CTL_IMASK | CTL_ISTATUS));
        assert!(!t.line(1001));
        assert_eq!((t.deadline(500), t.wake_at()), (None, None), "masked: no deadline");
        // Disabled: no condition.
        t.write(CNTP_CTL_EL0, 0, 1002);
        assert_eq!(t.read(CNTP_CTL_EL0, 2000), Some(0));
        assert_eq!(t.deadline(0), None);
        assert_eq!(t.read(0x1234, 0), None);
        assert!(!t.write(0x1234, 0, 0));
    }

    #[test]
    fn timer_value_is_relative_to_the_counter_and_signed() {
        let mut t = PTimer::default();
        t.write(CNTP_TVAL_EL0, 625_000, 1_000_000);
        assert_eq!(t.read(CNTP_CVAL_EL0, 0), Some(1_625_000));
        assert_eq!(t.read(CNTP_TVAL_EL0, 1_000_000), Some(625_000));
        assert_eq!(t.read(CNTP_TVAL_EL0, 1_625_010), Some((-10i32) as u32 as u64), "past: negative, 32 bits");
        t.write(CNTP_TVAL_EL0, (-5i32) as u32 as u64 | 0xdead_0000_0000_0000, 1_000);
        assert_eq!(t.read(CNTP_CVAL_EL0, 0), Some(995), "sign-extended from bit 31; upper bits ignored");
        t.write(CNTP_CTL_EL0, CTL_ENABLE, 1_000);
        assert!(t.line(1_000), "due at once");
    }
}
