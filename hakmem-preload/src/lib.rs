//! libhakmem.so: exports the C allocation API over hakmem-core. Preload it with
//! `LD_PRELOAD=target/release/libhakmem.so program`. One small function per symbol; the
//! contracts live in `hakmem_core::alloc`, process start/exit and fork in `process`, glibc's
//! introspection API (mallinfo2, malloc_stats, malloc_info, mallopt) in `introspect`.
#![cfg_attr(not(test), no_std)]

mod ext;
mod introspect;
mod process;

use core::ffi::{c_int, c_void};
use hakmem_core as hk;

#[no_mangle]
pub extern "C" fn malloc(size: usize) -> *mut c_void {
    hk::malloc(size) as *mut c_void
}

/// # Safety
/// `p` is null or a live block from this allocator (as for `hakmem_core::alloc::free`).
#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    hk::free(p as *mut u8)
}

#[no_mangle]
pub extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    hk::calloc(n, size) as *mut c_void
}

/// # Safety
/// As for `hakmem_core::alloc::realloc`: `p` is null or a live block from this allocator.
#[no_mangle]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    hk::realloc(p as *mut u8, size) as *mut c_void
}

/// # Safety
/// As for `realloc`.
#[no_mangle]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    hk::reallocarray(p as *mut u8, n, size) as *mut c_void
}

/// # Safety
/// `out` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    hk::posix_memalign(out as *mut *mut u8, align, size)
}

#[no_mangle]
pub extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    hk::aligned_alloc(align, size) as *mut c_void
}

#[no_mangle]
pub extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    hk::memalign(align, size) as *mut c_void
}

#[no_mangle]
pub extern "C" fn valloc(size: usize) -> *mut c_void {
    hk::valloc(size) as *mut c_void
}

#[no_mangle]
pub extern "C" fn pvalloc(size: usize) -> *mut c_void {
    hk::pvalloc(size) as *mut c_void
}

/// # Safety
/// As for `free`.
#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    hk::usable_size(p as *mut u8)
}

/// # Safety
/// As for `free`.
#[no_mangle]
pub unsafe extern "C" fn cfree(p: *mut c_void) {
    hk::free(p as *mut u8)
}

/// # Safety
/// As for `free`.
#[no_mangle]
pub unsafe extern "C" fn free_sized(p: *mut c_void, _size: usize) {
    hk::free(p as *mut u8)
}

/// # Safety
/// As for `free`.
#[no_mangle]
pub unsafe extern "C" fn free_aligned_sized(p: *mut c_void, _align: usize, _size: usize) {
    hk::free(p as *mut u8)
}

#[no_mangle]
pub extern "C" fn malloc_trim(_pad: usize) -> c_int {
    (hk::trim() > 0) as c_int
}

// glibc's internal names, called by some programs and libraries directly.

#[no_mangle]
pub extern "C" fn __libc_malloc(size: usize) -> *mut c_void {
    malloc(size)
}

/// # Safety
/// As for `free`.
#[no_mangle]
pub unsafe extern "C" fn __libc_free(p: *mut c_void) {
    free(p)
}

#[no_mangle]
pub extern "C" fn __libc_calloc(n: usize, size: usize) -> *mut c_void {
    calloc(n, size)
}

/// # Safety
/// As for `realloc`.
#[no_mangle]
pub unsafe extern "C" fn __libc_realloc(p: *mut c_void, size: usize) -> *mut c_void {
    realloc(p, size)
}

#[no_mangle]
pub extern "C" fn __libc_memalign(align: usize, size: usize) -> *mut c_void {
    memalign(align, size)
}

#[no_mangle]
pub extern "C" fn __libc_valloc(size: usize) -> *mut c_void {
    valloc(size)
}

#[no_mangle]
pub extern "C" fn __libc_pvalloc(size: usize) -> *mut c_void {
    pvalloc(size)
}

/// # Safety
/// As for `posix_memalign`.
#[no_mangle]
pub unsafe extern "C" fn __posix_memalign(
    out: *mut *mut c_void,
    align: usize,
    size: usize,
) -> c_int {
    posix_memalign(out, align, size)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    hk::os::write_stderr(b"hakmem: internal error (panic); aborting\n");
    hk::os::abort()
}

/// Unoptimised builds (the debug library `make test` also runs the C suite against) keep a
/// reference from the precompiled `core` to the unwinding personality routine, although nothing
/// unwinds with `panic = "abort"`; optimised builds drop it. Never called.
#[cfg(all(not(test), debug_assertions))]
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}
