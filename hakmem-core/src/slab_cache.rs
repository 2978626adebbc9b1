//! A heap's cache of free slabs by kind (any size class), between its per-class empty-slab cache
//! and the global pool: a slab that empties (by its owner's frees or by remote frees) waits here
//! to be reformatted for whatever class runs dry next, and the pool lock is taken only to move
//! half a cache's worth of slabs at once. HAKMEM_TCACHE sizes it: 8 x TCACHE small slabs, TCACHE
//! medium slabs; blocks over 64 KiB (one slab per SuperSlab) always go to the pool, and so does
//! everything with TCACHE=0. When a thread exits, its parked heap keeps the cache (and its empty
//! slabs per class, `heap::detach`) for the next thread that adopts it (a thread pool's
//! replacement worker starts without the pool lock), as long as at most `PARKED_MAX` parked
//! heaps hold one; beyond that both go to the pool.

use crate::policy;
use crate::pool::{self, Pool};
use crate::size_class::{KIND_MEDIUM, KIND_SMALL, NUM_KINDS};
use crate::slab::{Slab, SlabList};
use crate::superslab;
use crate::sync::add_single_writer;
use core::sync::atomic::AtomicU64;

/// Parked heaps that may keep their cache (each holds at most 8 x TCACHE x 64 KiB + TCACHE x 512 KiB).
const PARKED_MAX: usize = 8;

/// Owner-only (the heap's owner; the pool lock's holder while the heap is parked): `lists` and
/// `parked`. Atomic: the counters, which statistics read from other threads (the owner updates
/// them with a Relaxed load and store). The methods take `*mut SlabCache`, never `&mut self`, for
/// those readers' sake.
pub struct SlabCache {
    lists: [SlabList; NUM_KINDS],
    /// Slabs handed out from the cache, batches taken from the pool, batches given back.
    pub hits: AtomicU64,
    pub grabs: AtomicU64,
    pub returns: AtomicU64,
    parked: bool,
}

impl SlabCache {
    pub const fn new() -> Self {
        SlabCache {
            lists: [const { SlabList::new() }; NUM_KINDS],
            hits: AtomicU64::new(0),
            grabs: AtomicU64::new(0),
            returns: AtomicU64::new(0),
            parked: false,
        }
    }

    /// A free slab of `kind`: from cache `sc`, else a batch from the pool (which maps a new
    /// SuperSlab for it only with `may_map`). Null if out of memory, or if a new SuperSlab is
    /// needed and `may_map` is false.
    ///
    /// # Safety
    /// `sc` is the cache of a heap the caller owns.
    pub unsafe fn take(sc: *mut SlabCache, kind: usize, may_map: bool) -> *mut Slab {
        // SAFETY: the caller owns the cache's heap (this fn's contract), so this list and its
        // slabs (free slabs of mapped SuperSlabs) are touched by no other thread; the counters
        // are atomic.
        unsafe {
            let list = &mut (*sc).lists[kind];
            if list.len == 0 {
                let want = cap(kind).div_ceil(2).max(1);
                pool::acquire_slabs(kind, want, list, may_map);
                if list.len > 0 {
                    add_single_writer(&(*sc).grabs, 1);
                }
            } else {
                add_single_writer(&(*sc).hits, 1);
            }
            list.pop()
        }
    }

    /// Whether the cache holds no slab of `kind` (the next `take` goes to the pool).
    ///
    /// # Safety
    /// `sc` is the cache of a heap the caller owns.
    pub unsafe fn is_empty(sc: *mut SlabCache, kind: usize) -> bool {
        // SAFETY: the caller owns the cache's heap (this fn's contract).
        unsafe { (*sc).lists[kind].len == 0 }
    }

    /// Keeps an empty slab (no live block, no pending remote free, in no list) first in line; a
    /// full cache gives half its slabs back to the pool, from the far end: those never used
    /// since the pool handed them out (their pages may be purged) and the ones that emptied
    /// longest ago, so that the heap keeps reusing pages that are resident.
    ///
    /// # Safety
    /// `sc` is the cache of a heap the caller owns, and `s` belongs to it, empty and in no list.
    pub unsafe fn put(sc: *mut SlabCache, s: *mut Slab) {
        // SAFETY: `s` is a slab descriptor of a mapped SuperSlab (this fn's contract); `kind`
        // is fixed from the SuperSlab's formatting.
        let kind = unsafe { (*s).kind as usize };
        let cap = cap(kind);
        // SAFETY: the caller owns the cache (this fn's contract); the list is its own field.
        let list = unsafe { &mut (*sc).lists[kind] };
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
                    back.push(list.pop_back());
                }
                pool::release_slabs(&mut back);
                add_single_writer(&(*sc).returns, 1);
            }
        }
    }

    /// The heap is being parked (its thread exited): keeps the cache for the next thread
    /// (true), or gives every slab back if enough parked heaps hold one already (false).
    ///
    /// # Safety
    /// `sc` is the cache of a heap the caller owns, and the caller holds the pool lock (`p`).
    pub unsafe fn park(sc: *mut SlabCache, p: &mut Pool) -> bool {
        if p.parked_caches < PARKED_MAX {
            p.parked_caches += 1;
            // SAFETY: the caller owns the cache (this fn's contract).
            unsafe { (*sc).parked = true };
            return true;
        }
        // SAFETY: the caller owns the cache and holds the pool lock (this fn's contract).
        unsafe { SlabCache::release_all(sc, p) };
        false
    }

    /// Gives every cached slab back to the pool (a parked cache stops being one); the bytes
    /// they span.
    ///
    /// # Safety
    /// `sc` is the cache of a heap the caller owns (or of a parked heap), and the caller holds
    /// the pool lock (`p`).
    pub unsafe fn release_all(sc: *mut SlabCache, p: &mut Pool) -> usize {
        // SAFETY: the caller owns the cache (this fn's contract).
        unsafe {
            if (*sc).parked {
                (*sc).parked = false;
                p.parked_caches -= 1;
            }
        }
        let mut back = SlabList::new();
        let mut bytes = 0;
        // SAFETY: as above; the lists are the cache's own field.
        for list in unsafe { &mut (*sc).lists } {
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
            // pool, locked by the caller (this fn's contract); the counter is atomic.
            unsafe {
                pool::release_slabs_locked(p, &mut back);
                add_single_writer(&(*sc).returns, 1);
            }
        }
        bytes
    }

    /// A new thread adopts the parked heap.
    ///
    /// # Safety
    /// `sc` is the cache of that heap; the caller holds the pool lock (`p`) and has just taken
    /// the heap off the parked list.
    pub unsafe fn unpark(sc: *mut SlabCache, p: &mut Pool) {
        // SAFETY: the heap is the caller's now (this fn's contract), so its cache too.
        unsafe {
            if (*sc).parked {
                (*sc).parked = false;
                p.parked_caches -= 1;
            }
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
