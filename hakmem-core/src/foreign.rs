//! The foreign cache: blocks of other threads' slabs that this thread freed, kept a few per size
//! class for this thread's next allocations of that class, as the thread caches of tcmalloc and
//! jemalloc keep every block their thread frees.
//!
//! Without it every cross-thread free is a CAS on a slab word that the owner and other freeing
//! threads also write, and the block travels back to its owner's cache before anyone uses it
//! again. With it a cross-thread free is a store into this thread's own cache, and under the
//! hand-off patterns of servers (a thread frees what another allocated, then allocates) the
//! block is reused while it is still in this core's cache. A block here is still counted as in
//! use by its slab, so the slab keeps its owner and format until the block goes back.
//!
//! Since the hot lists take any thread's blocks (`heap::push_hot`), a block comes here only
//! when its class's hot list has no room: closed (the thread has made few blocks of the class,
//! a consumer that only frees; or HAKMEM_HOT_KB=0) or full at its cap. The frees counted as
//! the thread's own (`hand_off`, from the bin's counter) are those past the hot list too (the
//! list's own pushes count nothing: `tls::Bin`), into the thread's own slabs.
//!
//! A block this thread took from its foreign cache and then frees itself (a reissued block) goes
//! home, not back into the cache, unless the thread stands downstream of a hand-off: otherwise a
//! thread whose working set is its own (it frees what it allocates) keeps circulating the other
//! heaps' blocks it was once handed, every free of them a cross-thread one, mixed into cache
//! lines that the owner's allocations share. A small direct-mapped table of the blocks taken
//! lately (`REISSUED` entries) recognises them; a block another thread frees is kept. Each class
//! counts, over a window of its last `WINDOW` or so frees, the blocks other threads allocated
//! (`genuine`) against the thread's own (its frees into its own slabs, read from the bin's
//! counter, and its reissued blocks); while the first are the majority, a reissued block is kept
//! too. A thread that frees mostly what others allocated (a consumer, a stage of a pipeline, a
//! worker of a pool that is handed requests) reuses what it frees, as tcmalloc's thread caches
//! do, and sending it home would only make its owner's next allocation of it a cold one and park
//! it in a slab whose owner may have exited (`bench/README.md`, "Reissued blocks of a hand-off").
//!
//! A class keeps at most `CLASS_BYTES` of blocks, and only `CLOSED_BYTES` while the thread
//! neither has its hot list of the class open nor has ever taken a block of the class from this
//! cache: a thread that only frees a class (the main thread that frees what exited workers handed
//! it) would hold its blocks for nothing, keeping their slabs' pages in use while the owners
//! carve new ones (`bench/README.md`, "A thread that only frees keeps little").
//!
//! Blocks leave in bulk: when a class's cache is full, its older half (a closed class's whole
//! cache, up to a batch) goes to the transfer cache for other threads, or when that is full back
//! to the owners, each run of blocks of one slab linked first and pushed with one CAS; at thread
//! exit, at `malloc_trim`, all of them go to the owners. The cache holds bare addresses in this
//! thread's TLS, never links in the blocks, and every block in it carries the free tag, so a
//! double free is still caught.

use crate::freelist;
use crate::remote_list;
use crate::size_class::CLASS_SIZE;
use crate::slab::Slab;
use crate::sync::add_single_writer;
use crate::tls::ThreadCache;
use crate::transfer;
use core::sync::atomic::{AtomicU64, Ordering::*};

/// Blocks sent back to their owners (the rest of the remote frees of cached classes were reused
/// by the thread that freed them, or are still cached).
pub static RETURNED: AtomicU64 = AtomicU64::new(0);

/// Classes that have a foreign cache: blocks up to 8 KiB.
pub const FOREIGN_CLASSES: usize = 32;
/// Entries of the table of blocks taken from the foreign cache lately (a power of two).
pub const REISSUED: usize = 256;

#[inline(always)]
fn reissued_slot(a: usize) -> usize {
    ((a >> 4) ^ (a >> 13)) & (REISSUED - 1)
}

/// Most blocks one class keeps.
pub const SLOTS: usize = 32;

// An overflowing class hands the transfer cache at most half its slots as one batch.
const _: () = assert!(transfer::CLASSES == FOREIGN_CLASSES && transfer::BATCH == SLOTS / 2);
/// Most bytes one class keeps (fewer slots for bigger blocks).
const CLASS_BYTES: usize = 32 << 10;

/// One class's cache: `n` blocks in `slots`, newest last; and the window's counts that decide
/// whether a reissued block stays (`hand_off`).
#[repr(C)]
pub struct ForeignBin {
    pub n: usize,
    /// How many blocks it keeps: 0 until its first block, then `cap_of(c, closed(tc, c))` as it
    /// stood when the class last filled (`keep` looks again then).
    pub cap: u32,
    /// This thread has taken a block of this class from its cache (it reuses what it keeps).
    pub took: bool,
    pub slots: [usize; SLOTS],
    /// Frees of blocks other threads allocated, in the window.
    pub genuine: u32,
    /// Frees of reissued blocks, in the window.
    pub again: u32,
    /// The bin's count of frees into this thread's own slabs when the window began (wrapping).
    pub own_mark: u32,
}

impl ForeignBin {
    pub const EMPTY: ForeignBin = ForeignBin {
        n: 0,
        cap: 0,
        took: false,
        slots: [0; SLOTS],
        genuine: 0,
        again: 0,
        own_mark: 0,
    };
}

/// Frees a class's window spans before its counts are halved.
const WINDOW: u32 = 256;

/// A reissued block of this class is freed again, and the bin's count of the thread's frees into
/// its own slabs stands at `own_frees`: true to keep it (most frees in the window were of blocks
/// other threads allocated), false to send it home.
#[inline]
fn hand_off(f: &mut ForeignBin, own_frees: u64) -> bool {
    f.again += 1;
    let local = (own_frees as u32).wrapping_sub(f.own_mark);
    let own = local.saturating_add(f.again);
    let keep = f.genuine > own;
    if f.genuine.saturating_add(own) > WINDOW {
        f.genuine /= 2;
        f.again /= 2;
        f.own_mark = (own_frees as u32).wrapping_sub(local / 2);
    }
    keep
}

/// Most bytes one class keeps while the thread has made few blocks of it (its hot list of it is
/// closed) and has taken none of it from this cache: it may never reuse what it keeps.
const CLOSED_BYTES: usize = 8 << 10;

/// How many blocks class `c` keeps, with `bytes` per class.
const fn cap(c: usize, bytes: usize) -> usize {
    let by_bytes = bytes / CLASS_SIZE[c] as usize;
    if by_bytes < 2 {
        2
    } else if by_bytes > SLOTS {
        SLOTS
    } else {
        by_bytes
    }
}

const _: () = assert!(FOREIGN_CLASSES <= crate::size_class::NUM_CLASSES);

/// `cap` per class: [open (the thread makes or reuses blocks of it), closed].
static CAP: [[u8; 2]; FOREIGN_CLASSES] = {
    let mut t = [[0u8; 2]; FOREIGN_CLASSES];
    let mut c = 0;
    while c < FOREIGN_CLASSES {
        t[c] = [cap(c, CLASS_BYTES) as u8, cap(c, CLOSED_BYTES) as u8];
        c += 1;
    }
    t
};

/// Whether class `c` keeps only its closed cap in the cache of `tc`: the thread has made few
/// blocks of it (its hot list of it is closed) and has taken none of it from this cache.
///
/// # Safety
/// `tc` is this thread's cache and `c < FOREIGN_CLASSES`.
#[inline(always)]
unsafe fn closed(tc: *mut ThreadCache, c: usize) -> bool {
    // SAFETY: `tc` is this thread's cache, so its bins are read by this thread alone; `c` is
    // below FOREIGN_CLASSES (this fn's contract), which is at most NUM_CLASSES (asserted above),
    // the length of `bins`, and is the length of `foreign`.
    unsafe { (*tc).bins.get_unchecked(c).hot_max == 0 && !(*tc).foreign.get_unchecked(c).took }
}

/// How many blocks class `c < FOREIGN_CLASSES` keeps, open or closed.
#[inline(always)]
fn cap_of(c: usize, closed: bool) -> usize {
    // SAFETY: `CAP` has FOREIGN_CLASSES rows of two.
    unsafe { *CAP.get_unchecked(c).get_unchecked(closed as usize) as usize }
}

/// `keep`'s common case, inline in the remote free: a block of a class the cache keeps, not
/// one this thread took from it lately, into a class with room. False (nothing changed)
/// otherwise: `keep` decides.
///
/// # Safety
/// As for `keep`.
#[inline(always)]
pub unsafe fn keep_quick(tc: *mut ThreadCache, c: usize, a: usize) -> bool {
    if c >= FOREIGN_CLASSES {
        return false;
    }
    // SAFETY: `tc` is this thread's cache (this fn's contract), touched by no other thread;
    // `c < FOREIGN_CLASSES`.
    unsafe {
        if *(*tc).reissued.get_unchecked(reissued_slot(a)) == a {
            return false;
        }
        let f = (*tc).foreign.get_unchecked_mut(c);
        if f.n >= f.cap as usize {
            return false;
        }
        f.genuine = f.genuine.saturating_add(1);
        *f.slots.get_unchecked_mut(f.n) = a;
        f.n += 1;
    }
    true
}

/// Keeps block `a` of class `c` (freed by this thread, owned by another heap's slab, already
/// tagged free). False when class `c` has no foreign cache: the caller frees remotely.
///
/// # Safety
/// `tc` is this thread's cache and has a heap (its exit handler will flush the cache); `a` is a
/// carved block of a formatted slab of class `c`, user-held until now and tagged free.
#[inline]
pub unsafe fn keep(tc: *mut ThreadCache, c: usize, a: usize) -> bool {
    if c >= FOREIGN_CLASSES {
        return false;
    }
    // SAFETY: `tc` is this thread's cache (this fn's contract), touched by no other thread;
    // `c < FOREIGN_CLASSES`.
    unsafe {
        let r = (*tc).reissued.get_unchecked_mut(reissued_slot(a));
        let f = (*tc).foreign.get_unchecked_mut(c);
        if *r == a {
            // This thread had it from the cache and frees it itself: home, unless the thread
            // mostly frees what other threads allocated.
            *r = 0;
            let heap = (*tc).heap;
            if !hand_off(f, (*tc).bins.get_unchecked(c).frees.load(Relaxed)) {
                add_single_writer(&(*heap).stat_reissued_home, 1);
                return false;
            }
            add_single_writer(&(*heap).stat_reissued_kept, 1);
        } else {
            f.genuine = f.genuine.saturating_add(1);
        }
        if f.n >= f.cap as usize {
            let closed = closed(tc, c);
            f.cap = cap_of(c, closed) as u32;
            if f.n >= f.cap as usize {
                // A closed class passes its whole cache on, so that its batches are as big as
                // an open class's half (the consumer of a producer/consumer pair takes none).
                pass_oldest(
                    f,
                    c,
                    if closed {
                        f.n.min(transfer::BATCH)
                    } else {
                        f.n / 2
                    },
                );
            }
        }
        *f.slots.get_unchecked_mut(f.n) = a;
        f.n += 1;
    }
    true
}

/// The newest block of class `c` in this thread's foreign cache (refilled from the transfer
/// cache when empty, if the thread has a heap: only then does an exit handler send home what
/// the batch leaves in the cache), its free tag cleared, or null.
///
/// # Safety
/// `tc` is this thread's cache.
#[inline(always)]
pub unsafe fn take(tc: *mut ThreadCache, c: usize) -> *mut u8 {
    if c >= FOREIGN_CLASSES {
        return core::ptr::null_mut();
    }
    // SAFETY: `tc` is this thread's cache (this fn's contract) and `c < FOREIGN_CLASSES`.
    unsafe {
        let f = (*tc).foreign.get_unchecked_mut(c);
        if f.n == 0 && ((*tc).heap.is_null() || !refill(f, c)) {
            return core::ptr::null_mut();
        }
        take_cached(tc, c)
    }
}

/// `take` without the refill: the newest block of class `c` in this thread's foreign cache, or
/// null when it has none (malloc's second try when its bin is dry, before the slow path).
///
/// # Safety
/// `tc` is this thread's cache and `c < FOREIGN_CLASSES`.
#[inline(always)]
pub unsafe fn take_cached(tc: *mut ThreadCache, c: usize) -> *mut u8 {
    // SAFETY: `tc` is this thread's cache and `c < FOREIGN_CLASSES` (this fn's contract); a
    // block in it is free, held by this thread alone (its slab counts it as in use), so its tag
    // is this thread's to clear.
    unsafe {
        let f = (*tc).foreign.get_unchecked_mut(c);
        if f.n == 0 {
            return core::ptr::null_mut();
        }
        f.n -= 1;
        f.took = true;
        let a = *f.slots.get_unchecked(f.n);
        freelist::clear_tag(a);
        *(*tc).reissued.get_unchecked_mut(reissued_slot(a)) = a;
        a as *mut u8
    }
}

/// Sends every block of every class back to its owner (thread exit, `malloc_trim`).
///
/// # Safety
/// `tc` is this thread's cache.
pub unsafe fn flush(tc: *mut ThreadCache) {
    for c in 0..FOREIGN_CLASSES {
        // SAFETY: `tc` is this thread's cache (this fn's contract).
        unsafe {
            let f = &mut (*tc).foreign[c];
            send(&f.slots[..f.n]);
            f.n = 0;
        }
    }
}

/// Passes the oldest `n` blocks (1..=`transfer::BATCH` of them) of a full class on to the
/// transfer cache (or, when that is full or busy, back to the owners) and moves the rest down.
#[cold]
#[inline(never)]
fn pass_oldest(f: &mut ForeignBin, c: usize, n: usize) {
    if !transfer::put(c, &f.slots[..n]) {
        // SAFETY: the blocks in a foreign cache are free blocks of formatted slabs held by this
        // thread alone (see `keep`), as `send` requires.
        unsafe { send(&f.slots[..n]) };
    }
    f.slots.copy_within(n..f.n, 0);
    f.n -= n;
}

/// Fills the empty class `c` with a batch from the transfer cache; false if none came.
#[cold]
#[inline(never)]
fn refill(f: &mut ForeignBin, c: usize) -> bool {
    let Some(out) = f.slots.first_chunk_mut::<{ transfer::BATCH }>() else {
        return false;
    };
    f.n = transfer::take(c, out);
    f.n > 0
}

/// Sends every batch of the transfer cache back to the owners of its blocks (`malloc_trim`, a
/// failed mapping), so that their slabs can empty.
pub fn flush_transfer() {
    let mut batch = [0usize; transfer::BATCH];
    for c in 0..transfer::CLASSES {
        loop {
            let n = transfer::take(c, &mut batch);
            if n == 0 {
                break;
            }
            // SAFETY: blocks of the transfer cache are free blocks of formatted slabs, tagged,
            // counted as in use by their slabs, and now this thread's alone (taken above).
            unsafe { send(&batch[..n]) };
        }
    }
}

/// The slab descriptor of block `a` (a block of a formatted slab).
#[inline(always)]
fn slab_of_block(a: usize) -> *mut Slab {
    match crate::cage::slab_of(a) {
        Some(s) => s,
        None => crate::superslab::slab_of(a),
    }
}

/// Returns blocks to their slabs' owners: each run of consecutive blocks of one slab is linked
/// and pushed on the slab's remote stack with one CAS (the owner collects them as any remote
/// free).
///
/// # Safety
/// Each block is a free block of a formatted slab, tagged, held by the caller alone and counted
/// as in use by its slab.
pub unsafe fn send(blocks: &[usize]) {
    if blocks.is_empty() {
        return;
    }
    RETURNED.fetch_add(blocks.len() as u64, Relaxed);
    let mut i = 0;
    while i < blocks.len() {
        let head = blocks[i];
        let s = slab_of_block(head);
        // SAFETY: `head` is a block of formatted slab `s` that its slab counts as in use (this
        // fn's contract), so `s` keeps its owner and format until the push below publishes it;
        // its owner heap is never freed; `index_of` reads fields fixed while formatted.
        let (heap, k) = unsafe { ((*s).heap.load(Acquire), Slab::index_of(s, head)) };
        let mut tail = head;
        let mut last = k;
        let mut j = i + 1;
        while j < blocks.len() && slab_of_block(blocks[j]) == s {
            // SAFETY: as above: both blocks are this caller's, in slab `s`.
            unsafe {
                last = Slab::index_of(s, blocks[j]);
                freelist::set_next(tail, (blocks[j] - (*s).start) as u64);
            }
            tail = blocks[j];
            j += 1;
        }
        let n = (j - i) as u32;
        // SAFETY: the run's links are written before the CAS that publishes them; the tail's
        // link is the caller's to write until then; `thread_free` is atomic.
        if unsafe {
            remote_list::push_run(&(*s).thread_free, k, last, n, |old| {
                freelist::set_next(tail, (*s).offset_of(old))
            })
        } {
            // SAFETY: this push set NOTIFIED, so `s` is in no queue, and it stays owned (by
            // `heap`, or by a heap that took it over, to which `heap` passes it on) until its
            // consumer clears the bit (see `remote::free_remote`).
            unsafe { remote_list::enqueue(&(*heap).remote_slabs, s) };
        }
        i = j;
    }
}
