//! A heap's cache of free slabs by kind (any size class), between its per-class empty-slab cache
//! and the global pool: a slab that empties (by its owner's frees or by remote frees) waits here
//! to be reformatted for whatever class runs dry next, and the pool lock is taken only to move
//! half a cache's worth of slabs at once. HAKMEM_TCACHE sizes it: 8 x TCACHE small slabs, TCACHE
//! medium slabs; blocks over 64 KiB (one slab per SuperSlab) always go to the pool, and so does
//! everything with TCACHE=0. When a thread exits, its parked heap keeps the cache for the next
//! thread that adopts it (a thread pool's replacement worker starts without the pool lock), as
//! long as at most `PARKED_MAX` parked heaps hold one; beyond that the cache goes to the pool.

use crate::policy;
use crate::pool::{self, Pool};
use crate::size_class::{KIND_MEDIUM, KIND_SMALL, NUM_KINDS};
use crate::slab::{Slab, SlabList};
use crate::superslab;

/// Parked heaps that may keep their cache (each holds at most 8 x TCACHE x 64 KiB + TCACHE x 512 KiB).
const PARKED_MAX: usize = 8;

pub struct SlabCache {
    lists: [SlabList; NUM_KINDS],
    /// Slabs handed out from the cache, batches taken from the pool, batches given back.
    pub hits: u64,
    pub grabs: u64,
    pub returns: u64,
    parked: bool,
}

impl SlabCache {
    pub const fn new() -> Self {
        SlabCache {
            lists: [const { SlabList::new() }; NUM_KINDS],
            hits: 0,
            grabs: 0,
            returns: 0,
            parked: false,
        }
    }

    /// A free slab of `kind`: from the cache, else a batch from the pool. Null if out of memory.
    ///
    /// # Safety
    /// The caller owns the cache's heap.
    pub unsafe fn take(&mut self, kind: usize) -> *mut Slab {
        let list = &mut self.lists[kind];
        if list.len == 0 {
            let want = cap(kind).div_ceil(2).max(1);
            pool::acquire_slabs(kind, want, list);
            self.grabs += 1;
        } else {
            self.hits += 1;
        }
        // SAFETY: the caller owns the cache's heap (this fn's contract), so this list and its
        // slabs (free slabs of mapped SuperSlabs) are touched by no other thread.
        unsafe { list.pop() }
    }

    /// Keeps an empty slab (no live block, no pending remote free, in no list); a full cache
    /// gives half its slabs back to the pool first.
    ///
    /// # Safety
    /// The caller owns the cache's heap, and `s` belongs to it, empty and in no list.
    pub unsafe fn put(&mut self, s: *mut Slab) {
        // SAFETY: `s` is a slab descriptor of a mapped SuperSlab (this fn's contract); `kind`
        // is fixed from the SuperSlab's formatting.
        let kind = unsafe { (*s).kind as usize };
        let cap = cap(kind);
        let list = &mut self.lists[kind];
        // SAFETY: `s` is empty and in no list (this fn's contract), as `unformat` requires;
        // the caller owns the cache, so this list and its slabs are this thread's.
        unsafe {
            pool::unformat(s);
            list.push(s);
        }
        if list.len > cap {
            let mut back = SlabList::new();
            // SAFETY: the slabs moved are this cache's: empty, in this list only, and used by
            // no thread until reacquired, as `release_slabs` requires.
            unsafe {
                while list.len > cap / 2 {
                    back.push(list.pop());
                }
                pool::release_slabs(&mut back);
            }
            self.returns += 1;
        }
    }

    /// The heap is being parked (its thread exited): keeps the cache for the next thread, or
    /// gives every slab back if enough parked heaps hold one already.
    ///
    /// # Safety
    /// The caller owns the cache's heap and holds the pool lock (`p`).
    pub unsafe fn park(&mut self, p: &mut Pool) {
        if p.parked_caches < PARKED_MAX {
            p.parked_caches += 1;
            self.parked = true;
            return;
        }
        // SAFETY: the caller owns the cache and holds the pool lock (this fn's contract).
        unsafe { self.release_all(p) };
    }

    /// Gives every cached slab back to the pool (a parked cache stops being one); the bytes
    /// they span.
    ///
    /// # Safety
    /// The caller owns the cache's heap (or the heap is parked) and holds the pool lock (`p`).
    pub unsafe fn release_all(&mut self, p: &mut Pool) -> usize {
        if self.parked {
            self.parked = false;
            p.parked_caches -= 1;
        }
        let mut back = SlabList::new();
        let mut bytes = 0;
        for list in &mut self.lists {
            while list.len > 0 {
                // SAFETY: the caller owns the cache (this fn's contract); its slabs are empty,
                // each in one of its lists, in formatted SuperSlabs.
                unsafe {
                    let s = list.pop();
                    bytes += superslab::slab_bytes(s);
                    back.push(s);
                }
            }
        }
        if back.len > 0 {
            // SAFETY: the slabs are empty and used by no thread until reacquired; `p` is the
            // pool, locked by the caller (this fn's contract).
            unsafe { pool::release_slabs_locked(p, &mut back) };
            self.returns += 1;
        }
        bytes
    }

    /// A new thread adopts the parked heap.
    ///
    /// # Safety
    /// The caller holds the pool lock (`p`) and has just taken the heap off the parked list.
    pub unsafe fn unpark(&mut self, p: &mut Pool) {
        if self.parked {
            self.parked = false;
            p.parked_caches -= 1;
        }
    }
}

impl Default for SlabCache {
    fn default() -> Self {
        Self::new()
    }
}

/// How many free slabs of `kind` a heap keeps.
fn cap(kind: usize) -> usize {
    let t = policy::get(policy::Opt::Tcache) as usize;
    match kind {
        KIND_SMALL => 8 * t,
        KIND_MEDIUM => t,
        _ => 0,
    }
}
