//! The C malloc API over mimalloc (the C library bundled by `libmimalloc-sys`), built as
//! `libhakmem_bench_mimalloc.so` so the benchmark runner can `LD_PRELOAD` it beside hakmem.
//!
//! Every export is a plain forward to mimalloc's own C entry point; nothing here allocates or
//! panics, so Rust's std (whose allocator is the process `malloc`, i.e. these exports) is never
//! re-entered. Semantics are mimalloc's, except `malloc_usable_size(NULL)` which is 0 as in glibc.

use core::ffi::{c_int, c_void};

// Links the static mimalloc library; the declarations below are its C API (mimalloc.h).
extern crate libmimalloc_sys;

extern "C" {
    fn mi_malloc(size: usize) -> *mut c_void;
    fn mi_calloc(count: usize, size: usize) -> *mut c_void;
    fn mi_realloc(p: *mut c_void, size: usize) -> *mut c_void;
    fn mi_reallocarray(p: *mut c_void, count: usize, size: usize) -> *mut c_void;
    fn mi_free(p: *mut c_void);
    fn mi_posix_memalign(out: *mut *mut c_void, alignment: usize, size: usize) -> c_int;
    fn mi_aligned_alloc(alignment: usize, size: usize) -> *mut c_void;
    fn mi_memalign(alignment: usize, size: usize) -> *mut c_void;
    fn mi_valloc(size: usize) -> *mut c_void;
    fn mi_pvalloc(size: usize) -> *mut c_void;
    fn mi_usable_size(p: *const c_void) -> usize;
}

/// Exported `malloc`.
///
/// # Safety
/// C ABI contract of `malloc(3)`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    mi_malloc(size)
}

/// # Safety
/// C ABI contract of `free(3)`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn free(p: *mut c_void) {
    mi_free(p)
}

/// # Safety
/// C ABI contract of `calloc(3)`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
    mi_calloc(count, size)
}

/// # Safety
/// C ABI contract of `realloc(3)`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    mi_realloc(p, size)
}

/// # Safety
/// C ABI contract of `reallocarray(3)`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, count: usize, size: usize) -> *mut c_void {
    mi_reallocarray(p, count, size)
}

/// # Safety
/// C ABI contract of `posix_memalign(3)`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn posix_memalign(
    out: *mut *mut c_void,
    alignment: usize,
    size: usize,
) -> c_int {
    mi_posix_memalign(out, alignment, size)
}

/// # Safety
/// C ABI contract of `aligned_alloc(3)`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn aligned_alloc(alignment: usize, size: usize) -> *mut c_void {
    mi_aligned_alloc(alignment, size)
}

/// # Safety
/// C ABI contract of `memalign(3)`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn memalign(alignment: usize, size: usize) -> *mut c_void {
    mi_memalign(alignment, size)
}

/// # Safety
/// C ABI contract of `valloc(3)`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    mi_valloc(size)
}

/// # Safety
/// C ABI contract of `pvalloc(3)`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    mi_pvalloc(size)
}

/// # Safety
/// C ABI contract of `malloc_usable_size(3)`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    if p.is_null() {
        0
    } else {
        mi_usable_size(p)
    }
}

/// # Safety
/// Same as `free`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn cfree(p: *mut c_void) {
    mi_free(p)
}

/// C23 `free_sized`: the size hint is not needed by mimalloc.
///
/// # Safety
/// Same as `free`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn free_sized(p: *mut c_void, _size: usize) {
    mi_free(p)
}

/// C23 `free_aligned_sized`.
///
/// # Safety
/// Same as `free`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn free_aligned_sized(p: *mut c_void, _alignment: usize, _size: usize) {
    mi_free(p)
}

// glibc-internal aliases that some programs and libraries call directly.

/// # Safety
/// Same as `malloc`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_malloc(size: usize) -> *mut c_void {
    mi_malloc(size)
}

/// # Safety
/// Same as `free`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_free(p: *mut c_void) {
    mi_free(p)
}

/// # Safety
/// Same as `calloc`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_calloc(count: usize, size: usize) -> *mut c_void {
    mi_calloc(count, size)
}

/// # Safety
/// Same as `realloc`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_realloc(p: *mut c_void, size: usize) -> *mut c_void {
    mi_realloc(p, size)
}

/// # Safety
/// Same as `memalign`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_memalign(alignment: usize, size: usize) -> *mut c_void {
    mi_memalign(alignment, size)
}

/// # Safety
/// Same as `valloc`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_valloc(size: usize) -> *mut c_void {
    mi_valloc(size)
}

/// # Safety
/// Same as `pvalloc`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_pvalloc(size: usize) -> *mut c_void {
    mi_pvalloc(size)
}

/// # Safety
/// Same as `posix_memalign`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __posix_memalign(
    out: *mut *mut c_void,
    alignment: usize,
    size: usize,
) -> c_int {
    mi_posix_memalign(out, alignment, size)
}
