//! The C malloc API over jemalloc (built by `tikv-jemalloc-sys` with the `_rjem_` prefix), as
//! `libhakmem_bench_jemalloc.so` so the benchmark runner can `LD_PRELOAD` it beside hakmem.
//!
//! Every export forwards to jemalloc's own entry point; nothing here allocates or panics, so
//! Rust's std (whose allocator is the process `malloc`, i.e. these exports) is never re-entered.
//! jemalloc has no `pvalloc` or `reallocarray`; both are built here from `memalign`/`realloc`
//! with overflow checks. `malloc_usable_size(NULL)` returns 0 (jemalloc 5.3 would crash).

use core::ffi::{c_int, c_void};

// Links the static jemalloc library; the declarations below are its prefixed C API.
extern crate tikv_jemalloc_sys;

extern "C" {
    fn _rjem_malloc(size: usize) -> *mut c_void;
    fn _rjem_calloc(count: usize, size: usize) -> *mut c_void;
    fn _rjem_realloc(p: *mut c_void, size: usize) -> *mut c_void;
    fn _rjem_free(p: *mut c_void);
    fn _rjem_posix_memalign(out: *mut *mut c_void, alignment: usize, size: usize) -> c_int;
    fn _rjem_aligned_alloc(alignment: usize, size: usize) -> *mut c_void;
    fn _rjem_memalign(alignment: usize, size: usize) -> *mut c_void;
    fn _rjem_valloc(size: usize) -> *mut c_void;
    fn _rjem_malloc_usable_size(p: *const c_void) -> usize;
    fn __errno_location() -> *mut c_int;
}

const ENOMEM: c_int = 12;
const PAGE: usize = 4096;

unsafe fn fail_enomem() -> *mut c_void {
    *__errno_location() = ENOMEM;
    core::ptr::null_mut()
}

/// # Safety
/// C ABI contract of `malloc(3)`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    _rjem_malloc(size)
}

/// # Safety
/// C ABI contract of `free(3)`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn free(p: *mut c_void) {
    _rjem_free(p)
}

/// # Safety
/// C ABI contract of `calloc(3)`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
    _rjem_calloc(count, size)
}

/// # Safety
/// C ABI contract of `realloc(3)`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    _rjem_realloc(p, size)
}

/// # Safety
/// C ABI contract of `reallocarray(3)`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, count: usize, size: usize) -> *mut c_void {
    match count.checked_mul(size) {
        Some(total) => _rjem_realloc(p, total),
        None => fail_enomem(),
    }
}

/// # Safety
/// C ABI contract of `posix_memalign(3)`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn posix_memalign(
    out: *mut *mut c_void,
    alignment: usize,
    size: usize,
) -> c_int {
    _rjem_posix_memalign(out, alignment, size)
}

/// # Safety
/// C ABI contract of `aligned_alloc(3)`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn aligned_alloc(alignment: usize, size: usize) -> *mut c_void {
    _rjem_aligned_alloc(alignment, size)
}

/// # Safety
/// C ABI contract of `memalign(3)`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn memalign(alignment: usize, size: usize) -> *mut c_void {
    _rjem_memalign(alignment, size)
}

/// # Safety
/// C ABI contract of `valloc(3)`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    _rjem_valloc(size)
}

/// # Safety
/// C ABI contract of `pvalloc(3)`: page aligned, size rounded up to whole pages.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let rounded = match size.checked_add(PAGE - 1) {
        Some(s) => (s & !(PAGE - 1)).max(PAGE),
        None => return fail_enomem(),
    };
    _rjem_memalign(PAGE, rounded)
}

/// # Safety
/// C ABI contract of `malloc_usable_size(3)`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    if p.is_null() {
        0
    } else {
        _rjem_malloc_usable_size(p)
    }
}

/// # Safety
/// Same as `free`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn cfree(p: *mut c_void) {
    _rjem_free(p)
}

/// C23 `free_sized`.
///
/// # Safety
/// Same as `free`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn free_sized(p: *mut c_void, _size: usize) {
    _rjem_free(p)
}

/// C23 `free_aligned_sized`.
///
/// # Safety
/// Same as `free`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn free_aligned_sized(p: *mut c_void, _alignment: usize, _size: usize) {
    _rjem_free(p)
}

// glibc-internal aliases that some programs and libraries call directly.

/// # Safety
/// Same as `malloc`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_malloc(size: usize) -> *mut c_void {
    _rjem_malloc(size)
}

/// # Safety
/// Same as `free`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_free(p: *mut c_void) {
    _rjem_free(p)
}

/// # Safety
/// Same as `calloc`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_calloc(count: usize, size: usize) -> *mut c_void {
    _rjem_calloc(count, size)
}

/// # Safety
/// Same as `realloc`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_realloc(p: *mut c_void, size: usize) -> *mut c_void {
    _rjem_realloc(p, size)
}

/// # Safety
/// Same as `memalign`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_memalign(alignment: usize, size: usize) -> *mut c_void {
    _rjem_memalign(alignment, size)
}

/// # Safety
/// Same as `valloc`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_valloc(size: usize) -> *mut c_void {
    _rjem_valloc(size)
}

/// # Safety
/// Same as `pvalloc`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __libc_pvalloc(size: usize) -> *mut c_void {
    pvalloc(size)
}

/// # Safety
/// Same as `posix_memalign`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn __posix_memalign(
    out: *mut *mut c_void,
    alignment: usize,
    size: usize,
) -> c_int {
    _rjem_posix_memalign(out, alignment, size)
}
