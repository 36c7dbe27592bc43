use super::*;
use std::collections::BTreeMap;

/// Table pages in a `Vec`, at fake physical addresses from 0x1000_0000 up.
struct TestAlloc {
    pages: BTreeMap<u64, Box<[u64; 512]>>,
    next: u64,
    freed: usize,
}

impl TestAlloc {
    fn new() -> Self {
        Self { pages: BTreeMap::new(), next: 0x1000_0000, freed: 0 }
    }
    fn live(&self) -> usize {
        self.pages.len()
    }
}

impl PageAllocator for TestAlloc {
    fn alloc_page(&mut self) -> Option<u64> {
        let pa = self.next;
        self.next += PAGE_SIZE;
        self.pages.insert(pa, Box::new([0; 512]));
        Some(pa)
    }
    fn free_page(&mut self, pa: u64) {
        assert!(self.pages.remove(&pa).is_some(), "double free of {pa:#x}");
        self.freed += 1;
    }
    fn table_ptr(&self, pa: u64) -> *mut u64 {
        self.pages.get(&pa).expect("not a table page").as_ptr() as *mut u64
    }
}

const GIB: u64 = 1 << 30;
const MIB2: u64 = 2 << 20;

#[test]
fn maps_blocks_when_aligned_and_pages_otherwise() {
    let mut a = TestAlloc::new();
    let mut t = PageTable::new(&mut a, Regime::El2, 48).unwrap();
    t.map_range(&mut a, 0, 0, GIB, Attributes::DEVICE).unwrap();
    t.map_range(&mut a, 0x4000_0000, 0x4000_0000, MIB2 + PAGE_SIZE, Attributes::RW).unwrap();
    assert_eq!(t.translate(&a, 0x0900_0000).unwrap().level, 1);
    assert_eq!(t.translate(&a, 0x4000_1234).unwrap().level, 2);
    let p = t.translate(&a, 0x4020_0010).unwrap();
    assert_eq!((p.level, p.pa), (3, 0x4020_0010));
    assert!(t.translate(&a, 0x4020_1000).is_none());
}

#[test]
fn el2_attributes_follow_wx() {
    let mut a = TestAlloc::new();
    let mut t = PageTable::new(&mut a, Regime::El2, 48).unwrap();
    t.map_range(&mut a, 0x4000_0000, 0x4000_0000, PAGE_SIZE, Attributes::RX).unwrap();
    t.map_range(&mut a, 0x4000_1000, 0x4000_1000, PAGE_SIZE, Attributes::RO).unwrap();
    t.map_range(&mut a, 0x4000_2000, 0x4000_2000, PAGE_SIZE, Attributes::RW).unwrap();
    t.map_range(&mut a, 0x0900_0000, 0x0900_0000, PAGE_SIZE, Attributes::DEVICE).unwrap();
    let d = |va| t.translate(&a, va).unwrap().descriptor;
    let text = d(0x4000_0000);
    assert!(inspect::is_exec_el2(text) && !inspect::is_writable_s1(text));
    let ro = d(0x4000_1000);
    assert!(!inspect::is_exec_el2(ro) && !inspect::is_writable_s1(ro));
    let rw = d(0x4000_2000);
    assert!(!inspect::is_exec_el2(rw) && inspect::is_writable_s1(rw));
    assert_eq!(inspect::s1_attr_index(rw), mair::NORMAL_WB);
    let dev = d(0x0900_0000);
    assert!(!inspect::is_exec_el2(dev));
    assert_eq!(inspect::s1_attr_index(dev), mair::DEVICE_NGNRE);
    let wx = Attributes { exec: true, ..Attributes::RW };
    assert_eq!(t.map_range(&mut a, 0x5000_0000, 0x5000_0000, PAGE_SIZE, wx), Err(MapError::Forbidden));
    let xdev = Attributes { exec: true, ..Attributes::DEVICE };
    assert_eq!(t.map_range(&mut a, 0x5000_0000, 0x5000_0000, PAGE_SIZE, xdev), Err(MapError::Forbidden));
}

#[test]
fn el1_kernel_code_is_not_user_executable() {
    let mut a = TestAlloc::new();
    let mut t = PageTable::new(&mut a, Regime::El1, 48).unwrap();
    t.map_range(&mut a, 0x4000_0000, 0x4000_0000, PAGE_SIZE, Attributes::RX).unwrap();
    t.map_range(&mut a, 0x4000_1000, 0x4000_1000, PAGE_SIZE, Attributes::RW).unwrap();
    let text = t.translate(&a, 0x4000_0000).unwrap().descriptor;
    assert!(inspect::is_exec_el1(text));
    assert_ne!(text & desc::S1_UXN_XN, 0);
    let data = t.translate(&a, 0x4000_1000).unwrap().descriptor;
    assert!(!inspect::is_exec_el1(data));
}

#[test]
fn stage2_attributes() {
    let mut a = TestAlloc::new();
    let mut t = PageTable::new(&mut a, Regime::Stage2, 40).unwrap();
    assert_eq!(t.start_level(), 0);
    t.map_range(&mut a, 0x4000_0000, 0x8000_0000, PAGE_SIZE, Attributes::GUEST_RAM).unwrap();
    let tr = t.translate(&a, 0x4000_0abc).unwrap();
    assert_eq!(tr.pa, 0x8000_0abc);
    assert_eq!(inspect::s2_memattr(tr.descriptor), 0b1111);
    assert!(inspect::s2_writable(tr.descriptor) && inspect::s2_exec(tr.descriptor));
    t.map_range(&mut a, 0x0900_0000, 0x0900_0000, PAGE_SIZE, Attributes::DEVICE).unwrap();
    let dev = t.translate(&a, 0x0900_0000).unwrap().descriptor;
    assert_eq!(inspect::s2_memattr(dev), 0b0001);
    assert!(!inspect::s2_exec(dev));
}

#[test]
fn refuses_overlap_and_changes_nothing() {
    let mut a = TestAlloc::new();
    let mut t = PageTable::new(&mut a, Regime::Stage2, 39).unwrap();
    t.map_range(&mut a, 0x4000_3000, 0x9000_0000, PAGE_SIZE, Attributes::GUEST_RAM).unwrap();
    let err = t.map_range(&mut a, 0x4000_0000, 0x8000_0000, 0x10000, Attributes::GUEST_RAM);
    assert_eq!(err, Err(MapError::Conflict { va: 0x4000_3000 }));
    assert!(t.translate(&a, 0x4000_0000).is_none(), "failed map left a page behind");
    assert_eq!(t.translate(&a, 0x4000_3000).unwrap().pa, 0x9000_0000);
}

#[test]
fn rejects_bad_ranges() {
    let mut a = TestAlloc::new();
    let mut t = PageTable::new(&mut a, Regime::Stage2, 39).unwrap();
    let r = Attributes::GUEST_RAM;
    assert_eq!(t.map_range(&mut a, 0x123, 0, PAGE_SIZE, r), Err(MapError::Unaligned));
    assert_eq!(t.map_range(&mut a, 0, 0x10, PAGE_SIZE, r), Err(MapError::Unaligned));
    assert_eq!(t.map_range(&mut a, 1 << 39, 0, PAGE_SIZE, r), Err(MapError::OutOfRange));
    assert_eq!(t.map_range(&mut a, !0xfff, 0, 2 * PAGE_SIZE, r), Err(MapError::OutOfRange));
    assert_eq!(t.unmap_range(&mut a, 0, PAGE_SIZE), Err(MapError::Conflict { va: 0 }));
}

#[test]
fn unmap_splits_blocks_and_destroy_frees_everything() {
    let mut a = TestAlloc::new();
    let mut t = PageTable::new(&mut a, Regime::El2, 48).unwrap();
    t.map_range(&mut a, 0x4000_0000, 0x4000_0000, GIB, Attributes::RW).unwrap();
    t.unmap_range(&mut a, 0x4020_1000, PAGE_SIZE).unwrap();
    assert!(t.translate(&a, 0x4020_1000).is_none());
    let left = t.translate(&a, 0x4020_0000).unwrap();
    assert_eq!((left.level, left.pa), (3, 0x4020_0000));
    assert_eq!(t.translate(&a, 0x4020_2000).unwrap().pa, 0x4020_2000);
    assert_eq!(t.translate(&a, 0x7fff_f000).unwrap().level, 2);
    // Attributes survive the split.
    assert!(inspect::is_writable_s1(left.descriptor));
    assert!(a.live() > 0);
    t.destroy(&mut a);
    assert_eq!(a.live(), 0, "table pages leaked");
}

#[test]
fn control_register_encodings() {
    assert_eq!(regs::pa_bits_from_parange(0b0101), Some(48));
    assert_eq!(regs::pa_bits_from_parange(0b0111), None);
    // VTCR_EL2 for 40-bit IPA on a 48-bit PA CPU: T0SZ=24, SL0=level 0 (0b10), PS=0b101.
    let v = regs::vtcr_el2(40, 48);
    assert_eq!(v & 0x3f, 24);
    assert_eq!((v >> 6) & 0b11, 0b10);
    assert_eq!((v >> 16) & 0b111, 0b101);
    assert_eq!((v >> 14) & 0b11, 0, "TG0 must be 4K");
    // 39-bit IPA starts at level 1.
    assert_eq!((regs::vtcr_el2(39, 40) >> 6) & 0b11, 0b01);
    let t = regs::tcr_el2(48, 40);
    assert_eq!(t & 0x3f, 16);
    assert_eq!((t >> 16) & 0b111, 0b010);
    assert_ne!(t & (1 << 31), 0);
    let mut a = TestAlloc::new();
    let s2 = PageTable::new(&mut a, Regime::Stage2, 40).unwrap();
    let vttbr = regs::vttbr_el2(&s2, 7);
    assert_eq!(vttbr >> 48, 7);
    assert_eq!(vttbr & 0xffff_ffff_ffff, s2.root_pa());
}

#[test]
fn overlap_check_finds_a_single_page_in_a_huge_range() {
    let mut a = TestAlloc::new();
    let mut t = PageTable::new(&mut a, Regime::El2, 40).unwrap();
    let far = (1u64 << 39) - PAGE_SIZE;
    t.map_range(&mut a, far, 0x1000, PAGE_SIZE, Attributes::RW).unwrap();
    assert_eq!(
        t.map_range(&mut a, 0, 0, 1 << 39, Attributes::RW),
        Err(MapError::Conflict { va: far }),
        "must find the page without walking every page before it"
    );
    // Unmapping a range of mixed blocks and pages checks each mapping once.
    t.map_range(&mut a, 0x4000_0000, 0x4000_0000, GIB + PAGE_SIZE, Attributes::RW).unwrap();
    t.unmap_range(&mut a, 0x4000_0000, GIB + PAGE_SIZE).unwrap();
    assert!(t.translate(&a, 0x4000_0000).is_none());
    assert!(t.translate(&a, 0x8000_0000).is_none());
    assert_eq!(t.unmap_range(&mut a, 0x4000_0000, PAGE_SIZE), Err(MapError::Conflict { va: 0x4000_0000 }));
}

#[test]
fn stage2_never_starts_at_level_0_below_44_pa_bits() {
    for pa in [32, 36, 40, 42, 44, 48, 52] {
        let ipa = regs::stage2_ipa_bits(pa);
        let sl0 = (regs::vtcr_el2(ipa, pa) >> 6) & 0b11;
        if pa < 44 {
            assert_ne!(sl0, 0b10, "PA {pa}: level-0 start is reserved");
        }
        assert!(ipa <= pa.min(48));
        assert!(ipa >= 32, "guest RAM at 0x4000_0000 must fit");
    }
    assert_eq!(regs::stage2_ipa_bits(40), 39);
    assert_eq!(regs::stage2_ipa_bits(48), 48);
    assert_eq!(regs::stage2_ipa_bits(52), 48);
}

#[test]
fn a_map_that_runs_out_of_tables_leaves_nothing_behind() {
    /// Hands out at most `left` pages.
    struct Tight {
        inner: TestAlloc,
        left: usize,
    }
    impl PageAllocator for Tight {
        fn alloc_page(&mut self) -> Option<u64> {
            if self.left == 0 {
                return None;
            }
            self.left -= 1;
            self.inner.alloc_page()
        }
        fn free_page(&mut self, pa: u64) {
            self.inner.free_page(pa)
        }
        fn table_ptr(&self, pa: u64) -> *mut u64 {
            self.inner.table_ptr(pa)
        }
    }
    let mut a = Tight { inner: TestAlloc::new(), left: 4 };
    let mut t = PageTable::new(&mut a, Regime::Stage2, 40).unwrap();
    // Two pages across a 2 MiB boundary need two level-3 tables: the second
    // allocation fails after the first page was written.
    let va = 0x4020_0000 - PAGE_SIZE;
    assert_eq!(t.map_range(&mut a, va, 0x5000_0000, 2 * PAGE_SIZE, Attributes::GUEST_RAM), Err(MapError::NoMemory));
    assert!(t.translate(&a, va).is_none(), "the prefix must be unmapped again");
    assert!(t.translate(&a, va + PAGE_SIZE).is_none());
}
