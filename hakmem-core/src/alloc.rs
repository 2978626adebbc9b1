//! The allocation API: the malloc and free fast paths, and the glibc contracts of the rest
//! (calloc, realloc, the aligned family, usable size). The C exports in `hakmem-preload` are
//! one-line calls into these functions.
//!
//! malloc fast path: class from a table, pop the thread's bin; when it is dry, take a block this
//! thread freed of another heap (the foreign cache). free fast path: cage bit, slab descriptor,
//! block-boundary check, and if this thread owns the slab, push where the slab's `list_head`
//! points: the bin when the slab is the bin's current one (last in, first out), else the slab's
//! local list; anything else is out of line.

use crate::freelist;
use crate::heap;
use crate::init;
use crate::large;
use crate::os::{self, PAGE};
use crate::policy;
use crate::report::{report_double_free, report_invalid};
use crate::size_class::{class_for_aligned, class_of, CLASS_BY_SIZE, LUT_MAX, MAX_SMALL};
use crate::slab::Slab;
use crate::superslab;
use crate::sync::add_single_writer;
use crate::tls::{thread_cache, Bin, BIN_BYTES, STATE_DEAD};
use core::ptr;
use core::sync::atomic::Ordering::Relaxed;

// Every class malloc's table gives has a foreign cache.
const _: () = assert!(crate::size_class::LUT_CLASSES <= crate::foreign::FOREIGN_CLASSES);

#[inline(always)]
pub fn malloc(size: usize) -> *mut u8 {
    if size <= LUT_MAX {
        // SAFETY: `size <= LUT_MAX`, inside the table; the class names a bin of this thread's
        // cache, and a non-null `free` heads a list of blocks it owns.
        unsafe {
            let c = *CLASS_BY_SIZE.get_unchecked(size) as usize;
            let off = c * BIN_BYTES;
            let tc = thread_cache();
            let bin = (tc as *mut u8).add(off) as *mut Bin;
            // Not counted: a block on a hot list stays counted in use (see `tls::Bin`).
            let b = heap::pop_hot(bin);
            if !b.is_null() {
                return b as *mut u8;
            }
            let b = heap::pop(bin);
            if !b.is_null() {
                add_single_writer(&(*bin).allocs, 1);
                return b as *mut u8;
            }
            // The bin is dry: a block of another heap this thread freed, before the slow path
            // (hand-off workloads live on these). `c < FOREIGN_CLASSES` (asserted below).
            let b = crate::foreign::take_cached(tc, c);
            if !b.is_null() {
                add_single_writer(&(*bin).allocs, 1);
                return b;
            }
            return alloc_slow(size, c);
        }
    }
    malloc_beyond_lut(size)
}

#[inline(never)]
fn malloc_beyond_lut(size: usize) -> *mut u8 {
    if size <= MAX_SMALL {
        class_alloc(class_of(size), size)
    } else {
        large_alloc(size, 16, false)
    }
}

/// Malloc of class `c` past the table, for malloc and the aligned allocations alike: the
/// classes whose free blocks decay go through `decaying_class_alloc`, so that every block of
/// theirs leaves without a decay mark.
#[inline(always)]
fn class_alloc(c: usize, size: usize) -> *mut u8 {
    if c >= crate::block_decay::FIRST_CLASS {
        return decaying_class_alloc(c, size);
    }
    alloc_class(c, size)
}

/// Malloc of class `c`, whose idle free blocks decay: with `block_decay`'s bookkeeping, out of
/// line so that the other classes' path keeps its registers.
#[inline(never)]
fn decaying_class_alloc(c: usize, size: usize) -> *mut u8 {
    let p = alloc_class(c, size);
    if !p.is_null() && !policy::checked() {
        // SAFETY: `p` is a block of a decaying class (at least 16 KiB) just handed out by this
        // thread, from its own heap or the shared one.
        unsafe { crate::block_decay::on_alloc(thread_cache(), p) };
    }
    p
}

/// Calloc of class `c`, whose idle free blocks decay: the pages a walk purged with
/// MADV_DONTNEED since the block was last freed read as zero already, so only the rest is
/// zeroed (`block_decay::zeroed_past`), and those pages stay untouched until the program
/// writes them, as glibc's and jemalloc's calloc leave fresh pages alone.
#[inline(never)]
fn decaying_class_calloc(c: usize, size: usize) -> *mut u8 {
    let p = alloc_class(c, size);
    if p.is_null() {
        return p;
    }
    // SAFETY: `p` is a block of class `c` or one of the next classes up, just handed out
    // and not yet the program's, of at least `size` bytes; the range `zeroed_past` gives lies
    // inside it and reads as zero.
    unsafe {
        let mut zeroed = None;
        if !policy::checked() {
            zeroed = crate::block_decay::zeroed_past(p, c);
            crate::block_decay::on_alloc(thread_cache(), p);
        }
        let (a, end) = (p as usize, p as usize + size);
        match zeroed {
            Some((lo, hi)) => {
                ptr::write_bytes(p, 0, lo - a);
                if hi < end {
                    ptr::write_bytes(hi as *mut u8, 0, end - hi);
                }
            }
            None => ptr::write_bytes(p, 0, size),
        }
    }
    p
}

/// Malloc of class `c` past the table: the hot list first, then the bin's list.
#[inline(always)]
fn alloc_class(c: usize, size: usize) -> *mut u8 {
    let tc = thread_cache();
    // SAFETY: `c < NUM_CLASSES`; the bin belongs to this thread; a non-null `free` is the head
    // of a list of blocks this thread owns.
    unsafe {
        let bin: *mut Bin = ptr::addr_of_mut!((*tc).bins).cast::<Bin>().add(c);
        let b = heap::pop_hot(bin);
        if !b.is_null() {
            return b as *mut u8;
        }
        let b = heap::pop(bin);
        if !b.is_null() {
            add_single_writer(&(*bin).allocs, 1);
            return b as *mut u8;
        }
    }
    alloc_slow(size, c)
}

#[cold]
#[inline(never)]
fn alloc_slow(size: usize, c: usize) -> *mut u8 {
    let tc = thread_cache();
    // SAFETY: `tc` is this thread's cache; `c < NUM_CLASSES`.
    unsafe {
        let b = crate::foreign::take(tc, c);
        if !b.is_null() {
            add_single_writer(&(*tc).bins[c].allocs, 1);
            return b;
        }
    }
    init::ensure();
    if policy::checked() {
        return crate::check::alloc(size, c);
    }
    // SAFETY: `tc` is this thread's cache and only this thread touches its bins and heap.
    unsafe {
        let mut h = (*tc).heap;
        if h.is_null() {
            if (*tc).state != STATE_DEAD {
                h = init::attach_thread(tc);
            }
            if h.is_null() {
                return nomem_if_null(heap::shared_alloc(c));
            }
            // A parked heap comes with the slabs and lists its last thread left in its bins.
            let b = heap::pop(ptr::addr_of_mut!((*tc).bins[c]));
            if !b.is_null() {
                add_single_writer(&(*tc).bins[c].allocs, 1);
                return b as *mut u8;
            }
        }
        let bin = ptr::addr_of_mut!((*tc).bins[c]);
        heap::check_hot(bin, c);
        if (*bin).hot_max == 0 {
            // Opens the class's hot list once the thread has made enough of its blocks, also
            // for a thread that frees only other threads' blocks of it.
            heap::grow_hot(bin);
        }
        let (b, d) = heap::refill_or_borrow(h, c, true);
        if b.is_null() {
            os::set_errno(libc::ENOMEM);
            return ptr::null_mut();
        }
        add_single_writer(&(*tc).bins[d].allocs, 1);
        crate::background::maybe_start();
        b as *mut u8
    }
}

fn nomem_if_null(p: *mut u8) -> *mut u8 {
    if p.is_null() {
        os::set_errno(libc::ENOMEM);
    }
    p
}

/// A large block; `zero` asks for zeroed memory.
pub fn large_alloc(size: usize, align: usize, zero: bool) -> *mut u8 {
    init::ensure();
    if policy::checked() {
        return crate::check::large_alloc(size, align, zero);
    }
    large::block(size, align, zero)
}

/// # Safety
/// `p` is null or a pointer the program got from this allocator and has not freed.
/// Anything else is reported (see HAKMEM_INVALID_FREE), never followed.
#[inline(always)]
pub unsafe fn free(p: *mut u8) {
    match crate::cage::slab_of(p as usize) {
        // SAFETY: `s` is the descriptor the cage's page table gives for `p`'s page (the dead
        // slab where nothing is formatted); the caller's promise on `p`.
        Some(s) => unsafe { free_small::<true>(p, s) },
        // SAFETY: the caller's promise, passed on.
        None => unsafe { free_outside_cage(p) },
    }
}

/// A pointer outside the cage: a SuperSlab mapped elsewhere (found in the registry), a large
/// block, null, or no block of ours.
///
/// # Safety
/// As for `free`.
#[cold]
#[inline(never)]
unsafe fn free_outside_cage(p: *mut u8) {
    if superslab::contains(p as usize) {
        // SAFETY: `p` lies in a registered SuperSlab, so `slab_of` gives the descriptor of its
        // page; the caller's promise on `p`.
        unsafe { free_small::<false>(p, superslab::slab_of(p as usize)) }
    } else {
        // SAFETY: the caller's promise, passed on.
        unsafe { free_not_small(p, "free") }
    }
}

/// Frees `p`, which lies in slab `s`'s page of a SuperSlab: block check, double-free check,
/// then the owner's local list or the remote path.
///
/// # Safety
/// `s` is the descriptor the page table gives for `p`'s page (a slab of a mapped SuperSlab, or
/// the dead slab), and `p` is as for `free`.
#[inline(always)]
unsafe fn free_small<const IN_CAGE: bool>(p: *mut u8, s: *mut Slab) {
    let a = p as usize;
    // SAFETY: `s` is a descriptor in a mapped SuperSlab or the dead slab (this fn's contract):
    // a SuperSlab is unmapped only when none of its slabs is in use, and only after its
    // registry bits are cleared (a later stale pointer is refused before this point); `index_of`
    // and `carved` only read it.
    let k = unsafe { Slab::index_of(s, a) };
    // SAFETY: as above; `carved` is atomic (its owner may be carving).
    if k >= unsafe { (*s).carved.load(Relaxed) } {
        return report_invalid(p, "free");
    }
    let tc = thread_cache();
    if IN_CAGE {
        // Any thread's block onto this thread's hot list of its class while the list has
        // room: the block stays counted in use by its slab until the list gives it back.
        // SAFETY: `k < carved`, so `a` is a carved block of `s` (in mapped memory) and `s` is
        // formatted; while the block is user-held only the freeing thread writes its tag and
        // link; the bin at `bin_offset` of this thread's cache is this thread's, and its list
        // has room only while the thread's heap is attached (`heap::attach`, `heap::detach`).
        unsafe {
            if freelist::is_tagged(a) {
                return report_double_free(p);
            }
            let bin = (tc as *mut u8).add((*s).bin_offset as usize) as *mut Bin;
            if heap::push_hot(bin, a) {
                return;
            }
        }
    }
    // SAFETY: `tc` is this thread's cache.
    let h = unsafe { (*tc).heap };
    // SAFETY: `heap` is atomic, readable from any thread.
    if unsafe { (*s).heap.load(Relaxed) } == h {
        // The owner, past a full hot list: onto the slab's local list (`free_local` follows
        // the slab's `list_head`: the bin when the slab is the bin's current one).
        // SAFETY: as above; this thread owns `s`, so the block's link and tag and the slab's
        // owner-side fields are touched by no other thread.
        unsafe {
            if !IN_CAGE && freelist::is_tagged(a) {
                return report_double_free(p);
            }
            let bin = (tc as *mut u8).add((*s).bin_offset as usize) as *mut Bin;
            if IN_CAGE && (*bin).hot_max < (*bin).hot_cap {
                return free_hot_grow(bin, s, a);
            }
            add_single_writer(&(*bin).frees, 1);
            if heap::free_local(s, a) {
                free_local_slow(s);
            }
        }
        return;
    }
    // SAFETY: `tc` is this thread's cache, `s` a formatted slab (or the dead slab) and `a` a
    // carved block of it with index `k` (with `IN_CAGE`, its tag checked), as `free_remote`
    // requires.
    unsafe { crate::remote::free_remote::<IN_CAGE>(tc, s, a, k) }
}

/// The owner's free of block `a` (in the cage) of its slab `s` when the bin's hot list is full
/// below its class's limit: the list doubles (a thread that keeps freeing this class fills it
/// again and again) and takes the block; a list not open yet opens once the thread has
/// allocated enough of the class (`heap::grow_hot`), and until then the block goes to its slab.
///
/// # Safety
/// `bin` is this thread's bin of `s`'s class, `s` belongs to this thread's heap and `a` is a
/// live block of it.
#[cold]
#[inline(never)]
unsafe fn free_hot_grow(bin: *mut Bin, s: *mut Slab, a: usize) {
    // SAFETY: this fn's contract.
    unsafe {
        if heap::grow_hot(bin) && heap::push_hot(bin, a) {
            return;
        }
        add_single_writer(&(*bin).frees, 1);
        if heap::free_local(s, a) {
            free_local_slow(s);
        }
    }
}

/// The owner's free emptied slab `s`, or gave a block back to a full one: reclassify it. Its
/// heap is read from the slab, not kept from the fast path, so that the fast path keeps one
/// register free (it is the same heap: the caller compared them).
///
/// # Safety
/// `s` belongs to this thread's heap.
#[cold]
#[inline(never)]
unsafe fn free_local_slow(s: *mut Slab) {
    // SAFETY: this fn's contract: this thread owns `s`'s heap, as `classify` requires.
    unsafe { heap::classify((*s).heap.load(Relaxed), s) };
}

/// # Safety
/// As for `free`.
#[cold]
#[inline(never)]
unsafe fn free_not_small(p: *mut u8, caller: &str) {
    if p.is_null() {
        return;
    }
    let e = os::errno();
    // SAFETY: the caller's promise on `p`; it is checked against the large records before
    // anything is read through it.
    if policy::checked() && !unsafe { crate::check::large_free_ok(p) } {
        return os::set_errno(e);
    }
    if !large::free(p) {
        report_invalid(p, caller);
    }
    crate::background::maybe_start();
    os::set_errno(e);
}

pub fn calloc(n: usize, m: usize) -> *mut u8 {
    let Some(total) = n.checked_mul(m) else {
        os::set_errno(libc::ENOMEM);
        return ptr::null_mut();
    };
    if total > MAX_SMALL {
        return large_alloc(total, 16, true);
    }
    if total > LUT_MAX {
        let c = class_of(total);
        if c >= crate::block_decay::FIRST_CLASS {
            return decaying_class_calloc(c, total);
        }
    }
    let p = malloc(total);
    if !p.is_null() {
        // SAFETY: `p` is a new block of at least `total` bytes.
        unsafe { ptr::write_bytes(p, 0, total) };
    }
    p
}

/// Bytes usable in block `p`, or None (after reporting) if `p` is not a block of ours.
///
/// # Safety
/// As for `free`.
unsafe fn usable(p: *mut u8, caller: &str) -> Option<usize> {
    let a = p as usize;
    if superslab::contains(a) {
        let s = superslab::slab_of(a);
        // SAFETY: `s` is the descriptor of `a`'s page in a registered SuperSlab (never
        // unmapped); once `holds_block` passes, `a` is a carved block of it, live by the
        // caller's promise.
        unsafe {
            if !Slab::holds_block(s, a) {
                report_invalid(p, caller);
                return None;
            }
            if policy::checked() {
                return Some(crate::check::usable(s, a));
            }
            return Some((*s).block_size as usize);
        }
    }
    let Some(u) = large::usable_size(p) else {
        report_invalid(p, caller);
        return None;
    };
    if policy::checked() {
        // SAFETY: `p` is a live large block of `u` usable bytes.
        return Some(unsafe { crate::check::large_usable(p, u) });
    }
    Some(u)
}

/// # Safety
/// As for `free`.
pub unsafe fn realloc(p: *mut u8, n: usize) -> *mut u8 {
    if p.is_null() {
        return malloc(n);
    }
    if n == 0 {
        // SAFETY: the caller's promise on `p`.
        unsafe { free(p) };
        return ptr::null_mut();
    }
    // SAFETY: the caller's promise on `p`.
    let Some(old) = (unsafe { usable(p, "realloc") }) else {
        os::set_errno(libc::EINVAL);
        return ptr::null_mut();
    };
    if superslab::contains(p as usize) {
        if !policy::checked() && n <= old && (n >= old / 2 || old <= 64) {
            return p;
        }
    } else if n > MAX_SMALL && !policy::checked() {
        match large::realloc(p, n) {
            large::Realloc::Done(q) => return q,
            large::Realloc::Failed => return ptr::null_mut(),
            large::Realloc::Move | large::Realloc::NotLarge => {}
        }
    }
    let q = malloc(n);
    if q.is_null() {
        return q;
    }
    // SAFETY: `p` is live with `old` usable bytes and `q` is a new block of at least `n`
    // bytes, distinct from `p`; then `p` is freed once, as the caller gave it up.
    unsafe {
        ptr::copy_nonoverlapping(p, q, old.min(n));
        free(p);
    }
    q
}

/// `realloc` for a caller that knows how many bytes of the block are its own (Rust's
/// `GlobalAlloc::realloc`, which passes the layout the block was allocated with): a block in
/// the cage is resized from its slab descriptor, reached through the cage's page table as
/// `free` reaches it, instead of `usable`'s registry lookup; it stays in place under the same
/// rule as `realloc`'s, and a move copies only the `old` bytes the caller wrote. Anything else
/// (a large block, a SuperSlab outside the cage, checking mode, a pointer that is no block)
/// takes `realloc`.
///
/// # Safety
/// As for `realloc`, and `n > 0`; the first `old` bytes of `p` are the caller's block.
#[inline]
pub unsafe fn realloc_sized(p: *mut u8, old: usize, n: usize) -> *mut u8 {
    let a = p as usize;
    if let (Some(s), false) = (crate::cage::slab_of(a), policy::checked()) {
        // SAFETY: the cage's page table gave `s`: a descriptor in a mapped SuperSlab of the
        // cage (the cage never unmaps one) or the dead slab; `holds_block` and `block_size` only read it.
        if unsafe { Slab::holds_block(s, a) } {
            // SAFETY: as above; `a` is a carved block of `s`, so its block size is its usable size.
            let size = unsafe { (*s).block_size } as usize;
            if n <= size && (n >= size / 2 || size <= 64) {
                return p;
            }
            let q = malloc(n);
            if !q.is_null() {
                // SAFETY: `p` is live with `size` usable bytes, of which the first `old` are
                // the caller's (this fn's contract), and `q` is a new block of at least `n`
                // bytes, distinct from `p`; then `p` is freed once, as the caller gave it up.
                unsafe {
                    ptr::copy_nonoverlapping(p, q, old.min(size).min(n));
                    free(p);
                }
            }
            return q;
        }
    }
    // SAFETY: the caller's promise, passed on.
    unsafe { realloc(p, n) }
}

/// # Safety
/// As for `realloc`.
pub unsafe fn reallocarray(p: *mut u8, n: usize, m: usize) -> *mut u8 {
    match n.checked_mul(m) {
        // SAFETY: the caller's promise, passed on.
        Some(total) => unsafe { realloc(p, total) },
        None => {
            os::set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// A block of `size` bytes aligned to `align` (a power of two).
pub fn aligned(align: usize, size: usize) -> *mut u8 {
    if align <= 16 {
        return malloc(size);
    }
    if align <= PAGE {
        if let Some(c) = class_for_aligned(size, align) {
            return class_alloc(c, size);
        }
    }
    large_alloc(size, align, false)
}

/// posix_memalign: EINVAL for a bad alignment, ENOMEM on failure (errno too, as glibc leaves
/// it); `*out` is set only on success.
///
/// # Safety
/// `out` is valid for a write.
pub unsafe fn posix_memalign(out: *mut *mut u8, align: usize, size: usize) -> i32 {
    if !align.is_power_of_two() || align < core::mem::size_of::<usize>() {
        return libc::EINVAL;
    }
    let p = aligned(align, size);
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: `out` is valid for a write (this fn's contract).
    unsafe { *out = p };
    0
}

/// aligned_alloc: a non-power-of-two alignment fails with EINVAL (as glibc 2.38 and musl); the
/// size need not be a multiple of the alignment.
pub fn aligned_alloc(align: usize, size: usize) -> *mut u8 {
    if !align.is_power_of_two() {
        os::set_errno(libc::EINVAL);
        return ptr::null_mut();
    }
    aligned(align, size)
}

/// memalign: as glibc, an alignment that is not a power of two is rounded up to one; one past
/// the largest power of two fails with EINVAL, any other that cannot be met with ENOMEM.
pub fn memalign(align: usize, size: usize) -> *mut u8 {
    if align > usize::MAX / 2 + 1 {
        os::set_errno(libc::EINVAL);
        return ptr::null_mut();
    }
    aligned(align.max(1).next_power_of_two(), size)
}

pub fn valloc(size: usize) -> *mut u8 {
    aligned(PAGE, size)
}

/// pvalloc: page-aligned, size rounded up to whole pages (at least one), overflow-checked.
pub fn pvalloc(size: usize) -> *mut u8 {
    match size.checked_add(PAGE - 1) {
        Some(n) => aligned(PAGE, (n & !(PAGE - 1)).max(PAGE)),
        None => {
            os::set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// # Safety
/// As for `free`.
pub unsafe fn usable_size(p: *mut u8) -> usize {
    if p.is_null() {
        return 0;
    }
    // SAFETY: the caller's promise, passed on.
    unsafe { usable(p, "malloc_usable_size") }.unwrap_or(0)
}

/// Gives the calling thread's hot lists back to their slabs: their blocks, counted in use
/// until then (`tls::Bin`), count as freed.
pub fn hot_lists_back() {
    init::ensure();
    // SAFETY: the calling thread's own cache.
    unsafe { heap::hot_flush_all(thread_cache()) };
}

/// Returns free memory to the OS now; the number of purge calls made.
pub fn trim() -> usize {
    init::ensure();
    // SAFETY: the calling thread's own cache.
    unsafe { crate::foreign::flush(thread_cache()) };
    hot_lists_back();
    let before = os::MADVISE_CALLS.load(Relaxed) + os::MUNMAP_CALLS.load(Relaxed);
    crate::pool::trim();
    os::MADVISE_CALLS.load(Relaxed) + os::MUNMAP_CALLS.load(Relaxed) - before
}
