//! Large blocks (over 256 KiB, or aligned past a page): their own mappings, recorded in a hash
//! table keyed by address, and a cache of recently freed mappings so that programs which keep
//! allocating and freeing big buffers pay neither mmap/munmap nor fresh page faults each time.
//! A cached mapping that is too big is trimmed, one that is too small is grown with mremap
//! (the kernel moves page tables, not bytes). System calls are made outside the lock.

use crate::os::{self, PAGE};
use crate::policy::{self, Opt};
use crate::sync::Mutex;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

#[derive(Clone, Copy)]
struct Entry {
    ptr: usize, // 0: empty slot
    base: usize,
    len: usize,
}

const EMPTY: Entry = Entry {
    ptr: 0,
    base: 0,
    len: 0,
};
const CACHE_SLOTS: usize = 32;
/// A cached range is split when the rest is at least this big.
const SPLIT_MIN: usize = 64 << 10;

#[derive(Clone, Copy)]
struct Cached {
    base: usize,
    len: usize,
    since: u64,
}

struct Large {
    table: *mut Entry,
    cap: usize, // power of two, or 0
    count: usize,
    cache: [Cached; CACHE_SLOTS],
    cached: usize,
    cached_bytes: usize,
}

// SAFETY: only used under its lock.
unsafe impl Send for Large {}

static LARGE: Mutex<Large> = Mutex::new(Large {
    table: ptr::null_mut(),
    cap: 0,
    count: 0,
    cache: [Cached {
        base: 0,
        len: 0,
        since: 0,
    }; CACHE_SLOTS],
    cached: 0,
    cached_bytes: 0,
});

pub static ALLOCS: AtomicUsize = AtomicUsize::new(0);
pub static FREES: AtomicUsize = AtomicUsize::new(0);
pub static CACHE_HITS: AtomicUsize = AtomicUsize::new(0);

fn hash(p: usize) -> usize {
    (p >> 12).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20
}

impl Large {
    /// The slot of `p`'s entry, if any.
    ///
    /// # Safety
    /// `self` is the guarded table (its lock is held), so `table` holds `cap` entries (a power
    /// of two), less than half of them used.
    unsafe fn find(&self, p: usize) -> Option<usize> {
        if self.cap == 0 {
            return None;
        }
        let mask = self.cap - 1;
        let mut i = hash(p) & mask;
        loop {
            // SAFETY: `i <= mask < cap`, inside the table (this fn's contract).
            let e = unsafe { *self.table.add(i) };
            if e.ptr == p {
                return Some(i);
            }
            if e.ptr == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds `e`, growing the table when half full; false when that fails.
    ///
    /// # Safety
    /// As for `find`.
    unsafe fn insert(&mut self, e: Entry) -> bool {
        // SAFETY: the caller holds the lock (this fn's contract).
        if (self.count + 1) * 2 > self.cap && !unsafe { self.grow() } {
            return false;
        }
        let mask = self.cap - 1;
        let mut i = hash(e.ptr) & mask;
        // SAFETY: every index is masked below `cap`, inside the table; the table is less than
        // half full, so the probe ends at an empty slot.
        unsafe {
            while (*self.table.add(i)).ptr != 0 {
                i = (i + 1) & mask;
            }
            *self.table.add(i) = e;
        }
        self.count += 1;
        true
    }

    /// Doubles the table (256 entries at first) and rehashes; false when out of memory.
    ///
    /// # Safety
    /// As for `find`.
    unsafe fn grow(&mut self) -> bool {
        let cap = if self.cap == 0 { 256 } else { self.cap * 2 };
        let t = os::map(cap * core::mem::size_of::<Entry>(), false) as *mut Entry;
        if t.is_null() {
            return false;
        }
        let (old, old_cap) = (self.table, self.cap);
        self.table = t;
        self.cap = cap;
        self.count = 0;
        for i in 0..old_cap {
            // SAFETY: `i < old_cap`, inside the old table, still mapped; the new one has room
            // for every old entry at under half load, so `insert` does not grow again.
            unsafe {
                let e = *old.add(i);
                if e.ptr != 0 {
                    self.insert(e);
                }
            }
        }
        if !old.is_null() {
            // SAFETY: the old table was mapped with this length and nothing refers to it now.
            unsafe { os::unmap(old as *mut u8, old_cap * core::mem::size_of::<Entry>()) };
        }
        true
    }

    /// Removes slot `i` (linear probing with backward-shift deletion: no tombstones).
    ///
    /// # Safety
    /// As for `find`, and `i < cap` is a used slot.
    unsafe fn remove_at(&mut self, mut i: usize) -> Entry {
        let mask = self.cap - 1;
        // SAFETY: `i < cap` (this fn's contract), inside the table.
        let e = unsafe { *self.table.add(i) };
        // SAFETY: as above.
        unsafe { *self.table.add(i) = EMPTY };
        self.count -= 1;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            // SAFETY: `j` is masked below `cap`, inside the table.
            let f = unsafe { *self.table.add(j) };
            if f.ptr == 0 {
                break;
            }
            let home = hash(f.ptr) & mask;
            // Move `f` back to `i` if its home is not in the cyclic range (i, j].
            let in_range = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !in_range {
                // SAFETY: `i` and `j` are both masked below `cap`, inside the table.
                unsafe {
                    *self.table.add(i) = f;
                    *self.table.add(j) = EMPTY;
                }
                i = j;
            }
        }
        e
    }

    /// Takes cached memory for `len` bytes: the smallest cached range that fits, split if it is
    /// bigger (a cached range is just address space, so splitting costs no system call); else
    /// the largest range that does not fit, to be grown with mremap.
    fn cache_take(&mut self, len: usize) -> Option<Cached> {
        let mut best: Option<usize> = None;
        let mut below: Option<usize> = None;
        for i in 0..self.cached {
            let c = self.cache[i];
            if c.len >= len {
                if best.is_none_or(|b| c.len < self.cache[b].len) {
                    best = Some(i);
                }
            } else if below.is_none_or(|b| c.len > self.cache[b].len) {
                below = Some(i);
            }
        }
        if let Some(i) = best {
            let c = self.cache[i];
            if c.len - len >= SPLIT_MIN {
                self.cache[i].base += len;
                self.cache[i].len -= len;
                self.cached_bytes -= len;
                return Some(Cached {
                    base: c.base,
                    len,
                    since: c.since,
                });
            }
            self.remove_cached(i);
            return Some(c);
        }
        let i = below?;
        let c = self.cache[i];
        self.remove_cached(i);
        Some(c)
    }

    fn remove_cached(&mut self, i: usize) {
        self.cached_bytes -= self.cache[i].len;
        self.cached -= 1;
        self.cache[i] = self.cache[self.cached];
    }

    /// Adds a freed range to the cache, merged with cached neighbours. Returns a range to unmap
    /// if the cache has no room.
    fn cache_put(&mut self, base: usize, len: usize) -> Option<Cached> {
        let now = os::now_ms();
        let mut r = Cached {
            base,
            len,
            since: now,
        };
        let mut i = 0;
        while i < self.cached {
            let c = self.cache[i];
            if c.base + c.len == r.base || r.base + r.len == c.base {
                r = Cached {
                    base: r.base.min(c.base),
                    len: r.len + c.len,
                    since: now,
                };
                self.remove_cached(i);
                continue;
            }
            i += 1;
        }
        if self.cached == CACHE_SLOTS {
            return Some(r);
        }
        self.cache[self.cached] = r;
        self.cached += 1;
        self.cached_bytes += r.len;
        None
    }

    /// Drops cache entries older than the decay, or beyond `keep_bytes`; returns one to unmap.
    fn cache_evict_one(&mut self, now: u64, keep_bytes: usize) -> Option<Cached> {
        let decay = policy::get(Opt::LargeCacheMs) as u64;
        let mut oldest: Option<usize> = None;
        for i in 0..self.cached {
            if oldest.is_none_or(|o| self.cache[i].since < self.cache[o].since) {
                oldest = Some(i);
            }
        }
        let i = oldest?;
        let c = self.cache[i];
        if self.cached_bytes <= keep_bytes && now.saturating_sub(c.since) < decay {
            return None;
        }
        self.cached -= 1;
        self.cache[i] = self.cache[self.cached];
        self.cached_bytes -= c.len;
        Some(c)
    }
}

fn cache_limit() -> usize {
    (policy::get(Opt::LargeCacheMb) as usize) << 20
}

/// Unmaps cache entries past the limits (decay, size), outside the lock.
fn evict(keep_bytes: usize) -> usize {
    let now = os::now_ms();
    let mut released = 0;
    loop {
        let victim = LARGE.lock().cache_evict_one(now, keep_bytes);
        match victim {
            Some(c) => {
                // SAFETY: a cached mapping holds no live block and was removed from the cache.
                unsafe { os::unmap(c.base as *mut u8, c.len) };
                released += c.len;
            }
            None => return released,
        }
    }
}

/// A large block of `size` bytes aligned to `align`, zeroed when `zero` asks (only the bytes
/// a reused mapping may have dirtied are cleared); null (and errno ENOMEM) on failure. No
/// checking-mode trailer: `alloc::large_alloc` and `check::large_alloc` add what they need.
pub fn block(size: usize, align: usize, zero: bool) -> *mut u8 {
    let (p, dirty) = alloc(size, align);
    if zero && !p.is_null() && dirty > 0 {
        // SAFETY: `p` is a new block of at least `size` bytes; past `dirty` it is zero already.
        unsafe { ptr::write_bytes(p, 0, size.min(dirty)) };
    }
    p
}

/// Allocates a large block of `size` bytes aligned to `align`. The second value is how many
/// leading bytes may be non-zero (0 for fresh pages; mremap's new pages are zero too).
/// Null (and errno ENOMEM) on failure.
pub fn alloc(size: usize, align: usize) -> (*mut u8, usize) {
    let extra = if align > PAGE { align } else { 0 };
    let len = match size.checked_add(PAGE - 1 + extra) {
        Some(n) if n <= isize::MAX as usize => n & !(PAGE - 1),
        _ => {
            os::set_errno(libc::ENOMEM);
            return (ptr::null_mut(), 0);
        }
    };
    let mut dirty = 0;
    let mut got: Option<(usize, usize)> = None;
    if extra == 0 && cache_limit() > 0 {
        let c = LARGE.lock().cache_take(len);
        if let Some(c) = c {
            // SAFETY: `c` is a cached range of ours that nothing uses.
            unsafe {
                if c.len >= len {
                    got = Some((c.base, c.len));
                    dirty = len;
                } else {
                    let q = os::remap(c.base as *mut u8, c.len, len);
                    if q.is_null() {
                        os::unmap(c.base as *mut u8, c.len);
                    } else {
                        got = Some((q as usize, len));
                        dirty = c.len;
                    }
                }
            }
            if got.is_some() {
                CACHE_HITS.fetch_add(1, Relaxed);
            }
        }
    }
    let (base, mlen) = match got {
        Some(g) => g,
        None => {
            let huge = policy::get(Opt::HugePage) >= 1 && len >= os::HUGE;
            let map = || {
                if huge {
                    os::map_aligned(len, os::HUGE, false)
                } else {
                    os::map(len, false)
                }
            };
            let mut m = map();
            if m.is_null() && trim() > 0 {
                // Out of address space (RLIMIT_AS) or memory: the cached ranges go back first.
                m = map();
            }
            if huge && !m.is_null() {
                // SAFETY: `m` is the mapping just made.
                unsafe { os::hugepage(m, len) };
            }
            if m.is_null() {
                os::set_errno(libc::ENOMEM);
                return (ptr::null_mut(), 0);
            }
            (m as usize, len)
        }
    };
    let p = if extra > 0 {
        (base + align - 1) & !(align - 1)
    } else {
        base
    };
    let ok = {
        let mut l = LARGE.lock();
        // SAFETY: the table is only touched under the lock.
        unsafe {
            l.insert(Entry {
                ptr: p,
                base,
                len: mlen,
            })
        }
    };
    if !ok {
        // SAFETY: the mapping was just made and was never handed out.
        unsafe { os::unmap(base as *mut u8, mlen) };
        os::set_errno(libc::ENOMEM);
        return (ptr::null_mut(), 0);
    }
    ALLOCS.fetch_add(1, Relaxed);
    (p as *mut u8, dirty)
}

/// Frees a large block; false if `p` is not one.
pub fn free(p: *mut u8) -> bool {
    let limit = cache_limit();
    let e = {
        let mut l = LARGE.lock();
        // SAFETY: the table is only touched under the lock.
        unsafe {
            let Some(i) = l.find(p as usize) else {
                return false;
            };
            let e = l.remove_at(i);
            if e.len <= limit {
                l.cache_put(e.base, e.len).map(|c| Entry {
                    ptr: c.base,
                    base: c.base,
                    len: c.len,
                })
            } else {
                Some(e)
            }
        }
    };
    FREES.fetch_add(1, Relaxed);
    match e {
        // SAFETY: the entry was removed, so nothing else refers to its mapping.
        Some(e) => unsafe { os::unmap(e.base as *mut u8, e.len) },
        None => {
            evict(limit);
        }
    }
    true
}

/// Usable bytes of large block `p`, or None if it is not one.
pub fn usable_size(p: *mut u8) -> Option<usize> {
    let l = LARGE.lock();
    // SAFETY: the table is only touched under the lock.
    unsafe {
        l.find(p as usize)
            .map(|i| *l.table.add(i))
            .map(|e| e.len - (e.ptr - e.base))
    }
}

/// Large blocks now: (blocks in use, bytes mapped for them, cached free mappings, their bytes).
/// Walks the table under the lock: for introspection (mallinfo and the like), not for hot paths.
pub fn usage() -> (usize, usize, usize, usize) {
    let l = LARGE.lock();
    let mut bytes = 0;
    for i in 0..l.cap {
        // SAFETY: the table has `cap` entries and is only touched under the lock.
        let e = unsafe { *l.table.add(i) };
        if e.ptr != 0 {
            bytes += e.len;
        }
    }
    (l.count, bytes, l.cached, l.cached_bytes)
}

pub enum Realloc {
    /// `p` is not a large block.
    NotLarge,
    /// Out of memory; the block is unchanged.
    Failed,
    /// An over-aligned block: the caller allocates, copies and frees.
    Move,
    Done(*mut u8),
}

/// Resizes large block `p` to `size` (> MAX_SMALL) in place or with mremap (no copying).
pub fn realloc(p: *mut u8, size: usize) -> Realloc {
    let Some(len) = size
        .checked_add(PAGE - 1)
        .filter(|n| *n <= isize::MAX as usize)
        .map(|n| n & !(PAGE - 1))
    else {
        let l = LARGE.lock();
        // SAFETY: the table is only touched under the lock.
        return match unsafe { l.find(p as usize) } {
            Some(_) => {
                os::set_errno(libc::ENOMEM);
                Realloc::Failed
            }
            None => Realloc::NotLarge,
        };
    };
    let e = {
        let mut l = LARGE.lock();
        // SAFETY: the table is only touched under the lock.
        unsafe {
            let Some(i) = l.find(p as usize) else {
                return Realloc::NotLarge;
            };
            let e = *l.table.add(i);
            if e.ptr != e.base {
                return Realloc::Move;
            }
            if len <= e.len && len * 2 >= e.len {
                return Realloc::Done(p);
            }
            l.remove_at(i)
        }
    };
    // Growing: leave half again as much room, so a block that keeps growing (a vector, a
    // string) needs a system call only every so often. The extra pages stay virtual until used.
    let len = if len > e.len {
        len.max((e.len + e.len / 2 + PAGE - 1) & !(PAGE - 1))
    } else {
        len
    };
    let saved_errno = os::errno();
    // SAFETY: the entry was removed; the mapping is ours alone until reinserted.
    let q = unsafe { os::remap(e.base as *mut u8, e.len, len) };
    let (ptr_, len_) = if q.is_null() {
        (e.base, e.len)
    } else {
        (q as usize, len)
    };
    let ok = {
        let mut l = LARGE.lock();
        // SAFETY: as above.
        unsafe {
            l.insert(Entry {
                ptr: ptr_,
                base: ptr_,
                len: len_,
            })
        }
    };
    if !ok {
        os::set_errno(libc::ENOMEM);
        return Realloc::Failed;
    }
    if q.is_null() {
        os::set_errno(saved_errno);
        // mremap refuses ranges that span two kernel mappings (cached ranges can be merged from
        // separate ones): allocate, copy and free instead.
        return Realloc::Move;
    }
    Realloc::Done(q)
}

/// Returns every cached mapping to the OS; the bytes unmapped.
pub fn trim() -> usize {
    let mut released = evict(0);
    loop {
        let c = {
            let mut l = LARGE.lock();
            if l.cached == 0 {
                break;
            }
            l.cached -= 1;
            let n = l.cached;
            let c = l.cache[n];
            l.cached_bytes -= c.len;
            c
        };
        // SAFETY: removed from the cache; nothing refers to it.
        unsafe { os::unmap(c.base as *mut u8, c.len) };
        released += c.len;
    }
    released
}

/// The large-block table lock's counters.
pub fn lock_counts() -> crate::sync::LockCounts {
    LARGE.counts()
}

pub fn lock_for_fork() {
    LARGE.raw_lock();
}

/// # Safety
/// After `lock_for_fork`, in the parent or the child of fork.
pub unsafe fn unlock_after_fork() {
    // SAFETY: the caller's promise: this process holds the lock from `lock_for_fork`.
    unsafe { LARGE.force_unlock() };
}
