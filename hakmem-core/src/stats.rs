//! Statistics. A block leaving its slab or going back costs one increment in the thread's own
//! bin (the same cache line the path already touches), whether statistics are printed or not;
//! a block going round a thread's hot list (freed onto it, handed out again) costs nothing and
//! counts as in use meanwhile (see `tls::Bin`). Everything else is counted on slow paths.
//! Totals are gathered on demand from every heap.

use crate::heap::{self, Heap};
use crate::large;
use crate::os;
use crate::policy::{self, Opt};
use crate::pool::{self, POOL};
use crate::purge;
use crate::size_class::{class_size, NUM_CLASSES};
use crate::superslab;
use crate::sync::LockCounts;
use core::fmt::{self, Write};
use core::sync::atomic::Ordering::Relaxed;

#[derive(Clone, Copy, Default)]
pub struct ClassCounts {
    pub allocs: u64,
    pub frees: u64,
    pub remote_frees: u64,
}

pub struct Totals {
    pub classes: [ClassCounts; NUM_CLASSES],
    pub allocs: u64,
    pub frees: u64,
    pub remote_frees: u64,
    pub large_allocs: u64,
    pub large_frees: u64,
    pub large_cache_hits: u64,
    pub large_realloc_cache_hits: u64,
    /// Freed large blocks kept mapped now (ranges after merging, and their bytes).
    pub large_cached_ranges: u64,
    pub large_cached_bytes: u64,
    pub mmap_calls: u64,
    pub munmap_calls: u64,
    pub madvise_calls: u64,
    pub mremap_calls: u64,
    pub mapped_bytes: u64,
    pub peak_mapped_bytes: u64,
    pub peak_rss_bytes: u64,
    /// SuperSlabs mapped since the start, unmapped since, and reused from the empty list.
    pub superslabs_mapped: u64,
    pub superslabs_unmapped: u64,
    pub superslabs_reused: u64,
    /// Decay: bytes purged from free slabs and empty SuperSlabs, bytes of SuperSlabs unmapped,
    /// bytes of cached large blocks unmapped (by their decay, the cache's limit, trims and
    /// retries).
    pub purged_bytes: u64,
    pub unmapped_bytes: u64,
    pub large_unmapped_bytes: u64,
    pub background_ticks: u64,
    pub slabs_in_use: u64,
    pub slabs_acquired: u64,
    pub slabs_reused: u64,
    /// Partial slabs taken over from parked heaps (`heap::adopt_parked`).
    pub slabs_adopted: u64,
    pub slabs_stolen: u64,
    pub heaps: u64,
    pub remote_drains: u64,
    pub drained_slabs: u64,
    pub drained_blocks: u64,
    /// Remote frees sent back to their owners from the foreign cache (`foreign`).
    pub foreign_returned: u64,
    /// Batches of cross-thread frees passed through the transfer cache (`transfer`).
    pub transfer_batches: u64,
    /// Blocks a thread took from its foreign cache and freed again: kept because the thread
    /// frees mostly other threads' blocks, and sent home.
    pub reissued_kept: u64,
    pub reissued_home: u64,
    /// Blocks a size class out of slabs took from the next classes up (`heap::borrow`).
    pub borrowed: u64,
    /// Slabs a heap took from its own cache; batches it took from and gave back to the pool.
    pub slab_cache_hits: u64,
    pub pool_grabs: u64,
    pub pool_returns: u64,
    /// The global locks: the slab pool, the shared heap.
    pub pool_lock: LockCounts,
    pub shared_lock: LockCounts,
}

/// Adds one heap's counters: its accumulated totals, and the live TLS counters of the thread
/// attached to it. Every counter is an atomic that one thread writes (Relaxed load and store)
/// and this reads with a Relaxed load: each figure is a value the counter had, and the sum may
/// be a few operations behind.
///
/// # Safety
/// `h` is a heap (heaps are never freed) and the pool lock is held when it is a thread's: an
/// exiting thread's `detach` then waits for the lock before its cache, where `bins` and
/// `remote_ctr` point, goes away.
unsafe fn add_heap(t: &mut Totals, h: *const Heap) {
    // SAFETY: `h` is a live heap, and while it is attached its `bins` and `remote_ctr` point
    // into its thread's cache, alive while the pool lock is held (this fn's contract). Only
    // atomic fields are read, each through a reference to that field alone.
    unsafe {
        t.remote_drains += (*h).stat_drains.load(Relaxed);
        t.drained_slabs += (*h).stat_drained_slabs.load(Relaxed);
        t.drained_blocks += (*h).stat_drained_blocks.load(Relaxed);
        t.reissued_kept += (*h).stat_reissued_kept.load(Relaxed);
        t.reissued_home += (*h).stat_reissued_home.load(Relaxed);
        t.borrowed += (*h).stat_borrowed.load(Relaxed);
        t.slab_cache_hits += (*h).slab_cache.hits.load(Relaxed);
        t.pool_grabs += (*h).slab_cache.grabs.load(Relaxed);
        t.pool_returns += (*h).slab_cache.returns.load(Relaxed);
        let attached = (*h).attached.load(Relaxed);
        let bins = (*h).bins.load(Relaxed);
        let rc = (*h).remote_ctr.load(Relaxed);
        for c in 0..NUM_CLASSES {
            let k = &mut t.classes[c];
            k.allocs += (*h).stat_allocs[c].load(Relaxed);
            k.frees += (*h).stat_frees[c].load(Relaxed);
            k.remote_frees += (*h).stat_remote[c].load(Relaxed);
            if attached {
                if !bins.is_null() {
                    k.allocs += (*bins)[c].allocs.load(Relaxed);
                    k.frees += (*bins)[c].frees.load(Relaxed);
                }
                if !rc.is_null() {
                    k.remote_frees += (*rc)[c].load(Relaxed);
                }
            }
        }
    }
}

pub fn collect() -> Totals {
    let (cached_ranges, cached_bytes) = crate::large_cache::usage();
    let mut t = Totals {
        classes: [ClassCounts::default(); NUM_CLASSES],
        allocs: 0,
        frees: 0,
        remote_frees: 0,
        large_allocs: large::ALLOCS.load(Relaxed) as u64,
        large_frees: large::FREES.load(Relaxed) as u64,
        large_cache_hits: large::CACHE_HITS.load(Relaxed) as u64,
        large_realloc_cache_hits: large::REALLOC_CACHE_HITS.load(Relaxed) as u64,
        large_cached_ranges: cached_ranges as u64,
        large_cached_bytes: cached_bytes as u64,
        mmap_calls: os::MMAP_CALLS.load(Relaxed) as u64,
        munmap_calls: os::MUNMAP_CALLS.load(Relaxed) as u64,
        madvise_calls: os::MADVISE_CALLS.load(Relaxed) as u64,
        mremap_calls: os::MREMAP_CALLS.load(Relaxed) as u64,
        mapped_bytes: os::MAPPED.load(Relaxed) as u64,
        peak_mapped_bytes: os::PEAK_MAPPED.load(Relaxed) as u64,
        peak_rss_bytes: peak_rss(),
        superslabs_mapped: superslab::SS_MAPPED.load(Relaxed) as u64,
        superslabs_unmapped: superslab::SS_UNMAPPED.load(Relaxed) as u64,
        superslabs_reused: pool::SS_REUSED.load(Relaxed) as u64,
        purged_bytes: purge::PURGED_BYTES.load(Relaxed) as u64,
        unmapped_bytes: (superslab::SS_UNMAPPED.load(Relaxed) * superslab::ss_size()) as u64,
        large_unmapped_bytes: crate::large::UNMAPPED_BYTES.load(Relaxed) as u64,
        background_ticks: crate::background::TICKS.load(Relaxed),
        slabs_in_use: pool::SLABS_IN_USE.load(Relaxed) as u64,
        slabs_acquired: pool::SLABS_ACQUIRED.load(Relaxed) as u64,
        slabs_reused: pool::SLABS_REUSED.load(Relaxed) as u64,
        slabs_adopted: heap::ADOPTED_SLABS.load(Relaxed),
        slabs_stolen: crate::steal::STOLEN.load(Relaxed),
        heaps: 0,
        remote_drains: 0,
        drained_slabs: 0,
        drained_blocks: 0,
        foreign_returned: crate::foreign::RETURNED.load(Relaxed),
        transfer_batches: crate::transfer::PUT.load(Relaxed),
        reissued_kept: 0,
        reissued_home: 0,
        borrowed: 0,
        slab_cache_hits: 0,
        pool_grabs: 0,
        pool_returns: 0,
        // Read before the pool lock is taken below, so that the report's own lock is not counted.
        pool_lock: POOL.counts(),
        shared_lock: heap::SHARED.counts(),
    };
    {
        let p = POOL.lock();
        let mut h = p.all_heaps;
        while !h.is_null() {
            // SAFETY: heaps are never freed; the registry is read under the pool lock.
            unsafe {
                add_heap(&mut t, h);
                h = (*h).next_all;
            }
            t.heaps += 1;
        }
    }
    // SAFETY: the shared heap is a static, never attached; `add_heap` reads only its atomics.
    unsafe { add_heap(&mut t, heap::shared_ptr()) };
    for (c, k) in t.classes.iter_mut().enumerate() {
        k.remote_frees += crate::remote::UNOWNED_REMOTE_FREES[c].load(Relaxed);
    }
    for k in &t.classes {
        t.allocs += k.allocs;
        t.frees += k.frees + k.remote_frees;
        t.remote_frees += k.remote_frees;
    }
    t.allocs += t.large_allocs;
    t.frees += t.large_frees;
    t
}

/// Peak resident set (VmHWM) from /proc/self/status, in bytes.
pub fn peak_rss() -> u64 {
    let mut buf = [0u8; 4096];
    let n = os::read_file(c"/proc/self/status", &mut buf);
    let text = &buf[..n];
    let key = b"VmHWM:";
    let Some(i) = text.windows(key.len()).position(|w| w == key) else {
        return 0;
    };
    let kb = text[i + key.len()..]
        .iter()
        .skip_while(|c| **c == b' ' || **c == b'\t')
        .take_while(|c| c.is_ascii_digit())
        .fold(0u64, |a, d| a * 10 + (d - b'0') as u64);
    kb * 1024
}

/// A lock's counters as a JSON object.
struct Json<'a>(&'a LockCounts);

impl fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{{\"acquired\":{},\"contended\":{},\"slept\":{}}}",
            self.0.acquired, self.0.contended, self.0.slept
        )
    }
}

pub fn write_json(w: &mut dyn Write, t: &Totals) -> fmt::Result {
    write!(
        w,
        "{{\"hakmem\":\"{}\",\"allocs\":{},\"frees\":{},\"remote_frees\":{},\"large_allocs\":{},\
         \"large_frees\":{},\"large_cache_hits\":{},\"large_realloc_cache_hits\":{},\"large_cached_ranges\":{},\"large_cached_bytes\":{},\"mmap_calls\":{},\"munmap_calls\":{},\
         \"madvise_calls\":{},\"mremap_calls\":{},\"mapped_bytes\":{},\"peak_mapped_bytes\":{},\
         \"peak_rss_bytes\":{},\"superslabs_mapped\":{},\"superslabs_unmapped\":{},\
         \"superslabs_reused\":{},\"purged_bytes\":{},\"unmapped_bytes\":{},\
         \"large_unmapped_bytes\":{},\"background_ticks\":{},\"slabs_in_use\":{},\
         \"slabs_acquired\":{},\"slabs_reused\":{},\"slabs_adopted\":{},\"slabs_stolen\":{},\"heaps\":{},\"remote_drains\":{},\
         \"drained_slabs\":{},\"drained_blocks\":{},\"foreign_returned\":{},\"transfer_batches\":{},\"reissued_kept\":{},\"reissued_home\":{},\"borrowed_blocks\":{},\"slab_cache_hits\":{},\"pool_grabs\":{},\
         \"pool_returns\":{},\"locks\":{{\"pool\":{},\"shared\":{}}},\
         \"classes\":[",
        crate::init::VERSION,
        t.allocs,
        t.frees,
        t.remote_frees,
        t.large_allocs,
        t.large_frees,
        t.large_cache_hits,
        t.large_realloc_cache_hits,
        t.large_cached_ranges,
        t.large_cached_bytes,
        t.mmap_calls,
        t.munmap_calls,
        t.madvise_calls,
        t.mremap_calls,
        t.mapped_bytes,
        t.peak_mapped_bytes,
        t.peak_rss_bytes,
        t.superslabs_mapped,
        t.superslabs_unmapped,
        t.superslabs_reused,
        t.purged_bytes,
        t.unmapped_bytes,
        t.large_unmapped_bytes,
        t.background_ticks,
        t.slabs_in_use,
        t.slabs_acquired,
        t.slabs_reused,
        t.slabs_adopted,
        t.slabs_stolen,
        t.heaps,
        t.remote_drains,
        t.drained_slabs,
        t.drained_blocks,
        t.foreign_returned,
        t.transfer_batches,
        t.reissued_kept,
        t.reissued_home,
        t.borrowed,
        t.slab_cache_hits,
        t.pool_grabs,
        t.pool_returns,
        Json(&t.pool_lock),
        Json(&t.shared_lock)
    )?;
    let mut first = true;
    for (c, k) in t.classes.iter().enumerate() {
        if k.allocs == 0 && k.frees == 0 && k.remote_frees == 0 {
            continue;
        }
        if !first {
            w.write_char(',')?;
        }
        first = false;
        write!(
            w,
            "{{\"size\":{},\"allocs\":{},\"frees\":{},\"remote_frees\":{}}}",
            class_size(c),
            k.allocs,
            k.frees,
            k.remote_frees
        )?;
    }
    w.write_str("]}\n")
}

pub fn write_text(w: &mut dyn Write, t: &Totals) -> fmt::Result {
    let ops = (t.allocs + t.frees).max(1);
    let sys = t.mmap_calls + t.munmap_calls + t.madvise_calls + t.mremap_calls;
    writeln!(w, "hakmem {} statistics", crate::init::VERSION)?;
    writeln!(
        w,
        "  {:>10} {:>14} {:>14} {:>14}",
        "class", "allocs", "frees", "remote frees"
    )?;
    for (c, k) in t.classes.iter().enumerate() {
        if k.allocs != 0 || k.frees != 0 || k.remote_frees != 0 {
            writeln!(
                w,
                "  {:>10} {:>14} {:>14} {:>14}",
                class_size(c),
                k.allocs,
                k.frees,
                k.remote_frees
            )?;
        }
    }
    writeln!(
        w,
        "  {:>10} {:>14} {:>14} {:>14}",
        "large", t.large_allocs, t.large_frees, 0
    )?;
    writeln!(
        w,
        "  {:>10} {:>14} {:>14} {:>14}",
        "total", t.allocs, t.frees, t.remote_frees
    )?;
    writeln!(
        w,
        "  superslabs: {} mapped now, {} ever, {} reused; slabs: {} in use, {} acquired, {} reused, {} taken over from parked heaps, {} taken whole from idle heaps; heaps: {}",
        t.superslabs_mapped.saturating_sub(t.superslabs_unmapped),
        t.superslabs_mapped,
        t.superslabs_reused,
        t.slabs_in_use,
        t.slabs_acquired,
        t.slabs_reused,
        t.slabs_adopted,
        t.slabs_stolen,
        t.heaps
    )?;
    writeln!(
        w,
        "  decay: {} bytes purged, {} bytes of SuperSlabs unmapped ({} SuperSlabs), {} bytes of cached large blocks unmapped; {} walks by the background thread",
        t.purged_bytes, t.unmapped_bytes, t.superslabs_unmapped, t.large_unmapped_bytes, t.background_ticks
    )?;
    writeln!(
        w,
        "  remote frees collected: {} drains, {} slabs, {} blocks ({:.1} blocks per drain)",
        t.remote_drains,
        t.drained_slabs,
        t.drained_blocks,
        t.drained_blocks as f64 / t.remote_drains.max(1) as f64
    )?;
    writeln!(
        w,
        "  foreign cache: {} of the remote frees were sent back to their owners, the rest reused; {} batches passed on through the transfer cache; \
         blocks reused from it and freed again by the same thread: {} kept (it frees mostly other threads' blocks), {} sent home",
        t.foreign_returned, t.transfer_batches, t.reissued_kept, t.reissued_home
    )?;
    writeln!(
        w,
        "  slab refills: {} from the heap's slab cache, {} batches from the pool, {} batches back; {} blocks of the next size classes up served a class out of slabs",
        t.slab_cache_hits, t.pool_grabs, t.pool_returns, t.borrowed
    )?;
    for (name, l) in [("pool", &t.pool_lock), ("shared heap", &t.shared_lock)] {
        writeln!(
            w,
            "  lock {:<11}: {} acquired, {} contended, {} slept",
            name, l.acquired, l.contended, l.slept
        )?;
    }
    writeln!(
        w,
        "  large blocks: {} allocated, {} cache hits, {} grown by realloc with cached pages; {} freed ranges ({} bytes) cached now",
        t.large_allocs,
        t.large_cache_hits,
        t.large_realloc_cache_hits,
        t.large_cached_ranges,
        t.large_cached_bytes
    )?;
    writeln!(
        w,
        "  system calls: mmap {}, munmap {}, madvise {}, mremap {}; {:.6} per operation",
        t.mmap_calls,
        t.munmap_calls,
        t.madvise_calls,
        t.mremap_calls,
        sys as f64 / ops as f64
    )?;
    writeln!(
        w,
        "  memory: {} bytes mapped now, peak mapped {} bytes, peak resident {} bytes",
        t.mapped_bytes, t.peak_mapped_bytes, t.peak_rss_bytes
    )
}

/// Memory in use and mapped now, for glibc's introspection API (mallinfo2, malloc_stats,
/// malloc_info). `small_*` count blocks of the size classes at their class size; `large_*` the
/// blocks over 256 KiB (or aligned past a page), each its own mapping.
#[derive(Clone, Copy, Default, Debug)]
pub struct Usage {
    pub small_blocks: u64,
    pub small_bytes: u64,
    pub large_blocks: u64,
    pub large_bytes: u64,
    pub large_cached_blocks: u64,
    pub large_cached_bytes: u64,
    /// Everything hakmem has mapped now: SuperSlabs, large blocks, cached mappings, metadata.
    pub mapped_bytes: u64,
    pub peak_mapped_bytes: u64,
    pub slabs_in_use: u64,
}

impl Usage {
    /// Bytes mapped for SuperSlabs and metadata: all but the large blocks and their cache.
    pub fn arena_bytes(&self) -> u64 {
        self.mapped_bytes
            .saturating_sub(self.large_bytes + self.large_cached_bytes)
    }
}

/// Live blocks per class are allocations minus frees (counters read while other threads run,
/// so a figure may be a few blocks off, never negative).
pub fn usage(t: &Totals) -> Usage {
    let (large_blocks, large_bytes, cached_blocks, cached_bytes) = large::usage();
    let mut u = Usage {
        large_blocks: large_blocks as u64,
        large_bytes: large_bytes as u64,
        large_cached_blocks: cached_blocks as u64,
        large_cached_bytes: cached_bytes as u64,
        mapped_bytes: t.mapped_bytes,
        peak_mapped_bytes: t.peak_mapped_bytes,
        slabs_in_use: t.slabs_in_use,
        ..Usage::default()
    };
    for (c, k) in t.classes.iter().enumerate() {
        let live = k.allocs.saturating_sub(k.frees + k.remote_frees);
        u.small_blocks += live;
        u.small_bytes += live * class_size(c) as u64;
    }
    u
}

/// Prints the statistics as HAKMEM_STATS asks (nothing when it is 0), on stderr or into
/// HAKMEM_STATS_FILE. Called at process exit.
pub fn report_at_exit() {
    let mode = policy::get(Opt::Stats);
    if mode == 0 {
        return;
    }
    let t = collect();
    let mut b = os::StackBuf::<8192>::new();
    let _ = if mode == 2 {
        write_json(&mut b, &t)
    } else {
        write_text(&mut b, &t)
    };
    let file = policy::text(Opt::StatsFile);
    if !file.is_empty() {
        let mut path = [0u8; policy::TEXT_MAX + 32];
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        if let Some(p) = expand_path(file, pid as u32, &mut path) {
            if os::write_new_file(p, b.as_bytes()) {
                return;
            }
        }
        crate::hk_eprint!(
            "hakmem: cannot write HAKMEM_STATS_FILE={} (errno {}); statistics follow\n",
            core::str::from_utf8(file).unwrap_or("?"),
            os::errno()
        );
    }
    os::write_stderr(b.as_bytes());
}

/// `file` with every `%p` replaced by `pid` and `%%` by `%`, NUL-terminated in `out`; None if
/// it does not fit.
pub fn expand_path<'a>(file: &[u8], pid: u32, out: &'a mut [u8]) -> Option<&'a core::ffi::CStr> {
    let mut digits = os::StackBuf::<16>::new();
    let _ = write!(digits, "{pid}");
    let mut n = 0;
    let mut i = 0;
    while i < file.len() {
        let (piece, step): (&[u8], usize) = match (file[i], file.get(i + 1)) {
            (b'%', Some(b'p')) => (digits.as_bytes(), 2),
            (b'%', Some(b'%')) => (b"%", 2),
            _ => (&file[i..i + 1], 1),
        };
        out.get_mut(n..n + piece.len())?.copy_from_slice(piece);
        n += piece.len();
        i += step;
    }
    *out.get_mut(n)? = 0;
    core::ffi::CStr::from_bytes_with_nul(&out[..=n]).ok()
}

/// Prints the statistics on stderr, as one JSON line or as a table.
pub fn print(json: bool) {
    let t = collect();
    let mut b = os::StackBuf::<8192>::new();
    let _ = if json {
        write_json(&mut b, &t)
    } else {
        write_text(&mut b, &t)
    };
    os::write_stderr(b.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expanded(file: &str, pid: u32) -> Option<String> {
        let mut out = [0u8; 64];
        expand_path(file.as_bytes(), pid, &mut out).map(|c| c.to_str().unwrap().to_string())
    }

    #[test]
    fn stats_file_name_expands_pid() {
        assert_eq!(expanded("/tmp/s-%p.txt", 4242).unwrap(), "/tmp/s-4242.txt");
        assert_eq!(expanded("%p%p", 7).unwrap(), "77");
        assert_eq!(expanded("a%%p%", 7).unwrap(), "a%p%");
        assert_eq!(expanded("plain", 7).unwrap(), "plain");
        assert!(expanded(&"x".repeat(64), 7).is_none());
    }

    #[test]
    fn both_reports_show_the_large_cache_now() {
        let mut t = collect();
        t.large_cached_ranges = 3;
        t.large_cached_bytes = 12_345_678;
        let mut text = os::StackBuf::<8192>::new();
        write_text(&mut text, &t).unwrap();
        let text = core::str::from_utf8(text.as_bytes()).unwrap();
        assert!(
            text.contains("3 freed ranges (12345678 bytes) cached now"),
            "{text}"
        );
        let mut json = os::StackBuf::<8192>::new();
        write_json(&mut json, &t).unwrap();
        let json = core::str::from_utf8(json.as_bytes()).unwrap();
        assert!(
            json.contains("\"large_cached_ranges\":3,\"large_cached_bytes\":12345678,"),
            "{json}"
        );
    }
}
