//! Checking mode (HAKMEM_CHECK=1): every block carries its requested size in a trailer at its
//! end and a canary in every byte between the requested size and the trailer, so a write past
//! the end is reported at `free`; each slab keeps a bitmap of live blocks, so a double free is
//! reported too. Small blocks go through the shared heap under its lock; large blocks get the
//! same trailer at the end of their mapping and canaries after the requested size.
//!
//! Canaries and trailers are keyed: a hash of a per-process random secret, the block's address
//! and the byte's offset. So no byte value slips through (a constant pad byte lets an overflow
//! that writes that very value pass, and a plain size field one that writes the size's own
//! bytes): a k-byte overflow goes unnoticed only if it writes exactly the bytes already there,
//! a 2^-8k chance, whatever the program writes.

use crate::freelist::{self, mix};
use crate::heap::{self, shared_free_locked, SHARED};
use crate::os::PAGE;
use crate::size_class::{class_for_aligned, class_size};
use crate::slab::Slab;
use crate::superslab::slab_of;
use core::ptr;

/// Small blocks: the requested size (u32, keyed) and a tag binding it to the block (u32).
const TRAILER: usize = 8;
/// Large blocks: the same with u64 fields, in the last 16 bytes of the mapping.
const LARGE_TRAILER: usize = 16;
/// Canary bytes written after a large block's requested size (a contiguous overflow reaches
/// them first; the rest of the mapping up to the trailer stays untouched).
const LARGE_CANARY: usize = PAGE;

const OVERRUN_TRAILER: &str = "heap overrun (the block's trailer was overwritten)";
const OVERRUN_CANARY: &str = "heap overrun (bytes past the requested size were written)";

/// The keys of one block.
struct Keys(u64);

impl Keys {
    fn of(a: usize) -> Keys {
        Keys(mix(freelist::canary_key() ^ a as u64))
    }
    /// The canary bytes of offsets 8w..8w+8 (little-endian).
    fn word(&self, w: usize) -> u64 {
        mix(self.0 ^ (w as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
    fn size_key(&self) -> u64 {
        self.word(usize::MAX)
    }
    fn tag(&self, size: usize) -> u64 {
        mix(self.word(usize::MAX - 1) ^ size as u64)
    }
}

/// Writes (or, with `check`, compares) the canaries of block `a` at offsets `from..to`.
/// Returns false at the first byte that differs.
///
/// # Safety
/// `a + from..a + to` lies in a live block the caller holds (allocating or freeing it).
unsafe fn canaries(a: usize, from: usize, to: usize, k: &Keys, check: bool) -> bool {
    let mut j = from;
    while j < to {
        let w = k.word(j / 8);
        let end = ((j / 8 + 1) * 8).min(to);
        while j < end {
            let c = (w >> (8 * (j % 8))) as u8;
            let b = (a + j) as *mut u8;
            // SAFETY: `from <= j < to`, inside the caller's block (this fn's contract).
            unsafe {
                if !check {
                    *b = c;
                } else if *b != c {
                    return false;
                }
            }
            j += 1;
        }
    }
    true
}

/// The alignment every block of class `c` has (blocks start page-aligned).
fn class_align(c: usize) -> usize {
    let s = class_size(c);
    (s & s.wrapping_neg()).min(PAGE)
}

/// A checked block of `size` bytes at least as aligned as class `c`'s blocks.
pub fn alloc(size: usize, c: usize) -> *mut u8 {
    let Some(c) = size
        .checked_add(TRAILER)
        .and_then(|n| class_for_aligned(n, class_align(c)))
    else {
        // Too big for a class with the trailer: a checked large block (this is checking mode).
        return large_alloc(size, class_align(c).max(16), false);
    };
    let _g = SHARED.lock();
    let h = heap::shared_ptr();
    // SAFETY: the shared lock is held; the block returned is live and owned by us.
    unsafe {
        let b = heap::pop_or_refill(h, c);
        if b.is_null() {
            crate::os::set_errno(libc::ENOMEM);
            return ptr::null_mut();
        }
        crate::sync::add_single_writer(&(*h).stat_allocs[c], 1);
        let a = b as usize;
        let s = slab_of(a);
        let i = (*s).block_index(a);
        *(*s).check_bits.add(i / 64) |= 1 << (i % 64);
        let t = class_size(c) - TRAILER;
        let k = Keys::of(a);
        canaries(a, size, t, &k, false);
        ptr::write_unaligned((a + t) as *mut u32, (size as u64 ^ k.size_key()) as u32);
        ptr::write_unaligned((a + t + 4) as *mut u32, k.tag(size) as u32);
        b as *mut u8
    }
}

/// # Safety
/// `a` is a block boundary of `s` (validated), `s` a slab of the shared heap.
#[cold]
#[inline(never)]
pub unsafe fn free_checked(s: *mut Slab, a: usize) {
    let g = SHARED.lock();
    let h = heap::shared_ptr();
    // SAFETY: `s` is a shared-heap slab and `a` a block boundary of it (this fn's contract);
    // the shared lock, held, guards its check bitmap (`capacity` bits, `i` below it).
    let (i, word) = unsafe {
        let i = (*s).block_index(a);
        (i, (*s).check_bits.add(i / 64))
    };
    // SAFETY: as above.
    if unsafe { *word } & (1 << (i % 64)) == 0 {
        drop(g);
        crate::report::bad_pointer(
            a as *mut u8,
            "free",
            "double free (the block is not allocated)",
        );
        return;
    }
    // SAFETY: the bit says `a` is allocated, so it is a live checked block of `s`.
    if let Err(why) = unsafe { small_size(s, a) } {
        drop(g);
        crate::report::bad_pointer(a as *mut u8, "free", why);
        return;
    }
    // SAFETY: the shared lock is held; `s` belongs to the shared heap and `a` is a live block
    // of it, as `shared_free_locked` requires; the lock guards the bitmap word.
    unsafe {
        *word &= !(1 << (i % 64));
        shared_free_locked(h, s, a);
    }
}

/// The requested size of checked small block `a` after checking its trailer and canaries.
///
/// # Safety
/// `a` is a live checked block of formatted slab `s`.
unsafe fn small_size(s: *mut Slab, a: usize) -> Result<usize, &'static str> {
    // SAFETY: `s` is a formatted slab (this fn's contract); `block_size` is fixed.
    let t = unsafe { (*s).block_size as usize } - TRAILER;
    let k = Keys::of(a);
    // SAFETY: the trailer's 8 bytes at `a + t` lie inside the live block `a`.
    let (size, tag) = unsafe {
        let size =
            (ptr::read_unaligned((a + t) as *const u32) as u64 ^ k.size_key()) as u32 as usize;
        (size, ptr::read_unaligned((a + t + 4) as *const u32))
    };
    if size > t || tag != k.tag(size) as u32 {
        return Err(OVERRUN_TRAILER);
    }
    // SAFETY: `size <= t`, so `a + size..a + t` lies inside the live block `a`.
    if !unsafe { canaries(a, size, t, &k, true) } {
        return Err(OVERRUN_CANARY);
    }
    Ok(size)
}

/// The size that was requested for checked block `a` (its whole room if the trailer is damaged).
///
/// # Safety
/// `a` is a validated block boundary of `s`.
pub unsafe fn usable(s: *mut Slab, a: usize) -> usize {
    // SAFETY: `s` is a formatted slab (this fn's contract); `block_size` is fixed.
    let t = unsafe { (*s).block_size as usize } - TRAILER;
    // SAFETY: the trailer at `a + t` lies inside block `a` (this fn's contract).
    let size = (unsafe { ptr::read_unaligned((a + t) as *const u32) } as u64
        ^ Keys::of(a).size_key()) as u32;
    (size as usize).min(t)
}

/// A checked large block: `size` bytes, then canaries, and the trailer at the mapping's end.
pub fn large_alloc(size: usize, align: usize, zero: bool) -> *mut u8 {
    let Some(total) = size.checked_add(LARGE_TRAILER) else {
        crate::os::set_errno(libc::ENOMEM);
        return ptr::null_mut();
    };
    let p = crate::large::block(total, align, zero);
    if p.is_null() {
        return p;
    }
    let a = p as usize;
    let u = crate::large::usable_size(p).unwrap_or(total);
    let t = u - LARGE_TRAILER;
    let k = Keys::of(a);
    // SAFETY: `p` is a new block of `u` usable bytes, `size <= t`.
    unsafe {
        canaries(a, size, t.min(size + LARGE_CANARY), &k, false);
        ptr::write_unaligned((a + t) as *mut u64, size as u64 ^ k.size_key());
        ptr::write_unaligned((a + t + 8) as *mut u64, k.tag(size));
    }
    p
}

/// The requested size of checked large block `p` of `u` usable bytes, after checking its
/// trailer and canaries.
///
/// # Safety
/// `p` is a live large block of `u` usable bytes.
pub unsafe fn large_size(p: *mut u8, u: usize) -> Result<usize, &'static str> {
    let a = p as usize;
    let t = u - LARGE_TRAILER;
    let k = Keys::of(a);
    // SAFETY: `p` is a live large block of `u` usable bytes (this fn's contract), so its
    // 16-byte trailer at `a + t` is inside it.
    let size = (unsafe { ptr::read_unaligned((a + t) as *const u64) } ^ k.size_key()) as usize;
    // SAFETY: as above.
    if size > t || unsafe { ptr::read_unaligned((a + t + 8) as *const u64) } != k.tag(size) {
        return Err(OVERRUN_TRAILER);
    }
    // SAFETY: `size <= t`, so the canaries lie inside the block.
    if !unsafe { canaries(a, size, t.min(size + LARGE_CANARY), &k, true) } {
        return Err(OVERRUN_CANARY);
    }
    Ok(size)
}

/// Checks large block `p` before it is freed; false (after reporting) if it was overrun.
/// True also for a pointer that is not a large block (`large::free` reports it).
///
/// # Safety
/// `p` is a pointer given to `free`; it is read only if the large-block table holds it.
pub unsafe fn large_free_ok(p: *mut u8) -> bool {
    let Some(u) = crate::large::usable_size(p) else {
        return true;
    };
    // SAFETY: `p` is a live large block of `u` usable bytes (the table holds it).
    match unsafe { large_size(p, u) } {
        Ok(_) => true,
        Err(why) => {
            crate::report::bad_pointer(p, "free", why);
            false
        }
    }
}

/// The size that was requested for checked large block `p` of `u` usable bytes.
///
/// # Safety
/// `p` is a live large block of `u` usable bytes.
pub unsafe fn large_usable(p: *mut u8, u: usize) -> usize {
    let a = p as usize;
    let t = u - LARGE_TRAILER;
    // SAFETY: `p` is a live large block of `u` usable bytes (this fn's contract), so its
    // trailer at `a + t` is inside it.
    ((unsafe { ptr::read_unaligned((a + t) as *const u64) } ^ Keys::of(a).size_key()) as usize)
        .min(t)
}
