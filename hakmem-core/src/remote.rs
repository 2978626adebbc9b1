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
    // SAFETY: `tc` is this thread's cache; with a heap its bins' hot lists are its own, and
    // `s`, formatted with block `k`, names this block's bin; `a` is a live block of the cage
    // (`IN_CAGE`) that its slab counts as in use until the list gives it back.
    unsafe {
        if IN_CAGE && !(*tc).heap.is_null() {
            // A full list doubles here as on the owner's free; a closed one stays closed (it
            // opens on the thread's own frees or allocations: a thread that only frees this
            // class, a consumer, has no use for it).
            let bin = (tc as *mut u8).add((*s).bin_offset as usize) as *mut crate::tls::Bin;
            if (*bin).hot_max != 0 && heap::grow_hot(bin) && heap::push_hot(bin, a) {
                add_single_writer((*tc).remote_frees.get_unchecked((*s).class as usize), 1);
                return;
            }
        }
    }
    // Read before the push: once the block is published its owner may collect it, and the slab
    // may be emptied and formatted for another class.
    // SAFETY: the descriptor stays mapped, and while block `k` is user-held the slab keeps
    // its format.
    let c = unsafe { (*s).class as usize };
    // SAFETY: `tc` is this thread's cache (this fn's contract); with a heap, its exit handler
    // flushes the foreign cache; `a` is a carved block of class `c`, tagged free just now.
    unsafe {
        if !(*tc).heap.is_null() && crate::foreign::keep(tc, c, a) {
            add_single_writer((*tc).remote_frees.get_unchecked(c), 1);
            return;
        }
    }
    // SAFETY: as above for the link (the previous head's offset: `offset_of` reads the
    // formatted slab's block size), written before the CAS that publishes the block;
    // `thread_free` is atomic.
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
