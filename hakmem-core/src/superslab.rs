//! SuperSlabs: naturally aligned regions (2 MiB by default) carved into equal slabs of one kind,
//! the registry that says in O(1) whether an address lies in one, and the global pool of free
//! slabs and empty SuperSlabs shared by all threads.
//!
//! Layout: a 64-byte header, the slab descriptors, the checked-mode bitmaps, then (page-aligned)
//! the blocks of slab 0; slab `i > 0` starts at `i << slab_shift`. A SuperSlab is never unmapped
//! (its pages are purged instead), so a stale pointer into one never faults.

use crate::heap::Heap;
use crate::os::{self, PurgeKind, PAGE};
use crate::policy;
use crate::size_class::{KIND_BIG, KIND_MEDIUM, MEDIUM_SLAB_SHIFT, NUM_KINDS, SMALL_SLAB_SHIFT};
use crate::slab::{Slab, SlabList, IN_POOL};
use crate::sync::Mutex;
use core::mem::size_of;
use core::ptr;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering::*};

/// Registry granularity: one bit per 1 MiB chunk of the 47-bit user address space (16 MiB of
/// zero pages in .bss, touched only where SuperSlabs live).
const CHUNK_SHIFT: usize = 20;
const MAP_CHUNKS: usize = 1 << (47 - CHUNK_SHIFT);
static REGISTRY: [AtomicU64; MAP_CHUNKS / 64] = [const { AtomicU64::new(0) }; MAP_CHUNKS / 64];

/// log2 of the SuperSlab size, fixed at initialisation from HAKMEM_SUPERSLAB_MB.
pub static SS_SHIFT: AtomicUsize = AtomicUsize::new(21);
/// `!(SuperSlab size - 1)`, for the free fast path.
static SS_MASK: AtomicUsize = AtomicUsize::new(!((1 << 21) - 1));

pub fn set_ss_shift(shift: usize) {
    SS_SHIFT.store(shift, Relaxed);
    SS_MASK.store(!((1usize << shift) - 1), Relaxed);
    crate::cage::reserve(1 << shift);
}
pub const MIN_SS_SHIFT: usize = CHUNK_SHIFT;
pub const MAX_SS_SHIFT: usize = 24;

/// Whether `a` lies inside a SuperSlab.
#[inline(always)]
pub fn contains(a: usize) -> bool {
    let i = a >> CHUNK_SHIFT;
    if i >= MAP_CHUNKS {
        return false;
    }
    // SAFETY: `i < MAP_CHUNKS`, so the word index is in bounds.
    let w = unsafe { REGISTRY.get_unchecked(i >> 6) }.load(Relaxed);
    w & (1u64 << (i & 63)) != 0
}

fn register(base: usize, len: usize) {
    let mut i = base >> CHUNK_SHIFT;
    let end = (base + len) >> CHUNK_SHIFT;
    while i < end {
        REGISTRY[i >> 6].fetch_or(1u64 << (i & 63), Release);
        i += 1;
    }
}

/// A SuperSlab's header. `in_use`, `next`, `empty_since` and `purged` are guarded by the pool
/// lock. The layout fields (`kind`, `slab_shift`, `nslabs`, `first_offset`) and the page table
/// are written under that lock only while no slab of the SuperSlab is in use; threads read them
/// without it only for a slab they got from the pool (under the lock) or a block of one.
#[repr(C, align(64))]
pub struct SuperSlab {
    pub kind: u8,
    pub slab_shift: u8,
    pub nslabs: u16,
    pub in_use: u16,
    pub first_offset: u32,
    pub next: *mut SuperSlab,
    pub empty_since: u64,
    pub purged: bool,
}

/// The header, then the page table (one slab pointer per 64 KiB page), then the descriptors.
const HEADER: usize = 64;
const PAGE_SHIFT: usize = SMALL_SLAB_SHIFT as usize;
const CHECK_BITS_BYTES: usize = 512; // 4096 blocks: the most any slab holds (64 KiB / 16 B)

#[inline(always)]
pub fn ss_size() -> usize {
    1 << SS_SHIFT.load(Relaxed)
}

/// The descriptor of the slab that holds address `a` (which must satisfy `contains`).
#[inline(always)]
pub fn slab_of(a: usize) -> *mut Slab {
    let ss = a & SS_MASK.load(Relaxed);
    // SAFETY: `a` is inside a registered SuperSlab, whose header and page table stay mapped
    // forever; every page entry points to a slab descriptor of that SuperSlab.
    unsafe { *((ss + HEADER) as *const *mut Slab).add((a - ss) >> PAGE_SHIFT) }
}

/// The slab every page of an unformatted SuperSlab points to: no block validates against it,
/// so a stray pointer into such a SuperSlab is reported, not followed.
struct DeadSlab(Slab);
// SAFETY: never written; its atomics are never touched because no block validates.
unsafe impl Sync for DeadSlab {}
static DEAD_SLAB: DeadSlab = DeadSlab(Slab {
    start: usize::MAX,
    inv: 0,
    carved: AtomicU64::new(0),
    local_free: crate::freelist::NIL,
    heap: core::sync::atomic::AtomicPtr::new(ptr::null_mut()),
    block_size: 0,
    used: 0,
    class: 0,
    flags: IN_POOL,
    bin_offset: 0,
    shift: 0,
    kind: 0,
    index: 0,
    capacity: 0,
    thread_free: AtomicUsize::new(0),
    next_remote: core::sync::atomic::AtomicPtr::new(ptr::null_mut()),
    next: ptr::null_mut(),
    prev: ptr::null_mut(),
    empty_since: 0,
    check_bits: ptr::null_mut(),
    purged: false,
});

/// Maps and registers a new SuperSlab whose pages all point to the dead slab.
fn map_superslab(populate: bool) -> *mut SuperSlab {
    let mut ss = crate::cage::map(ss_size(), populate) as *mut SuperSlab;
    if ss.is_null() {
        ss = os::map_aligned(ss_size(), ss_size(), populate) as *mut SuperSlab;
    }
    if ss.is_null() && crate::large::trim() > 0 {
        // Out of address space (RLIMIT_AS) or memory: give back the cached large ranges and try
        // once more before the caller reports ENOMEM.
        ss = os::map_aligned(ss_size(), ss_size(), populate) as *mut SuperSlab;
    }
    if ss.is_null() {
        return ss;
    }
    if policy::get(policy::Opt::HugePage) >= 2 {
        // SAFETY: `ss` is the mapping just made.
        unsafe { os::hugepage(ss as *mut u8, ss_size()) };
    }
    let pages = (ss as usize + HEADER) as *mut *const Slab;
    for j in 0..max_slabs() {
        // SAFETY: the page table lies inside the fresh mapping.
        unsafe {
            *pages.add(j) = &DEAD_SLAB.0;
            crate::cage::set_page(ss as usize, j, &DEAD_SLAB.0);
        }
    }
    SS_MAPPED.fetch_add(1, Relaxed);
    register(ss as usize, ss_size());
    crate::cage::publish(ss as usize, ss_size(), contains);
    ss
}

fn slabs_offset() -> usize {
    HEADER + max_slabs() * size_of::<usize>()
}

fn slab_at(ss: *mut SuperSlab, i: usize) -> *mut Slab {
    (ss as usize + slabs_offset() + i * size_of::<Slab>()) as *mut Slab
}

pub fn superslab_of(s: *const Slab) -> *mut SuperSlab {
    (s as usize & !(ss_size() - 1)) as *mut SuperSlab
}

fn max_slabs() -> usize {
    ss_size() >> SMALL_SLAB_SHIFT
}

fn first_offset() -> usize {
    let mut h = slabs_offset() + max_slabs() * size_of::<Slab>();
    if policy::checked() {
        h += max_slabs() * CHECK_BITS_BYTES;
    }
    (h + PAGE - 1) & !(PAGE - 1)
}

/// Bytes a slab of `s`'s SuperSlab spans for its blocks.
///
/// # Safety
/// `s` is a slab descriptor inside a formatted SuperSlab.
pub unsafe fn slab_bytes(s: *const Slab) -> usize {
    let ss = superslab_of(s);
    // SAFETY: `s` lies in a formatted SuperSlab (this fn's contract), so its header at `ss`
    // is mapped and written; neither field read changes while the SuperSlab is formatted.
    unsafe {
        let len = 1usize << (*ss).slab_shift;
        if (*s).index == 0 {
            len - (*ss).first_offset as usize
        } else {
            len
        }
    }
}

/// The global pool: free slabs per kind, empty SuperSlabs, and the heap registry.
pub struct Pool {
    free_slabs: [SlabList; NUM_KINDS],
    empty_ss: *mut SuperSlab,
    pub all_heaps: *mut Heap,
    pub dead_heaps: *mut Heap,
    /// Parked heaps that kept their slab cache for the next thread.
    pub parked_caches: usize,
    meta_cur: usize,
    meta_end: usize,
    last_purge: u64,
}

// SAFETY: the raw pointers are only used under the pool's lock.
unsafe impl Send for Pool {}

pub static POOL: Mutex<Pool> = Mutex::new(Pool {
    free_slabs: [const { SlabList::new() }; NUM_KINDS],
    empty_ss: ptr::null_mut(),
    all_heaps: ptr::null_mut(),
    dead_heaps: ptr::null_mut(),
    parked_caches: 0,
    meta_cur: 0,
    meta_end: 0,
    last_purge: 0,
});

pub static SS_MAPPED: AtomicUsize = AtomicUsize::new(0);
pub static SS_REUSED: AtomicUsize = AtomicUsize::new(0);
pub static SLABS_IN_USE: AtomicUsize = AtomicUsize::new(0);
pub static SLABS_ACQUIRED: AtomicUsize = AtomicUsize::new(0);
pub static SLABS_REUSED: AtomicUsize = AtomicUsize::new(0);

/// Moves up to `want` free slabs of `kind` into `out` (from the pool, an empty SuperSlab, or a
/// new one) under one lock; fewer (none) only when out of memory.
pub fn acquire_slabs(kind: usize, want: usize, out: &mut SlabList) {
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
                drop(p);
                let fresh = map_superslab(false);
                p = POOL.lock();
                if fresh.is_null() {
                    break;
                }
                fresh
            } else {
                SS_REUSED.fetch_add(1, Relaxed);
                ss
            };
            let first = p.format(ss, kind);
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
        out.push(s);
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
    // in a mapped SuperSlab, never unmapped.
    unsafe {
        debug_assert!(
            (*s).used == 0 && (*s).thread_free.load(Relaxed) == 0,
            "a slab goes back to the pool with live blocks or pending remote frees"
        );
        (*s).carved.store(0, Relaxed); // a stale free of one of its blocks is now reported
        (*s).heap.store(ptr::null_mut(), Relaxed);
        (*s).local_free = crate::freelist::NIL;
        (*s).flags = IN_POOL;
    }
}

/// Returns empty slabs (no live block, no pending remote free) to the pool under one lock,
/// emptying `list`.
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
                for i in 0..(*ss).nslabs as usize {
                    let t = slab_at(ss, i);
                    if t != s {
                        p.free_slabs[(*ss).kind as usize].remove(t);
                    }
                }
                (*ss).empty_since = now;
                (*ss).purged = false;
                (*ss).next = p.empty_ss;
                p.empty_ss = ss;
            } else {
                (*s).empty_since = now;
                (*s).purged = false;
                p.free_slabs[(*ss).kind as usize].push(s);
            }
        }
    }
    // SAFETY: the pool lock is held; every listed slab and SuperSlab is free and mapped.
    unsafe { p.maybe_purge(now, false) };
}

/// Returns every free page to the OS now (`malloc_trim`, `hakmem_trim`).
pub fn trim() {
    let mut p = POOL.lock();
    // SAFETY: the pool lock is held; every listed slab and SuperSlab is free and mapped.
    unsafe { p.maybe_purge(os::now_ms(), true) };
}

/// Maps `n` SuperSlabs ahead of use, faulted in (HAKMEM_PREWARM).
pub fn prewarm(n: usize) {
    for _ in 0..n {
        let ss = map_superslab(true);
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

    /// Formats `ss` for slabs of `kind`, puts all but slab 0 in the pool, and returns slab 0.
    ///
    /// # Safety
    /// `self` is the guarded pool (its lock is held), and `ss` is a mapped SuperSlab with no
    /// slab in use, on no list, so nothing else reads its header or descriptors.
    unsafe fn format(&mut self, ss: *mut SuperSlab, kind: usize) -> *mut Slab {
        let shift = match kind {
            KIND_MEDIUM => MEDIUM_SLAB_SHIFT as usize,
            KIND_BIG => SS_SHIFT.load(Relaxed),
            _ => SMALL_SLAB_SHIFT as usize,
        };
        let n = ss_size() >> shift;
        let first = first_offset();
        // SAFETY: nothing else reads `ss`'s header while it is formatted (this fn's contract).
        unsafe {
            (*ss).kind = kind as u8;
            (*ss).slab_shift = shift as u8;
            (*ss).nslabs = n as u16;
            (*ss).in_use = 0;
            (*ss).first_offset = first as u32;
            (*ss).next = ptr::null_mut();
        }
        let bits_base = ss as usize + slabs_offset() + max_slabs() * size_of::<Slab>();
        let pages = ((ss as usize) + HEADER) as *mut *mut Slab;
        for j in 0..max_slabs() {
            // SAFETY: the page table (`max_slabs()` entries after the header) lies inside the
            // mapped SuperSlab; each entry is a word-aligned slab pointer of `ss`.
            unsafe {
                *pages.add(j) = slab_at(ss, (j << PAGE_SHIFT) >> shift);
                crate::cage::set_page(ss as usize, j, *pages.add(j));
            }
        }
        for i in 0..n {
            let s = slab_at(ss, i);
            // SAFETY: descriptor `i < n <= max_slabs()` lies inside the mapped SuperSlab and no
            // other thread reads it (this fn's contract); the pool lock guards `free_slabs`.
            unsafe {
                ptr::write_bytes(s, 0, 1);
                (*s).index = i as u8;
                (*s).kind = kind as u8;
                (*s).start = ss as usize + if i == 0 { first } else { i << shift };
                (*s).purged = (*ss).purged;
                if policy::checked() {
                    (*s).check_bits = (bits_base + i * CHECK_BITS_BYTES) as *mut u64;
                }
                if i > 0 {
                    (*s).flags = IN_POOL;
                    self.free_slabs[kind].push(s);
                }
            }
        }
        slab_at(ss, 0)
    }

    /// Purges free slabs and empty SuperSlabs that have been unused for the purge delay
    /// (all of them when `force`). One madvise per slab or SuperSlab, never per block.
    ///
    /// # Safety
    /// `self` is the guarded pool (its lock is held): its listed slabs and SuperSlabs are
    /// free, mapped, and used by no thread.
    unsafe fn maybe_purge(&mut self, now: u64, force: bool) {
        let kind = policy::purge_kind();
        if kind == PurgeKind::None && !force {
            return;
        }
        let kind = if kind == PurgeKind::None {
            PurgeKind::DontNeed
        } else {
            kind
        };
        let delay = policy::get(policy::Opt::PurgeDelayMs) as u64;
        if !force && delay > 0 && now.saturating_sub(self.last_purge) < delay.div_ceil(2) {
            return;
        }
        self.last_purge = now;
        let mut ss = self.empty_ss;
        while !ss.is_null() {
            // SAFETY: `ss` is on the empty list, guarded by the held pool lock: mapped, and no
            // slab of it is in use, so its pages past the descriptors hold nothing live.
            unsafe {
                if !(*ss).purged && (force || now.saturating_sub((*ss).empty_since) >= delay) {
                    let first = (*ss).first_offset as usize;
                    os::purge((ss as usize + first) as *mut u8, ss_size() - first, kind);
                    (*ss).purged = true;
                }
                ss = (*ss).next;
            }
        }
        for list in &self.free_slabs {
            let mut s = list.head;
            while !s.is_null() {
                // SAFETY: `s` is a free slab on a pool list, guarded by the held pool lock: its
                // blocks hold nothing live, and its descriptor is in a formatted SuperSlab.
                unsafe {
                    if !(*s).purged && (force || now.saturating_sub((*s).empty_since) >= delay) {
                        os::purge((*s).start as *mut u8, slab_bytes(s), kind);
                        (*s).purged = true;
                    }
                    s = (*s).next;
                }
            }
        }
    }

    /// Zeroed metadata memory (heaps), never returned.
    pub fn alloc_meta(&mut self, size: usize) -> *mut u8 {
        let size = (size + 63) & !63;
        if self.meta_cur + size > self.meta_end {
            let chunk = size.max(256 << 10);
            let m = os::map(chunk, false);
            if m.is_null() {
                return m;
            }
            self.meta_cur = m as usize;
            self.meta_end = m as usize + chunk;
        }
        let p = self.meta_cur as *mut u8;
        self.meta_cur += size;
        p
    }
}
