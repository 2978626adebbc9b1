//! Large blocks (over 256 KiB, or aligned past a page): their own mappings, found by address
//! in `large_map` (no lock), and a cache of recently freed mappings (`large_cache`, no lock)
//! so that programs which keep allocating and freeing big buffers pay neither mmap/munmap nor
//! fresh page faults each time. A cached mapping that is too big is split. A block of 2 MiB or
//! more that no cached range holds is a fresh mapping whose pages are, from its start, those of
//! cached ranges moved there with mremap (the kernel moves page tables, not bytes), so only
//! what the cache cannot cover is faulted afresh; a smaller one grows the longest shorter cached
//! range with mremap. A block that realloc grows takes cached pages first: the cached range
//! just past its end, or (up to 2 MiB, where copying costs less than faulting fresh pages) a
//! cached range it is copied into; only then mremap, and the part mremap adds takes cached pages
//! the same way. So the cache's pages, all touched once, are what growing blocks reuse, and the
//! cache stays near the program's peak footprint instead of filling up with pages faulted
//! afresh. A block made of several cached ranges spans several kernel mappings, which mremap
//! refuses to move or grow as one: realloc moves such a block 2 MiB at a time (`move_into`).
//!
//! With huge pages on (HAKMEM_HUGEPAGE >= 1), mappings of 2 MiB and more are whole 2 MiB
//! pages long: the kernel then places them (and moves them in mremap) on 2 MiB boundaries by
//! itself, so a fresh mapping costs one mmap and one madvise, and pieces split from cached ones
//! stay aligned for huge pages.

use crate::large_cache::{self, Range};
use crate::large_map::{self, Mapping};
use crate::os::{self, PAGE};
use crate::policy::{self, Opt};
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

pub static ALLOCS: AtomicUsize = AtomicUsize::new(0);
pub static FREES: AtomicUsize = AtomicUsize::new(0);
pub static CACHE_HITS: AtomicUsize = AtomicUsize::new(0);
/// Blocks grown by realloc with cached pages: into the cached range just past their end, or
/// copied into a cached range (no fresh pages either way).
pub static REALLOC_CACHE_HITS: AtomicUsize = AtomicUsize::new(0);
/// The biggest block that realloc copies into a cached range rather than growing with mremap.
const COPY_MAX: usize = os::HUGE;
/// Live large blocks and the bytes mapped for them.
static LIVE: AtomicUsize = AtomicUsize::new(0);
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
/// The most bytes live large blocks have held at once (the cache's limit grows with it).
static LIVE_PEAK: AtomicUsize = AtomicUsize::new(0);

/// Bytes of freed large blocks the cache may hold: the policy's figure beyond half the most the
/// program has had live in large blocks (a program that keeps replacing a few big buffers then
/// reuses their pages instead of faulting fresh ones each time; the decay time still unmaps
/// what stays unused). Half, not all: with all of it, peak RSS on `large` and `large_5_25m` (the
/// runner's full arguments) reached 1.3x the leanest peer's, for 5-35% fewer faults than with
/// half (bench/README.md). 0 when the policy turns the cache off.
fn cache_limit() -> usize {
    let floor = (policy::get(Opt::LargeCacheMb) as usize) << 20;
    if floor == 0 {
        0
    } else {
        floor.saturating_add(LIVE_PEAK.load(Relaxed) / 2)
    }
}

/// Mapping length for `n` bytes: whole pages, whole huge pages from 2 MiB on when they are
/// used. None on overflow.
fn mapping_len(n: usize) -> Option<usize> {
    let len = n.checked_add(PAGE - 1)? & !(PAGE - 1);
    let len = if len >= os::HUGE && policy::get(Opt::HugePage) >= 1 {
        len.checked_add(os::HUGE - 1)? & !(os::HUGE - 1)
    } else {
        len
    };
    (len <= isize::MAX as usize).then_some(len)
}

/// Bytes of cached ranges unmapped: by the decay, the cache's size limit, trims and retries.
pub static UNMAPPED_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Unmaps cached ranges past the limits: those unused for HAKMEM_LARGE_CACHE_MS and those
/// beyond `keep_bytes`; and, each time a window of HAKMEM_LARGE_CACHE_MS closes, half of the
/// bytes that stayed cached through the whole window (oldest ranges first). Ranges in steady
/// use are split and merged again and again, so none of them gets old: without the window a
/// cache that once grew (its ranges fragmented) kept its size for good (`soak`: 8-15 MiB
/// cached beside 4 MiB of live large blocks; bench/README.md).
fn evict(keep_bytes: usize) -> usize {
    let now = os::now_ms();
    let decay = policy::get(Opt::LargeCacheMs) as u64;
    let mut released = 0;
    while let Some(c) = large_cache::take_expired(now, decay, keep_bytes) {
        // SAFETY: a cached range holds no live block and was taken out of the cache.
        unsafe { os::unmap(c.base as *mut u8, c.len) };
        released += c.len;
    }
    if let Some(unused) = large_cache::close_window(now, decay) {
        let mut quota = unused / 2;
        while quota > 0 {
            // No decay time and nothing to keep: the oldest range, whatever its age.
            let Some(c) = large_cache::take_expired(now, 0, 0) else {
                break;
            };
            // SAFETY: as above.
            unsafe { os::unmap(c.base as *mut u8, c.len) };
            released += c.len;
            quota = quota.saturating_sub(c.len);
        }
    }
    if released > 0 {
        UNMAPPED_BYTES.fetch_add(released, Relaxed);
    }
    released
}

/// Caches a freed range (or unmaps it when the cache is full), then applies the limits.
fn retire(r: Range, limit: usize) {
    crate::background::note_release();
    if r.len <= limit {
        if let Some(c) = large_cache::put(r) {
            // SAFETY: the range left the cache (or never entered it) and holds no live block.
            unsafe { os::unmap(c.base as *mut u8, c.len) };
        }
        evict(limit);
    } else {
        // SAFETY: the range holds no live block and nothing else refers to it.
        unsafe { os::unmap(r.base as *mut u8, r.len) };
    }
}

/// `evict` within the cache's limit, for the background thread (`background`): cached ranges
/// past their time go back while no block is freed.
pub fn decay_cached() {
    let limit = cache_limit();
    if limit > 0 {
        evict(limit);
    }
}

/// Records the block at `p` in mapping `m`; false if the map has no room (out of memory).
fn record(p: usize, m: Mapping) -> bool {
    if !large_map::insert(p, m) {
        return false;
    }
    LIVE.fetch_add(1, Relaxed);
    let live = LIVE_BYTES.fetch_add(m.len, Relaxed) + m.len;
    if live > LIVE_PEAK.load(Relaxed) {
        LIVE_PEAK.fetch_max(live, Relaxed);
    }
    true
}

/// `record`, and when the block map could not map a new leaf for `p`, the same again once what
/// hakmem keeps cached went back (as for a block's own mapping); false if that failed too.
fn record_or_release(p: usize, m: Mapping) -> bool {
    record(p, m) || (crate::pool::release_for_retry() > 0 && record(p, m))
}

/// Takes the record of the live block at `p`; its mapping is the caller's from now on.
fn unrecord(p: usize) -> Option<Mapping> {
    let m = large_map::take(p)?;
    LIVE.fetch_sub(1, Relaxed);
    LIVE_BYTES.fetch_sub(m.len, Relaxed);
    Some(m)
}

/// A fresh mapping of `len` bytes (huge pages asked for from 2 MiB on), or null.
fn map_fresh(len: usize) -> *mut u8 {
    if len < os::HUGE || policy::get(Opt::HugePage) == 0 {
        return os::map(len, false);
    }
    let m = os::map_aligned(len, os::HUGE, false);
    if !m.is_null() {
        // SAFETY: `m` is the mapping just made.
        unsafe { os::hugepage(m, len) };
    }
    m
}

/// A large block of `size` bytes aligned to `align`, zeroed when `zero` asks (only the bytes
/// a reused mapping may have dirtied are cleared); null (and errno ENOMEM) on failure. No
/// checking-mode trailer: `alloc::large_alloc` and `check::large_alloc` add what they need.
pub fn block(size: usize, align: usize, zero: bool) -> *mut u8 {
    let (p, dirty) = alloc(size, align);
    if zero && !p.is_null() && dirty > 0 {
        // SAFETY: `p` is a new block of at least `size` bytes; past `dirty` it is zero already.
        unsafe { clear(p, size.min(dirty)) };
    }
    p
}

/// Dirty bytes from which a reused range is zeroed by handing its pages back (the kernel maps
/// zero pages on the next touch) rather than by writing zeros: a huge calloc from the cache then
/// costs neither the writes nor resident memory for pages the program never touches.
const CLEAR_BY_PURGE: usize = 1 << 20;

/// Zeroes `len` bytes at `p`.
///
/// # Safety
/// `p..p + len` lies in a large block the caller just allocated and owns.
unsafe fn clear(p: *mut u8, len: usize) {
    let a = p as usize;
    let lo = (a + PAGE - 1) & !(PAGE - 1);
    let hi = (a + len) & !(PAGE - 1);
    if len < CLEAR_BY_PURGE || hi <= lo {
        // SAFETY: the caller's promise.
        unsafe { ptr::write_bytes(p, 0, len) };
        return;
    }
    // SAFETY: the caller's promise; `lo..hi` are whole pages inside the block, private
    // anonymous memory, which MADV_DONTNEED turns back into zero pages.
    unsafe {
        ptr::write_bytes(p, 0, lo - a);
        os::purge(lo as *mut u8, hi - lo, os::PurgeKind::DontNeed);
        ptr::write_bytes(hi as *mut u8, 0, a + len - hi);
    }
}

/// Allocates a large block of `size` bytes aligned to `align`. The second value is how many
/// leading bytes may be non-zero (0 for fresh pages; mremap's new pages are zero too).
/// Null (and errno ENOMEM) on failure.
pub fn alloc(size: usize, align: usize) -> (*mut u8, usize) {
    let extra = if align > PAGE { align } else { 0 };
    let Some(len) = size.checked_add(extra).and_then(mapping_len) else {
        os::set_errno(libc::ENOMEM);
        return (ptr::null_mut(), 0);
    };
    let mut dirty = 0;
    let mut got: Option<Range> = None;
    let limit = cache_limit();
    if limit > 0 {
        // Ranges past their decay time go back here too, not only when blocks are freed.
        evict(limit);
    }
    if extra == 0 && limit > 0 {
        if len >= os::HUGE {
            if let Some(c) = large_cache::take(len, false) {
                got = Some(c);
                dirty = len;
            } else if large_cache::usage().0 > 0 {
                // No cached range is long enough: a fresh range, filled from its start with
                // the pages of cached ones (moved, not copied), so that only what the cache
                // cannot cover is faulted afresh.
                let m = map_fresh(len);
                if !m.is_null() {
                    // SAFETY: `m` is the fresh mapping just made, which nothing else knows.
                    dirty = unsafe { fill_from_cache(m as usize, len, limit) };
                    got = Some(Range {
                        base: m as usize,
                        len,
                    });
                }
            }
        } else if let Some(c) = large_cache::take(len, true) {
            if c.len >= len {
                got = Some(c);
                dirty = len;
            } else {
                // SAFETY: `c` is a cached range of ours that nothing uses.
                let q = unsafe { os::remap(c.base as *mut u8, c.len, len) };
                if q.is_null() {
                    // mremap refuses ranges merged from separate kernel mappings: keep it
                    // cached and map afresh.
                    retire(c, limit);
                } else {
                    got = Some(Range {
                        base: q as usize,
                        len,
                    });
                    dirty = c.len;
                }
            }
        }
        if dirty > 0 {
            CACHE_HITS.fetch_add(1, Relaxed);
        }
    }
    let r = match got {
        Some(r) => r,
        None => {
            let mut m = map_fresh(len);
            if m.is_null() && crate::pool::release_for_retry() > 0 {
                // Out of address space (RLIMIT_AS) or memory: the cached ranges go back first.
                m = map_fresh(len);
            }
            if m.is_null() {
                os::set_errno(libc::ENOMEM);
                return (ptr::null_mut(), 0);
            }
            Range {
                base: m as usize,
                len,
            }
        }
    };
    let p = if extra > 0 {
        (r.base + align - 1) & !(align - 1)
    } else {
        r.base
    };
    let m = Mapping {
        base: r.base,
        len: r.len,
    };
    if !record_or_release(p, m) {
        // SAFETY: the range was never handed out and nothing else refers to it.
        unsafe { os::unmap(r.base as *mut u8, r.len) };
        os::set_errno(libc::ENOMEM);
        return (ptr::null_mut(), 0);
    }
    ALLOCS.fetch_add(1, Relaxed);
    (p as *mut u8, dirty)
}

/// The most cached ranges one fresh block takes pages from (each piece may stay a kernel
/// mapping of its own).
const FILL_PIECES: usize = 4;

/// The unit in which pages move into a block of `len` bytes at `m`: whole 2 MiB pages when
/// both are 2 MiB multiples (huge pages then move whole, and a cached range that spans several
/// kernel mappings, whose boundaries then fall on 2 MiB multiples too, moves piece by piece),
/// else pages.
fn move_step(m: usize, len: usize) -> usize {
    if m % os::HUGE == 0 && len % os::HUGE == 0 {
        os::HUGE
    } else {
        PAGE
    }
}

/// Moves the pages of cached ranges onto the fresh, untouched range `m..m+len`, from its start:
/// the best fit for what is left, else the longest shorter range, at most `FILL_PIECES` of
/// them. Returns how many leading bytes were filled (they hold old contents; the rest is zero).
///
/// # Safety
/// `m..m+len` is page-aligned, part of a mapping of ours that nothing else uses, and holds no
/// data anyone needs (its pages are replaced).
unsafe fn fill_from_cache(m: usize, len: usize, limit: usize) -> usize {
    let step = move_step(m, len);
    let mut off = 0;
    for _ in 0..FILL_PIECES {
        if off >= len {
            break;
        }
        let Some(c) = large_cache::take(len - off, true) else {
            break;
        };
        let n = c.len.min(len - off) & !(step - 1);
        let moved = if n == 0 || c.base % step != 0 {
            0
        } else {
            // SAFETY: `c` left the cache, so it is ours and unused, and page-aligned;
            // `m + off..m + off + n` lies in the caller's range (this fn's contract); a cached
            // range and a range in use are disjoint.
            unsafe { move_pages(c.base, n, m + off, step) }
        };
        if moved < c.len {
            retire(
                Range {
                    base: c.base + moved,
                    len: c.len - moved,
                },
                limit,
            );
        }
        off += moved;
        if moved < n || moved == 0 {
            break;
        }
    }
    off
}

/// Moves `n` bytes of pages from `src` onto `dst` in one mremap, else (in units of 2 MiB) piece
/// by piece, since one mremap refuses a range that spans several kernel mappings; the bytes
/// moved, from the start.
///
/// # Safety
/// `src..src+n` and `dst..dst+n` are ours, page-aligned, disjoint and used by nothing else (a
/// range taken from the cache or a block's own mapping, and part of a fresh mapping); what
/// `dst` held is lost.
unsafe fn move_pages(src: usize, n: usize, dst: usize, step: usize) -> usize {
    // SAFETY: this fn's contract, which `move_onto` asks for.
    if unsafe { os::move_onto(src, n, dst) } {
        return n;
    }
    if step < os::HUGE {
        return 0;
    }
    let mut done = 0;
    // SAFETY: as above, for a piece of each range.
    while done < n && unsafe { os::move_onto(src + done, step, dst + done) } {
        done += step;
    }
    done
}

/// Moves the contents of mapping `e` (a block's, whose record was taken: a 2 MiB multiple that
/// one mremap refused because it spans several kernel mappings) into `m`, a fresh mapping: as
/// much as `m` holds, 2 MiB at a time (its mappings meet on 2 MiB boundaries), copying what does
/// not move; then the rest of a longer `m` is filled from the cache. `e`'s range is gone
/// afterwards (moved away or unmapped).
///
/// # Safety
/// `e` is a block's mapping whose record was taken (nothing else refers to it), and `m` a fresh
/// mapping of ours that nothing else uses yet.
unsafe fn move_into(e: Mapping, m: Mapping) {
    let keep = e.len.min(m.len);
    let step = move_step(e.base, keep).min(move_step(m.base, m.len));
    // SAFETY: this fn's contract: both are ours alone, page-aligned and disjoint.
    let moved = unsafe { move_pages(e.base, keep, m.base, step) };
    // SAFETY: as above; `e`'s part past `moved` is still in place, and `m.base + moved..m.base
    // + keep` lies in `m`: distinct, both mapped. What stays of `e` is unmapped once copied.
    unsafe {
        ptr::copy_nonoverlapping(
            (e.base + moved) as *const u8,
            (m.base + moved) as *mut u8,
            keep - moved,
        );
        if moved < e.len {
            os::unmap((e.base + moved) as *mut u8, e.len - moved);
        }
    }
    if m.len <= e.len {
        return;
    }
    let limit = cache_limit();
    if limit > 0 {
        // SAFETY: `m`'s part past `e.len` is fresh, ours alone (this fn's contract) and empty.
        unsafe { fill_from_cache(m.base + e.len, m.len - e.len, limit) };
    }
}

/// Frees a large block; false if `p` is not a live one (never handed out, already freed, an
/// interior pointer): nothing is read through `p`.
pub fn free(p: *mut u8) -> bool {
    let Some(m) = unrecord(p as usize) else {
        return false;
    };
    FREES.fetch_add(1, Relaxed);
    retire(
        Range {
            base: m.base,
            len: m.len,
        },
        cache_limit(),
    );
    true
}

/// Usable bytes of large block `p`, or None if it is not one.
pub fn usable_size(p: *mut u8) -> Option<usize> {
    large_map::lookup(p as usize).map(|m| m.len - (p as usize - m.base))
}

/// Large blocks now: (blocks in use, bytes mapped for them, cached free mappings, their bytes).
/// Counters read while other threads run: for introspection (mallinfo and the like).
pub fn usage() -> (usize, usize, usize, usize) {
    let (cached, cached_bytes) = large_cache::usage();
    (
        LIVE.load(Relaxed),
        LIVE_BYTES.load(Relaxed),
        cached,
        cached_bytes,
    )
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
    let Some(e) = large_map::lookup(p as usize) else {
        return Realloc::NotLarge;
    };
    let Some(len) = mapping_len(size) else {
        os::set_errno(libc::ENOMEM);
        return Realloc::Failed;
    };
    if e.base != p as usize {
        return Realloc::Move;
    }
    if len <= e.len && len * 2 >= e.len {
        return Realloc::Done(p);
    }
    // Growing: leave half again as much room, so a block that keeps growing (a vector, a
    // string) needs a system call only every so often. The extra pages stay virtual until used.
    let need = len;
    let len = if len > e.len {
        mapping_len(e.len + e.len / 2).map_or(len, |g| len.max(g))
    } else {
        len
    };
    let Some(e) = unrecord(p as usize) else {
        return Realloc::NotLarge; // freed by another thread meanwhile
    };
    if need > e.len {
        if let Some(m) = grow_in_cache(e, need, len) {
            // The map has a leaf for `p` already, so recording it again cannot fail.
            record(p as usize, m);
            return Realloc::Done(p);
        }
        if e.len <= COPY_MAX {
            if let Some(q) = move_in_cache(e, need, len) {
                return Realloc::Done(q);
            }
        }
    }
    let saved_errno = os::errno();
    // SAFETY: the record was taken; the mapping is ours alone until recorded again.
    let q = unsafe { os::remap(e.base as *mut u8, e.len, len) };
    if q.is_null() && e.len >= os::HUGE && move_step(e.base, e.len) == os::HUGE {
        // A block whose pages came from several cached ranges: into a fresh mapping, recorded
        // first (so that a failure leaves the block where it is), its pages moved piece by piece.
        os::set_errno(saved_errno);
        let m = map_fresh(len);
        if !m.is_null() {
            let mm = Mapping {
                base: m as usize,
                len,
            };
            if record_or_release(mm.base, mm) {
                // SAFETY: `e`'s record was taken above; `mm` is the fresh mapping just made,
                // recorded but not handed out yet.
                unsafe { move_into(e, mm) };
                return Realloc::Done(m);
            }
            // SAFETY: the fresh mapping, never handed out.
            unsafe { os::unmap(m, len) };
        }
    }
    if q.is_null() {
        os::set_errno(saved_errno);
        // The map has a leaf for `p` already, so recording it again cannot fail.
        record(p as usize, e);
        // mremap refuses ranges that span two kernel mappings (cached ranges can be merged from
        // separate ones): allocate, copy and free instead.
        return Realloc::Move;
    }
    let m = Mapping {
        base: q as usize,
        len,
    };
    if !record_or_release(q as usize, m) {
        // No leaf for the new address (out of memory, even with the caches given back): move
        // the block back where it was.
        // SAFETY: `q` is the block's mapping, ours alone; `p..p+e.len` was vacated by mremap.
        let back = unsafe { os::remap_to(q, len, e.len, p as usize) };
        if core::ptr::eq(back, p) {
            record(p as usize, e);
        }
        os::set_errno(libc::ENOMEM);
        return Realloc::Failed;
    }
    if len > e.len && len >= os::HUGE {
        // The grown part is fresh and untouched: cached pages move in rather than fault.
        let limit = cache_limit();
        if limit > 0 {
            // SAFETY: mremap just added `q + e.len..q + len` to the block, which is not handed
            // back yet: fresh pages nobody uses.
            unsafe { fill_from_cache(q as usize + e.len, len - e.len, limit) };
        }
    }
    Realloc::Done(q)
}

/// Grows mapping `e` (no live block's record) in place through the cache, without a system
/// call: it takes the cached range just past its end (enough for `need` bytes, `len` if there
/// is as much), whose pages are reused instead of fresh ones faulted in. None when no cached
/// range starts there or it is too short.
fn grow_in_cache(e: Mapping, need: usize, len: usize) -> Option<Mapping> {
    let t = large_cache::take_at(e.base + e.len, need - e.len, len - e.len)?;
    REALLOC_CACHE_HITS.fetch_add(1, Relaxed);
    Some(Mapping {
        base: e.base,
        len: e.len + t.len,
    })
}

/// Moves the block of mapping `e` (no live block's record, `e.len` <= COPY_MAX) into a cached
/// range of `len` bytes (at least `need` if none is as big) by copying it, and caches `e`: for
/// a block this small, copying costs less than the fresh pages mremap would fault in. The new
/// block, or None (`e` untouched) when no cached range fits.
fn move_in_cache(e: Mapping, need: usize, len: usize) -> Option<*mut u8> {
    let c = large_cache::take(len, false).or_else(|| large_cache::take(need, false))?;
    let m = Mapping {
        base: c.base,
        len: c.len,
    };
    if !record(c.base, m) {
        retire(c, cache_limit());
        return None;
    }
    // SAFETY: `e` is the block's mapping, ours alone (its record was taken), and `c` a cached
    // range of at least `need` > `e.len` bytes that nothing else uses: distinct, both mapped.
    unsafe { ptr::copy_nonoverlapping(e.base as *const u8, c.base as *mut u8, e.len) };
    retire(
        Range {
            base: e.base,
            len: e.len,
        },
        cache_limit(),
    );
    REALLOC_CACHE_HITS.fetch_add(1, Relaxed);
    Some(c.base as *mut u8)
}

/// Returns every cached mapping to the OS; the bytes unmapped.
pub fn trim() -> usize {
    let mut released = 0;
    while let Some(c) = large_cache::take_any() {
        // SAFETY: taken out of the cache; nothing refers to it.
        unsafe { os::unmap(c.base as *mut u8, c.len) };
        released += c.len;
    }
    UNMAPPED_BYTES.fetch_add(released, Relaxed);
    released
}
