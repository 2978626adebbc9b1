//! Per-thread state in the initial-exec TLS model.
//!
//! Stable Rust's `thread_local!` compiles to the global-dynamic model in a shared library: a call
//! to `__tls_get_addr` on every access, which may itself call malloc. We declare one TLS symbol in
//! `.tbss` with `global_asm!` and read its address as `%fs:0 + GOTTPOFF(symbol)`, which is what C
//! compilers emit for `__thread` with `-ftls-model=initial-exec`. The block starts zeroed, and a
//! zeroed `ThreadCache` is a valid empty cache (every bin empty), so the fast path needs no check.

use crate::foreign::{ForeignBin, FOREIGN_CLASSES, REISSUED};
use crate::freelist::NIL;
use crate::heap::Heap;
use crate::size_class::NUM_CLASSES;
use crate::slab::{Slab, CURRENT_USED};
use core::sync::atomic::AtomicU64;

/// One size class of a thread: the free list of its current slab, a copy of what popping it
/// needs from the slab (one cache line, no other load), and counters. A zeroed bin is empty:
/// `free >= limit` sends malloc to its slow path.
///
/// Owner-only (the thread, or the holder of the heap whose `own_bins` it is): `free`, `limit`,
/// `start`, `slab`. Atomic: `allocs` and `frees`, which statistics read from other
/// threads; the owner updates them with a Relaxed load and store (`add_single_writer`), never a
/// read-modify-write. No `&mut Bin` is ever made: functions take `*mut Bin`.
///
/// `allocs` and `frees` count blocks leaving and reaching the slabs: handed out from the bin's
/// list, the foreign cache or a slow path, freed to a slab (or a remote stack), given back by
/// the hot list (`heap::hot_flush`). A block on the hot list counts as in use, as glibc counts
/// the blocks in its tcache and jemalloc those in its thread caches, so the hot list's own
/// pushes and pops, the fast paths' commonest case, count nothing.
#[repr(C, align(64))]
pub struct Bin {
    /// Offset in `slab` of the next block to hand out (decoded, checked against `limit` before
    /// use), or NIL.
    pub free: u64,
    /// The bytes `slab` has carved (0 when there is no slab): the offsets of its blocks are
    /// below it.
    pub limit: u64,
    pub start: usize,
    pub slab: *mut Slab,
    pub allocs: AtomicU64,
    pub frees: AtomicU64,
    /// The hot list: the thread's latest frees of this class, blocks of any slab in the cage
    /// (its own or another thread's, which count them in use meanwhile), newest first, linked
    /// through the blocks (encoded as every list is); `hot` is the newest
    /// block's address, 0 when the list is empty. Malloc takes from it before the bin's own
    /// list (see `heap::pop_hot`).
    pub hot: usize,
    /// Blocks the hot list may still take; the most it holds now, which doubles each time it
    /// fills up, up to `hot_cap` (0: none, every free goes to its slab: checking mode, a bin
    /// no thread attached or whose heap was detached).
    pub hot_room: u16,
    pub hot_max: u16,
    pub hot_cap: u16,
}

impl Bin {
    pub const fn empty() -> Bin {
        Bin {
            free: NIL,
            limit: 0,
            start: 0,
            slab: core::ptr::null_mut(),
            allocs: AtomicU64::new(0),
            frees: AtomicU64::new(0),
            hot: 0,
            hot_room: 0,
            hot_max: 0,
            hot_cap: 0,
        }
    }

    /// Makes `s` bin `bin`'s slab, with the list headed by offset `head`: the owner's frees into
    /// `s` go onto the bin from now on, and `s`'s count becomes `CURRENT_USED`.
    ///
    /// # Safety
    /// The caller owns `bin`, and `s` is a formatted slab the bin's owner owns, not marked
    /// full, whose local list is empty (its blocks are in `head`'s list).
    #[inline]
    pub unsafe fn set(bin: *mut Bin, s: *mut Slab, head: u64) {
        // SAFETY: the caller owns `bin`, and `s` is a formatted slab it owns (this fn's
        // contract), so its `carved` changes only by this thread and the other fields are fixed.
        unsafe {
            debug_assert!(
                head == NIL || Slab::holds_offset(s, head),
                "a bin's list starts at a block that is not carved"
            );
            debug_assert!(
                (*s).local_free == NIL,
                "a slab made current with blocks on its local list"
            );
            (*s).list_head = core::ptr::addr_of_mut!((*bin).free);
            (*s).set_used(CURRENT_USED);
            (*bin).slab = s;
            (*bin).free = head;
            (*bin).limit = (*s).carved_bytes();
            (*bin).start = (*s).start;
        }
    }

    /// Leaves bin `bin` without a slab: the owner's frees into the slab go onto its local list
    /// again, and its count is `in_use` (the caller counted it: carved blocks less those in
    /// the bin's list, which the caller takes).
    ///
    /// # Safety
    /// The caller owns `bin`, which has a slab.
    #[inline]
    pub unsafe fn clear(bin: *mut Bin, in_use: u32) {
        // SAFETY: the caller owns `bin` (this fn's contract), and its slab, which belongs to
        // the bin's owner.
        unsafe {
            let s = (*bin).slab;
            (*s).list_head = core::ptr::addr_of_mut!((*s).local_free);
            (*s).set_used(in_use);
            (*bin).slab = core::ptr::null_mut();
            (*bin).free = NIL;
            (*bin).limit = 0;
        }
    }
}

impl Bin {
    /// Moves `from`'s slab and list to `to`, which has none: the owner's frees into the slab
    /// follow it there. Counters and hot lists stay.
    ///
    /// # Safety
    /// The caller owns both bins and the slab of `from`, which has one; `to` has none.
    #[inline]
    pub unsafe fn move_to(from: *mut Bin, to: *mut Bin) {
        // SAFETY: the caller owns both bins and the slab (this fn's contract).
        unsafe {
            debug_assert!((*to).slab.is_null(), "a bin moved onto one with a slab");
            let s = (*from).slab;
            (*to).slab = s;
            (*to).free = (*from).free;
            (*to).limit = (*from).limit;
            (*to).start = (*from).start;
            (*s).list_head = core::ptr::addr_of_mut!((*to).free);
            (*from).slab = core::ptr::null_mut();
            (*from).free = NIL;
            (*from).limit = 0;
        }
    }
}

pub const BIN_BYTES: usize = core::mem::size_of::<Bin>();

/// `state` starts at 0 (no heap yet); attaching a heap makes it active.
pub const STATE_ACTIVE: usize = 1;
/// The thread ran its exit handler: later calls are served by the shared heap.
pub const STATE_DEAD: usize = 2;

/// A thread's cache. Owner-only: `heap`, `state` and the owner-only fields of the bins.
/// Atomic: the bins' counters and `remote_frees`, which statistics read from other threads
/// through the heap's `bins` and `remote_ctr` while the thread is attached (updated by the
/// thread with a Relaxed load and store).
#[repr(C, align(64))]
pub struct ThreadCache {
    pub bins: [Bin; NUM_CLASSES],
    pub remote_frees: [AtomicU64; NUM_CLASSES],
    pub heap: *mut Heap,
    pub state: usize,
    /// Allocations of the classes whose free blocks decay (`block_decay::on_alloc`).
    pub decay_tick: u32,
    /// Blocks of other heaps' slabs this thread freed, kept for its next allocations.
    pub foreign: [ForeignBin; FOREIGN_CLASSES],
    /// Blocks this thread took from its foreign cache lately (see `foreign::reissued`).
    pub reissued: [usize; REISSUED],
}

#[cfg(not(target_arch = "x86_64"))]
compile_error!("hakmem's initial-exec TLS access is written for x86_64 only");

core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".p2align 6",
    ".globl __hakmem_tls",
    ".hidden __hakmem_tls",
    ".type __hakmem_tls,@object",
    ".size __hakmem_tls, {size}",
    "__hakmem_tls:",
    ".skip {size}",
    ".popsection",
    size = const core::mem::size_of::<ThreadCache>(),
);

/// This thread's cache. Valid for the whole life of the thread, zeroed at its start.
#[inline(always)]
pub fn thread_cache() -> *mut ThreadCache {
    let p: *mut ThreadCache;
    // SAFETY: reads the thread pointer (%fs:0 holds its own address on x86_64 glibc) and the
    // TLS offset the dynamic linker stored in our GOT; both are constant for the thread.
    unsafe {
        core::arch::asm!(
            "movq %fs:0, {p}",
            "addq __hakmem_tls@GOTTPOFF(%rip), {p}",
            p = out(reg) p,
            options(att_syntax, pure, readonly, nostack, preserves_flags)
        );
    }
    p
}
