//! The SuperSlab registry: one bit per 1 MiB chunk of the 47-bit user address space, set while a
//! SuperSlab is mapped there, so that `free` tells in O(1), without touching the address, whether
//! a pointer outside the cage lies in a SuperSlab (16 MiB of zero pages in .bss, touched only
//! where SuperSlabs live). A SuperSlab's bits are cleared before it is unmapped, so a stale
//! pointer into it is then reported as invalid, never followed.

use core::sync::atomic::{AtomicU64, Ordering::*};

pub const CHUNK_SHIFT: usize = 20;
const MAP_CHUNKS: usize = 1 << (47 - CHUNK_SHIFT);
static REGISTRY: [AtomicU64; MAP_CHUNKS / 64] = [const { AtomicU64::new(0) }; MAP_CHUNKS / 64];

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

/// Records the SuperSlab at `base..base+len` (chunk-aligned, in the user address space).
pub fn register(base: usize, len: usize) {
    for i in base >> CHUNK_SHIFT..(base + len) >> CHUNK_SHIFT {
        REGISTRY[i >> 6].fetch_or(1u64 << (i & 63), Release);
    }
}

/// Forgets the SuperSlab at `base..base+len`, before it is unmapped.
pub fn unregister(base: usize, len: usize) {
    for i in base >> CHUNK_SHIFT..(base + len) >> CHUNK_SHIFT {
        REGISTRY[i >> 6].fetch_and(!(1u64 << (i & 63)), Release);
    }
}
