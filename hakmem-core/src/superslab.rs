//! SuperSlabs: naturally aligned regions (2 MiB by default) carved into equal slabs of one kind.
//! This module knows one SuperSlab: its header, page table and slab descriptors, how it is
//! formatted for a slab size, and how it is mapped and unmapped. The pool (`pool`) keeps the free
//! ones, `purge` gives their memory back, `registry` says which addresses lie in one.
//!
//! Layout: a 64-byte header, the page table (one slab pointer per 64 KiB page), the slab
//! descriptors, the checked-mode bitmaps, then (page-aligned) the blocks of slab 0; slab `i > 0`
//! starts at `i << slab_shift`. A SuperSlab in the cage is never unmapped (the cage's reservation
//! holds its address space anyway; its pages are purged instead). One outside the cage is
//! unmapped once it has been empty long enough, after its registry bits are cleared.

use crate::os::{self, PAGE};
use crate::policy;
use crate::registry::{self, CHUNK_SHIFT};
use crate::size_class::{KIND_BIG, KIND_MEDIUM, MEDIUM_SLAB_SHIFT, SMALL_SLAB_SHIFT};
use crate::slab::{Slab, SlabList, IN_POOL};
use core::mem::size_of;
use core::ptr;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering::*};

/// Whether `a` lies inside a SuperSlab (the registry answers).
pub use crate::registry::contains;

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

/// SuperSlabs mapped since the start, and unmapped since (the difference is mapped now).
pub static SS_MAPPED: AtomicUsize = AtomicUsize::new(0);
pub static SS_UNMAPPED: AtomicUsize = AtomicUsize::new(0);

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
    // while it is registered; every page entry points to a slab descriptor of that SuperSlab.
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
    used_full: 0,
    list_head: ptr::null_mut(),
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
    _pad_read: [0; 10],
    _pad_remote: [0; 48],
});

/// Maps and registers a new SuperSlab whose pages all point to the dead slab: in the cage if it
/// has room, else anywhere. Null when the mapping fails (the caller releases what is cached and
/// tries again: `pool::release_for_retry`).
pub fn map(populate: bool) -> *mut SuperSlab {
    let mut ss = crate::cage::map(ss_size(), populate) as *mut SuperSlab;
    if ss.is_null() {
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
    registry::register(ss as usize, ss_size());
    crate::cage::publish(ss as usize, ss_size(), contains);
    ss
}

/// Whether `ss` may be unmapped: it lies outside the cage (whose reservation keeps the address
/// space of its SuperSlabs whether they are mapped or not).
pub fn unmappable(ss: *const SuperSlab) -> bool {
    !crate::cage::holds(ss as usize)
}

/// Unregisters and unmaps an empty SuperSlab outside the cage. From the moment its registry
/// bits are cleared, a free, realloc or usable-size call with a stale pointer into it no longer
/// reads its header: it is reported as an invalid pointer.
///
/// # Safety
/// `ss` is a SuperSlab from `map` with `unmappable(ss)`, no slab in use, on no list, and nothing
/// refers to it or its slabs any more.
pub unsafe fn unmap(ss: *mut SuperSlab) {
    debug_assert!(unmappable(ss), "a SuperSlab of the cage is never unmapped");
    registry::unregister(ss as usize, ss_size());
    // SAFETY: the caller's promise: nothing refers to `ss`, and no registry bit leads to it now.
    unsafe { os::unmap(ss as *mut u8, ss_size()) };
    SS_UNMAPPED.fetch_add(1, Relaxed);
}

fn slabs_offset() -> usize {
    HEADER + max_slabs() * size_of::<usize>()
}

/// The descriptor of slab `i` of `ss`: slot `i` turned by the SuperSlab's number, so that the
/// first slab's descriptor (a big-kind SuperSlab's only one) lies at a different offset from
/// the SuperSlab's 2 MiB boundary in each SuperSlab. At one offset in all of them they fell
/// into one set of the L1 and L2 caches (12 and 8 ways) once more than 8-12 SuperSlabs were in
/// use. Measured on random_mixed_256k: +2 to +7% per round, within noise (bench/README.md, "Hot
/// lists for every size").
pub fn slab_at(ss: *mut SuperSlab, i: usize) -> *mut Slab {
    let slot = (i + (ss as usize >> SS_SHIFT.load(Relaxed))) & (max_slabs() - 1);
    (ss as usize + slabs_offset() + slot * size_of::<Slab>()) as *mut Slab
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

/// Formats `ss` for slabs of `kind`, pushes all but slab 0 onto `free` (the pool's free slabs of
/// that kind), and returns slab 0.
///
/// # Safety
/// `ss` is a mapped SuperSlab with no slab in use, on no list, so nothing else reads its header
/// or descriptors; `free` is the pool's list, its lock held.
pub unsafe fn format(ss: *mut SuperSlab, kind: usize, free: &mut SlabList) -> *mut Slab {
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
        // other thread reads it (this fn's contract); the pool lock guards `free`.
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
                free.push(s);
            }
        }
    }
    slab_at(ss, 0)
}

#[cfg(test)]
mod tests {
    use super::{max_slabs, slab_at, slabs_offset, ss_size, SuperSlab};
    use crate::slab::Slab;
    use core::mem::size_of;

    #[test]
    fn each_superslab_turns_its_descriptors_to_another_slot() {
        crate::init::ensure();
        let base = 1usize << 44;
        let offset = |ss: usize, i: usize| slab_at(ss as *mut SuperSlab, i) as usize - ss;
        for k in 0..4 {
            let ss = base + k * ss_size();
            let mut slots: Vec<usize> = (0..max_slabs())
                .map(|i| (offset(ss, i) - slabs_offset()) / size_of::<Slab>())
                .collect();
            slots.sort();
            assert_eq!(slots, (0..max_slabs()).collect::<Vec<_>>());
        }
        let first: Vec<usize> = (0..4).map(|k| offset(base + k * ss_size(), 0)).collect();
        for k in 1..4 {
            assert_ne!(
                first[k],
                first[k - 1],
                "two SuperSlabs' first descriptors at the same offset"
            );
        }
    }
}
