//! A page pool for table pages and other page-granular allocations.

use crate::{PageAllocator, PAGE_SIZE};
use buddy_system_allocator::Heap;
use core::alloc::Layout as AllocLayout;
use core::ptr::NonNull;

/// A page pool: a buddy allocator handing out page-aligned runs of zeroed
/// pages, with free/total counters (so leaks are measurable). It keeps its free lists inside the free pages, so it
/// needs no heap.
pub struct PagePool {
    buddy: Heap<32>,
    total: usize,
    free: usize,
    /// Offset from a physical address to the pointer that reaches it
    /// (0 at EL2, where RAM is identity mapped; a buffer base in tests).
    phys_to_ptr: usize,
}

impl PagePool {
    pub const fn empty() -> Self {
        Self { buddy: Heap::new(), total: 0, free: 0, phys_to_ptr: 0 }
    }

    /// Adds `[start, end)` (page aligned) to the pool; `phys_to_ptr` is the offset from
    /// a physical address to a pointer through which it can be written.
    ///
    /// # Safety
    /// The range must be unused memory that the pool owns from now on, and
    /// writable through `phys_to_ptr`.
    pub unsafe fn add(&mut self, start: u64, end: u64, phys_to_ptr: usize) {
        let pages = ((end - start) / PAGE_SIZE) as usize;
        self.phys_to_ptr = phys_to_ptr;
        let first = start as usize + phys_to_ptr;
        // SAFETY: forwarded from the caller: the memory is unused and ours.
        unsafe { self.buddy.add_to_heap(first, first + (end - start) as usize) };
        self.total += pages;
        self.free += pages;
    }

    fn layout(count: usize) -> Option<AllocLayout> {
        let size = count.checked_mul(PAGE_SIZE as usize)?;
        AllocLayout::from_size_align(size, PAGE_SIZE as usize).ok()
    }

    pub fn free_pages(&self) -> usize {
        self.free
    }

    pub fn total_pages(&self) -> usize {
        self.total
    }

    /// `count` contiguous zeroed pages.
    pub fn alloc_pages(&mut self, count: usize) -> Option<u64> {
        let ptr = self.buddy.alloc(Self::layout(count)?).ok()?.as_ptr();
        self.free -= count;
        let pa = (ptr as usize - self.phys_to_ptr) as u64;
        // SAFETY: the frames were added by `add` as memory reachable through
        // `phys_to_ptr` and owned by the pool; the allocator just handed them
        // out, so nothing else uses them.
        unsafe { core::ptr::write_bytes(ptr, 0, count * PAGE_SIZE as usize) };
        Some(pa)
    }

    /// Gives back `count` pages.
    ///
    /// # Safety
    /// `pa` must come from `alloc_pages(count)` on this pool and not be used
    /// after this call.
    pub unsafe fn free_pages_at(&mut self, pa: u64, count: usize) {
        let ptr = (pa as usize + self.phys_to_ptr) as *mut u8;
        let (Some(ptr), Some(layout)) = (NonNull::new(ptr), Self::layout(count)) else {
            return;
        };
        // SAFETY: forwarded from the caller: the block came from this heap
        // with this layout.
        unsafe { self.buddy.dealloc(ptr, layout) };
        self.free += count;
    }
}

impl PageAllocator for PagePool {
    fn alloc_page(&mut self) -> Option<u64> {
        self.alloc_pages(1)
    }
    fn free_page(&mut self, pa: u64) {
        // SAFETY: the PageAllocator contract: `pa` came from `alloc_page`.
        unsafe { self.free_pages_at(pa, 1) }
    }
    fn table_ptr(&self, pa: u64) -> *mut u64 {
        (pa as usize + self.phys_to_ptr) as *mut u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_counts_pages_and_zeroes_them() {
        let mut backing = vec![0xaau8; 64 * PAGE_SIZE as usize + PAGE_SIZE as usize];
        let base = (backing.as_mut_ptr() as usize + PAGE_SIZE as usize - 1) & !(PAGE_SIZE as usize - 1);
        // Pretend the buffer is at physical 0x10_0000.
        let pa0 = 0x10_0000u64;
        let mut pool = PagePool::empty();
        // SAFETY: the aligned part of `backing` is unused and outlives the pool.
        unsafe { pool.add(pa0, pa0 + 64 * PAGE_SIZE, base - pa0 as usize) };
        assert_eq!((pool.total_pages(), pool.free_pages()), (64, 64));
        let p = pool.alloc_pages(4).unwrap();
        assert_eq!(pool.free_pages(), 60);
        let ptr = pool.table_ptr(p) as *const u8;
        // SAFETY: inside `backing`.
        let bytes = unsafe { core::slice::from_raw_parts(ptr, 4 * PAGE_SIZE as usize) };
        assert!(bytes.iter().all(|b| *b == 0));
        // SAFETY: `p` came from alloc_pages(4).
        unsafe { pool.free_pages_at(p, 4) };
        assert_eq!(pool.free_pages(), 64);
        assert!(pool.alloc_pages(128).is_none());
    }
}
