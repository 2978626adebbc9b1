//! A slab: a run of equal blocks of one size class, owned by one heap.
//!
//! Block states: user-held or in the owner's bin (`used` counts both), on `local_free` (freed by
//! the owner), on `thread_free` (freed by other threads, not yet collected), or not yet carved.

use crate::heap::Heap;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::*};

#[repr(C)]
pub struct Block {
    pub next: *mut Block,
}

/// Flags.
pub const IN_FULL: u8 = 1; // every block user-held; in no list
pub const IN_PARTIAL: u8 = 2; // in the owner's partial list of its class
pub const IN_EMPTY: u8 = 4; // in the owner's empty-slab cache
pub const IN_POOL: u8 = 8; // in the global pool of free slabs

/// Low bit of `thread_free`: the slab is queued (or being queued) on its heap's remote list.
pub const NOTIFIED: usize = 1;

#[repr(C, align(64))]
pub struct Slab {
    // First cache line: everything `free` reads (validation and routing).
    pub start: usize,
    pub span: usize, // carved * block_size: offsets past it are no block of ours
    pub div_magic: u64,
    pub div_limit: u64, // div_magic - 1
    pub block_size: u32,
    pub class: u8,
    pub flags: u8,
    pub bin_offset: u16, // class * size_of::<Bin>(): where free finds the thread's bin
    pub used: u32,
    pub carved: u32,
    pub local_free: *mut Block,
    pub heap: AtomicPtr<Heap>,
    // Second cache line.
    pub capacity: u32,
    pub kind: u8,
    pub index: u8, // slab index in its SuperSlab (< 256)
    // Written by other threads.
    pub thread_free: AtomicUsize,
    pub next_remote: AtomicPtr<Slab>,
    // List links (partial list, empty cache or global pool) and bookkeeping.
    pub next: *mut Slab,
    pub prev: *mut Slab,
    pub empty_since: u64,
    pub check_bits: *mut u64,
    pub purged: bool,
}

/// `n % d == 0` iff `n * magic <= magic - 1` (mod 2^64) for `n < 2^32` (Lemire, Kaser, Kurz 2019).
pub const fn div_magic(d: u32) -> u64 {
    u64::MAX / d as u64 + 1
}

impl Slab {
    /// Whether `a` is the start of a carved block of this slab.
    #[inline(always)]
    pub fn holds_block(&self, a: usize) -> bool {
        let off = a.wrapping_sub(self.start);
        off < self.span && (off as u64).wrapping_mul(self.div_magic) <= self.div_limit
    }

    #[inline]
    pub fn block_index(&self, a: usize) -> usize {
        (a - self.start) / self.block_size as usize
    }

    /// Carves up to `max` new blocks into a list; updates `carved` and `span`.
    ///
    /// # Safety
    /// The caller owns the slab; its memory `start..start+capacity*block_size` is mapped.
    pub unsafe fn carve(&mut self, max: u32) -> *mut Block {
        let n = (self.capacity - self.carved).min(max.max(1));
        if n == 0 {
            return ptr::null_mut();
        }
        let bs = self.block_size as usize;
        let first = self.start + self.carved as usize * bs;
        let mut a = first;
        for _ in 1..n {
            (*(a as *mut Block)).next = (a + bs) as *mut Block;
            a += bs;
        }
        (*(a as *mut Block)).next = ptr::null_mut();
        self.carved += n;
        self.span = self.carved as usize * self.block_size as usize;
        first as *mut Block
    }

    /// Takes the blocks other threads freed, leaving the NOTIFIED bit as it was (the slab may be
    /// in its heap's remote queue; only the queue's consumer clears the bit).
    #[inline]
    pub fn take_remote_keep_flag(&self) -> *mut Block {
        let mut old = self.thread_free.load(Relaxed);
        loop {
            if old & !NOTIFIED == 0 {
                return ptr::null_mut();
            }
            match self
                .thread_free
                .compare_exchange_weak(old, old & NOTIFIED, Acquire, Relaxed)
            {
                Ok(_) => return (old & !NOTIFIED) as *mut Block,
                Err(x) => old = x,
            }
        }
    }

    /// Whether a block could be handed out from this slab without collecting remote frees.
    #[inline]
    pub fn has_local_space(&self) -> bool {
        !self.local_free.is_null() || self.carved < self.capacity
    }
}

/// Length of a list and its last block.
///
/// # Safety
/// `head` is a valid, null-terminated list.
pub unsafe fn list_len_tail(head: *mut Block) -> (u32, *mut Block) {
    let mut n = 0;
    let mut tail = ptr::null_mut();
    let mut b = head;
    while !b.is_null() {
        n += 1;
        tail = b;
        b = (*b).next;
    }
    (n, tail)
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
    /// `s` is valid and in no list.
    pub unsafe fn push(&mut self, s: *mut Slab) {
        (*s).prev = ptr::null_mut();
        (*s).next = self.head;
        if self.head.is_null() {
            self.tail = s;
        } else {
            (*self.head).prev = s;
        }
        self.head = s;
        self.len += 1;
    }

    /// # Safety
    /// `s` is valid and in no list.
    pub unsafe fn push_back(&mut self, s: *mut Slab) {
        (*s).next = ptr::null_mut();
        (*s).prev = self.tail;
        if self.tail.is_null() {
            self.head = s;
        } else {
            (*self.tail).next = s;
        }
        self.tail = s;
        self.len += 1;
    }

    /// # Safety
    /// `s` is in this list.
    pub unsafe fn remove(&mut self, s: *mut Slab) {
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
        self.len -= 1;
    }

    /// # Safety
    /// The list's slabs are valid.
    pub unsafe fn pop(&mut self) -> *mut Slab {
        let s = self.head;
        if !s.is_null() {
            self.remove(s);
        }
        s
    }
}

impl Default for SlabList {
    fn default() -> Self {
        Self::new()
    }
}
