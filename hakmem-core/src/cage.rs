//! The cage: one large reservation of address space (PROT_NONE, no memory behind it) from which
//! SuperSlabs are mapped in order, so that the free fast path proves "this pointer lies in a
//! SuperSlab" with one subtraction and one compare instead of a registry lookup.
//!
//! Below the cage lies its page table: one slab pointer per 64 KiB of cage, the same entries as
//! each SuperSlab's own page table, so the fast path finds the slab descriptor from the offset
//! it already computed, without masking the SuperSlab's address.
//!
//! SuperSlabs in the cage are never unmapped (the reservation holds their address space whether
//! they are mapped or not, so an empty one is only purged), and the cage only grows: `LIMIT`
//! covers the prefix of it whose SuperSlabs are mapped, formatted and registered. A SuperSlab
//! outside that prefix (the cage could not be reserved, is full, or a mapping in it failed) is
//! still registered in the registry, and `free` finds it there on its slow path; one wholly
//! outside the cage is unmapped once it has been empty long enough (see `purge`). Sizes tried: 64 GiB, 16 GiB (the most
//! valgrind grants), 4 GiB; under an address-space limit (RLIMIT_AS) only a size up to an eighth of
//! it, so none below 32 GiB.

use crate::os;
use crate::size_class::SMALL_SLAB_SHIFT;
use crate::slab::Slab;
use core::sync::atomic::{AtomicUsize, Ordering::*};

/// Start of the reservation (0: none). Written once by `reserve` during process initialisation,
/// before any SuperSlab exists; atomic because `free` reads it from any thread, also one that
/// frees a foreign pointer while another thread initialises (a Relaxed load is a plain load).
/// The page table below the cage is written under the pool lock, only for a SuperSlab none of
/// whose blocks is live, and read by `free` for blocks the program got after that write.
static BASE: AtomicUsize = AtomicUsize::new(0);
/// Bytes from BASE covered by published SuperSlabs.
static LIMIT: AtomicUsize = AtomicUsize::new(0);
/// Bytes from BASE claimed by `map`.
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// Bytes reserved.
static SIZE: AtomicUsize = AtomicUsize::new(0);

const TRY_SIZES: [usize; 3] = [64 << 30, 16 << 30, 4 << 30];
const PAGE_SHIFT: usize = SMALL_SLAB_SHIFT as usize;
/// The page table's size, for the largest cage (only what is used gets memory).
const TABLE_BYTES: usize = (TRY_SIZES[0] >> PAGE_SHIFT) * core::mem::size_of::<usize>();

/// The published bytes from the base: offsets below it lie in a SuperSlab of the cage.
#[inline(always)]
pub fn limit() -> usize {
    LIMIT.load(Relaxed)
}

#[inline(always)]
pub fn base() -> usize {
    BASE.load(Relaxed)
}

/// Reserves the cage, aligned to `align` (the SuperSlab size), and maps its page table.
/// Called once, from process initialisation; does nothing if a cage exists.
pub fn reserve(align: usize) {
    if base() != 0 {
        return;
    }
    // Address space counts against RLIMIT_AS even with no memory behind it: under a limit, the
    // cage may take at most an eighth of it, so that a container's budget stays the program's.
    let budget = address_space_limit().map_or(usize::MAX, |l| l / 8);
    for &len in TRY_SIZES.iter().filter(|&&len| TABLE_BYTES + len <= budget) {
        let p = os::reserve(TABLE_BYTES + len, align, TABLE_BYTES);
        if p.is_null() {
            continue;
        }
        // SAFETY: the table lies inside the reservation just made.
        if unsafe { os::map_fixed(p.sub(TABLE_BYTES), TABLE_BYTES, false) }.is_null() {
            continue; // the reservation stays unused: a little address space, no memory
        }
        SIZE.store(len, Relaxed);
        BASE.store(p as usize, Relaxed);
        return;
    }
}

/// The process's address-space limit (RLIMIT_AS), if it has one.
fn address_space_limit() -> Option<usize> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into `r`.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut r) };
    (rc == 0 && r.rlim_cur != libc::RLIM_INFINITY).then_some(r.rlim_cur as usize)
}

/// The slab descriptor of `a`'s page when `a` lies in a published SuperSlab of the cage (every
/// page of one points to a descriptor: the dead slab while it is unformatted), else None. The
/// free fast path: one load of the base, a subtraction, a compare and the table entry.
#[inline(always)]
pub fn slab_of(a: usize) -> Option<*mut Slab> {
    let b = base();
    let off = a.wrapping_sub(b);
    if off >= LIMIT.load(Relaxed) {
        return None;
    }
    // SAFETY: `off` is below the published limit, so the entry lies in the page table, which
    // is mapped for the whole cage; the entries of a SuperSlab are written before it is
    // published, and rewritten only while none of its blocks is live (see `BASE`).
    Some(unsafe { *((b - TABLE_BYTES) as *const *mut Slab).add(off >> PAGE_SHIFT) })
}

/// Whether `a` lies in a published SuperSlab of the cage.
#[inline(always)]
pub fn contains(a: usize) -> bool {
    a.wrapping_sub(base()) < LIMIT.load(Relaxed)
}

/// Records that page `j` of SuperSlab `ss` belongs to slab `s`, if `ss` is in the cage.
///
/// # Safety
/// `ss` is a SuperSlab mapped by `map` (or any address outside the cage).
pub unsafe fn set_page(ss: usize, j: usize, s: *const Slab) {
    if holds(ss) {
        let b = base();
        // SAFETY: `ss` is a SuperSlab mapped in the cage (this fn's contract), so its page
        // entries lie in the cage's page table, mapped for the whole cage.
        unsafe { *((b - TABLE_BYTES) as *mut *const Slab).add(((ss - b) >> PAGE_SHIFT) + j) = s };
    }
}

/// Whether `a` lies in the cage's reservation (mapped there or not).
pub fn holds(a: usize) -> bool {
    let b = base();
    b != 0 && a >= b && a < b + SIZE.load(Relaxed)
}

/// Maps `len` bytes (a SuperSlab) at the cage's next free place; null if the cage is missing,
/// full, or the mapping failed.
pub fn map(len: usize, populate: bool) -> *mut u8 {
    let b = base();
    if b == 0 {
        return core::ptr::null_mut();
    }
    let size = SIZE.load(Relaxed);
    let mut off = NEXT.load(Relaxed);
    loop {
        if off + len > size {
            return core::ptr::null_mut();
        }
        match NEXT.compare_exchange_weak(off, off + len, Relaxed, Relaxed) {
            Ok(_) => break,
            Err(x) => off = x,
        }
    }
    // SAFETY: `b + off .. + len` lies in our reservation and was claimed by this thread alone.
    unsafe { os::map_fixed((b + off) as *mut u8, len, populate) }
}

/// Called once SuperSlab `ss` (from `map`) is formatted and registered: extends `LIMIT` over
/// every SuperSlab that is ready in order, `ready(address)` telling whether one is.
pub fn publish(ss: usize, len: usize, ready: fn(usize) -> bool) {
    let b = base();
    if b == 0 || ss < b || ss >= b + SIZE.load(Relaxed) {
        return;
    }
    loop {
        let l = LIMIT.load(Acquire);
        if l >= NEXT.load(Acquire) || !ready(b + l) {
            return;
        }
        let _ = LIMIT.compare_exchange(l, l + len, Release, Relaxed);
    }
}

/// The cage's start and the bytes it covers now (for tests).
pub fn extent() -> (usize, usize) {
    (base(), LIMIT.load(Relaxed))
}
