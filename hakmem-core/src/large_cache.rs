//! The cache of freed large mappings, shared by all threads without a lock: a fixed array of
//! slots, each claimed with one compare-and-swap (empty → busy → full and back). A thread that
//! holds a slot busy owns the range in it; every other thread reads a busy or full slot's fields
//! only as a hint and re-reads them once it has claimed the slot.
//!
//! Freed ranges are merged with cached neighbours and a cached range is split when a smaller
//! block is asked for (a cached range is just address space, so both cost no system call).
//! A thread that stops in the middle of an operation (fork in another thread) leaves one slot
//! busy in the child: that range stays mapped and unused there, nothing else is harmed.

use crate::os;
use core::sync::atomic::{
    AtomicU64, AtomicU8, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};

const SLOTS: usize = 64;
/// A cached range is split when the rest is at least this big.
const SPLIT_MIN: usize = 64 << 10;
/// How often a thread looks again when another thread claimed the slot it chose.
const TRIES: usize = 4;

const EMPTY: u8 = 0;
const BUSY: u8 = 1;
const FULL: u8 = 2;

struct Slot {
    state: AtomicU8,
    base: AtomicUsize,
    len: AtomicUsize,
    since: AtomicU64,
}

static CACHE: [Slot; SLOTS] = [const {
    Slot {
        state: AtomicU8::new(EMPTY),
        base: AtomicUsize::new(0),
        len: AtomicUsize::new(0),
        since: AtomicU64::new(0),
    }
}; SLOTS];

/// Bytes and ranges cached: raised before a range becomes visible, lowered after it was
/// claimed, so they never drop below the truth (they may run above it for a moment).
static BYTES: AtomicUsize = AtomicUsize::new(0);
static COUNT: AtomicUsize = AtomicUsize::new(0);
/// No cached range is older than this (ms), as far as the last walk of `take_expired` saw:
/// until the oldest is `decay_ms` old, a cache within its size limit has nothing to expire and
/// is not walked. A hint: a range busy during that walk (split by `take_front`, which keeps its
/// age) may be older, and then expires one walk late.
static OLDEST: AtomicU64 = AtomicU64::new(0);
/// The fewest bytes the cache held since the current window began (its low-water mark): bytes
/// that stayed cached for a whole window were not needed to serve any allocation in it.
static LOW: AtomicUsize = AtomicUsize::new(0);
/// When the current low-water window began (ms).
static WINDOW: AtomicU64 = AtomicU64::new(0);

/// A range of address space: a whole mapping of ours or part of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub base: usize,
    pub len: usize,
}

impl Slot {
    /// Claims a full slot; on success the caller owns its range until it fills or empties it.
    fn claim(&self) -> bool {
        self.state
            .compare_exchange(FULL, BUSY, Acquire, Relaxed)
            .is_ok()
    }

    /// The range of a slot: exact once claimed, a hint otherwise.
    fn range(&self) -> Range {
        Range {
            base: self.base.load(Relaxed),
            len: self.len.load(Relaxed),
        }
    }

    /// Publishes `r` in a slot this thread holds busy.
    fn fill(&self, r: Range, since: u64) {
        self.base.store(r.base, Relaxed);
        self.len.store(r.len, Relaxed);
        self.since.store(since, Relaxed);
        self.state.store(FULL, Release);
    }

    /// Hands out the front `want` bytes of `c`, the range of this slot that this thread holds
    /// busy, and keeps the rest cached in the slot when it is worth keeping; else all of `c`
    /// (which may be shorter than `want`), the slot emptied.
    fn take_front(&self, c: Range, want: usize) -> Range {
        if c.len >= want && c.len - want >= SPLIT_MIN {
            take_bytes(want);
            self.fill(
                Range {
                    base: c.base + want,
                    len: c.len - want,
                },
                self.since.load(Relaxed),
            );
            return Range {
                base: c.base,
                len: want,
            };
        }
        self.empty(c);
        c
    }

    /// Empties a slot this thread holds busy, after taking its range out of the cache.
    fn empty(&self, r: Range) {
        take_bytes(r.len);
        self.vacate();
    }

    /// Empties a slot this thread holds busy whose range is merged into another (still
    /// cached: the low-water mark does not see it go).
    fn merge_out(&self, r: Range) {
        BYTES.fetch_sub(r.len, Relaxed);
        self.vacate();
    }

    fn vacate(&self) {
        COUNT.fetch_sub(1, Relaxed);
        self.state.store(EMPTY, Release);
    }
}

/// Takes `n` bytes out of the cache's count (a range handed out, not merged) and lowers the
/// low-water mark to what is left.
#[inline]
fn take_bytes(n: usize) {
    let left = BYTES.fetch_sub(n, Relaxed).saturating_sub(n);
    if left < LOW.load(Relaxed) {
        LOW.fetch_min(left, Relaxed);
    }
}

/// Closes the low-water window once it is `window_ms` old: returns the fewest bytes the cache
/// held during it (bytes no allocation needed: what the caller may release) and starts the next
/// window at what the cache holds now. None while the window is open, or when another thread
/// closed it first. jemalloc's decay and tcmalloc's thread-cache scavenger release memory by the
/// same measure: what sat unused for a whole interval.
pub fn close_window(now: u64, window_ms: u64) -> Option<usize> {
    let start = WINDOW.load(Relaxed);
    if now.saturating_sub(start) < window_ms
        || WINDOW
            .compare_exchange(start, now, Relaxed, Relaxed)
            .is_err()
    {
        return None;
    }
    Some(LOW.swap(BYTES.load(Relaxed), Relaxed))
}

/// Cached ranges and their bytes now.
pub fn usage() -> (usize, usize) {
    (COUNT.load(Relaxed), BYTES.load(Relaxed))
}

/// Takes cached memory for `len` bytes: the smallest cached range that fits, split if it is
/// bigger (the rest stays cached); else, when `or_smaller`, the largest range that does not
/// fit, for the caller to grow. None if the cache has neither. Without `or_smaller`, the range
/// is never shorter than `len`; with it, a range may be shorter even when one fitted (another
/// thread refilled the slot meanwhile), so the caller checks.
pub fn take(len: usize, or_smaller: bool) -> Option<Range> {
    for _ in 0..TRIES {
        let mut best: Option<(usize, usize)> = None;
        let mut below: Option<(usize, usize)> = None;
        for (i, s) in CACHE.iter().enumerate() {
            if s.state.load(Relaxed) != FULL {
                continue;
            }
            let n = s.len.load(Relaxed);
            if n >= len {
                if best.is_none_or(|(_, b)| n < b) {
                    best = Some((i, n));
                }
            } else if or_smaller && below.is_none_or(|(_, b)| n > b) {
                below = Some((i, n));
            }
        }
        let (i, _) = best.or(below)?;
        let s = &CACHE[i];
        if !s.claim() {
            continue;
        }
        let c = s.range();
        if c.len < len && !or_smaller {
            // The slot was emptied and filled again with a shorter range since the walk saw
            // it: put it back and look again.
            s.state.store(FULL, Release);
            continue;
        }
        return Some(s.take_front(c, len));
    }
    None
}

/// Takes the cached range that starts at `base` (just past a block that grows into it), if it
/// holds at least `min` bytes: `want` bytes of it when the rest is worth keeping cached, else
/// all of it. None if no cached range starts there or it is too short.
pub fn take_at(base: usize, min: usize, want: usize) -> Option<Range> {
    let s = CACHE
        .iter()
        .find(|s| s.state.load(Relaxed) == FULL && s.base.load(Relaxed) == base)?;
    if !s.claim() {
        return None;
    }
    let c = s.range();
    if c.base != base || c.len < min {
        s.state.store(FULL, Release);
        return None;
    }
    Some(s.take_front(c, want))
}

/// Adds a freed range to the cache, merged with cached neighbours. Returns the range (merged)
/// for the caller to unmap if no slot is free.
pub fn put(r: Range) -> Option<Range> {
    let now = os::now_ms();
    let mut r = r;
    let mut merged = true;
    while merged {
        merged = false;
        for s in CACHE.iter() {
            if s.state.load(Relaxed) != FULL || !adjacent(s.range(), r) || !s.claim() {
                continue;
            }
            let c = s.range();
            if adjacent(c, r) {
                s.merge_out(c);
                r = Range {
                    base: r.base.min(c.base),
                    len: r.len + c.len,
                };
                merged = true;
            } else {
                s.state.store(FULL, Release);
            }
        }
    }
    for s in CACHE.iter() {
        if s.state.load(Relaxed) == EMPTY
            && s.state
                .compare_exchange(EMPTY, BUSY, Acquire, Relaxed)
                .is_ok()
        {
            BYTES.fetch_add(r.len, Relaxed);
            COUNT.fetch_add(1, Relaxed);
            s.fill(r, now);
            return None;
        }
    }
    Some(r)
}

fn adjacent(a: Range, b: Range) -> bool {
    a.base + a.len == b.base || b.base + b.len == a.base
}

/// Takes the oldest cached range if it is older than `decay_ms` or the cache holds more than
/// `keep_bytes`; None otherwise.
pub fn take_expired(now: u64, decay_ms: u64, keep_bytes: usize) -> Option<Range> {
    if BYTES.load(Relaxed) <= keep_bytes && now.saturating_sub(OLDEST.load(Relaxed)) < decay_ms {
        return None;
    }
    for _ in 0..TRIES {
        let mut oldest: Option<(usize, u64)> = None;
        for (i, s) in CACHE.iter().enumerate() {
            if s.state.load(Relaxed) != FULL {
                continue;
            }
            let t = s.since.load(Relaxed);
            if oldest.is_none_or(|(_, o)| t < o) {
                oldest = Some((i, t));
            }
        }
        let Some((i, t)) = oldest else {
            OLDEST.store(now, Relaxed);
            return None;
        };
        if BYTES.load(Relaxed) <= keep_bytes && now.saturating_sub(t) < decay_ms {
            OLDEST.store(t, Relaxed);
            return None;
        }
        let s = &CACHE[i];
        if s.claim() {
            let c = s.range();
            s.empty(c);
            return Some(c);
        }
    }
    None
}

/// Takes any cached range (for trimming); None when the cache is empty.
pub fn take_any() -> Option<Range> {
    for s in CACHE.iter() {
        if s.claim() {
            let c = s.range();
            s.empty(c);
            return Some(c);
        }
    }
    None
}
