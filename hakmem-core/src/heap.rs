//! Heaps: the owner side of slabs. A thread's heap refills its bins from its current slab,
//! its partial slabs, its remote queue, the partial slabs of parked heaps, and the global pool,
//! in that order. Heaps are never freed: when a thread exits its heap is flushed and parked,
//! and the next new thread adopts it.

use crate::freelist::{self, NIL};
use crate::policy;
use crate::pool::POOL;
use crate::remote_list;
use crate::size_class::{class_size, kind_of, KIND_BIG, NUM_CLASSES};
use crate::slab::*;
use crate::slab_cache::SlabCache;
use crate::superslab;
use crate::sync::add_single_writer;
use crate::tls::{Bin, ThreadCache, STATE_ACTIVE, STATE_DEAD};
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering::*};

/// A heap. Its owner is the thread attached to it, the holder of the shared heap's lock (for
/// `SHARED`), the pool lock's holder while it is parked, or the thread that took it off the
/// dead list to take over its slabs (`adopt_parked`). Who touches which field:
///
/// - Owner-only: `partial`, `empty`, `own_bins` (but for their counters), the slab cache's
///   lists. Reached through raw pointers or `&mut` to these fields alone, never `&mut Heap`.
/// - Atomic, written by the owner (Relaxed load and store, no read-modify-write) and read by
///   statistics from any thread: `bins`, `remote_ctr`, `attached`, the `stat_*` counters and the
///   slab cache's counters.
/// - Atomic, written by other threads: `remote_slabs` (see `remote_list`).
/// - Pool lock: `next_all` (the registry statistics walk) and `next_dead`.
#[repr(C)]
pub struct Heap {
    /// The bins in use: the owner thread's TLS bins, or null when detached or shared (then
    /// `own_bins`; see `Heap::bins`).
    pub bins: AtomicPtr<[Bin; NUM_CLASSES]>,
    /// Slabs that received remote frees since the owner last looked (an MPSC stack).
    pub remote_slabs: AtomicPtr<Slab>,
    pub partial: [SlabList; NUM_CLASSES],
    pub empty: [SlabList; NUM_CLASSES],
    pub own_bins: [Bin; NUM_CLASSES],
    /// The attached thread's remote-free counters (null when detached).
    pub remote_ctr: AtomicPtr<[AtomicU64; NUM_CLASSES]>,
    pub stat_allocs: [AtomicU64; NUM_CLASSES],
    pub stat_frees: [AtomicU64; NUM_CLASSES],
    pub stat_remote: [AtomicU64; NUM_CLASSES],
    /// Remote-queue drains that found slabs, and the slabs and blocks they collected.
    pub stat_drains: AtomicU64,
    pub stat_drained_slabs: AtomicU64,
    pub stat_drained_blocks: AtomicU64,
    /// Blocks a thread took from its foreign cache and freed again: kept (the thread frees
    /// mostly other threads' blocks) and sent home (`foreign::keep`).
    pub stat_reissued_kept: AtomicU64,
    pub stat_reissued_home: AtomicU64,
    /// Blocks a class out of slabs took from the next classes up instead of a new slab (`borrow`).
    pub stat_borrowed: AtomicU64,
    /// `stat_drains` when `steal` last looked at this heap (written by that look, under the
    /// pool lock): unchanged at the next look, the heap has not collected its queue meanwhile.
    pub steal_seen: AtomicU64,
    pub slab_cache: SlabCache,
    pub next_all: *mut Heap,
    pub next_dead: *mut Heap,
    /// When the owner last gave its empty slabs back before a new mapping (`reclaim`).
    pub last_reclaim: u64,
    /// The owner's walks of its idle big free blocks (`block_decay`).
    pub block_decay: crate::block_decay::State,
    /// When its thread exited and parked it (ms; pool lock): the background thread leaves a
    /// parked heap alone for a purge delay, for a thread pool's replacement thread.
    pub parked_ms: u64,
    pub attached: AtomicBool,
}

// SAFETY: a heap's plain fields are used by one thread at a time (its owner, or a holder of
// the lock that guards them); the fields other threads touch are atomic.
unsafe impl Send for Heap {}

impl Heap {
    pub const fn new() -> Self {
        Heap {
            bins: AtomicPtr::new(ptr::null_mut()),
            remote_slabs: AtomicPtr::new(ptr::null_mut()),
            partial: [const { SlabList::new() }; NUM_CLASSES],
            empty: [const { SlabList::new() }; NUM_CLASSES],
            own_bins: [const { Bin::empty() }; NUM_CLASSES],
            remote_ctr: AtomicPtr::new(ptr::null_mut()),
            stat_allocs: [const { AtomicU64::new(0) }; NUM_CLASSES],
            stat_frees: [const { AtomicU64::new(0) }; NUM_CLASSES],
            stat_remote: [const { AtomicU64::new(0) }; NUM_CLASSES],
            stat_drains: AtomicU64::new(0),
            stat_drained_slabs: AtomicU64::new(0),
            stat_drained_blocks: AtomicU64::new(0),
            stat_reissued_kept: AtomicU64::new(0),
            stat_reissued_home: AtomicU64::new(0),
            stat_borrowed: AtomicU64::new(0),
            steal_seen: AtomicU64::new(0),
            slab_cache: SlabCache::new(),
            next_all: ptr::null_mut(),
            next_dead: ptr::null_mut(),
            last_reclaim: 0,
            block_decay: crate::block_decay::State::new(),
            parked_ms: 0,
            attached: AtomicBool::new(false),
        }
    }

    /// The bins `heap` uses. A raw pointer, never `&mut Heap`: other threads CAS the heap's
    /// remote queue at any time.
    ///
    /// # Safety
    /// `heap` is valid and owned by the caller (its thread, or the shared lock's holder).
    #[inline]
    pub unsafe fn bins(heap: *mut Heap) -> *mut [Bin; NUM_CLASSES] {
        // SAFETY: the caller's promise; `bins` points to the attached thread's TLS bins, alive
        // while attached, and `own_bins` is used otherwise.
        unsafe {
            let b = (*heap).bins.load(Relaxed);
            if b.is_null() {
                ptr::addr_of_mut!((*heap).own_bins)
            } else {
                b
            }
        }
    }
}

impl Default for Heap {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether the calling thread owns `heap` (for debug assertions): it is the thread's own heap,
/// the shared heap while its lock is held, or a parked heap it took off the dead list (by this
/// thread, the callers' contracts say).
fn owns(heap: *mut Heap) -> bool {
    // SAFETY: `thread_cache` is this thread's live cache; only its own `heap` field is read.
    let mine = unsafe { (*crate::tls::thread_cache()).heap };
    // SAFETY: heaps are never freed; `attached` is atomic.
    let parked = heap != shared_ptr() && !unsafe { (*heap).attached.load(Relaxed) };
    mine == heap || (heap == shared_ptr() && SHARED.is_locked()) || parked
}

/// Hands out the bin's next block: checks its index against the slab's carved count, turns it
/// into an address, decodes the link it holds (checked by the next pop) and clears its free
/// tag. Null when the bin is empty, or when its next index is bad (then `free` is not NIL, and
/// the slow path reports the corruption).
///
/// # Safety
/// `bin` belongs to the caller (its thread's bins, or a heap it owns).
#[inline(always)]
pub unsafe fn pop(bin: *mut Bin) -> *mut Block {
    // SAFETY: the caller owns `bin` (this fn's contract), so no other thread touches it.
    let (off, start) = unsafe { ((*bin).free, (*bin).start) };
    // SAFETY: as above.
    if off >= unsafe { (*bin).limit } {
        return ptr::null_mut();
    }
    let a = start.wrapping_add(off as usize);
    // SAFETY: `off < limit`, so `a` is a carved block of the bin's slab (in use, so mapped)
    // and free (a link that decoded below `limit` but between two blocks is the one case
    // `freelist` leaves to chance: see there): its link and tag are the bin's to read and
    // rewrite.
    unsafe {
        let n = freelist::next_of(a);
        (*bin).free = n;
        // The next block (NIL or a bad offset give a harmless address): its link is what the
        // next pop waits for, and blocks that other threads freed come back cold. Issued
        // before the tag store, which the compiler cannot prove misses `bin`.
        prefetch(start.wrapping_add(n as usize));
        freelist::clear_tag(a);
    }
    a as *mut Block
}

/// Whether `a`, a hot list's head or a link decoded off one, may be followed: it lies in the
/// published SuperSlabs of the cage (mapped) or one address past them; 0, the empty list,
/// fails. One subtraction, one decrement, one compare.
#[inline(always)]
pub fn hot_link_ok(a: usize) -> bool {
    a.wrapping_sub(crate::cage::base()).wrapping_sub(1) < crate::cage::limit()
}

/// Hands out the newest block of the bin's hot list; null when the list is empty (or its head is
/// not a block of the cage: `check_hot` reports that on the slow path).
///
/// # Safety
/// `bin` is a bin of the calling thread's cache.
#[inline(always)]
pub unsafe fn pop_hot(bin: *mut Bin) -> *mut Block {
    // SAFETY: the caller's bin (this fn's contract). Every address the list holds was pushed
    // by `push_hot` (a free block of the cage that its slab counts as in use, of this thread's
    // slabs or another's, tagged free, which only this thread reaches: its link and tag are
    // the thread's to read and rewrite) or
    // decoded from such a block's link. `a - base - 1 < limit` lets through the published
    // SuperSlabs of the cage (mapped) and one address past them; 0, the empty list, fails it.
    // Only a link overwritten by the program can decode to something else, and it passes with
    // probability (published bytes + 1) / 2^64, as a bin's link passes its own check.
    unsafe {
        let a = (*bin).hot;
        if !hot_link_ok(a) {
            return ptr::null_mut();
        }
        (*bin).hot = freelist::next_of(a) as usize;
        (*bin).hot_room += 1;
        freelist::clear_tag(a);
        a as *mut Block
    }
}

/// Puts the free block `a` (in the cage, of this thread's slabs or another's) on the bin's hot
/// list if it has room; false (and nothing changed) if not. Its slab keeps counting it as in
/// use until the list gives it back (`hot_flush`).
///
/// # Safety
/// `bin` is the calling thread's bin of `a`'s class, and `a` a live block of the cage that this
/// thread frees.
#[inline(always)]
pub unsafe fn push_hot(bin: *mut Bin, a: usize) -> bool {
    // SAFETY: this fn's contract: the bin, the block's link and its tag are the caller's.
    unsafe {
        // One `sub` and one branch on the borrow: the room is taken before it is tested, and
        // set back to 0 when there was none.
        let (room, full) = (*bin).hot_room.overflowing_sub(1);
        (*bin).hot_room = room;
        if full {
            (*bin).hot_room = 0;
            return false;
        }
        freelist::set_tag(a);
        freelist::set_next(a, (*bin).hot as u64);
        (*bin).hot = a;
    }
    true
}

/// The most blocks a bin's hot list holds. Bytes are bounded by HAKMEM_HOT_KB (`hot_cap`):
/// blocks on a hot list stay counted in use by their slabs (a slab with one of them does not
/// empty), so this bounds what a thread keeps from its slabs' lists.
const HOT_MAX: usize = 128;

/// Bytes the hot list of a class whose free blocks decay (16 KiB and more) may hold: sixteen
/// times HAKMEM_HOT_KB (2 MiB in the balanced profile; at 1 MiB random_mixed_256k ran 0.76x as
/// fast). Without these lists a thread's frees of such blocks went back to their slabs, of a
/// few blocks each, and nearly every malloc then switched slabs: random_mixed_256k ran at 0.6x
/// tcmalloc (bench/README.md). Their idle blocks decay as those on the slabs' lists do
/// (`block_decay::walk`); a thread that stops allocating these sizes keeps them until it exits
/// or calls `malloc_trim`, as a thread keeps its slabs' free blocks.
pub fn big_hot_bytes() -> usize {
    (crate::policy::get(crate::policy::Opt::HotKb) as usize) << 14
}

/// How many blocks the hot list of class `c` may grow to: HAKMEM_HOT_KB's worth, or
/// `big_hot_bytes` for the classes whose free blocks decay, at most `HOT_MAX`; none in checking
/// mode (whose frees keep their own books) or without a cage.
pub fn hot_cap(c: usize) -> u16 {
    if crate::policy::checked() || crate::cage::base() == 0 {
        return 0;
    }
    let bytes = if c >= crate::block_decay::FIRST_CLASS {
        big_hot_bytes()
    } else {
        (crate::policy::get(crate::policy::Opt::HotKb) as usize) << 10
    };
    (bytes / crate::size_class::class_size(c)).min(HOT_MAX) as u16
}

/// `hot_cap` of every class, worked out by the first thread that attaches (the policy and the
/// cage are fixed by then) and copied by the others: thread start-up pays 52 loads, not 52
/// divisions. Threads racing on the first attach store the same values.
fn hot_caps() -> [u16; NUM_CLASSES] {
    use core::sync::atomic::AtomicU16;
    static CAPS: [AtomicU16; NUM_CLASSES] = [const { AtomicU16::new(0) }; NUM_CLASSES];
    static READY: AtomicBool = AtomicBool::new(false);
    if !READY.load(Acquire) {
        for (c, cap) in CAPS.iter().enumerate() {
            cap.store(hot_cap(c), Relaxed);
        }
        READY.store(true, Release);
    }
    core::array::from_fn(|c| CAPS[c].load(Relaxed))
}

/// The most blocks a hot list starts with: a thread's list grows (`grow_hot`) only for the
/// classes it keeps freeing, so a short-lived thread keeps little.
const HOT_START: u16 = 16;

/// Allocations of a class after which a thread's hot list of it opens: a thread that makes a
/// few blocks and exits (a thread pool's short task) then pays neither the list nor its flush
/// at exit.
const HOT_AFTER: u64 = 64;

/// Gives room to `bin`'s full hot list, below its class's limit: doubles it, or opens it (16
/// blocks) once the thread has allocated `HOT_AFTER` blocks of the class; false (no room) while
/// it stays closed.
///
/// # Safety
/// `bin` is a bin of the calling thread's cache, whose hot list has no room.
pub unsafe fn grow_hot(bin: *mut Bin) -> bool {
    // SAFETY: the caller's bin (this fn's contract); `allocs` is atomic.
    unsafe {
        let (max, cap) = ((*bin).hot_max, (*bin).hot_cap);
        if max >= cap {
            return false;
        }
        let new = if max == 0 {
            if (*bin).allocs.load(Relaxed) < HOT_AFTER {
                return false;
            }
            cap.min(HOT_START)
        } else {
            max.saturating_mul(2).min(cap)
        };
        (*bin).hot_max = new;
        (*bin).hot_room = new - max;
        true
    }
}

/// Hands every block of `bin`'s hot list (class `c`) back: a block of one of `heap`'s slabs to
/// its slab (as the owner's free), a block of another heap's slab to that slab's owner (as
/// remote frees, a run of one slab's blocks with one CAS).
///
/// # Safety
/// The caller owns `heap` and `bin`, a bin of its thread's cache while `heap` is attached.
#[cold]
#[inline(never)]
pub unsafe fn hot_flush(heap: *mut Heap, bin: *mut Bin, c: usize) {
    let mut away = [0usize; HOT_MAX];
    let mut n = 0;
    let (mut home, mut sent) = (0, 0);
    loop {
        // SAFETY: the caller owns `bin`; a block off its hot list is a free block of a slab in
        // the cage that counts it as in use (`push_hot`'s contract). When the slab is `heap`'s,
        // `free_local` and `classify` get what they require; otherwise the block, tagged free
        // again, is held by this thread alone, as `foreign::send` requires.
        unsafe {
            let a = pop_hot(bin) as usize;
            if a == 0 {
                break;
            }
            let s = crate::superslab::slab_of(a);
            if (*s).heap.load(Relaxed) == heap {
                home += 1;
                if free_local(s, a) {
                    classify(heap, s);
                }
                continue;
            }
            sent += 1;
            freelist::set_tag(a);
            if n == away.len() {
                crate::foreign::send(&away);
                n = 0;
            }
            *away.get_unchecked_mut(n) = a;
            n += 1;
        }
    }
    // SAFETY: as above.
    unsafe { crate::foreign::send(&away[..n]) };
    // The blocks leave the list for their slabs: counted free now (`tls::Bin`).
    // SAFETY: the caller owns `bin`; `heap` is attached to this thread, whose cache holds
    // `remote_ctr`'s counters.
    unsafe {
        add_single_writer(&(*bin).frees, home);
        let rc = (*heap).remote_ctr.load(Relaxed);
        if !rc.is_null() {
            add_single_writer(&(*rc)[c], sent);
        }
    }
    // The list is empty now (every pop gave its room back), unless its head was overwritten.
    // SAFETY: as above.
    unsafe { check_hot(bin, c) };
}

/// Stops the process if the head of the hot list of `bin` (class `c`) is neither empty nor a
/// block of the cage: a link on it was overwritten (`pop_hot` refuses such a head, so malloc
/// went on to the bin's list and reaches this on its slow path).
///
/// # Safety
/// `bin` belongs to the caller.
pub unsafe fn check_hot(bin: *mut Bin, c: usize) {
    // SAFETY: the caller's bin.
    let a = unsafe { (*bin).hot };
    if a != 0 && !hot_link_ok(a) {
        crate::freelist::corrupt_hot(c, a as u64);
    }
}

#[cfg(test)]
std::thread_local! {
    static FRESH_HEAP: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// Test helper: the calling thread, which has no heap yet, gets a fresh one rather than a
/// parked one, so that no other test's free blocks sit in its lists (the unit tests run side by
/// side in one process, and their threads' heaps are parked as they exit).
#[cfg(test)]
pub fn use_fresh_heap() {
    FRESH_HEAP.with(|f| f.set(true));
}

/// Test helper: empties the calling thread's hot lists and turns them off, so that its frees
/// go to their slabs (for tests of the slabs' own books).
#[cfg(test)]
pub fn without_hot_lists() {
    let tc = crate::tls::thread_cache();
    // SAFETY: the calling thread's own cache.
    unsafe {
        hot_flush_all(tc);
        for c in 0..NUM_CLASSES {
            close_hot(ptr::addr_of_mut!((*tc).bins[c]));
        }
    }
}

/// Closes `bin`'s empty hot list for good (until `attach` sets it up again): no room, no growth.
///
/// # Safety
/// `bin` is a bin of the calling thread's cache.
unsafe fn close_hot(bin: *mut Bin) {
    // SAFETY: the caller's bin (this fn's contract).
    unsafe {
        (*bin).hot_cap = 0;
        (*bin).hot_max = 0;
        (*bin).hot_room = 0;
    }
}

/// Empties every hot list of the calling thread: before its heap is parked, on trim, and when
/// its heap looks for empty slabs.
///
/// # Safety
/// `tc` is the calling thread's cache.
pub unsafe fn hot_flush_all(tc: *mut ThreadCache) {
    for c in 0..NUM_CLASSES {
        // SAFETY: the calling thread's own bins (this fn's contract).
        unsafe {
            let bin = ptr::addr_of_mut!((*tc).bins[c]);
            if (*bin).hot != 0 {
                hot_flush((*tc).heap, bin, c);
            }
        }
    }
}

/// `pop` for the slow paths: a bad next index is reported here.
///
/// # Safety
/// `bin` belongs to the caller (its thread's bins, or a heap it owns).
unsafe fn pop_checked(bin: *mut Bin) -> *mut Block {
    // SAFETY: the caller owns `bin` (this fn's contract), as `pop` and `check_bin` require.
    unsafe {
        let b = pop(bin);
        if b.is_null() {
            check_bin(bin);
        }
        b
    }
}

/// Stops the process if the bin's next index is neither a block nor NIL: the link it came from
/// was overwritten.
///
/// # Safety
/// `bin` belongs to the caller (its thread's bins, or a heap it owns).
#[inline]
unsafe fn check_bin(bin: *mut Bin) {
    // SAFETY: the caller owns `bin` (this fn's contract); its slab, when set, is a formatted
    // slab of a mapped SuperSlab, which `corrupt` only reads before stopping the process.
    unsafe {
        let s = (*bin).slab;
        let off = (*bin).free;
        if !s.is_null() && off != NIL && !Slab::holds_offset(s, off) {
            freelist::corrupt(s, 0, off);
        }
    }
}

/// How many blocks to carve at once from a slab of class `c` that has `carved` carved already:
/// HAKMEM_REFILL_BATCH, at most 32 KiB of blocks, and, so that a class the program uses little
/// touches little memory (carving writes every block), one page's worth on a slab's first carve
/// and no more than is carved already on the next ones (the batch doubles up to the limit).
fn batch_for(c: usize, carved: u64) -> u32 {
    let size = class_size(c) as u32;
    let by_bytes = (32 << 10) / size;
    let ramp = carved
        .max((crate::os::PAGE as u32 / size) as u64)
        .min(u32::MAX as u64) as u32;
    policy::get(policy::Opt::RefillBatch)
        .min(by_bytes)
        .min(ramp)
        .max(1)
}

/// Prepares a pool slab for class `c` in `heap`.
///
/// # Safety
/// `s` was just taken from the slab cache or pool by the caller, who owns `heap`: no other
/// thread can reach `s` until its `heap` field is published (last, with Release).
unsafe fn format_slab(s: *mut Slab, c: usize, heap: *mut Heap) {
    let bs = class_size(c) as u32;
    let (inv, shift) = index_magic(bs);
    // SAFETY: `s` is a slab header of a mapped SuperSlab (the caller's, so not unmapped) that only the caller
    // can reach (this fn's contract); `check_bits`, when set, points to its bitmap of
    // `capacity.div_ceil(8)` bytes.
    unsafe {
        debug_assert!(
            (*s).heap.load(Relaxed).is_null()
                && (*s).thread_free.load(Relaxed) == 0
                && (*s).used_full == 0,
            "a slab formatted for a heap belongs to another or has blocks in use"
        );
        (*s).block_size = bs;
        (*s).inv = inv;
        (*s).shift = shift;
        (*s).class = c as u8;
        (*s).bin_offset = (c * crate::tls::BIN_BYTES) as u16;
        (*s).flags = 0;
        (*s).purged = false; // its pages are written from here on
        (*s).used_full = 0;
        (*s).carved.store(0, Relaxed);
        (*s).capacity = (superslab::slab_bytes(s) / bs as usize) as u32;
        debug_assert!(
            (*s).capacity as u64 <= crate::remote_list::MAX_INDEX,
            "a slab with more blocks than a remote stack word can index"
        );
        (*s).local_free = NIL;
        (*s).list_head = ptr::addr_of_mut!((*s).local_free);
        (*s).thread_free.store(0, Relaxed);
        (*s).next_remote.store(ptr::null_mut(), Relaxed);
        if !(*s).check_bits.is_null() {
            ptr::write_bytes(
                (*s).check_bits as *mut u8,
                0,
                (*s).capacity.div_ceil(8) as usize,
            );
        }
        (*s).heap.store(heap, Release);
    }
}

/// Makes `s` the current slab of class `c`: all its free blocks move into the bin.
///
/// # Safety
/// The caller owns `heap`, and `s` is a formatted slab of class `c` that belongs to it and is
/// on none of its lists.
unsafe fn install(heap: *mut Heap, c: usize, s: *mut Slab) {
    // SAFETY: `s` belongs to the caller's heap (this fn's contract), so its owner-side fields
    // and its free blocks' links are the caller's; `thread_free` is taken atomically.
    let mut list = unsafe {
        debug_assert!(
            (*s).heap.load(Relaxed) == heap && (*s).class as usize == c,
            "a heap installs a slab of another heap or class"
        );
        debug_assert!(
            (*s).flags & (IN_PARTIAL | IN_EMPTY | IN_POOL) == 0,
            "a slab installed as current is still on a list"
        );
        let mut list = (*s).local_free;
        (*s).local_free = NIL;
        let r = (*s).take_remote_set_current();
        if r.head != NIL {
            let head = (*s).offset_of(r.head);
            debug_assert_eq!(list_len_tail(s, head), (r.n, (*s).block_at(r.tail)));
            freelist::set_next((*s).block_at(r.tail), list);
            list = head;
        }
        list
    };
    if list == NIL {
        // SAFETY: as above; `carve` takes the raw slab pointer of a slab the caller owns.
        list = unsafe { Slab::carve(s, batch_for(c, (*s).carved.load(Relaxed))) };
    }
    // SAFETY: as above, and the caller owns `heap`, so its bins too; the local list was
    // taken above.
    unsafe { Bin::set(ptr::addr_of_mut!((*Heap::bins(heap))[c]), s, list) };
}

/// Finds a block of class `c` for `heap` when its bin is empty, refilling the bin.
/// Null when memory is exhausted.
///
/// # Safety
/// The caller owns `heap` (its thread, or the shared lock).
pub unsafe fn refill(heap: *mut Heap, c: usize) -> *mut Block {
    // SAFETY: the caller's promise, passed on.
    unsafe { refill_or_borrow(heap, c, false).0 }
}

/// `refill`, and when `may_borrow` and class `c` has no free block left and no room to carve
/// one, before it takes a new slab: a free block of one of the next classes up from the heap's
/// bins (`borrow`). Returns the block and its class.
///
/// # Safety
/// As for `refill`; with `may_borrow`, `heap` is the calling thread's.
pub unsafe fn refill_or_borrow(heap: *mut Heap, c: usize, may_borrow: bool) -> (*mut Block, usize) {
    debug_assert!(
        owns(heap),
        "a heap refilled by a thread that does not own it"
    );
    // SAFETY: the caller owns `heap` (this fn's contract), hence its bins.
    let bin: *mut Bin = unsafe { ptr::addr_of_mut!((*Heap::bins(heap))[c]) };
    // SAFETY: as above.
    let cur = unsafe { (*bin).slab };
    if !cur.is_null() {
        // SAFETY: the caller owns `bin`, and `cur`, its current slab, belongs to the caller's
        // heap: its owner-side fields are the caller's, `thread_free` is taken atomically, and
        // `carve` takes the raw pointer of a slab the caller owns.
        unsafe {
            check_bin(bin);
            // (The owner's frees into `cur` went onto the bin: its local list is empty.)
            let r = (*cur).take_remote_keep_flag();
            if r.head != NIL {
                (*bin).free = (*cur).offset_of(r.head);
                return (pop_checked(bin), c);
            }
            if (*cur).carved.load(Relaxed) < (*cur).capacity as u64 {
                let head = Slab::carve(cur, batch_for(c, (*cur).carved.load(Relaxed)));
                Bin::set(bin, cur, head);
                return (pop_checked(bin), c);
            }
            // Every carved block is user-held (or a remote free not yet collected).
            Bin::clear(bin, (*cur).carved.load(Relaxed) as u32);
            (*cur).set_full(true);
            // Last: from here another thread may take the slab once all its blocks are freed.
            (*cur).clear_current();
        }
    }
    loop {
        // SAFETY: the caller owns `heap`, so its partial and empty lists; the slabs on them
        // belong to it and are formatted for class `c`.
        let mut s = unsafe { (*heap).partial[c].pop() };
        if s.is_null() {
            // SAFETY: as above.
            s = unsafe { (*heap).empty[c].pop() };
        }
        if !s.is_null() {
            // SAFETY: `s` belongs to the caller's heap and is now on none of its lists, as
            // `install` requires; the caller owns `bin`.
            unsafe {
                debug_assert!(
                    (*s).flags & (IN_PARTIAL | IN_EMPTY) != 0 && !(*s).is_full(),
                    "a slab on a partial or empty list is not marked so, or is full"
                );
                (*s).flags &= !(IN_PARTIAL | IN_EMPTY);
                install(heap, c, s);
                let b = pop_checked(bin);
                if !b.is_null() {
                    return (b, c);
                }
            }
            continue;
        }
        // SAFETY: the caller owns `heap`.
        if !unsafe { drain_remote(heap) || adopt_parked(heap, c) } {
            break;
        }
    }
    if may_borrow {
        // SAFETY: the caller owns `heap` and it is its thread's (this fn's contract).
        let (b, d) = unsafe { borrow(heap, c) };
        if !b.is_null() {
            return (b, d);
        }
    }
    // SAFETY: the caller owns `heap`, and no reference into it is live here.
    let s = unsafe { take_slab(heap, c) };
    if s.is_null() {
        return (ptr::null_mut(), c);
    }
    // SAFETY: `s` just left the slab cache, so only this thread can reach it until
    // `format_slab` publishes its heap; then it belongs to the caller's heap, on no list.
    unsafe {
        format_slab(s, c, heap);
        install(heap, c, s);
        (pop_checked(bin), c)
    }
}

/// How many classes up a class may borrow a free block from: two, at most 1.5 times its size
/// (four classes per doubling).
pub(crate) const BORROW_CLASSES: usize = 2;
/// The first class that borrows: 1280 bytes. A class that borrows stays out of slabs, so each
/// of its allocations past its bin's blocks is a borrow through the slow path: the classes up
/// to 1 KiB churn too fast for that (random_mixed: 161 instructions per pair with every class
/// from 160 bytes borrowing, against 138), while from 1 KiB up each class's own high-water
/// mark costs whole 64 KiB slabs of a few blocks each (random_mixed_1k_8k: peak RSS 5.0 MiB
/// with classes from 10 KiB borrowing, 4.6 from 1280 bytes, at 153 instructions per pair
/// against 150; bench/README.md).
pub(crate) const FIRST_BORROWER: usize = crate::size_class::calc_class_of(1 << 10) + 1;

/// A free block of one of the `BORROW_CLASSES` classes above `c`, from the heap's bins (their
/// hot lists, then their lists), for class `c`, which has no free block and no room left in
/// its slabs: instead of a new slab. Each class otherwise keeps its own high-water mark of
/// slabs, and a block that serves a smaller size costs nothing resident that its class did not
/// hold already. Only when the class would take a slab, not when it would carve from its
/// current one: borrowing then too kept the next classes' free blocks in use, where `block_decay`
/// would have purged them (mt_mixed's peak RSS rose by a sixth), and left the big classes'
/// current slabs unfilled while the next classes took more SuperSlabs (random_mixed_256k's by
/// an eighth; see bench/README.md).
/// Not across the decaying classes' boundary (`block_decay` marks their blocks on allocation),
/// and only a block as aligned as the class's own. Returns the block and its class; null if none.
///
/// # Safety
/// The caller owns `heap`, its thread's.
#[cold]
unsafe fn borrow(heap: *mut Heap, c: usize) -> (*mut Block, usize) {
    if c < FIRST_BORROWER {
        return (ptr::null_mut(), c);
    }
    let decays = c >= crate::block_decay::FIRST_CLASS;
    // Class `c`'s own blocks lie at multiples of its size in an aligned slab, and the aligned
    // allocations count on it (`size_class::class_for_aligned`, up to a page): a borrowed block
    // must be as aligned.
    let align = (1usize << class_size(c).trailing_zeros()).min(crate::os::PAGE);
    let last = (c + BORROW_CLASSES).min(NUM_CLASSES - 1);
    // SAFETY: the caller owns `heap`, its thread's, so its bins are this thread's.
    let bins = unsafe { Heap::bins(heap) };
    for d in c + 1..=last {
        if (d >= crate::block_decay::FIRST_CLASS) != decays {
            break;
        }
        // SAFETY: as above; a block off bin `d`'s lists is free and this thread's to hand out.
        unsafe {
            let from = ptr::addr_of_mut!((*bins)[d]);
            let hot = (*from).hot != 0;
            let head = if hot {
                (*from).hot
            } else {
                (*from).start.wrapping_add((*from).free as usize)
            };
            if head & (align - 1) != 0 {
                continue;
            }
            let b = if hot { pop_hot(from) } else { pop(from) };
            if b.is_null() {
                continue;
            }
            if hot {
                // Counted in use while on the list: counted free here, as a flush would, for
                // the caller's count of the allocation.
                add_single_writer(&(*from).frees, 1);
            }
            add_single_writer(&(*heap).stat_borrowed, 1);
            return (b, d);
        }
    }
    (ptr::null_mut(), c)
}

/// A free slab for class `c` from the heap's slab cache or the pool. When the pool would have to
/// map a new SuperSlab, what this heap holds empty goes back first, so that SuperSlabs a phase
/// of other sizes emptied are formatted for this one instead of staying resident beside new
/// ones (`tests/phase_reuse.rs`); at most every `RECLAIM_EVERY_MS`, and not for the big kind,
/// whose slab is a whole SuperSlab: giving the small and medium slabs back for each of those
/// only made them come and go (random_mixed_256k's peak RSS rose by a fifth). When even a new
/// mapping fails, everything cached goes back and it tries once more. Null when out of memory.
///
/// # Safety
/// The caller owns `heap` and holds no reference into it.
#[cold]
#[inline(never)]
unsafe fn take_slab(heap: *mut Heap, c: usize) -> *mut Slab {
    let kind = kind_of(c);
    // SAFETY: the caller owns `heap` (this fn's contract), so its slab cache and its fields.
    unsafe {
        let sc = ptr::addr_of_mut!((*heap).slab_cache);
        // Before the pool: the free slabs that idle heaps leave uncollected (`steal`).
        if SlabCache::is_empty(sc, kind) && heap != shared_ptr() {
            crate::steal::steal(heap, crate::os::now_ms());
        }
        let s = SlabCache::take(sc, kind, false);
        if !s.is_null() {
            return s;
        }
        let now = crate::os::now_ms();
        if kind != KIND_BIG && now.wrapping_sub((*heap).last_reclaim) >= RECLAIM_EVERY_MS {
            (*heap).last_reclaim = now;
            reclaim(heap);
        }
        let s = SlabCache::take(sc, kind, true);
        if s.is_null() && crate::pool::release_for_refill(heap) > 0 {
            // Out of memory or address space: what was cached went back; one more try.
            return SlabCache::take(sc, kind, true);
        }
        s
    }
}

/// Collects the blocks other threads freed into the slabs of `heap`. Returns whether any came.
///
/// # Safety
/// The caller owns `heap`.
pub unsafe fn drain_remote(heap: *mut Heap) -> bool {
    debug_assert!(
        owns(heap),
        "a heap's remote queue drained by a thread that does not own it"
    );
    // SAFETY: `heap` is valid (this fn's contract); the queue head is atomic.
    let mut s = unsafe { remote_list::take_queue(&(*heap).remote_slabs) };
    let mut any = false;
    if !s.is_null() {
        // SAFETY: the caller owns `heap`, so its counters.
        unsafe { add_single_writer(&(*heap).stat_drains, 1) };
    }
    while !s.is_null() {
        // SAFETY: as above.
        unsafe { add_single_writer(&(*heap).stat_drained_slabs, 1) };
        // Read the link first: once NOTIFIED is cleared, a remote free may queue `s` again.
        // SAFETY: `s` came off the heap's remote queue, so it is a formatted slab of a mapped
        // SuperSlab (in use, so mapped) that belongs to `heap`; its atomics may be read by anyone.
        unsafe {
            debug_assert!(
                (*s).thread_free.load(Relaxed) & NOTIFIED != 0,
                "a queued slab has NOTIFIED set until its consumer clears it"
            );
        }
        // SAFETY: as above; NOTIFIED is still set, so no remote free re-queues `s` (and
        // rewrites its link) before it is read.
        let next = unsafe { remote_list::next(s) };
        // SAFETY: as above; `heap` is atomic.
        let owner = unsafe { (*s).heap.load(Acquire) };
        if owner != heap {
            // A slab taken over from this (parked) heap after a freeing thread had read its
            // old owner: still NOTIFIED, so in no other queue; it goes on to its owner's.
            // SAFETY: heaps are never freed; NOTIFIED stays set, so `s` is in no queue.
            unsafe { remote_list::enqueue(&(*owner).remote_slabs, s) };
            s = next;
            continue;
        }
        // SAFETY: as above; `thread_free` is taken atomically.
        let r = unsafe { remote_list::take_and_clear(&(*s).thread_free) };
        if r.head != NIL {
            any = true;
            // SAFETY: `s` belongs to the caller's heap, so its owner-side fields, its bin and
            // the links of the blocks just taken from its remote list are the caller's; the
            // run's length and last block come from the slab's word, not from the blocks, and
            // the tail index is below `carved` (a block's index, as every pushed one).
            unsafe {
                let (list, n, tail) = ((*s).offset_of(r.head), r.n, (*s).block_at(r.tail));
                debug_assert_eq!(list_len_tail(s, list), (n, tail));
                add_single_writer(&(*heap).stat_drained_blocks, n as u64);
                let bin = ptr::addr_of_mut!((*Heap::bins(heap))[(*s).class as usize]);
                if (*bin).slab == s {
                    freelist::set_next(tail, (*bin).free);
                    (*bin).free = list;
                } else {
                    freelist::set_next(tail, (*s).local_free);
                    (*s).local_free = list;
                    (*s).sub_used(n);
                }
            }
        }
        // SAFETY: the caller owns `heap` and `s` belongs to it.
        unsafe { classify(heap, s) };
        s = next;
    }
    any
}

/// Puts a non-current slab where it belongs after blocks came back to it: the partial list,
/// the empty cache or the pool, or nowhere (full).
///
/// # Safety
/// The caller owns `heap`, and `s` belongs to it.
pub unsafe fn classify(heap: *mut Heap, s: *mut Slab) {
    // SAFETY: the caller owns `heap` and `s` belongs to it (this fn's contract): the heap's
    // bins and lists and the slab's owner-side fields are the caller's alone; `thread_free`
    // is read atomically.
    unsafe {
        debug_assert!(
            (*s).heap.load(Relaxed) == heap && owns(heap),
            "a heap classifies a slab it does not own"
        );
        debug_assert!(
            (*s).flags & IN_POOL == 0,
            "a slab in the pool is classified by a heap"
        );
        let c = (*s).class as usize;
        if (*Heap::bins(heap))[c].slab == s {
            // The current slab: its count, which the owner's frees into the bin count down,
            // starts again.
            (*s).set_used(CURRENT_USED);
            return;
        }
        let carved = (*s).carved.load(Relaxed);
        debug_assert!((*s).used() as u64 <= carved && carved <= (*s).capacity as u64);
        // A slab that just stopped being current (`flush_bin`) still has CURRENT: cleared below
        // after the last write (see `remote_list::CURRENT`).
        let w = (*s).thread_free.load(Acquire);
        if (*s).used() == 0 && w & !remote_list::CURRENT == 0 {
            if (*s).flags & IN_PARTIAL != 0 {
                (*heap).partial[c].remove(s);
            }
            (*s).flags &= !IN_PARTIAL;
            (*s).set_full(false);
            if w != 0 {
                (*s).clear_current(); // before the pool may hand the slab out
            }
            retire(heap, s);
            return;
        }
        if !(*s).has_local_space() {
            if (*s).flags & IN_PARTIAL != 0 {
                (*heap).partial[c].remove(s);
                (*s).flags &= !IN_PARTIAL;
            }
            (*s).set_full(true);
        } else {
            (*s).set_full(false);
            if (*s).flags & IN_PARTIAL == 0 {
                (*s).flags |= IN_PARTIAL;
                (*heap).partial[c].push_back(s);
            }
        }
        if w & remote_list::CURRENT != 0 {
            (*s).clear_current();
        }
    }
}

/// An empty slab: keep a few per class in the heap (HAKMEM_TCACHE), give the rest to the pool.
///
/// # Safety
/// The caller owns `heap`; `s` belongs to it, is empty, on no partial list and not current.
unsafe fn retire(heap: *mut Heap, s: *mut Slab) {
    // SAFETY: this fn's contract: the heap's lists and cache and the slab's owner-side fields
    // are the caller's alone.
    unsafe {
        let c = (*s).class as usize;
        debug_assert!(
            (*s).used_full == 0 && (*s).thread_free.load(Relaxed) == 0,
            "a slab retired with blocks in use, marked full, or with remote frees pending"
        );
        debug_assert!(
            (*s).flags & IN_PARTIAL == 0 && (*Heap::bins(heap))[c].slab != s,
            "a slab retired while on the partial list or current"
        );
        if (*s).flags & IN_EMPTY != 0 {
            return;
        }
        if (*heap).empty[c].len < policy::get(policy::Opt::Tcache) as usize {
            (*s).flags |= IN_EMPTY;
            (*heap).empty[c].push(s);
        } else {
            SlabCache::put(ptr::addr_of_mut!((*heap).slab_cache), s);
        }
    }
}

/// Gives every empty slab `heap` keeps (per class and in its slab cache) back to the pool, for
/// a mapping that failed; the bytes they span.
///
/// # Safety
/// The caller owns `heap` and holds no reference into it.
pub unsafe fn release_caches(heap: *mut Heap) -> usize {
    // SAFETY: this fn's contract: the heap's lists and cache are the caller's alone.
    unsafe { release_caches_locked(heap, &mut POOL.lock()) }
}

/// `release_caches` for a caller that holds the pool lock (`p`).
///
/// # Safety
/// The caller holds the pool lock and owns `heap` (or it is parked, so the pool's).
pub unsafe fn release_caches_locked(heap: *mut Heap, p: &mut crate::pool::Pool) -> usize {
    // SAFETY: this fn's contract, passed on.
    unsafe {
        release_empty_locked(heap, p)
            + SlabCache::release_all(ptr::addr_of_mut!((*heap).slab_cache), p)
    }
}

/// Gives a new thread a heap: a parked one if any (with the slabs and lists its last thread
/// left in its bins), else a fresh one. The thread's start in `init::attach_thread` calls this
/// and arranges for `detach` at the thread's exit.
///
/// # Safety
/// `tc` is the calling thread's cache and it has no heap; the caller has `detach` run before
/// the thread exits.
pub unsafe fn attach(tc: *mut ThreadCache) -> *mut Heap {
    let heap = {
        let mut p = POOL.lock();
        let h = p.dead_heaps;
        #[cfg(test)]
        let h = if FRESH_HEAP.with(|f| f.get()) {
            ptr::null_mut()
        } else {
            h
        };
        if !h.is_null() {
            // SAFETY: a parked heap is owned by the pool lock, held here; taking it off the
            // dead list makes it this thread's.
            unsafe {
                p.dead_heaps = (*h).next_dead;
                SlabCache::unpark(ptr::addr_of_mut!((*h).slab_cache), &mut p);
            }
            PARKED.fetch_sub(1, Relaxed);
            h
        } else {
            let h = p.meta.alloc(core::mem::size_of::<Heap>()) as *mut Heap;
            if h.is_null() {
                return h;
            }
            // SAFETY: `h` is fresh metadata of `size_of::<Heap>()` bytes (mmap'd, suitably
            // aligned, never freed) that nothing else refers to yet.
            unsafe {
                ptr::write(h, Heap::new());
                (*h).next_all = p.all_heaps;
            }
            p.all_heaps = h;
            h
        }
    };
    // SAFETY: `heap` is now this thread's alone; `tc` is the calling thread's cache (this fn's
    // contract), alive as long as the thread, and the caller has the heap detached before the
    // thread dies.
    unsafe {
        // The slabs and lists the heap's last thread left in its bins (`detach`).
        for c in 0..NUM_CLASSES {
            let own = ptr::addr_of_mut!((*heap).own_bins[c]);
            if !(*own).slab.is_null() {
                Bin::move_to(own, ptr::addr_of_mut!((*tc).bins[c]));
            }
        }
        (*heap).bins.store(ptr::addr_of_mut!((*tc).bins), Relaxed);
        (*heap)
            .remote_ctr
            .store(ptr::addr_of_mut!((*tc).remote_frees), Relaxed);
        (*heap).attached.store(true, Relaxed);
        (*tc).heap = heap;
        (*tc).state = STATE_ACTIVE;
        for (c, cap) in hot_caps().into_iter().enumerate() {
            // Off (no room) until the thread has allocated `HOT_AFTER` blocks of the class.
            let bin = &raw mut (*tc).bins[c];
            (*bin).hot = 0;
            (*bin).hot_cap = cap;
            (*bin).hot_max = 0;
            (*bin).hot_room = 0;
        }
    }
    heap
}

/// How often at most a heap gives its empty slabs back before a new mapping: a program that
/// moves between sizes all the time would otherwise reformat SuperSlabs back and forth. Shorter
/// than a compiler's phases: at 20 ms, `phases` (about 15 ms a phase) mapped SuperSlabs for
/// each phase beside those the last one had emptied and peaked 14 MiB higher (bench/README.md).
const RECLAIM_EVERY_MS: u64 = 5;

/// Hands the blocks of `bin` back to its current slab, which stops being current and is
/// classified (an empty one is retired).
///
/// # Safety
/// The caller owns `heap` and `bin` is one of its bins, with a current slab.
unsafe fn flush_bin(heap: *mut Heap, bin: *mut Bin) {
    // SAFETY: the caller owns `bin` (this fn's contract); its list is handed back below.
    let (s, list) = unsafe { ((*bin).slab, (*bin).free) };
    // SAFETY: `s` is the bin's current slab, so it belongs to `heap`: its owner-side fields
    // and the links of the bin's free blocks are the caller's; its local list is empty (the
    // owner's frees went onto the bin).
    unsafe {
        debug_assert!((*s).local_free == NIL, "a current slab with a local list");
        (*s).local_free = list;
        let n = list_len_tail(s, list).0;
        // Every other carved block is user-held or a remote free not yet collected.
        Bin::clear(bin, (*s).carved.load(Relaxed) as u32 - n);
    }
    // SAFETY: the caller owns `heap` and `s` belongs to it.
    unsafe { classify(heap, s) };
}

/// Gives every empty slab `heap` holds back to the pool, its bins' current slabs included when
/// all their blocks are free (a bin whose slab has blocks in use keeps it).
///
/// # Safety
/// The caller owns `heap` and holds no reference into it.
#[cold]
#[inline(never)]
unsafe fn reclaim(heap: *mut Heap) {
    for c in 0..NUM_CLASSES {
        // SAFETY: the caller owns `heap` (this fn's contract), hence its bins and their slabs'
        // owner-side fields.
        unsafe {
            let bin = ptr::addr_of_mut!((*Heap::bins(heap))[c]);
            if (*bin).hot != 0 {
                hot_flush(heap, bin, c);
            }
            let s = (*bin).slab;
            if !s.is_null() && bin_holds_all(bin, s) {
                flush_bin(heap, bin);
            }
        }
    }
    // SAFETY: as above.
    unsafe { release_caches(heap) };
}

/// Whether every carved block of `s` is in `bin` (its current slab): then the slab is empty
/// once the bin is flushed.
///
/// # Safety
/// The caller owns `bin`, and `s` is its current slab.
unsafe fn bin_holds_all(bin: *mut Bin, s: *mut Slab) -> bool {
    // SAFETY: the caller owns `bin` and `s` (this fn's contract).
    unsafe {
        if (*s).thread_free.load(Relaxed) & !remote_list::CURRENT != 0 {
            return false;
        }
        let carved = (*s).carved.load(Relaxed);
        let mut n = 0;
        let mut p = (*bin).free;
        while p != NIL && n <= carved {
            if !Slab::holds_offset(s, p) {
                return false; // a bad link: the slow path reports it later
            }
            n += 1;
            p = freelist::next_of((*s).at(p));
        }
        n == carved
    }
}

/// Parks a thread's heap: its hot lists and foreign cache go back, its bins' slabs and lists
/// move to the heap's own bins (for the next thread on it, `attach`), and its counters to the
/// heap's. Frees that arrive later from this thread take the remote path; allocations go to
/// the shared heap.
///
/// # Safety
/// Called on the owning thread, once, from its exit handler.
pub unsafe fn detach(tc: *mut ThreadCache, heap: *mut Heap) {
    // SAFETY: `tc` is the calling thread's live cache (this fn's contract).
    unsafe {
        crate::foreign::flush(tc);
        hot_flush_all(tc);
    }
    for c in 0..NUM_CLASSES {
        // SAFETY: called on the owning thread (this fn's contract): `tc` is its live cache
        // and `heap` its heap, touched by no other thread but for the atomic remote queue.
        let (bin, s) = unsafe {
            let bin = ptr::addr_of_mut!((*tc).bins[c]);
            add_single_writer(&(*heap).stat_allocs[c], (*bin).allocs.load(Relaxed));
            add_single_writer(&(*heap).stat_frees[c], (*bin).frees.load(Relaxed));
            add_single_writer(&(*heap).stat_remote[c], (*tc).remote_frees[c].load(Relaxed));
            (*bin).allocs.store(0, Relaxed);
            (*bin).frees.store(0, Relaxed);
            (*tc).remote_frees[c].store(0, Relaxed);
            // Closed: `free` pushes any thread's block onto a list with room, and a detached
            // thread's list would keep it from its slab for good.
            close_hot(bin);
            let s = (*bin).slab;
            (bin, s)
        };
        if !s.is_null() {
            // The bin's slab and list stay with the heap for the next thread on it (`attach`):
            // no walk of the list to count it, and no refill for that thread's first blocks.
            // SAFETY: called on the owning thread, so it owns `heap`, `bin` and the slab; the
            // heap's own bins are unused while it is attached.
            unsafe { Bin::move_to(bin, ptr::addr_of_mut!((*heap).own_bins[c])) };
        }
    }
    // SAFETY: this thread owns `heap`, its lists, slab cache and the slabs on them.
    unsafe {
        (*heap).bins.store(ptr::null_mut(), Relaxed);
        (*heap).remote_ctr.store(ptr::null_mut(), Relaxed);
        (*heap).attached.store(false, Relaxed);
        drain_remote(heap);
    }
    // SAFETY: `tc` is the calling thread's live cache.
    unsafe {
        (*tc).heap = ptr::null_mut();
        (*tc).state = STATE_DEAD;
    }
    let mut p = POOL.lock();
    // SAFETY: this thread still owns `heap`; once on the dead list (pool lock held) it is the
    // pool's. The empty slabs it keeps per class stay with it when its slab cache does: the
    // next thread on it reuses each for the class whose blocks its pages already hold (in the
    // slab cache they went to whatever class ran dry first, and every slab of a thread-churning
    // program ended up with all its pages resident: `thread_churn`, bench/README.md).
    unsafe {
        if !SlabCache::park(ptr::addr_of_mut!((*heap).slab_cache), &mut p) {
            // Enough parked heaps keep theirs: this one keeps nothing, its bins' slabs included
            // (retiring an empty one may give slabs to the pool, which takes its lock).
            drop(p);
            flush_own_bins(heap);
            p = POOL.lock();
            release_caches_locked(heap, &mut p);
        }
        (*heap).parked_ms = crate::os::now_ms();
        push_dead(&mut p, heap);
    }
    drop(p);
    // What the heap keeps is the background thread's to give back once it stays parked.
    crate::background::note_release();
    crate::background::maybe_start();
}

/// Hands the slab and list a parked heap keeps in its bin of class `c` (`detach`) back: the slab
/// stops being current and is classified.
///
/// # Safety
/// The caller owns `heap`, a parked heap (off the dead list, or being parked), and does not hold
/// the pool lock.
unsafe fn flush_own_bin(heap: *mut Heap, c: usize) {
    // SAFETY: this fn's contract: the heap's own bins and their slabs are the caller's.
    unsafe {
        let own = ptr::addr_of_mut!((*heap).own_bins[c]);
        if !(*own).slab.is_null() {
            flush_bin(heap, own);
        }
    }
}

/// `flush_own_bin` for every class.
///
/// # Safety
/// As for `flush_own_bin`.
unsafe fn flush_own_bins(heap: *mut Heap) {
    for c in 0..NUM_CLASSES {
        // SAFETY: this fn's contract, passed on.
        unsafe { flush_own_bin(heap, c) };
    }
}

/// Gives the empty slabs `heap` keeps per class back to the pool; the bytes they span.
///
/// # Safety
/// The caller holds the pool lock (`p`) and owns `heap` (or it is parked, so the pool's).
unsafe fn release_empty_locked(heap: *mut Heap, p: &mut crate::pool::Pool) -> usize {
    let mut back = SlabList::new();
    let mut bytes = 0;
    // SAFETY: this fn's contract: the heap's empty lists are the caller's; their slabs are
    // empty, on that list only, not current, in mapped SuperSlabs, as `unformat` requires.
    unsafe {
        for c in 0..NUM_CLASSES {
            loop {
                let s = (*heap).empty[c].pop();
                if s.is_null() {
                    break;
                }
                (*s).flags &= !IN_EMPTY;
                crate::pool::unformat(s);
                bytes += crate::superslab::slab_bytes(s);
                back.push(s);
            }
        }
        if back.len > 0 {
            crate::pool::release_slabs_locked(p, &mut back);
        }
    }
    bytes
}

/// Heaps on the pool's dead list (a hint read without the lock).
static PARKED: AtomicU64 = AtomicU64::new(0);

/// Puts `heap` at the head of the dead list, where it becomes the pool's.
///
/// # Safety
/// The caller owns `heap`, which is on no list, and holds the pool lock (`p`).
unsafe fn push_dead(p: &mut crate::pool::Pool, heap: *mut Heap) {
    // SAFETY: the caller owns `heap` (this fn's contract).
    unsafe { (*heap).next_dead = p.dead_heaps };
    p.dead_heaps = heap;
    PARKED.fetch_add(1, Relaxed);
}

/// Hands the slabs that parked heaps keep in their bins (`detach`) back to their lists, so that
/// `pool::release` gives back those that are empty. The dead list is taken whole meanwhile (a
/// thread starting then gets a fresh heap), as `adopt_parked` takes one heap.
pub fn flush_parked_bins() {
    let mut h = {
        let mut p = POOL.lock();
        let h = p.dead_heaps;
        p.dead_heaps = ptr::null_mut();
        h
    };
    while !h.is_null() {
        // SAFETY: `h` was taken off the dead list with the rest, so this thread owns it (as
        // `attach` would); heaps are never freed.
        unsafe {
            let next = (*h).next_dead;
            PARKED.fetch_sub(1, Relaxed);
            flush_own_bins(h);
            push_dead(&mut POOL.lock(), h);
            h = next;
        }
    }
}

/// Slabs taken over from parked heaps (statistics).
pub static ADOPTED_SLABS: AtomicU64 = AtomicU64::new(0);

/// Before `heap` takes a fresh slab of class `c`, it takes over the partial slabs of that class
/// of the heap parked longest (an exited thread's), after collecting that heap's remote frees.
/// Blocks other threads free into a parked heap's slabs would otherwise wait there until a new
/// thread adopts it, while the live threads carve new memory (`oversub_churn`, where the
/// program joins its threads in start order, kept half its 4 KiB blocks so). Returns whether
/// any slab came.
///
/// A slab changes owners here while blocks of it are live, so a freeing thread may read the old
/// owner, and queue the slab there after this: `drain_remote` of that heap passes such a slab on
/// to its owner's queue (its NOTIFIED bit keeps it in one queue at a time).
///
/// # Safety
/// The caller owns `heap` and holds no reference into it.
#[cold]
#[inline(never)]
unsafe fn adopt_parked(heap: *mut Heap, c: usize) -> bool {
    if heap == shared_ptr() || policy::checked() {
        return false;
    }
    let tries = PARKED.load(Relaxed).min(ADOPT_TRIES);
    // SAFETY: the caller's promise, passed on.
    (0..tries).any(|_| unsafe { adopt_from_oldest(heap, c) })
}

/// Parked heaps `adopt_parked` takes, at most, for one slab.
const ADOPT_TRIES: u64 = 4;

/// `adopt_parked` from the parked heap that has partial slabs of class `c` or frees waiting,
/// the one parked longest of those; it goes back at the head of the list. One pool lock when
/// no parked heap has any.
///
/// # Safety
/// As for `adopt_parked`.
unsafe fn adopt_from_oldest(heap: *mut Heap, c: usize) -> bool {
    let h = {
        let mut p = POOL.lock();
        let mut found: *mut Heap = ptr::null_mut();
        let mut found_prev: *mut Heap = ptr::null_mut();
        let mut prev: *mut Heap = ptr::null_mut();
        let mut h = p.dead_heaps;
        // SAFETY: parked heaps belong to the pool, whose lock is held (so their lists are
        // ours to read); heaps are never freed; the remote queue's head is atomic.
        unsafe {
            while !h.is_null() {
                if (*h).partial[c].len != 0
                    || !(*h).own_bins[c].slab.is_null()
                    || !(*h).remote_slabs.load(Relaxed).is_null()
                {
                    (found, found_prev) = (h, prev);
                }
                prev = h;
                h = (*h).next_dead;
            }
            if found.is_null() {
                return false;
            }
            if found_prev.is_null() {
                p.dead_heaps = (*found).next_dead;
            } else {
                (*found_prev).next_dead = (*found).next_dead;
            }
        }
        PARKED.fetch_sub(1, Relaxed);
        found
    };
    // SAFETY: `h` is off the dead list, so this thread owns it now (as `attach` would); the
    // caller owns `heap`; both heaps' lists and their slabs' owner-side fields are ours.
    let got = unsafe {
        drain_remote(h);
        // The slab its last thread left in its bin of the class, too.
        flush_own_bin(h, c);
        let mut got = 0;
        loop {
            let s = (*h).partial[c].pop();
            if s.is_null() {
                break;
            }
            // Published with Release after the owner-side fields it hands over.
            (*s).heap.store(heap, Release);
            (*heap).partial[c].push_back(s);
            got += 1;
        }
        got
    };
    ADOPTED_SLABS.fetch_add(got, Relaxed);
    // SAFETY: this thread owns `h`, off every list; the pool lock is held.
    unsafe { push_dead(&mut POOL.lock(), h) };
    got != 0
}

/// The heap that serves threads after their exit handler ran, and every call in checking mode.
/// Its lock's holder owns it, and reaches it through `shared_ptr`, never through the guard: a
/// `&mut Heap` would claim its atomics too, which statistics and remote frees use meanwhile.
pub static SHARED: crate::sync::Mutex<Heap> = crate::sync::Mutex::new(Heap::new());

pub fn shared_ptr() -> *mut Heap {
    SHARED.data_ptr()
}

/// A block of class `c` from `heap`'s bin, refilling it when empty (the slow-path allocation of
/// heaps that are not a thread's own: the shared heap and checking mode).
///
/// # Safety
/// The caller owns `heap`.
pub unsafe fn pop_or_refill(heap: *mut Heap, c: usize) -> *mut Block {
    // SAFETY: the caller owns `heap` (this fn's contract), hence its bins.
    let b = unsafe { pop(ptr::addr_of_mut!((*Heap::bins(heap))[c])) };
    if b.is_null() {
        // SAFETY: as above.
        unsafe { refill(heap, c) }
    } else {
        b
    }
}

/// Allocates a block of class `c` from the shared heap (slow: takes its lock).
pub fn shared_alloc(c: usize) -> *mut u8 {
    let _g = SHARED.lock();
    let heap = shared_ptr();
    // SAFETY: the shared lock is held, so this thread owns the shared heap.
    unsafe {
        let b = pop_or_refill(heap, c);
        if !b.is_null() {
            add_single_writer(&(*heap).stat_allocs[c], 1);
        }
        b as *mut u8
    }
}

/// Frees a block of a shared-heap slab as its owner (checking mode, under the lock).
///
/// # Safety
/// The shared lock is held; `s` belongs to the shared heap and `a` is a live block of it.
pub unsafe fn shared_free_locked(heap: *mut Heap, s: *mut Slab, a: usize) {
    // SAFETY: the shared lock is held and `s` belongs to the shared heap (this fn's contract),
    // so the heap and the slab's owner-side fields are this thread's; `a` is a live block of
    // `s`, as `free_local` requires.
    unsafe {
        add_single_writer(&(*heap).stat_frees[(*s).class as usize], 1);
        if free_local(s, a) {
            classify(heap, s);
        }
    }
}

/// The owner's free of block `a` of its slab `s`: tagged free and pushed where the
/// slab's `list_head` says: the bin, when `s` is its current slab (so that the next malloc of
/// the class reuses the block while it is still in this core's cache, as a thread cache does),
/// else the slab's local list (the bin takes it when the slab is current again). Returns
/// whether the slab must be reclassified (it became empty, or it was full; for the current
/// slab, its count ran down from `CURRENT_USED`).
///
/// # Safety
/// The caller owns `s` (its thread's heap, or the shared lock), and `a` is a live block of it,
/// checked not to be free already.
#[inline(always)]
pub unsafe fn free_local(s: *mut Slab, a: usize) -> bool {
    // SAFETY: this fn's contract: the block's link and tag and the slab's owner-side fields
    // are the caller's alone.
    unsafe {
        let head = (*s).list_head;
        freelist::set_tag(a);
        freelist::set_next(a, *head);
        *head = a.wrapping_sub((*s).start) as u64;
        debug_assert!(
            (*s).used() > 0,
            "an owner's free into a slab with no block in use"
        );
        debug_assert!(
            (*s).flags & (IN_EMPTY | IN_POOL) == 0,
            "an owner's free into a slab in the empty cache or the pool"
        );
        used_dec_was_at_most_one(s)
    }
}

/// Decrements `s`'s `used_full` and says whether it was at most 1 as an i32: with `FULL` the
/// sign bit and at least one block in use, whether this free empties the slab or the slab was
/// full. On x86-64 one `sub` and one `jle` (`sub` sets the flags as `cmp` would, so `jle` tests
/// the old value; LLVM itself emits load, decrement, store, compare and branch).
///
/// # Safety
/// `s` is a slab the caller owns.
#[inline(always)]
unsafe fn used_dec_was_at_most_one(s: *mut Slab) -> bool {
    // (x86-64 only, as the whole crate: see `tls`.)
    // SAFETY: `s` is a valid slab descriptor whose `used_full` is the caller's alone (this
    // fn's contract); the asm reads and writes only that word and the flags, and jumps to the
    // label or falls through.
    unsafe {
        core::arch::asm!(
            "sub dword ptr [{s} + {off}], 1",
            "jle {slow}",
            s = in(reg) s,
            off = const core::mem::offset_of!(Slab, used_full),
            slow = label { return true; },
            options(nostack),
        );
        false
    }
}

/// Asks the CPU to fetch the line at `a` (any address: a prefetch never faults).
#[inline(always)]
fn prefetch(a: usize) {
    // SAFETY: a prefetch reads nothing the program sees and never faults.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(a as *const i8)
    };
}

#[cfg(test)]
mod tests {
    use super::{batch_for, flush_bin, Heap};
    use crate::alloc;
    use crate::policy::{self, Opt};
    use crate::size_class::class_of;
    use crate::slab::{list_len_tail, CURRENT_USED, IN_EMPTY, IN_POOL};
    use crate::tls::thread_cache;
    use core::sync::atomic::Ordering::Relaxed;

    #[test]
    fn a_current_slab_counts_its_blocks_again_when_it_stops_being_current() {
        crate::init::ensure();
        std::thread::spawn(|| {
            // 208-byte blocks (a class no other test of this thread uses: the thread is new).
            let v: Vec<usize> = (0..10).map(|_| alloc::malloc(200) as usize).collect();
            super::without_hot_lists();
            let s = crate::superslab::slab_of(v[0]);
            let c = class_of(200);
            // SAFETY (test): `s` is this thread's current slab of class `c`; only this thread
            // touches it, its heap and its bins.
            unsafe {
                assert!(v.iter().all(|&p| crate::superslab::slab_of(p) == s));
                let heap = (*thread_cache()).heap;
                let bin = core::ptr::addr_of_mut!((*Heap::bins(heap))[c]);
                assert_eq!((*bin).slab, s);
                assert_eq!((*s).used_full, CURRENT_USED);
                // The owner's free into the current slab went onto the bin, counted down from
                // CURRENT_USED; one that runs it down to the slow path starts it again.
                alloc::free(v[0] as *mut u8);
                assert_eq!((*s).used_full, CURRENT_USED - 1);
                (*s).used_full = 1;
                alloc::free(v[1] as *mut u8);
                assert_eq!((*s).used_full, CURRENT_USED, "a run-down count not renewed");
                for &p in &v[2..4] {
                    alloc::free(p as *mut u8);
                }
                // Carved: 10 and the rest of the first carve, all in the bin but the 6 held.
                let carved = (*s).carved.load(Relaxed) as u32;
                let in_bin = list_len_tail(s, (*bin).free).0;
                assert_eq!(carved - in_bin, 6);
                flush_bin(heap, bin);
                assert!((*bin).slab.is_null());
                assert_eq!(
                    (*s).used(),
                    6,
                    "the count of a flushed slab is not what is held"
                );
                assert_eq!(list_len_tail(s, (*s).local_free).0, in_bin);
                assert_eq!((*s).list_head, core::ptr::addr_of_mut!((*s).local_free));
                // No longer current: the owner's frees go onto its local list, and the last one
                // retires it.
                for &p in &v[4..] {
                    alloc::free(p as *mut u8);
                }
                assert_eq!((*s).used(), 0);
                assert!(
                    (*s).flags & (IN_EMPTY | IN_POOL) != 0,
                    "an emptied slab was not retired"
                );
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_slab_carves_one_page_first_then_doubles_up_to_the_batch() {
        crate::init::ensure();
        let batch = policy::get(Opt::RefillBatch);
        let kib = class_of(1000); // 1 KiB blocks: four to a page, 32 in 32 KiB
        assert_eq!(batch_for(kib, 0), 4.min(batch));
        assert_eq!(batch_for(kib, 4), 4.min(batch));
        assert_eq!(batch_for(kib, 8), 8.min(batch));
        assert_eq!(batch_for(kib, 1 << 20), 32.min(batch));
        // A block bigger than a page: one at first.
        assert_eq!(batch_for(class_of(20_000), 0), 1);
        // Tiny blocks: a page holds more than a batch.
        assert_eq!(batch_for(class_of(16), 0), batch.min(256));
    }
}
