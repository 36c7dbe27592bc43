//! Host physical memory: a bump allocator for the first page tables (used
//! with the MMU off, so only aligned 8-byte stores) and a buddy allocator for
//! everything after ([`PagePool`], shared with EL2's pool code).

pub use spevisor_pgtable::pool::PagePool;

use spevisor_pgtable::{PageAllocator, PAGE_SIZE};

/// Hands out pages from the bottom of `[next, end)`, zeroing each with
/// aligned volatile stores (safe with the MMU off).
pub struct BumpPages {
    pub next: u64,
    pub end: u64,
}

impl PageAllocator for BumpPages {
    fn alloc_page(&mut self) -> Option<u64> {
        if self.next + PAGE_SIZE > self.end {
            return None;
        }
        let pa = self.next;
        self.next += PAGE_SIZE;
        let p = pa as *mut u64;
        for i in 0..(PAGE_SIZE as usize / 8) {
            // SAFETY: the page is host memory nobody else uses; identity
            // mapped (or MMU off), 8-byte aligned.
            unsafe { p.add(i).write_volatile(0) };
        }
        Some(pa)
    }
    fn free_page(&mut self, _pa: u64) {}
    fn table_ptr(&self, pa: u64) -> *mut u64 {
        pa as *mut u64
    }
}
