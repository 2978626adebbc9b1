//! hakmem as Rust's global allocator:
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: hakmem::HakMem = hakmem::HakMem;
//! ```
//!
//! Every Rust allocation of the program then comes from hakmem (from the first one, before
//! `main`, in every thread, and in the child of a fork); C code linked into the program keeps
//! glibc's malloc, and the two never see each other's blocks. The `HAKMEM_*` variables apply as
//! they do under `LD_PRELOAD`, `HAKMEM_STATS` and `HAKMEM_STATS_FILE` included.
#![no_std]

use core::alloc::{GlobalAlloc, Layout};
use core::ptr;
use hakmem_core as hk;
use hakmem_core::os::PAGE;
use hakmem_core::size_class::class_for_aligned;

/// Whole-process statistics, as `HAKMEM_STATS` prints them.
pub use hakmem_core::stats::Totals as Stats;

/// The global allocator. Layouts aligned to at most 16 bytes take hakmem's malloc path; larger
/// power-of-two alignments take its aligned path (size classes up to a page, own mappings past it).
pub struct HakMem;

/// Every hakmem block is at least this aligned.
const MIN_ALIGN: usize = 16;

// SAFETY: the methods follow GlobalAlloc's contract: blocks come from hakmem-core, which never
// hands out overlapping live blocks, honours the alignment asked for, returns null on failure and
// leaves the old block intact when realloc fails.
unsafe impl GlobalAlloc for HakMem {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            hk::malloc(layout.size())
        } else {
            hk::aligned(layout.align(), layout.size())
        }
    }

    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, _layout: Layout) {
        hk::free(p)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            hk::calloc(1, layout.size())
        } else {
            alloc_zeroed_aligned(layout.align(), layout.size())
        }
    }

    #[inline]
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            hk::realloc_sized(p, layout.size(), new_size)
        } else {
            realloc_aligned(p, layout, new_size)
        }
    }
}

/// Zeroed and over-aligned: a size-class block is cleared by hand, an own mapping is fresh pages
/// (the same choice as `hakmem_core::aligned`).
#[inline(never)]
fn alloc_zeroed_aligned(align: usize, size: usize) -> *mut u8 {
    if align <= PAGE && class_for_aligned(size, align).is_some() {
        let p = hk::aligned(align, size);
        if !p.is_null() {
            // SAFETY: `p` is a new block of at least `size` bytes.
            unsafe { ptr::write_bytes(p, 0, size) };
        }
        p
    } else {
        hk::large_alloc(size, align, true)
    }
}

/// Over-aligned realloc: stays in place while the block is big enough and not mostly empty;
/// otherwise a new block of the same alignment, the contents copied.
///
/// # Safety
/// `p` is a live block of this allocator allocated with `layout`.
#[inline(never)]
unsafe fn realloc_aligned(p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
    let usable = hk::usable_size(p);
    if new_size <= usable && new_size >= usable / 2 {
        return p;
    }
    let q = hk::aligned(layout.align(), new_size);
    if !q.is_null() {
        ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
        hk::free(p);
    }
    q
}

/// The statistics now (all threads).
pub fn stats() -> Stats {
    hk::stats::collect()
}

/// Prints the statistics on stderr now, as a readable summary or one JSON line.
pub fn print_stats(json: bool) {
    hk::stats::print(json)
}

/// Returns free memory to the OS now; the number of madvise/munmap calls made.
pub fn trim() -> usize {
    hk::trim()
}

// Process start (initialisation, fork handlers) and exit (the HAKMEM_STATS report): the same
// hooks as the preload library's, from hakmem_core::process.
extern "C" fn on_load() {
    hk::process::start();
}

extern "C" fn on_exit() {
    hk::process::exit();
}

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = on_load;

#[used]
#[link_section = ".fini_array"]
static FINI: extern "C" fn() = on_exit;
