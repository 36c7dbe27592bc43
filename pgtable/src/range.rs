//! Physical address ranges and the set arithmetic boot code needs (RAM minus
//! the image, the DTB and reserved regions).

/// A half-open address range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

impl Range {
    pub const fn new(start: u64, end: u64) -> Self {
        Self { start, end }
    }
    pub const fn size(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }
    pub const fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
    /// Whether `[start, start+size)` lies wholly inside (no overflow).
    pub fn contains_range(&self, start: u64, size: u64) -> bool {
        match start.checked_add(size) {
            Some(end) => self.start <= start && end <= self.end,
            None => false,
        }
    }
    pub fn overlaps(&self, start: u64, size: u64) -> bool {
        let end = start.saturating_add(size);
        size != 0 && start < self.end && self.start < end
    }
    /// The whole pages holding `size` bytes from `base` (a DTB region, a
    /// reservation): saturating, never wrapping past 2^64.
    pub const fn pages_of(base: u64, size: u64) -> Self {
        Self::new(base, base.saturating_add(size)).align_out(crate::PAGE_SIZE)
    }

    /// The range grown to whole `align`-sized units.
    /// (An end within `align` of 2^64 stays at the last aligned boundary
    /// below it rather than wrapping: such a range is not memory anyway.)
    pub const fn align_out(&self, align: u64) -> Self {
        let end = match self.end.checked_add(align - 1) {
            Some(e) => e & !(align - 1),
            None => self.end & !(align - 1),
        };
        Self::new(self.start & !(align - 1), end)
    }
}

/// Maximum pieces [`subtract`] returns.
pub const MAX_PIECES: usize = 32;

/// `from` minus every range in `holes`, in ascending order (at most
/// [`MAX_PIECES`] pieces; the rest is dropped, which only loses memory).
pub fn subtract(from: Range, holes: &[Range]) -> ([Range; MAX_PIECES], usize) {
    let mut out = [Range::default(); MAX_PIECES];
    let mut n = 0;
    let mut cursor = from.start;
    while cursor < from.end && n < MAX_PIECES {
        // The first hole that covers or follows `cursor`.
        let next =
            holes.iter().filter(|h| !h.is_empty() && h.end > cursor && h.start < from.end).min_by_key(|h| h.start);
        match next {
            Some(h) if h.start <= cursor => cursor = h.end,
            Some(h) => {
                out[n] = Range::new(cursor, h.start);
                n += 1;
                cursor = h.end;
            }
            None => {
                out[n] = Range::new(cursor, from.end);
                n += 1;
                cursor = from.end;
            }
        }
    }
    (out, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(from: Range, holes: &[Range]) -> Vec<Range> {
        let (p, n) = subtract(from, holes);
        p[..n].to_vec()
    }

    #[test]
    fn pages_of_rounds_out_and_never_wraps() {
        assert_eq!(Range::pages_of(0x4800_0010, 0x20), Range::new(0x4800_0000, 0x4800_1000));
        assert_eq!(Range::pages_of(0x4800_0000, 0x1000), Range::new(0x4800_0000, 0x4800_1000));
        let top = Range::pages_of(u64::MAX - 0x10, 0x100);
        assert_eq!(top.start, !0xfff);
        assert!(top.end >= top.start, "saturated, not wrapped");
    }

    #[test]
    fn subtracts_overlapping_and_unsorted_holes() {
        let r = Range::new(0, 100);
        assert_eq!(pieces(r, &[]), vec![r]);
        assert_eq!(
            pieces(r, &[Range::new(50, 60), Range::new(10, 20), Range::new(15, 30)]),
            vec![Range::new(0, 10), Range::new(30, 50), Range::new(60, 100)]
        );
        assert_eq!(pieces(r, &[Range::new(0, 100)]), vec![]);
        assert_eq!(pieces(r, &[Range::new(90, 200)]), vec![Range::new(0, 90)]);
        assert_eq!(pieces(r, &[Range::new(200, 300), Range::new(5, 5)]), vec![r]);
    }

    #[test]
    fn range_predicates() {
        let r = Range::new(0x1000, 0x3000);
        assert!(r.contains_range(0x1000, 0x2000));
        assert!(!r.contains_range(0x1000, 0x2001));
        assert!(!r.contains_range(u64::MAX - 10, 100));
        assert!(r.overlaps(0x2fff, 1));
        assert!(!r.overlaps(0x3000, 1));
        assert!(!r.overlaps(0, 0x1000));
        assert_eq!(Range::new(0x1001, 0x1002).align_out(0x1000), Range::new(0x1000, 0x2000));
    }
}
