//! Slabs that other threads freed whole, taken from heaps that do not collect them.
//!
//! A cross-thread free pushes its block onto the slab's remote stack and queues the slab on its
//! owner heap; only the owner collects the queue, when its own bin of a class runs dry. A thread
//! that allocated blocks once and no longer allocates (a server's main thread, which builds the
//! start-up data its workers later free and then waits on them; an idle pool thread) collects
//! nothing, so every slab whose blocks other threads freed stays formatted for it, resident,
//! for as long as the thread lives, while the threads that do allocate map new memory
//! (`larson`: the main thread fills every array and the workers replace the blocks; the slabs
//! of its 4000 blocks ended up holding nothing but remote frees, about 2 MiB never reused, and
//! peak RSS rose with every round of threads, bench/README.md).
//!
//! So a thread about to take fresh slabs from the pool first looks, at most once every
//! `EVERY_MS` across all threads, at up to `SCAN` heaps with slabs queued that have not collected
//! their queue since the previous look, takes each such queue and keeps every slab whose remote
//! stack holds all its blocks while no bin uses it (`remote_list::take_free`, one CAS that also
//! empties the stack): no thread holds a block of such a slab and its old owner reaches it no
//! more (a slab with every block out is on none of its owner's lists; the owner clears the
//! slab's CURRENT bit after its last write when the slab stops being current). The slab goes to
//! the taker's slab cache, free for any class; the other slabs go back to their owners' queues,
//! as a drain passes on a slab that changed owners. (A fork while a thread walks a queue it took
//! leaves that queue's slabs uncollected in the child, as a fork in the middle of any drain does.)

use crate::heap::{self, Heap};
use crate::pool::POOL;
use crate::remote_list;
use crate::slab::Slab;
use crate::slab_cache::SlabCache;
use core::ptr;
use core::sync::atomic::{AtomicU64, Ordering::*};

/// Slabs taken (statistics).
pub static STOLEN: AtomicU64 = AtomicU64::new(0);

/// Least time between two looks, across all threads (ms).
const EVERY_MS: u64 = 10;
/// Heaps one look considers, at most.
const SCAN: usize = 16;

/// When the last look began (ms).
static LAST_MS: AtomicU64 = AtomicU64::new(0);

/// Before `heap` takes fresh slabs from the pool: takes the free slabs idle heaps leave queued,
/// into `heap`'s slab cache, if no thread looked within `EVERY_MS` of `now`. Returns how many
/// came.
///
/// # Safety
/// The caller owns `heap`, a thread's heap (not the shared one), and holds no pool lock.
pub unsafe fn steal(heap: *mut Heap, now: u64) -> usize {
    let last = LAST_MS.load(Relaxed);
    if now.wrapping_sub(last) < EVERY_MS
        || LAST_MS
            .compare_exchange(last, now, Relaxed, Relaxed)
            .is_err()
    {
        return 0;
    }
    // SAFETY: the caller's promise, passed on.
    unsafe { steal_now(heap) }
}

/// `steal` without the time limit.
///
/// # Safety
/// As for `steal`.
pub unsafe fn steal_now(heap: *mut Heap) -> usize {
    if crate::policy::checked() {
        return 0; // checking mode serves every block from the shared heap
    }
    let mut victims = [ptr::null_mut::<Heap>(); SCAN];
    let n = idle_heaps(heap, &mut victims);
    let mut got = 0;
    for &h in &victims[..n] {
        // SAFETY: heaps are never freed; the caller owns `heap` (this fn's contract).
        got += unsafe { take_free_slabs(heap, h) };
    }
    STOLEN.fetch_add(got as u64, Relaxed);
    got
}

/// Fills `out` with up to `SCAN` heaps other than `heap` that have slabs queued and have
/// collected none since the last look at them, starting where the last look stopped.
fn idle_heaps(heap: *mut Heap, out: &mut [*mut Heap; SCAN]) -> usize {
    let mut p = POOL.lock();
    let first = if p.steal_cursor.is_null() {
        p.all_heaps
    } else {
        p.steal_cursor
    };
    let mut h = first;
    let mut n = 0;
    for _ in 0..SCAN {
        if h.is_null() {
            break;
        }
        // SAFETY: heaps are never freed and `next_all` is read under the pool lock (held);
        // the rest is atomic.
        unsafe {
            if h != heap && !(*h).remote_slabs.load(Relaxed).is_null() {
                let drains = (*h).stat_drains.load(Relaxed);
                if (*h).steal_seen.swap(drains, Relaxed) == drains {
                    out[n] = h;
                    n += 1;
                }
            }
            h = (*h).next_all;
        }
        if h.is_null() {
            h = p.all_heaps;
        }
        if h == first {
            break;
        }
    }
    p.steal_cursor = h;
    n
}

/// Takes `victim`'s remote queue, keeps the free slabs of it for `heap` and queues the others
/// on their owners again. Returns how many it kept.
///
/// # Safety
/// The caller owns `heap`; `victim` is a heap (never freed), any other.
unsafe fn take_free_slabs(heap: *mut Heap, victim: *mut Heap) -> usize {
    // SAFETY: heaps are never freed; the queue head is atomic. Whoever takes a queue whole
    // walks it alone (its slabs keep NOTIFIED, so no free queues them elsewhere meanwhile).
    let mut s = unsafe { remote_list::take_queue(&(*victim).remote_slabs) };
    let mut got = 0;
    while !s.is_null() {
        // SAFETY: `s` came off a taken queue with NOTIFIED set: a formatted slab of a mapped
        // SuperSlab (a queued slab is never retired), whose link is stable until NOTIFIED
        // clears; `capacity` is fixed while it is formatted.
        let (next, taken) = unsafe {
            let next = remote_list::next(s);
            (
                next,
                remote_list::take_free(&(*s).thread_free, (*s).capacity),
            )
        };
        if taken {
            // SAFETY: `take_free` made `s` this thread's (see the module's text), and the
            // caller owns `heap`.
            unsafe { adopt_free(heap, s) };
            got += 1;
        } else {
            // SAFETY: `s` is still NOTIFIED, so in no other queue; heaps are never freed.
            unsafe {
                let owner = (*s).heap.load(Acquire);
                remote_list::enqueue(&(*owner).remote_slabs, s);
            }
        }
        s = next;
    }
    got
}

/// Makes `s`, a slab whose every block was freed and which nothing else reaches, an empty slab
/// of `heap`'s slab cache.
///
/// # Safety
/// `s` was taken by `remote_list::take_free`; the caller owns `heap`.
unsafe fn adopt_free(heap: *mut Heap, s: *mut Slab) {
    // SAFETY: this fn's contract: the slab's owner-side fields are the caller's now (its old
    // owner's last writes happen before the take); its blocks are all free and its stack
    // empty, as `SlabCache::put` requires once the count says so.
    unsafe {
        debug_assert!(
            (*s).is_full() && (*s).flags == 0 && (*s).local_free == crate::freelist::NIL,
            "a slab taken whole was on a list or had blocks on its local list"
        );
        (*s).used_full = 0;
        (*s).heap.store(heap, Release);
        SlabCache::put(ptr::addr_of_mut!((*heap).slab_cache), s);
    }
}

/// A thread's heap's stealing as a test calls it: `steal_now` for the calling thread's heap.
/// Returns how many slabs came (0 without a heap).
pub fn steal_for_this_thread() -> usize {
    let tc = crate::tls::thread_cache();
    // SAFETY: `tc` is this thread's cache; its heap, when set, is this thread's.
    unsafe {
        let h = (*tc).heap;
        if h.is_null() || h == heap::shared_ptr() {
            return 0;
        }
        steal_now(h)
    }
}
