//! Frees from a thread that does not own the slab: one CAS onto the slab's `thread_free` stack,
//! and, the first time since the owner last looked, one CAS to queue the slab on its heap.
//! The owner never takes a lock for these, and the freeing thread never touches its lists.

use crate::freelist;
use crate::heap::{self, Heap};
use crate::remote_list;
use crate::size_class::NUM_CLASSES;
use crate::slab::Slab;
use crate::sync::add_single_writer;
use crate::tls::{ThreadCache, STATE_DEAD};
use core::sync::atomic::{AtomicU64, Ordering::*};

/// A block of the cage (`IN_CAGE`) goes onto this thread's hot list of its class when the list
/// may grow; otherwise it is kept in the foreign cache or pushed on its slab's remote stack.
///
/// # Safety
/// `a` is block `k` of `s` (validated by the caller), with `IN_CAGE` a block of the cage whose
/// free tag the caller found clear; `tc` is this thread's cache.
#[inline(never)]
pub unsafe fn free_remote<const IN_CAGE: bool>(
    tc: *mut ThreadCache,
    s: *mut Slab,
    a: usize,
    k: u64,
) {
    // The heap is read while the block is still live, so the slab stays formatted and owned
    // by some heap until the push below. It may change owners meanwhile (a parked heap's
    // partial slab taken over by `heap::adopt_parked`): then the old owner's queue gets it and
    // passes it on (`heap::drain_remote`).
    // SAFETY: `s` is a formatted slab descriptor (it has block `k`), in a SuperSlab that stays
    // mapped while one of its slabs is in use (this block is); `heap` is atomic.
    let heap: *mut Heap = unsafe { (*s).heap.load(Acquire) };
    if heap == heap::shared_ptr() && crate::policy::checked() {
        // SAFETY: `a` is block `k` of `s` (this fn's contract); `free_checked` takes the
        // shared lock before touching the slab.
        unsafe { crate::check::free_checked(s, a) };
        return;
    }
    // SAFETY: `a` is a carved block of `s` (this fn's contract), in mapped memory; while it is
    // user-held only the freeing thread writes its tag and link.
    unsafe {
        if !IN_CAGE && freelist::is_tagged(a) {
            crate::report::report_double_free(a as *mut u8);
            return;
        }
        freelist::set_tag(a);
    }
    // Read before the block is published (on a hot list, in the foreign cache or on its
    // slab's stack): its owner may then collect it, and the slab be formatted for another
    // class.
    // SAFETY: the descriptor stays mapped, and while block `k` is user-held the slab keeps
    // its format.
    let c = unsafe { (*s).class as usize };
    // SAFETY: `tc` is this thread's cache; with a heap its bins' hot lists and its foreign
    // cache are its own (its exit handler flushes both), and `s`, formatted with block `k`,
    // names this block's bin; `a` is a carved block of class `c`, tagged free just now, with
    // `IN_CAGE` in the cage, and its slab counts it in use until a list or the cache gives it
    // back.
    unsafe {
        if !(*tc).heap.is_null() {
            if IN_CAGE {
                // A full list below its cap doubles here as on the owner's free; a closed one
                // stays closed (it opens on the thread's own frees or allocations: a thread
                // that only frees this class, a consumer, has no use for it).
                let bin = (tc as *mut u8).add((*s).bin_offset as usize) as *mut crate::tls::Bin;
                let max = (*bin).hot_max;
                if max != 0 && max < (*bin).hot_cap {
                    return free_remote_hot(tc, s, a, k);
                }
            }
            if crate::foreign::keep_quick(tc, c, a) {
                add_single_writer((*tc).remote_frees.get_unchecked(c), 1);
                return;
            }
        }
    }
    // SAFETY: as above.
    unsafe { free_remote_slow(tc, s, a, k, c, heap) }
}

/// `free_remote` for a block whose hot list may grow (full below its cap: it doubles once per
/// fill, as far as `heap::grow_hot` lets it): the list takes it if it can, otherwise
/// `free_remote_slow`. Out of line, and a tail call from `free_remote`, whose common paths then
/// save no registers.
///
/// # Safety
/// As for `free_remote`, with `tc`'s heap attached, `a` a block of the cage tagged free and not
/// yet published (so `s` keeps its format and owner heap as `free_remote` read them).
#[cold]
#[inline(never)]
unsafe fn free_remote_hot(tc: *mut ThreadCache, s: *mut Slab, a: usize, k: u64) {
    // SAFETY: this fn's contract: `tc` is this thread's cache with a heap attached, `s` names
    // `a`'s bin and class, and `a` is a block of the cage, tagged free, that this thread
    // frees, as `grow_hot` and `push_hot` require; `heap` is atomic.
    unsafe {
        let (c, heap) = ((*s).class as usize, (*s).heap.load(Acquire));
        let bin = (tc as *mut u8).add((*s).bin_offset as usize) as *mut crate::tls::Bin;
        if !(heap::grow_hot(bin) && heap::push_hot(bin, a)) {
            free_remote_slow(tc, s, a, k, c, heap);
        }
    }
}

/// `free_remote` past the hot list and the foreign cache's common case: a reissued block, a
/// full class of the cache (its older half passed on), a class it does not keep, or a thread
/// with no heap; what the cache does not take goes onto its slab's remote stack.
///
/// # Safety
/// As for `free_remote`, with `a` tagged free, `c` its slab's class and `heap` its slab's heap
/// read while the block was user-held.
#[cold]
#[inline(never)]
unsafe fn free_remote_slow(
    tc: *mut ThreadCache,
    s: *mut Slab,
    a: usize,
    k: u64,
    c: usize,
    heap: *mut Heap,
) {
    // SAFETY: this fn's contract.
    unsafe {
        if !(*tc).heap.is_null() && crate::foreign::keep(tc, c, a) {
            add_single_writer((*tc).remote_frees.get_unchecked(c), 1);
            return;
        }
    }
    // SAFETY: `a` is block `k` of the formatted slab `s`, this thread's until the CAS that
    // publishes it (this fn's contract): its link (the previous head's offset: `offset_of`
    // reads the slab's block size) is written before; `thread_free` is atomic.
    if unsafe {
        remote_list::push(&(*s).thread_free, k, |old| {
            freelist::set_next(a, (*s).offset_of(old))
        })
    } {
        // SAFETY: a slab with a pending remote free is in use, so it stays mapped; this push
        // set NOTIFIED, so `s` is in no queue. The owner may already have taken the block (its
        // current slab), but NOTIFIED stays set until the queue's consumer clears it and a slab
        // whose word is non-zero is never retired, so `s` stays owned (by `heap`, or by the
        // heap that took it over, to whose queue `heap` passes it on); heaps are never freed.
        unsafe { remote_list::enqueue(&(*heap).remote_slabs, s) };
    }
    // SAFETY: `tc` is this thread's cache (this fn's contract); `c < NUM_CLASSES` since it is
    // a formatted slab's class.
    unsafe {
        if (*tc).heap.is_null() {
            count_without_heap(tc, c);
        } else {
            add_single_writer((*tc).remote_frees.get_unchecked(c), 1);
        }
    }
}

/// A thread that only frees gets a heap on its first remote free, so that its counters stay in
/// its own cache (and are handed over at exit) instead of costing an atomic per free. A thread
/// past its exit handler counts in the shared totals.
///
/// # Safety
/// `tc` is this thread's cache, and it has no heap.
#[cold]
#[inline(never)]
unsafe fn count_without_heap(tc: *mut ThreadCache, c: usize) {
    // SAFETY: `tc` is this thread's cache with no heap (this fn's contract), as
    // `attach_thread` requires.
    if unsafe { (*tc).state != STATE_DEAD && !crate::init::attach_thread(tc).is_null() } {
        // SAFETY: as above.
        unsafe { add_single_writer(&(*tc).remote_frees[c], 1) };
    } else {
        UNOWNED_REMOTE_FREES[c].fetch_add(1, Relaxed);
    }
}

/// Remote frees made by threads that have no heap, per size class.
pub static UNOWNED_REMOTE_FREES: [AtomicU64; NUM_CLASSES] =
    [const { AtomicU64::new(0) }; NUM_CLASSES];
