//! hakmem's extension API (the C header include/hakmem.h is generated from this file).

use core::ffi::c_char;

/// Whole-process totals, the same as the keys of HAKMEM_STATS=json.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct hakmem_stats {
    /// Blocks allocated (small and large). Small blocks count as they leave their slab: a
    /// block a thread frees onto its hot list and allocates again counts once.
    pub allocs: u64,
    /// Blocks freed (small and large), remote frees included. Small blocks count as they reach
    /// their slab: a thread's latest frees, on its hot lists, once the list gives them back
    /// (this call gives the calling thread's back first).
    pub frees: u64,
    /// Blocks freed by a thread other than the owner of their slab (past the freeing thread's
    /// hot list).
    pub remote_frees: u64,
    /// Large blocks (over 256 KiB) allocated, and how many came from the large-block cache.
    pub large_allocs: u64,
    pub large_cache_hits: u64,
    /// System calls made by hakmem.
    pub mmap_calls: u64,
    pub munmap_calls: u64,
    pub madvise_calls: u64,
    pub mremap_calls: u64,
    /// Bytes mapped now, and the most ever mapped at once.
    pub mapped_bytes: u64,
    pub peak_mapped_bytes: u64,
    /// The process's peak resident set size (VmHWM).
    pub peak_rss_bytes: u64,
}

/// hakmem's version, a static NUL-terminated string such as "0.1.0".
#[no_mangle]
pub extern "C" fn hakmem_version() -> *const c_char {
    static V: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    V.as_ptr() as *const c_char
}

/// Fills `*out` with the current totals, after giving the calling thread's hot lists back to
/// their slabs. Returns 0, or -1 if `out` is NULL.
///
/// # Safety
/// `out` is NULL or valid for writing one `hakmem_stats`.
#[no_mangle]
pub unsafe extern "C" fn hakmem_stats(out: *mut hakmem_stats) -> i32 {
    if out.is_null() {
        return -1;
    }
    // The caller's own frees all count, as it expects of the figures it asks for.
    hakmem_core::alloc::hot_lists_back();
    let t = hakmem_core::stats::collect();
    *out = hakmem_stats {
        allocs: t.allocs,
        frees: t.frees,
        remote_frees: t.remote_frees,
        large_allocs: t.large_allocs,
        large_cache_hits: t.large_cache_hits,
        mmap_calls: t.mmap_calls,
        munmap_calls: t.munmap_calls,
        madvise_calls: t.madvise_calls,
        mremap_calls: t.mremap_calls,
        mapped_bytes: t.mapped_bytes,
        peak_mapped_bytes: t.peak_mapped_bytes,
        peak_rss_bytes: t.peak_rss_bytes,
    };
    0
}

/// Prints the readable statistics summary on stderr now.
#[no_mangle]
pub extern "C" fn hakmem_print_stats() {
    hakmem_core::stats::print(false);
}

/// Returns free memory to the OS now (the same as malloc_trim). Returns the number of
/// madvise/munmap calls it made.
#[no_mangle]
pub extern "C" fn hakmem_trim() -> size_t {
    hakmem_core::trim()
}

#[allow(non_camel_case_types)]
type size_t = usize;
