//! Checking mode (HAKMEM_CHECK=1): every small block carries its requested size and a canary
//! in its last bytes, and each slab keeps a bitmap of live blocks, so a double free or a write
//! past the end is reported at `free`. All calls go through the shared heap under its lock.

use crate::heap::{self, shared_free_locked, SHARED};
use crate::os::PAGE;
use crate::size_class::{class_for_aligned, class_size};
use crate::slab::Slab;
use crate::superslab::slab_of;
use core::ptr;

const MAGIC: u32 = 0x4841_4b4d; // "HAKM"
const PAD: u8 = 0xAB;
const TRAILER: usize = 8;

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
        return crate::alloc::large_alloc(size, class_align(c).max(16), false);
    };
    let mut g = SHARED.lock();
    let h: *mut heap::Heap = &mut *g;
    // SAFETY: the shared lock is held; the block returned is live and owned by us.
    unsafe {
        let b = heap::pop_or_refill(h, c);
        if b.is_null() {
            crate::os::set_errno(libc::ENOMEM);
            return ptr::null_mut();
        }
        (*h).stat_allocs[c] += 1;
        let a = b as usize;
        let s = slab_of(a);
        let i = (*s).block_index(a);
        *(*s).check_bits.add(i / 64) |= 1 << (i % 64);
        let bs = class_size(c);
        ptr::write_bytes((a + size) as *mut u8, PAD, bs - TRAILER - size);
        ptr::write_unaligned((a + bs - 8) as *mut u32, size as u32);
        ptr::write_unaligned((a + bs - 4) as *mut u32, MAGIC);
        b as *mut u8
    }
}

/// # Safety
/// `a` is a block boundary of `s` (validated), `s` a slab of the shared heap.
#[cold]
#[inline(never)]
pub unsafe fn free_checked(s: *mut Slab, a: usize) {
    let mut g = SHARED.lock();
    let h: *mut heap::Heap = &mut *g;
    let i = (*s).block_index(a);
    let word = (*s).check_bits.add(i / 64);
    if *word & (1 << (i % 64)) == 0 {
        drop(g);
        crate::alloc::report(
            a as *mut u8,
            "free",
            "double free (the block is not allocated)",
        );
        return;
    }
    if let Err(why) = trailer_ok(s, a) {
        drop(g);
        crate::alloc::report(a as *mut u8, "free", why);
        return;
    }
    *word &= !(1 << (i % 64));
    shared_free_locked(h, s, a);
}

unsafe fn trailer_ok(s: *mut Slab, a: usize) -> Result<(), &'static str> {
    let bs = (*s).block_size as usize;
    let size = ptr::read_unaligned((a + bs - 8) as *const u32) as usize;
    let magic = ptr::read_unaligned((a + bs - 4) as *const u32);
    if magic != MAGIC || size > bs - TRAILER {
        return Err("heap overrun (the block's trailer was overwritten)");
    }
    for k in size..bs - TRAILER {
        if *((a + k) as *const u8) != PAD {
            return Err("heap overrun (bytes past the requested size were written)");
        }
    }
    Ok(())
}

/// The size that was requested for checked block `a`.
///
/// # Safety
/// `a` is a validated block boundary of `s`.
pub unsafe fn usable(s: *mut Slab, a: usize) -> usize {
    let bs = (*s).block_size as usize;
    ptr::read_unaligned((a + bs - 8) as *const u32) as usize
}
