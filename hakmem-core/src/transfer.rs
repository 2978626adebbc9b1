//! The transfer cache: batches of blocks that threads' foreign caches overflowed with, shared by
//! all threads, so that a block one thread freed for another heap is reused by whichever thread
//! next needs its size class, as tcmalloc's transfer cache passes batches between thread caches.
//!
//! Without it an overflowing foreign cache sends its blocks home, where they wait until their
//! owner runs out of its own blocks of that class. With many threads that free each other's
//! blocks, every heap then keeps a stock of returned blocks it does not need yet while the
//! others carve fresh ones: `oversub_churn` (32 threads passing blocks at random) peaked at
//! about 100 MiB that way, and at about 57 MiB with this cache (bench/README.md).
//!
//! Each class has a few batches behind a try-lock: a thread that finds the lock taken never
//! waits, it sends its batch home or looks elsewhere for a block. The batches are bare
//! addresses; the blocks keep their free tag while they are here, so a double free of one is
//! still caught, and their slabs count them as in use, so the slabs keep owner and format.
//! `malloc_trim` and a failed mapping send every batch home (`foreign::flush_transfer`), so that
//! their slabs can empty; fork holds every class's lock (`fork`).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};

/// Classes with a transfer cache: those with a foreign cache (`foreign` checks the two agree).
pub const CLASSES: usize = 32;
/// Most blocks in a batch: half a full foreign cache.
pub const BATCH: usize = 16;
/// Batches one class keeps (a batch spans at most 16 KiB, half a foreign cache's bytes, so a
/// class keeps at most 64 KiB). Since parked heaps' slabs are taken over (`heap::adopt_parked`),
/// 16 batches no longer kept oversub_churn leaner, and cost producer/consumer pairs a fifth of
/// their peak RSS (bench/README.md, "The transfer cache's size").
const BATCHES: usize = 4;

/// Batches put into the cache (each saved a trip home for its blocks).
pub static PUT: AtomicU64 = AtomicU64::new(0);

struct Class {
    locked: AtomicBool,
    /// Batches held (read without the lock as a hint).
    n: AtomicUsize,
    /// Under the lock: the first `n` batches, with their lengths.
    lens: UnsafeCell<[usize; BATCHES]>,
    batches: UnsafeCell<[[usize; BATCH]; BATCHES]>,
}

// SAFETY: `lens` and `batches` are read and written only by the holder of `locked`.
unsafe impl Sync for Class {}

static CACHE: [Class; CLASSES] = [const {
    Class {
        locked: AtomicBool::new(false),
        n: AtomicUsize::new(0),
        lens: UnsafeCell::new([0; BATCHES]),
        batches: UnsafeCell::new([[0; BATCH]; BATCHES]),
    }
}; CLASSES];

impl Class {
    fn try_lock(&self) -> bool {
        !self.locked.load(Relaxed)
            && self
                .locked
                .compare_exchange(false, true, Acquire, Relaxed)
                .is_ok()
    }

    fn unlock(&self) {
        self.locked.store(false, Release);
    }
}

/// Stores `blocks` (at most `BATCH`) of class `c < CLASSES` as one batch; false when the class
/// is full or busy (the caller keeps the blocks).
pub fn put(c: usize, blocks: &[usize]) -> bool {
    debug_assert!(c < CLASSES && !blocks.is_empty() && blocks.len() <= BATCH);
    let k = &CACHE[c];
    if k.n.load(Relaxed) >= BATCHES || !k.try_lock() {
        return false;
    }
    let n = k.n.load(Relaxed);
    let ok = n < BATCHES;
    if ok {
        // SAFETY: this thread holds the class's lock, which guards `lens` and `batches`.
        unsafe {
            (&mut *k.batches.get())[n][..blocks.len()].copy_from_slice(blocks);
            (&mut *k.lens.get())[n] = blocks.len();
        }
        k.n.store(n + 1, Relaxed);
    }
    k.unlock();
    if ok {
        PUT.fetch_add(1, Relaxed);
    }
    ok
}

/// Moves the newest batch of class `c < CLASSES` into `out`; its length (0 when the class is
/// empty or busy).
pub fn take(c: usize, out: &mut [usize; BATCH]) -> usize {
    let k = &CACHE[c];
    if k.n.load(Relaxed) == 0 || !k.try_lock() {
        return 0;
    }
    let n = k.n.load(Relaxed);
    let mut len = 0;
    if n > 0 {
        // SAFETY: this thread holds the class's lock, which guards `lens` and `batches`.
        unsafe {
            len = (&*k.lens.get())[n - 1];
            out[..len].copy_from_slice(&(&*k.batches.get())[n - 1][..len]);
        }
        k.n.store(n - 1, Relaxed);
    }
    k.unlock();
    len
}

/// Blocks held now, all classes (a snapshot, for statistics and tests).
pub fn held() -> usize {
    let mut total = 0;
    for k in &CACHE {
        if k.try_lock() {
            // SAFETY: this thread holds the class's lock, which guards `lens`.
            let lens = unsafe { &*k.lens.get() };
            total += lens[..k.n.load(Relaxed)].iter().sum::<usize>();
            k.unlock();
        }
    }
    total
}

/// Takes every class's lock, waiting for holders (fork's prepare: nobody holds one for more
/// than a copy of a batch).
pub fn lock_all() {
    for k in &CACHE {
        while !k.try_lock() {
            core::hint::spin_loop();
        }
    }
}

/// Releases the locks `lock_all` took (fork's parent and child handlers).
pub fn unlock_all() {
    for k in &CACHE {
        k.unlock();
    }
}
