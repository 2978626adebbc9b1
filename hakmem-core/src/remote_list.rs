//! The lock-free steps of a cross-thread free, written once over the atomics of `super::atomic`:
//! core's in the allocator, loom's in the model-checking test (`tests/loom_remote.rs` includes
//! this file), so the checked protocol is the one that runs.
//!
//! A slab's `thread_free` word is a stack of block indices (its head, its last block and its
//! length, so that the owner splices a taken stack without walking it) plus the NOTIFIED bit. A
//! freeing thread pushes its block (or a run of blocks it linked) with one CAS that also sets
//! NOTIFIED; the push that finds NOTIFIED clear queues
//! the slab on its heap's queue (an MPSC stack linked through the slabs' `next_remote`). The
//! owner takes the queue whole, reads each slab's link, then takes the slab's stack and clears
//! NOTIFIED in one swap (after which a new free may queue the slab again). The owner may also take
//! its current slab's stack without touching NOTIFIED, since that slab may sit in the queue.
//! Block links are written before the Release CAS that publishes them and read after the Acquire
//! that takes them; the clear of NOTIFIED and the push that sets it again are a Release/Acquire
//! pair, so each queue period's link write follows the previous period's read.
//!
//! The word also carries CURRENT while the slab is a bin's current slab (set by the owner when it
//! installs the slab, cleared after its last write when the slab stops being current), so that a
//! thread collecting the slabs an idle heap leaves uncollected (`steal`) can tell, in the same
//! atomic step that takes a stack, that the stack holds every block of a slab no bin uses: such a
//! slab is free, and nothing of its old owner points to it any more.
//!
//! This file names nothing outside itself but `super::atomic`, so the test can include it.

use super::atomic::{AtomicPtr, AtomicUsize, Ordering::*};
use core::ptr;

/// Low bit of `thread_free`: the slab is queued (or being queued) on its heap's remote list.
/// The rest of the word describes the stack in three 16-bit fields: `head + 1`, `tail + 1` and the
/// number of blocks, so an empty stack is 0 and the owner takes a whole stack, its last block and
/// its length in one atomic step, without walking its links (one cold block each).
pub const NOTIFIED: usize = 1;

/// The head index of an empty stack.
pub const EMPTY: u64 = u64::MAX;

/// Block indices must stay below this (a slab has at most 4096 blocks).
pub const MAX_INDEX: u64 = 0xfffe;

const MASK: usize = 0xffff;
const HEAD: u32 = 1;
const TAIL: u32 = 17;
const COUNT: u32 = 33;

/// The bit past the stack's fields: the slab is a bin's current slab (see the module's text).
pub const CURRENT: usize = 1 << (COUNT + 16);

/// A stack taken from a `thread_free` word: its first and last block (EMPTY when empty) and its
/// length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub head: u64,
    pub tail: u64,
    pub n: u32,
}

/// The word (without NOTIFIED) of a stack from `head` to `tail` holding `n` blocks.
#[inline(always)]
pub const fn pack(head: u64, tail: u64, n: u32) -> usize {
    ((head.wrapping_add(1) as usize & MASK) << HEAD)
        | ((tail.wrapping_add(1) as usize & MASK) << TAIL)
        | ((n as usize & MASK) << COUNT)
}

/// The head index (EMPTY when empty) of a `thread_free` word.
#[inline(always)]
pub const fn head(w: usize) -> u64 {
    (((w >> HEAD) & MASK) as u64).wrapping_sub(1)
}

/// The stack a `thread_free` word describes.
#[inline(always)]
pub const fn run(w: usize) -> Run {
    Run {
        head: head(w),
        tail: (((w >> TAIL) & MASK) as u64).wrapping_sub(1),
        n: ((w >> COUNT) & MASK) as u32,
    }
}

/// Pushes block `k` on the stack `tf`. `link(old_head)` stores the block's link to the previous
/// head (EMPTY for none) and may run more than once. Returns whether the caller must now queue the
/// slab (this push set NOTIFIED).
#[inline(always)]
pub fn push(tf: &AtomicUsize, k: u64, link: impl FnMut(u64)) -> bool {
    push_run(tf, k, k, 1, link)
}

/// Pushes a run of `n` blocks, already linked from `first` to `last`, on the stack `tf`.
/// `link(old_head)` stores `last`'s link to the previous head (EMPTY for none) and may run more
/// than once. Returns whether the caller must now queue the slab (this push set NOTIFIED).
#[inline(always)]
pub fn push_run(
    tf: &AtomicUsize,
    first: u64,
    last: u64,
    n: u32,
    mut link: impl FnMut(u64),
) -> bool {
    let mut old = tf.load(Relaxed);
    loop {
        let r = run(old);
        link(r.head);
        // The stack's last block stays the one that found it empty.
        let tail = if r.head == EMPTY { last } else { r.tail };
        let new = pack(first, tail, r.n + n) | NOTIFIED | (old & CURRENT);
        // Release publishes the blocks' links. Acquire: a push that finds NOTIFIED clear starts a
        // new queue period and will write the slab's queue link; it must happen after the consumer
        // read the old link (which `take_and_clear`'s Release orders before the clear), or the
        // old and new link writes are unordered and the queue can lose a slab. Found by the loom
        // model (tests/loom_remote.rs); on x86 both are the same `lock cmpxchg`.
        match tf.compare_exchange_weak(old, new, AcqRel, Relaxed) {
            Ok(_) => return old & NOTIFIED == 0,
            Err(x) => old = x,
        }
    }
}

/// Takes the whole stack (EMPTY head if none), leaving NOTIFIED and CURRENT as they were: for the
/// owner's own use of a slab that may be in the queue, whose consumer alone clears NOTIFIED.
#[inline]
pub fn take_keep_flag(tf: &AtomicUsize) -> Run {
    let mut old = tf.load(Relaxed);
    loop {
        if old & !(NOTIFIED | CURRENT) == 0 {
            return run(0);
        }
        match tf.compare_exchange_weak(old, old & (NOTIFIED | CURRENT), Acquire, Relaxed) {
            Ok(_) => return run(old),
            Err(x) => old = x,
        }
    }
}

/// `take_keep_flag` that also sets CURRENT: the owner makes the slab a bin's current slab. The
/// slab comes from one of the owner's lists or the pool, so no thread can be taking it meanwhile.
#[inline]
pub fn take_set_current(tf: &AtomicUsize) -> Run {
    let mut old = tf.load(Relaxed);
    loop {
        match tf.compare_exchange_weak(old, (old & NOTIFIED) | CURRENT, Acquire, Relaxed) {
            Ok(_) => return run(old),
            Err(x) => old = x,
        }
    }
}

/// Clears CURRENT: the slab stopped being current. The owner's last touch of the slab while all
/// its blocks are out: Release hands its writes to a thread that then takes the slab (`take_free`).
#[inline]
pub fn clear_current(tf: &AtomicUsize) {
    tf.fetch_and(!CURRENT, Release);
}

/// Takes the whole stack and clears NOTIFIED (CURRENT stays): for the queue's consumer, after it
/// has read the slab's queue link (a free after this may queue the slab again and overwrite the
/// link).
#[inline]
pub fn take_and_clear(tf: &AtomicUsize) -> Run {
    // Acquire takes the blocks' links; Release orders the caller's read of the queue link before
    // the next period's push (see `push`).
    run(tf.fetch_and(CURRENT, AcqRel))
}

/// For a thread that took the slab off a queue it is not the consumer of (`steal`): takes the
/// whole stack and clears NOTIFIED when the stack holds `capacity` blocks, every block of the
/// slab, and the slab is no bin's current slab; then no thread holds a block of it and its
/// owner does not reach it any more, so it is the caller's. False (nothing changed) otherwise.
#[inline]
pub fn take_free(tf: &AtomicUsize, capacity: u32) -> bool {
    let w = tf.load(Relaxed);
    if w & (NOTIFIED | CURRENT) != NOTIFIED || run(w).n != capacity {
        return false;
    }
    // Acquire: the blocks' links and the owner's writes before it cleared CURRENT (a release
    // sequence the pushes since continue) happen before the caller's use of the slab.
    tf.compare_exchange(w, 0, Acquire, Relaxed).is_ok()
}

/// A slab as the queue sees it: something with a queue link. Reached through a raw pointer, so
/// that no reference covers the rest of the slab, which its owner writes meanwhile.
pub trait Queued: Sized {
    /// The queue link of `s`.
    ///
    /// # Safety
    /// `s` is valid for `'a`.
    unsafe fn next_remote<'a>(s: *mut Self) -> &'a AtomicPtr<Self>;
}

/// Queues `s` on `q` (called once per NOTIFIED period: by the push that set the bit).
///
/// # Safety
/// `s` is valid for as long as it may be in the queue, and is not in it now.
#[inline]
pub unsafe fn enqueue<S: Queued>(q: &AtomicPtr<S>, s: *mut S) {
    let mut old = q.load(Relaxed);
    loop {
        // SAFETY: `s` is valid (the caller's promise).
        unsafe { S::next_remote(s).store(old, Relaxed) };
        match q.compare_exchange_weak(old, s, Release, Relaxed) {
            Ok(_) => return,
            Err(x) => old = x,
        }
    }
}

/// Takes the whole queue (null if empty); walk it with `next`.
#[inline]
pub fn take_queue<S>(q: &AtomicPtr<S>) -> *mut S {
    q.swap(ptr::null_mut(), Acquire)
}

/// The slab after `s` in a queue taken by `take_queue`: read it before `take_and_clear` on `s`.
///
/// # Safety
/// `s` came from a taken queue and its NOTIFIED bit is still set.
#[inline]
pub unsafe fn next<S: Queued>(s: *mut S) -> *mut S {
    // SAFETY: the caller's promise: `s` is valid and its link is stable until NOTIFIED clears.
    unsafe { S::next_remote(s).load(Relaxed) }
}
