//! The OS layer: every system call hakmem makes goes through here and is counted.

use core::fmt;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

pub const PAGE: usize = 4096;

pub static MMAP_CALLS: AtomicUsize = AtomicUsize::new(0);
pub static MUNMAP_CALLS: AtomicUsize = AtomicUsize::new(0);
pub static MADVISE_CALLS: AtomicUsize = AtomicUsize::new(0);
pub static MREMAP_CALLS: AtomicUsize = AtomicUsize::new(0);
pub static MAPPED: AtomicUsize = AtomicUsize::new(0);
pub static PEAK_MAPPED: AtomicUsize = AtomicUsize::new(0);

fn add_mapped(len: usize) {
    let now = MAPPED.fetch_add(len, Relaxed) + len;
    PEAK_MAPPED.fetch_max(now, Relaxed);
}

fn sub_mapped(len: usize) {
    MAPPED.fetch_sub(len, Relaxed);
}

/// Maps `len` bytes of fresh zeroed memory, or returns null.
///
/// No MAP_NORESERVE: the kernel accounts every mapping and judges it by its overcommit policy
/// (vm.overcommit_memory) exactly as it judges glibc's, so a request that can never be backed
/// (under the default heuristic: more than RAM plus swap) fails here instead of succeeding.
pub fn map(len: usize, populate: bool) -> *mut u8 {
    let flags =
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | if populate { libc::MAP_POPULATE } else { 0 };
    MMAP_CALLS.fetch_add(1, Relaxed);
    // SAFETY: an anonymous mapping at an address of the kernel's choosing touches no existing memory.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    add_mapped(len);
    p as *mut u8
}

/// Maps `len` bytes aligned to `align` (a power of two, at least a page), or returns null.
pub fn map_aligned(len: usize, align: usize, populate: bool) -> *mut u8 {
    let p = map(len, populate);
    if p.is_null() || (p as usize) & (align - 1) == 0 {
        return p;
    }
    // SAFETY: `p` is the mapping of `len` bytes made just above and nothing else refers to it.
    unsafe { unmap(p, len) };
    let Some(over) = len.checked_add(align) else {
        return ptr::null_mut();
    };
    let raw = map(over, false);
    if raw.is_null() {
        return raw;
    }
    let start = (raw as usize + align - 1) & !(align - 1);
    // SAFETY: `raw..raw+over` is the fresh mapping just made, nothing else refers to it, and
    // `start..start+len` lies inside it.
    unsafe {
        keep_only(raw as usize, over, start, len, |p, n| {
            unmap(p as *mut u8, n)
        })
    };
    if populate {
        // SAFETY: the range is the mapping kept above.
        unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_WILLNEED) };
    }
    start as *mut u8
}

/// Reserves `len` bytes of address space, inaccessible and with no memory behind them (not
/// counted as mapped), such that the address `skew` bytes in is aligned to `align` (a power of
/// two); returns that address, or null if the kernel refuses.
pub fn reserve(len: usize, align: usize, skew: usize) -> *mut u8 {
    let Some(over) = len.checked_add(align) else {
        return ptr::null_mut();
    };
    MMAP_CALLS.fetch_add(1, Relaxed);
    // SAFETY: an inaccessible anonymous mapping at an address of the kernel's choosing.
    let raw = unsafe {
        libc::mmap(
            ptr::null_mut(),
            over,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    let raw = raw as usize;
    let start = ((raw + skew + align - 1) & !(align - 1)) - skew;
    // SAFETY: `raw..raw+over` is the reservation just made, unused, and `start..start+len`
    // lies inside it. A reservation is not counted as mapped, so the trimming is not either.
    unsafe {
        keep_only(raw, over, start, len, |p, n| {
            MUNMAP_CALLS.fetch_add(1, Relaxed);
            libc::munmap(p as *mut libc::c_void, n);
        })
    };
    (start + skew) as *mut u8
}

/// Unmaps what lies outside `start..start+len` in the fresh mapping `raw..raw+over`, with `unmap`.
///
/// # Safety
/// `raw..raw+over` is a mapping nothing refers to, and `start..start+len` lies inside it.
unsafe fn keep_only(
    raw: usize,
    over: usize,
    start: usize,
    len: usize,
    unmap: impl Fn(usize, usize),
) {
    if start > raw {
        unmap(raw, start - raw);
    }
    if raw + over > start + len {
        unmap(start + len, raw + over - (start + len));
    }
}

/// Maps `len` bytes of zeroed memory exactly at `p`, inside a reservation of ours; null on failure.
///
/// # Safety
/// `p..p+len` lies in a reservation made by `reserve` that nothing else uses.
pub unsafe fn map_fixed(p: *mut u8, len: usize, populate: bool) -> *mut u8 {
    // No MAP_NORESERVE, as for `map`: the kernel judges this memory by its overcommit policy.
    let flags = libc::MAP_PRIVATE
        | libc::MAP_ANONYMOUS
        | libc::MAP_FIXED
        | if populate { libc::MAP_POPULATE } else { 0 };
    MMAP_CALLS.fetch_add(1, Relaxed);
    // SAFETY: MAP_FIXED replaces only `p..p+len`, inside our reservation that nothing else
    // uses (this fn's contract).
    let q = unsafe {
        libc::mmap(
            p as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            -1,
            0,
        )
    };
    if q == libc::MAP_FAILED || q as *mut u8 != p {
        return ptr::null_mut();
    }
    add_mapped(len);
    p
}

/// # Safety
/// `p..p+len` must be a mapping (or part of one) made by this module that nothing uses any more.
pub unsafe fn unmap(p: *mut u8, len: usize) {
    MUNMAP_CALLS.fetch_add(1, Relaxed);
    // SAFETY: the range is ours and unused (this fn's contract).
    if unsafe { libc::munmap(p as *mut libc::c_void, len) } == 0 {
        sub_mapped(len);
    }
}

/// Grows or shrinks a mapping, possibly moving it; returns null on failure (the old mapping stays).
///
/// # Safety
/// `p..p+old` must be a whole mapping made by this module.
pub unsafe fn remap(p: *mut u8, old: usize, new: usize) -> *mut u8 {
    MREMAP_CALLS.fetch_add(1, Relaxed);
    // SAFETY: `p..p+old` is a whole mapping of ours (this fn's contract); the caller uses the
    // returned address from now on.
    let q = unsafe { libc::mremap(p as *mut libc::c_void, old, new, libc::MREMAP_MAYMOVE) };
    remapped(q, old, new)
}

/// The result of an mremap of `old` bytes to `new`: null on failure, else the new address, with
/// the mapped-bytes count moved by the difference.
fn remapped(q: *mut libc::c_void, old: usize, new: usize) -> *mut u8 {
    if q == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    if new > old {
        add_mapped(new - old);
    } else {
        sub_mapped(old - new);
    }
    q as *mut u8
}

/// Moves mapping `p..p+old` to address `to`, resized to `new` bytes; returns `to`, or null on failure
/// (the old mapping stays).
///
/// # Safety
/// `p..p+old` must be a whole mapping made by this module, and `to..to+new` address space that
/// this process does not use (whatever is mapped there is replaced).
pub unsafe fn remap_to(p: *mut u8, old: usize, new: usize, to: usize) -> *mut u8 {
    // SAFETY: this fn's contract: the source is ours and the destination unused.
    let q = unsafe { remap_fixed(p as usize, old, new, to) };
    remapped(q, old, new)
}

/// mremap of `src..src+old` to `to..to+new` (MREMAP_MAYMOVE | MREMAP_FIXED), counted; the raw
/// result.
///
/// # Safety
/// As for `remap_to`.
unsafe fn remap_fixed(src: usize, old: usize, new: usize, to: usize) -> *mut libc::c_void {
    MREMAP_CALLS.fetch_add(1, Relaxed);
    // SAFETY: this fn's contract.
    unsafe {
        libc::mremap(
            src as *mut libc::c_void,
            old,
            new,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            to as *mut libc::c_void,
        )
    }
}

/// Moves the pages of `src..src+len` onto `dst..dst+len`, which lies inside a mapping of ours
/// whose pages there are replaced (mremap with MREMAP_FIXED: the kernel moves page tables, not
/// bytes). False on failure (both ranges unchanged): the source spans two kernel mappings, say.
///
/// # Safety
/// Both ranges are ours, disjoint, page-aligned, and nothing else uses either.
pub unsafe fn move_onto(src: usize, len: usize, dst: usize) -> bool {
    // SAFETY: this fn's contract: the source is ours, the destination ours to replace.
    let q = unsafe { remap_fixed(src, len, len, dst) };
    if q == libc::MAP_FAILED {
        return false;
    }
    // The destination's own pages went away with the move.
    sub_mapped(len);
    true
}

/// How freed memory is returned to the OS.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PurgeKind {
    DontNeed,
    Free,
    None,
}

/// Returns the pages of `p..p+len` to the OS; the range stays mapped and reads as zero
/// (`DontNeed`) or as either old contents or zero (`Free`). True when it now reads as zero.
///
/// # Safety
/// The range must be page-aligned, inside a mapping of this module, and hold no live block.
pub unsafe fn purge(p: *mut u8, len: usize, kind: PurgeKind) -> bool {
    let advice = match kind {
        PurgeKind::DontNeed => libc::MADV_DONTNEED,
        PurgeKind::Free => libc::MADV_FREE,
        PurgeKind::None => return false,
    };
    MADVISE_CALLS.fetch_add(1, Relaxed);
    // SAFETY: the range is ours, page-aligned and holds no live block (this fn's contract).
    let r = unsafe { libc::madvise(p as *mut libc::c_void, len, advice) };
    // MADV_DONTNEED on our private anonymous mappings: the next touch of each page faults in
    // a zero page. MADV_FREE leaves the old contents until the kernel reclaims the page.
    r == 0 && kind == PurgeKind::DontNeed
}

/// Asks for transparent huge pages on `p..p+len` (a hint; failure is harmless).
///
/// # Safety
/// The range is a mapping of this module.
pub unsafe fn hugepage(p: *mut u8, len: usize) {
    MADVISE_CALLS.fetch_add(1, Relaxed);
    // SAFETY: a hint on a mapping of ours (this fn's contract); it changes no contents.
    unsafe { libc::madvise(p as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
}

pub const HUGE: usize = 2 << 20;

/// Milliseconds of a coarse monotonic clock (a vDSO read, no system call).
pub fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// Nanoseconds of clock `clk`.
pub fn clock_ns(clk: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-parameter.
    unsafe { libc::clock_gettime(clk, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000) + ts.tv_nsec as u64
}

pub fn pid() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// Fills `out` from the kernel's random source (getrandom, never blocking, no allocation);
/// false if it could not. errno is left as it was.
pub fn random(out: &mut [u64]) -> bool {
    let e = errno();
    let p = out.as_mut_ptr() as *mut u8;
    let len = core::mem::size_of_val(out);
    let mut got = 0usize;
    while got < len {
        // SAFETY: writes at most `len - got` bytes inside `out`.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getrandom,
                p.add(got),
                len - got,
                libc::GRND_NONBLOCK,
            )
        };
        if n > 0 {
            got += n as usize;
        } else if n < 0 && errno() == libc::EINTR {
            continue;
        } else {
            break;
        }
    }
    set_errno(e);
    got == len
}

/// The 16 random bytes the kernel gives every process (AT_RANDOM), or zeros.
pub fn at_random() -> [u64; 2] {
    // SAFETY: getauxval has no preconditions; AT_RANDOM, when present, points to 16 readable bytes.
    unsafe {
        let p = libc::getauxval(libc::AT_RANDOM) as *const u64;
        if p.is_null() {
            return [0; 2];
        }
        [p.read_unaligned(), p.add(1).read_unaligned()]
    }
}

pub fn set_errno(e: i32) {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

pub fn errno() -> i32 {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() }
}

pub fn write_stderr(bytes: &[u8]) {
    write_all(2, bytes);
}

/// Writes all of `bytes` to `fd`; false if a write failed.
fn write_all(fd: i32, bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: writing from a valid slice to an fd (a bad fd fails with EBADF).
        let n = unsafe { libc::write(fd, rest.as_ptr() as *const libc::c_void, rest.len()) };
        if n <= 0 {
            return false;
        }
        rest = &rest[n as usize..];
    }
    true
}

/// Creates (or truncates) the file `path` and writes `bytes` into it; false on failure, with
/// errno telling why.
pub fn write_new_file(path: &core::ffi::CStr, bytes: &[u8]) -> bool {
    // SAFETY: `path` is NUL-terminated; the fd is closed before returning.
    unsafe {
        let fd = libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o644,
        );
        if fd < 0 {
            return false;
        }
        let ok = write_all(fd, bytes);
        libc::close(fd) == 0 && ok
    }
}

pub fn abort() -> ! {
    // SAFETY: abort never returns and needs no preconditions.
    unsafe { libc::abort() }
}

/// A fixed-size text buffer that never allocates; text past its end is dropped.
pub struct StackBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackBuf<N> {
    pub const fn new() -> Self {
        StackBuf {
            buf: [0; N],
            len: 0,
        }
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> Default for StackBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for StackBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(N - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// `eprint!` without allocating: formats into a stack buffer and writes it to fd 2 in one call.
#[macro_export]
macro_rules! hk_eprint {
    ($($arg:tt)*) => {{
        let mut b = $crate::os::StackBuf::<1024>::new();
        let _ = core::fmt::Write::write_fmt(&mut b, format_args!($($arg)*));
        $crate::os::write_stderr(b.as_bytes());
    }};
}

/// Reads a small file (e.g. /proc/self/status) into `buf` without allocating; returns the length.
pub fn read_file(path: &core::ffi::CStr, buf: &mut [u8]) -> usize {
    // SAFETY: `path` is NUL-terminated; the fd is closed before returning.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return 0;
        }
        let mut len = 0;
        while len < buf.len() {
            let n = libc::read(
                fd,
                buf[len..].as_mut_ptr() as *mut libc::c_void,
                buf.len() - len,
            );
            if n <= 0 {
                break;
            }
            len += n as usize;
        }
        libc::close(fd);
        len
    }
}
