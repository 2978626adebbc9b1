//! The global pool, shared by all threads under one lock: free slabs per kind, empty
//! SuperSlabs, the heap registry (live and parked heaps) and the metadata arena. Threads take
//! slabs from it in batches and give them back in batches (`slab_cache`); `purge` decides when
//! the memory of what lies here goes back to the OS.

use crate::heap::{self, Heap};
use crate::meta::Arena;
use crate::os;
use crate::policy;
use crate::purge;
use crate::size_class::NUM_KINDS;
use crate::slab::{Slab, SlabList, IN_POOL};
use crate::superslab::{self, superslab_of, SuperSlab};
use crate::sync::Mutex;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering::*};

/// The pool. Every field is guarded by `POOL`'s lock.
pub struct Pool {
    pub(crate) free_slabs: [SlabList; NUM_KINDS],
    /// Empty SuperSlabs (no slab in use), linked through their `next`.
    pub(crate) empty_ss: *mut SuperSlab,
    pub all_heaps: *mut Heap,
    pub dead_heaps: *mut Heap,
    /// Where `steal`'s next look at the heaps starts (null: at the first).
    pub steal_cursor: *mut Heap,
    /// Parked heaps that kept their slab cache for the next thread.
    pub parked_caches: usize,
    pub meta: Arena,
    /// When `purge::decay` last walked the pool.
    pub(crate) last_decay: u64,
}

// SAFETY: the raw pointers are only used under the pool's lock.
unsafe impl Send for Pool {}

pub static POOL: Mutex<Pool> = Mutex::new(Pool {
    free_slabs: [const { SlabList::new() }; NUM_KINDS],
    empty_ss: ptr::null_mut(),
    all_heaps: ptr::null_mut(),
    dead_heaps: ptr::null_mut(),
    steal_cursor: ptr::null_mut(),
    parked_caches: 0,
    meta: Arena::new(),
    last_decay: 0,
});

pub static SS_REUSED: AtomicUsize = AtomicUsize::new(0);
pub static SLABS_IN_USE: AtomicUsize = AtomicUsize::new(0);
pub static SLABS_ACQUIRED: AtomicUsize = AtomicUsize::new(0);
pub static SLABS_REUSED: AtomicUsize = AtomicUsize::new(0);

/// Moves up to `want` free slabs of `kind` onto the tail of `out`, in the pool's order (resident
/// ones first), from the pool, an empty SuperSlab, or, with `may_map`, a new one, under one lock;
/// fewer (none) only when out of memory, or when a new SuperSlab would be needed and `may_map`
/// is false.
pub fn acquire_slabs(kind: usize, want: usize, out: &mut SlabList, may_map: bool) {
    let mut p = POOL.lock();
    let mut got = 0;
    // SAFETY: the pool lock is held; every slab and SuperSlab in it is mapped.
    unsafe {
        while got < want {
            let s = p.free_slabs[kind].pop();
            if !s.is_null() {
                SLABS_REUSED.fetch_add(1, Relaxed);
                took(s, out);
                got += 1;
                continue;
            }
            let ss = p.take_empty_ss(kind);
            let ss = if ss.is_null() {
                if !may_map {
                    break;
                }
                drop(p);
                let fresh = superslab::map(false);
                p = POOL.lock();
                if fresh.is_null() {
                    break;
                }
                fresh
            } else {
                SS_REUSED.fetch_add(1, Relaxed);
                ss
            };
            let first = superslab::format(ss, kind, &mut p.free_slabs[kind]);
            took(first, out);
            got += 1;
        }
    }
    SLABS_IN_USE.fetch_add(got, Relaxed);
    SLABS_ACQUIRED.fetch_add(got, Relaxed);
}

/// # Safety
/// The pool lock is held and `s` is a free slab just taken out of the pool.
unsafe fn took(s: *mut Slab, out: &mut SlabList) {
    // SAFETY: the pool lock is held (this fn's contract), and it guards the `in_use` count
    // of the mapped SuperSlab holding `s`; `s` just left the pool, so it is on no other list.
    unsafe {
        (*superslab_of(s)).in_use += 1;
        out.push_back(s);
    }
}

/// Marks a slab that has left its class as free: a stale free of one of its blocks is now
/// reported, not accepted.
///
/// # Safety
/// `s` is empty (no live block, no pending remote free) and in no list.
pub unsafe fn unformat(s: *mut Slab) {
    // SAFETY: `s` is empty and on no list (this fn's contract), so only the caller touches its
    // plain fields; a stale free only reads them (and `heap` is atomic). The descriptor lies
    // in a mapped SuperSlab, which stays mapped while one of its slabs is out of the pool.
    unsafe {
        debug_assert!(
            (*s).used_full == 0 && (*s).thread_free.load(Relaxed) == 0,
            "a slab goes back to the pool with live blocks or pending remote frees"
        );
        (*s).carved.store(0, Relaxed); // a stale free of one of its blocks is now reported, not accepted
        (*s).heap.store(ptr::null_mut(), Relaxed);
        (*s).local_free = crate::freelist::NIL;
        (*s).flags = IN_POOL;
    }
}

/// Returns empty slabs (no live block, no pending remote free) to the pool under one lock,
/// emptying `list`. The pool's lists hand out resident slabs first: one whose pages are purged
/// (`Slab::purged`) goes to the tail, any other to the head, so that a program's next slab is
/// one whose pages it already paid for while the purged ones wait (jemalloc reuses dirty extents
/// before muzzy and retained ones for the same reason).
///
/// # Safety
/// No thread will touch the slabs' blocks or descriptors again until they are reacquired.
pub unsafe fn release_slabs(list: &mut SlabList) {
    // SAFETY: the caller's promise, passed on; the lock is taken here.
    unsafe { release_slabs_locked(&mut POOL.lock(), list) };
}

/// `release_slabs` for a caller that holds the pool lock.
///
/// # Safety
/// As for `release_slabs`; `p` is the guarded pool (its lock is held).
pub unsafe fn release_slabs_locked(p: &mut Pool, list: &mut SlabList) {
    SLABS_IN_USE.fetch_sub(list.len, Relaxed);
    crate::background::note_release();
    let now = os::now_ms();
    loop {
        // SAFETY: the slabs on `list` are empty formatted slabs of mapped SuperSlabs that no
        // other thread touches (this fn's contract).
        let s = unsafe { list.pop() };
        if s.is_null() {
            break;
        }
        // SAFETY: `s` is empty and now on no list, as `unformat` requires.
        unsafe { unformat(s) };
        let ss = superslab_of(s);
        // SAFETY: the pool lock is held, and it guards the SuperSlab headers' `in_use`, `next`,
        // `empty_since` and `purged`, the pool lists, and the pool-side fields of free slabs;
        // the other slabs of `ss` are free (its `in_use` is 0), so they are on the pool list.
        unsafe {
            (*ss).in_use -= 1;
            if (*ss).in_use == 0 {
                let mut purged = (*s).purged;
                for i in 0..(*ss).nslabs as usize {
                    let t = superslab::slab_at(ss, i);
                    if t != s {
                        purged &= (*t).purged;
                        p.free_slabs[(*ss).kind as usize].remove(t);
                    }
                }
                (*ss).empty_since = now;
                (*ss).purged = purged;
                (*ss).next = p.empty_ss;
                p.empty_ss = ss;
            } else if (*s).purged {
                // Nothing resident (taken, never formatted, given back): last in line.
                p.free_slabs[(*ss).kind as usize].push_back(s);
            } else {
                (*s).empty_since = now;
                p.free_slabs[(*ss).kind as usize].push(s);
            }
        }
    }
    // SAFETY: the pool lock is held; every listed slab and SuperSlab is free and mapped.
    unsafe { purge::decay(p, now, false) };
}

/// Gives back everything hakmem keeps cached, for an allocation whose mapping just failed (out
/// of memory, or of address space under RLIMIT_AS): the cached large blocks, the calling
/// thread's own empty slabs and slab cache, those of the shared heap and of parked heaps, then
/// every empty SuperSlab outside the cage is unmapped. Returns the bytes released (unmapped, or
/// given back to the pool where any size can use them): when it is 0, retrying is pointless.
///
/// For callers outside the heap layer that hold no allocator lock (the large-block allocation,
/// `trim`); `heap::refill` uses `release_for_refill`.
#[cold]
#[inline(never)]
pub fn release_for_retry() -> usize {
    let tc = crate::tls::thread_cache();
    // SAFETY: `tc` is this thread's cache; its heap, when attached, is this thread's own, and
    // the callers (see above) hold no reference into it nor the shared heap's lock. Its foreign
    // blocks go home first, so that their slabs can empty.
    unsafe {
        crate::foreign::flush(tc);
        crate::foreign::flush_transfer();
        release((*tc).heap, true)
    }
}

/// `release_for_retry` for `heap::refill`, whose slab cache came back empty: gives back the
/// caches of `heap` (the calling thread's own, or the shared heap under its lock), not those
/// of the shared heap.
///
/// # Safety
/// The caller owns `heap` and holds no reference into it.
#[cold]
#[inline(never)]
pub unsafe fn release_for_refill(heap: *mut Heap) -> usize {
    // SAFETY: the caller's promise, passed on.
    unsafe { release(heap, false) }
}

/// # Safety
/// The caller owns `own` (or it is null) and holds no reference into it; with `shared`, it
/// does not hold the shared heap's lock.
unsafe fn release(own: *mut Heap, shared: bool) -> usize {
    let mut released = crate::large::trim();
    if !own.is_null() {
        // SAFETY: the caller's promise.
        released += unsafe { heap::release_caches(own) };
    }
    if shared {
        let _g = heap::SHARED.lock();
        // SAFETY: the shared lock is held, so this thread owns the shared heap.
        released += unsafe { heap::release_caches(heap::shared_ptr()) };
    }
    heap::flush_parked_bins();
    let mut p = POOL.lock();
    let mut h = p.dead_heaps;
    while !h.is_null() {
        // SAFETY: parked heaps belong to the pool, whose lock is held; heaps are never freed.
        unsafe {
            released += heap::release_caches_locked(h, &mut p);
            h = (*h).next_dead;
        }
    }
    // SAFETY: the pool lock is held; every listed SuperSlab is empty and mapped.
    released + unsafe { purge::unmap_empty(&mut p) }
}

/// Returns every free page to the OS now (`malloc_trim`, `hakmem_trim`): what
/// `release_for_retry` releases, then every free slab and empty SuperSlab left (those in the
/// cage) is purged.
pub fn trim() {
    release_for_retry();
    let mut p = POOL.lock();
    // SAFETY: the pool lock is held; every listed slab and SuperSlab is free and mapped.
    unsafe { purge::decay(&mut p, os::now_ms(), true) };
}

/// Maps `n` SuperSlabs ahead of use, faulted in (HAKMEM_PREWARM).
pub fn prewarm(n: usize) {
    for _ in 0..n {
        let ss = superslab::map(true);
        if ss.is_null() {
            return;
        }
        let mut p = POOL.lock();
        // SAFETY: `ss` is a fresh SuperSlab; the pool lock is held.
        unsafe {
            (*ss).in_use = 0;
            (*ss).nslabs = 0;
            (*ss).kind = u8::MAX;
            (*ss).purged = true; // nothing to purge: keep it warm
            (*ss).empty_since = os::now_ms();
            (*ss).next = p.empty_ss;
        }
        p.empty_ss = ss;
    }
}

impl Pool {
    /// Unlinks and returns an empty SuperSlab fit for `kind`, or null.
    ///
    /// # Safety
    /// `self` is the guarded pool (its lock is held), so the empty list is consistent.
    unsafe fn take_empty_ss(&mut self, kind: usize) -> *mut SuperSlab {
        let any_kind = policy::get(policy::Opt::SlabReuse) != 0;
        let mut link: *mut *mut SuperSlab = &mut self.empty_ss;
        // SAFETY: the pool lock is held (this fn's contract); `link` points to the list head or
        // to the `next` field of a mapped, empty SuperSlab on the list, which the lock guards.
        unsafe {
            while !(*link).is_null() {
                let ss = *link;
                if any_kind || (*ss).kind as usize == kind || (*ss).kind == u8::MAX {
                    *link = (*ss).next;
                    return ss;
                }
                link = &mut (*ss).next;
            }
        }
        ptr::null_mut()
    }
}
