//! A slab: a run of equal blocks of one size class, owned by one heap.
//!
//! Block states: user-held, in the owner's bin, on `local_free` (freed by the owner while the
//! slab was not the bin's current one), on `thread_free` (freed by other threads, not yet
//! collected), or not yet carved. `used()` counts the user-held and uncollected ones of a slab
//! that is not current; a current slab's count is `CURRENT_USED` and is recomputed (carved less
//! the bin's blocks) when it stops being current.
//! Every list links blocks by their byte offset in the slab, encoded (see `freelist`); a list
//! head is a plain offset (`NIL` for none). Remote stacks keep block indices in their packed
//! word (`remote_list`) and are turned into offsets (`offset_of`) when they are linked or taken.

use crate::freelist::{self, NIL};
use crate::heap::Heap;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// A free block: its encoded link and the free tag (see `freelist`); every block has 16 bytes.
#[repr(C)]
pub struct Block {
    pub link: u64,
    pub tag: u64,
}

/// Flags. (Full, every block user-held and the slab on no list, is bit 31 of `used_full`.)
pub const IN_PARTIAL: u8 = 2; // in the owner's partial list of its class
pub const IN_EMPTY: u8 = 4; // in the owner's empty-slab cache
pub const IN_POOL: u8 = 8; // in the global pool of free slabs

/// The full mark in `used_full`: the sign bit, so that `used_full as i32 <= 1` before a
/// decrement means "the slab is now empty, or it was full".
pub const FULL: u32 = 1 << 31;
/// `used` of a bin's current slab: far above any count, so that the owner's frees into the bin
/// (which decrement it like any other) reach the slow path only once in 2^30.
pub const CURRENT_USED: u32 = 1 << 30;

pub use crate::remote_list::{head as tf_head, NOTIFIED};
const _: () = assert!(crate::remote_list::EMPTY == NIL);

/// A slab descriptor. Who touches which field:
///
/// - Format fields (`start`, `inv`, `shift`, `block_size`, `class`, `bin_offset`, `capacity`,
///   `kind`, `index`, `check_bits`): written only while the slab has no live block and belongs
///   to no heap (the pool lock's holder formatting its SuperSlab, or the heap that just took it,
///   before it publishes `heap` with Release). Any thread reads them when it frees or measures a
///   live block of the slab, ordered after the write by the program's own hand-over of the
///   block. Only a pointer that is not a live block (a stale or wild free, already undefined
///   behaviour in the program) can race with a format; `carved` then rejects it in the common
///   case.
/// - `carved`: atomic. Written by the owner (`carve`, with Relaxed stores) and by `unformat`;
///   read by every freeing thread to validate a block index.
/// - `heap`, `thread_free`, `next_remote`: atomic, shared with freeing threads (see `remote`).
/// - Owner-only (the heap's thread, or the shared heap's lock holder): `local_free`, `used`,
///   `flags`, `purged` and the list links `next`/`prev` while the slab belongs to a heap (or
///   waits in its slab cache); no other thread reads them.
/// - Pool lock: `flags`, `next`/`prev`, `empty_since` and `purged` while the slab is in the
///   global pool (ownership moves between a heap and the pool only under that lock).
///
/// So functions that other threads call on a slab (`index_of`, `holds_block`) take a raw
/// pointer and read single fields: a `&Slab` would assert that no field changes while it lives,
/// and the owner writes its plain fields at any time.
#[repr(C, align(64))]
pub struct Slab {
    // First cache line: what `free` reads (validation and routing), written only when the slab
    // is formatted (and `carved` when its owner carves), so that the threads that free its
    // blocks keep it in their caches while its owner frees and allocates.
    pub start: usize,
    pub inv: u64,          // inverse of block_size's odd part mod 2^64 (see `index_of`)
    pub carved: AtomicU64, // blocks carved so far: indices below it are blocks (0 in the pool)
    pub heap: AtomicPtr<Heap>,
    pub check_bits: *mut u64,
    pub block_size: u32,
    pub capacity: u32,
    pub class: u8,
    pub shift: u8,       // trailing zero bits of block_size
    pub bin_offset: u16, // class * size_of::<Bin>(): where free finds the thread's bin
    pub kind: u8,
    pub index: u8, // slab index in its SuperSlab (< 256)
    pub(crate) _pad_read: [u8; 10],
    // Second cache line: written by other threads.
    pub thread_free: AtomicUsize,
    pub next_remote: AtomicPtr<Slab>,
    pub(crate) _pad_remote: [u8; 48],
    // Third cache line: the owner's (or the pool lock holder's).
    pub local_free: u64, // offset of the first of the owner's frees, NIL when none
    /// Blocks user-held or pending as remote frees (`used()`), and `FULL`: one word, so that
    /// the owner's free decrements it and tests "now empty, or was full" with one signed branch.
    /// While the slab is a bin's current slab it is not a count but `CURRENT_USED`, which the
    /// owner's frees (into the bin) count down from; leaving current recomputes it.
    pub used_full: u32,
    pub flags: u8,
    /// Its pages were purged and nothing has written them since (a free slab's; set by the
    /// decay, cleared when a heap formats the slab): the pool hands such slabs out last.
    pub purged: bool,
    /// Where the owner's free pushes a block: `&local_free`, or while the slab is a bin's
    /// current slab, `&bin.free` (`Bin::set` and `Bin::clear` move it). Null while unformatted.
    pub list_head: *mut u64,
    // List links (partial list, empty cache or global pool) and bookkeeping.
    pub next: *mut Slab,
    pub prev: *mut Slab,
    pub empty_since: u64,
}

const _: () = {
    assert!(core::mem::offset_of!(Slab, thread_free) == 64);
    assert!(core::mem::offset_of!(Slab, local_free) == 128);
    assert!(core::mem::size_of::<Slab>() == 192);
};

/// `(inv, shift)` for blocks of `d` bytes: `d = odd << shift`, `inv * odd == 1` (mod 2^64).
pub const fn index_magic(d: u32) -> (u64, u8) {
    let t = d.trailing_zeros();
    (freelist::inverse((d >> t) as u64), t as u8)
}

impl Slab {
    /// The index of the block that starts at `a` when `a` is a block boundary at or after
    /// `start`; for any other address, a number above 2^64 / block_size (Granlund and
    /// Montgomery's exact-division test: multiplying an offset that is a multiple of the size by
    /// the inverse of its odd part, then rotating out the power of two, gives the quotient; any
    /// other offset, negative ones included, lands above). So `index_of(s, a) < carved` is the
    /// whole check that `a` is a carved block of this slab.
    ///
    /// # Safety
    /// `s` is a slab descriptor (in a mapped SuperSlab, or the dead slab); any thread may call.
    #[inline(always)]
    pub unsafe fn index_of(s: *const Slab, a: usize) -> u64 {
        // SAFETY: `s` is a descriptor (this fn's contract); the format fields read are fixed
        // while any block of it is live (see `Slab`).
        unsafe {
            (a.wrapping_sub((*s).start) as u64)
                .wrapping_mul((*s).inv)
                .rotate_right((*s).shift as u32)
        }
    }

    /// Whether `a` is the start of a carved block of slab `s`.
    ///
    /// # Safety
    /// As for `index_of`.
    #[inline(always)]
    pub unsafe fn holds_block(s: *const Slab, a: usize) -> bool {
        // SAFETY: this fn's contract, as `index_of` requires; `carved` is atomic.
        unsafe { Slab::index_of(s, a) < (*s).carved.load(Relaxed) }
    }

    /// Whether offset `p` (a decoded link) names a carved block of slab `s`: a multiple of the
    /// block size below the carved bytes. NIL and every other offset give false.
    ///
    /// # Safety
    /// As for `index_of`.
    #[inline]
    pub unsafe fn holds_offset(s: *const Slab, p: u64) -> bool {
        // SAFETY: this fn's contract; `holds_block` only reads the descriptor.
        unsafe { Slab::holds_block(s, (*s).start.wrapping_add(p as usize)) }
    }

    // The methods below that take `&self` are the owner's (or the pool lock holder's): while
    // it holds the reference, other threads only read the slab's plain fields and touch its
    // atomics, which a shared reference allows.

    /// The address of block `i` (which must be below `carved`).
    #[inline(always)]
    pub fn block_at(&self, i: u64) -> usize {
        self.start
            .wrapping_add(i.wrapping_mul(self.block_size as u64) as usize)
    }

    /// The address of the block at offset `off` (a list position: below `carved_bytes()`).
    #[inline(always)]
    pub fn at(&self, off: u64) -> usize {
        self.start.wrapping_add(off as usize)
    }

    /// The list position of block `i`: its offset from `start`, or NIL for NIL (an empty
    /// remote stack's head).
    #[inline(always)]
    pub fn offset_of(&self, i: u64) -> u64 {
        if i == NIL {
            NIL
        } else {
            i * self.block_size as u64
        }
    }

    /// Bytes carved so far: every multiple of `block_size` below it is a block's offset.
    #[inline(always)]
    pub fn carved_bytes(&self) -> u64 {
        self.carved.load(Relaxed) * self.block_size as u64
    }

    #[inline]
    pub fn block_index(&self, a: usize) -> usize {
        (a - self.start) / self.block_size as usize
    }

    /// Carves up to `max` new blocks of `s` into a list, each linked and tagged free; returns its
    /// head's offset (NIL if the slab is fully carved) and updates `carved`. Takes a raw
    /// pointer, not `&mut Slab`: other threads read the descriptor (and CAS its remote list)
    /// meanwhile.
    ///
    /// # Safety
    /// The caller owns the slab; its memory `start..start+capacity*block_size` is mapped.
    pub unsafe fn carve(s: *mut Slab, max: u32) -> u64 {
        // SAFETY: the caller owns `s`: only this thread writes `carved`; the other fields read
        // here are fixed while the slab is formatted.
        unsafe {
            let first = (*s).carved.load(Relaxed);
            debug_assert!(
                first <= (*s).capacity as u64,
                "a slab carved past its capacity"
            );
            let n = ((*s).capacity - first as u32).min(max.max(1)) as u64;
            if n == 0 {
                return NIL;
            }
            let bs = (*s).block_size as usize;
            // A block of the classes whose free blocks decay gets no decay mark: what this
            // memory held before (another format of the slab) must not read as one
            // (`block_decay::zeroed_past`).
            let decays = (*s).class as usize >= crate::block_decay::FIRST_CLASS;
            let mut a = (*s).block_at(first);
            for i in first..first + n {
                let next = if i + 1 < first + n {
                    (i + 1) * bs as u64
                } else {
                    NIL
                };
                freelist::set_next(a, next);
                freelist::set_tag(a);
                if decays {
                    crate::block_decay::clear_mark(a as *mut u8);
                }
                a += bs;
            }
            debug_assert!(first + n <= (*s).capacity as u64);
            // Relaxed: another thread checks a block against it only after the program handed
            // it that block, which the owner carved (and stored this) before.
            (*s).carved.store(first + n, Relaxed);
            (*s).offset_of(first)
        }
    }

    /// Takes the blocks other threads freed (head NIL if none), leaving the NOTIFIED bit as it
    /// was (the slab may be in its heap's remote queue; only the queue's consumer clears the bit).
    #[inline]
    pub fn take_remote_keep_flag(&self) -> crate::remote_list::Run {
        crate::remote_list::take_keep_flag(&self.thread_free)
    }

    /// `take_remote_keep_flag` for a slab becoming a bin's current slab: marks it CURRENT in the
    /// same step (see `remote_list`).
    #[inline]
    pub fn take_remote_set_current(&self) -> crate::remote_list::Run {
        crate::remote_list::take_set_current(&self.thread_free)
    }

    /// The slab stopped being current: the owner's last write to it (see `remote_list::CURRENT`).
    #[inline]
    pub fn clear_current(&self) {
        crate::remote_list::clear_current(&self.thread_free)
    }

    /// Blocks user-held or pending as remote frees (of a current slab: `CURRENT_USED` less its
    /// owner's frees since it was set).
    #[inline]
    pub fn used(&self) -> u32 {
        self.used_full & !FULL
    }

    /// Sets the count of a slab that is not marked full: `CURRENT_USED` when it becomes (or
    /// stays) current, the blocks in use when it stops being current.
    #[inline]
    pub fn set_used(&mut self, n: u32) {
        debug_assert!(n < FULL, "a slab with 2^31 blocks in use");
        debug_assert!(!self.is_full(), "a full slab made current");
        self.used_full = n;
    }

    /// `n` remote frees were collected into a slab that is not current.
    #[inline]
    pub fn sub_used(&mut self, n: u32) {
        debug_assert!(
            self.used() >= n,
            "more remote frees collected than blocks in use"
        );
        self.used_full -= n;
    }

    /// Whether the slab is marked full (every block user-held; on no list).
    #[inline]
    pub fn is_full(&self) -> bool {
        self.used_full & FULL != 0
    }

    /// Marks the slab full or not, keeping its count.
    #[inline]
    pub fn set_full(&mut self, full: bool) {
        self.used_full = self.used() | if full { FULL } else { 0 };
    }

    /// Whether a block could be handed out from this slab without collecting remote frees
    /// (the owner's question: it reads owner-only fields).
    #[inline]
    pub fn has_local_space(&self) -> bool {
        self.local_free != NIL || self.carved.load(Relaxed) < self.capacity as u64
    }
}

/// Length of the list of slab `s` that starts at offset `head` (NIL: empty), and its last
/// block's address (0 when empty). Every link is checked: a link that names no block (past the
/// carved bytes, or between two blocks), or a list longer than the slab (a cycle), stops the
/// process as heap corruption.
///
/// # Safety
/// `s` is a slab whose lists the caller owns (or has just taken from `thread_free`).
pub unsafe fn list_len_tail(s: *const Slab, head: u64) -> (u32, usize) {
    // SAFETY: `s` is a slab descriptor in a mapped SuperSlab whose lists the caller owns (this
    // fn's contract), so `carved` does not change under us.
    let carved = unsafe { (*s).carved.load(Relaxed) };
    let mut n = 0u64;
    let mut tail = 0usize;
    let mut p = head;
    while p != NIL {
        // SAFETY: `s` is a valid descriptor, which `holds_offset` only reads; it is true exactly
        // for the offset of a carved block.
        if unsafe { !Slab::holds_offset(s, p) } || n >= carved {
            // SAFETY: `s` is a valid descriptor; `corrupt` only reads it and stops the process.
            unsafe { freelist::corrupt(s, tail, p) };
        }
        // SAFETY: `p` is a block's offset below the carved bytes, so `tail` is a carved block
        // of `s`, in mapped memory, on a list the caller owns: its link is ours to read.
        unsafe {
            tail = (*s).at(p);
            n += 1;
            p = freelist::next_of(tail);
        }
    }
    (n as u32, tail)
}

/// An intrusive doubly linked list of slabs, popped at the head. `push` adds at the head;
/// `push_back` at the tail, so that a slab that just got a block back waits its turn and
/// gathers more before it is used (mimalloc's page queues do the same).
pub struct SlabList {
    pub head: *mut Slab,
    pub tail: *mut Slab,
    pub len: usize,
}

impl SlabList {
    pub const fn new() -> Self {
        SlabList {
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
            len: 0,
        }
    }

    /// # Safety
    /// `s` is valid and in no list; the caller owns this list (its heap, or the pool lock), so
    /// no other thread touches the list links of its slabs.
    pub unsafe fn push(&mut self, s: *mut Slab) {
        // SAFETY: `s` and the list's head are valid slabs whose links the caller owns (this
        // fn's contract).
        unsafe {
            (*s).prev = ptr::null_mut();
            (*s).next = self.head;
            if self.head.is_null() {
                self.tail = s;
            } else {
                (*self.head).prev = s;
            }
        }
        self.head = s;
        self.len += 1;
    }

    /// # Safety
    /// As for `push`.
    pub unsafe fn push_back(&mut self, s: *mut Slab) {
        // SAFETY: `s` and the list's tail are valid slabs whose links the caller owns (this
        // fn's contract).
        unsafe {
            (*s).next = ptr::null_mut();
            (*s).prev = self.tail;
            if self.tail.is_null() {
                self.head = s;
            } else {
                (*self.tail).next = s;
            }
        }
        self.tail = s;
        self.len += 1;
    }

    /// # Safety
    /// `s` is in this list, which the caller owns (as for `push`).
    pub unsafe fn remove(&mut self, s: *mut Slab) {
        // SAFETY: `s` is on this list (this fn's contract), so it and its neighbours are valid
        // slabs whose links the caller owns.
        unsafe {
            if (*s).prev.is_null() {
                self.head = (*s).next;
            } else {
                (*(*s).prev).next = (*s).next;
            }
            if (*s).next.is_null() {
                self.tail = (*s).prev;
            } else {
                (*(*s).next).prev = (*s).prev;
            }
            (*s).next = ptr::null_mut();
            (*s).prev = ptr::null_mut();
        }
        self.len -= 1;
    }

    /// # Safety
    /// The list's slabs are valid, and the caller owns the list (as for `push`).
    pub unsafe fn pop(&mut self) -> *mut Slab {
        let s = self.head;
        if !s.is_null() {
            // SAFETY: `s` is the head of this list, as `remove` requires.
            unsafe { self.remove(s) };
        }
        s
    }

    /// The tail, removed; null when the list is empty.
    ///
    /// # Safety
    /// As for `pop`.
    pub unsafe fn pop_back(&mut self) -> *mut Slab {
        let s = self.tail;
        if !s.is_null() {
            // SAFETY: `s` is the tail of this list, as `remove` requires.
            unsafe { self.remove(s) };
        }
        s
    }
}

impl Default for SlabList {
    fn default() -> Self {
        Self::new()
    }
}

impl crate::remote_list::Queued for Slab {
    unsafe fn next_remote<'a>(s: *mut Slab) -> &'a AtomicPtr<Slab> {
        // SAFETY: `s` is a valid descriptor (the trait's contract), never unmapped; the
        // reference covers the atomic link only, not the owner's plain fields.
        unsafe { &(*s).next_remote }
    }
}
