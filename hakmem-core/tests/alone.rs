//! Tests that read process-wide counters or depend on whole SuperSlabs being free, so they must run
//! alone: this is a test binary of its own (no unit test of the crate runs in this process), and
//! its tests take one lock so they never overlap each other. Wherever it can, a test checks the
//! effect itself (addresses reused, pages no longer resident) rather than a counter.

use hakmem_core::size_class::{class_of, kind_of, KIND_MEDIUM, KIND_SMALL};
use hakmem_core::{alloc, heap, init, large, os, pool, stats, superslab, tls, transfer};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Mutex, MutexGuard};

static ALONE: Mutex<()> = Mutex::new(());

fn alone() -> MutexGuard<'static, ()> {
    let g = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    // Free slabs stay resident until trim (so that trim has something to return), whatever the
    // environment says; read once, by the first test to get here.
    std::env::set_var("HAKMEM_PURGE_DELAY_MS", "600000");
    // Nor does the large-block cache decay with time: a test that runs slowly (a debug build on
    // a loaded machine) would otherwise see more of its windows close, and its ranges unmapped,
    // than one that runs fast.
    std::env::set_var("HAKMEM_LARGE_CACHE_MS", "600000");
    init::ensure();
    g
}

/// Frees `blocks`: live blocks from hakmem that nobody else frees.
fn free_all(blocks: Vec<usize>) {
    for p in blocks {
        // SAFETY: the caller's promise: live blocks from hakmem, each freed once, here.
        unsafe { alloc::free(p as *mut u8) };
    }
}

/// Frees `blocks` (as for `free_all`) on a thread of its own, which has exited when this
/// returns.
fn free_on_another_thread(blocks: Vec<usize>) {
    std::thread::spawn(move || free_all(blocks)).join().unwrap();
}

fn ss_base(p: usize) -> usize {
    p & !(superslab::ss_size() - 1)
}

#[test]
fn blocks_freed_by_other_threads_come_back_to_the_owner() {
    let _g = alone();
    // This test's thread may have taken over an earlier test's parked heap with an empty slab
    // of each class, which would serve some of the allocations below before the remote frees
    // are collected: those go back first.
    alloc::trim();
    const N: usize = 20_000;
    let ptrs: Vec<usize> = (0..N)
        .map(|i| alloc::malloc(24 + i % 200) as usize)
        .collect();
    let before = stats::collect().remote_frees;
    free_on_another_thread(ptrs.clone());
    assert!(stats::collect().remote_frees >= before + N as u64);
    // The owner collects them: the same sizes come back from the same slabs (a slab emptied by the
    // remote frees may come back formatted for another of these sizes, so compare 64 KiB pages).
    let freed: std::collections::HashSet<usize> = ptrs.iter().map(|p| p >> 16).collect();
    let slabs = pool::SLABS_ACQUIRED.load(Relaxed);
    let again: Vec<usize> = (0..N)
        .map(|i| alloc::malloc(24 + i % 200) as usize)
        .collect();
    let reused = again
        .iter()
        .filter(|&&p| freed.contains(&(p >> 16)))
        .count();
    // When the heap's empty slabs pass through the pool meanwhile (its reclaim, at most every
    // 5 ms), the pool hands the resident ones back first: up to ae90d66 it handed out the
    // never-used slabs of a batch first, and about one run in 40 reused only 94.8%.
    assert!(
        reused > N * 95 / 100,
        "only {reused} of {N} blocks came from the remotely freed slabs ({} new slabs \
         meanwhile)",
        pool::SLABS_ACQUIRED.load(Relaxed) - slabs
    );
    assert!(
        pool::SLABS_ACQUIRED.load(Relaxed) - slabs < 40,
        "remote frees were not reused"
    );
    free_all(again);
}

#[test]
fn exited_threads_hand_their_heap_to_the_next_thread() {
    let _g = alone();
    let heaps_before = stats::collect().heaps;
    for t in 0..300usize {
        std::thread::spawn(move || {
            let p = alloc::malloc(16 + t % 700);
            // SAFETY: a live block from hakmem, freed once.
            unsafe { alloc::free(p) };
        })
        .join()
        .unwrap();
    }
    let grown = stats::collect().heaps - heaps_before;
    assert!(
        grown <= 2,
        "{grown} heaps for 300 sequential threads: exited heaps are not reused"
    );
}

#[test]
fn freed_large_blocks_are_reused_without_new_mappings() {
    let _g = alone();
    // Other tests leave ranges in the cache that may fit better than `first`: start from none.
    large::trim();
    let first = alloc::malloc(9 << 20) as usize;
    // SAFETY: a live block from hakmem, freed once.
    unsafe { alloc::free(first as *mut u8) };
    let mmaps = os::MMAP_CALLS.load(Relaxed);
    let hits = large::CACHE_HITS.load(Relaxed);
    for i in 0..50usize {
        let n = (5 << 20) + (i % 3) * (2 << 20);
        let p = alloc::malloc(n);
        assert!(
            (first..first + (9 << 20)).contains(&(p as usize)),
            "a {n}-byte block did not come from the cached range"
        );
        // SAFETY: `p` is a live block of `n` bytes, freed once.
        unsafe {
            *p = 1;
            *p.add(n - 1) = 2;
            alloc::free(p);
        }
    }
    assert_eq!(
        os::MMAP_CALLS.load(Relaxed),
        mmaps,
        "the cache missed and mapped anew"
    );
    assert_eq!(large::CACHE_HITS.load(Relaxed) - hits, 50);
}

#[test]
fn the_large_cache_keeps_its_floor_beyond_what_is_live() {
    let _g = alone();
    large::trim();
    // Six 40 MiB buffers live (240 MiB); three freed (120 MiB: past the balanced profile's
    // 64 MiB, within 64 MiB beyond half the 240 MiB once live) must all stay cached, so that
    // replacing them maps nothing new.
    const N: usize = 40 << 20;
    let bufs: Vec<usize> = (0..6).map(|_| alloc::malloc(N) as usize).collect();
    assert!(bufs.iter().all(|&p| p != 0));
    for &p in &bufs[..3] {
        // SAFETY: a live block from hakmem, freed once.
        unsafe { alloc::free(p as *mut u8) };
    }
    let mmaps = os::MMAP_CALLS.load(Relaxed);
    let again: Vec<usize> = (0..3).map(|_| alloc::malloc(N) as usize).collect();
    assert_eq!(
        os::MMAP_CALLS.load(Relaxed),
        mmaps,
        "a freed buffer was unmapped although as much stayed live"
    );
    for &p in again.iter().chain(&bufs[3..]) {
        // SAFETY: live blocks from hakmem, each freed once.
        unsafe { alloc::free(p as *mut u8) };
    }
    large::trim();
}

#[test]
fn blocks_a_full_foreign_cache_passes_on_are_reused_by_another_thread() {
    let _g = alone();
    alloc::trim(); // an empty transfer cache
    const N: usize = 1792;
    let mine: Vec<usize> = (0..64).map(|_| alloc::malloc(N) as usize).collect();
    // Another thread frees them all: its foreign cache of the class (18 blocks) overflows and
    // passes half of it on each time.
    free_on_another_thread(mine.clone());
    // A third thread, which never freed anything, gets them from the transfer cache.
    let theirs = mine.clone();
    let reused = std::thread::spawn(move || {
        // SAFETY: a live block from hakmem, freed once: this thread has a heap from here on.
        unsafe { alloc::free(alloc::malloc(16)) };
        let got: Vec<usize> = (0..16).map(|_| alloc::malloc(N) as usize).collect();
        let n = got.iter().filter(|p| theirs.contains(p)).count();
        for q in got {
            // SAFETY: live blocks of N bytes from hakmem, written, then each freed once.
            unsafe {
                std::ptr::write_bytes(q as *mut u8, 9, N);
                alloc::free(q as *mut u8);
            }
        }
        n
    })
    .join()
    .unwrap();
    assert!(
        reused >= 8,
        "only {reused} of 16 blocks came from those another thread freed and passed on"
    );
}

#[test]
fn a_thread_without_a_heap_takes_nothing_from_the_transfer_cache() {
    let _g = alone();
    alloc::trim();
    const N: usize = 3072;
    let mine: Vec<usize> = (0..64).map(|_| alloc::malloc(N) as usize).collect();
    free_on_another_thread(mine.clone());
    let held = transfer::held();
    assert!(
        held > 0,
        "a thread that freed 64 blocks of another passed none on"
    );
    // A thread whose only call is one malloc gets no heap when its foreign cache serves it,
    // so no exit handler would ever send home what a batch left in that cache.
    let p = std::thread::spawn(|| alloc::malloc(N) as usize)
        .join()
        .unwrap();
    assert_eq!(
        transfer::held(),
        held,
        "a thread without a heap took blocks it could never give back"
    );
    // SAFETY: a live block from hakmem, freed once.
    unsafe { alloc::free(p as *mut u8) };
    alloc::trim();
}

#[test]
fn trim_sends_the_transfer_caches_blocks_home() {
    let _g = alone();
    const N: usize = 2560;
    let mine: Vec<usize> = (0..64).map(|_| alloc::malloc(N) as usize).collect();
    free_on_another_thread(mine.clone());
    assert!(
        transfer::held() > 0,
        "a thread that freed 64 blocks of another passed none on"
    );
    alloc::trim();
    assert_eq!(
        transfer::held(),
        0,
        "trim left blocks in the transfer cache"
    );
    // Back home, they are this thread's to reuse.
    let again: Vec<usize> = (0..64).map(|_| alloc::malloc(N) as usize).collect();
    assert!(
        again.iter().filter(|p| mine.contains(p)).count() >= 32,
        "the blocks trim sent home were not reused by their owner"
    );
    free_all(again);
}

#[test]
fn a_large_block_grows_into_the_cached_range_past_its_end() {
    let _g = alone();
    large::trim();
    let big = alloc::malloc(4 << 20) as usize;
    // SAFETY: a live block from hakmem, freed once.
    unsafe { alloc::free(big as *mut u8) };
    let p = alloc::malloc(512 << 10);
    assert_eq!(
        p as usize, big,
        "a 512 KiB block was not split from the cached range"
    );
    // SAFETY: `p` is a live block of 512 KiB.
    unsafe { std::ptr::write_bytes(p, 7, 512 << 10) };
    let calls = (os::MMAP_CALLS.load(Relaxed), os::MREMAP_CALLS.load(Relaxed));
    // SAFETY: `p` is a live block from hakmem.
    let q = unsafe { alloc::realloc(p, 1 << 20) };
    assert_eq!(
        q, p,
        "the block moved although the cached range past it was free"
    );
    assert_eq!(
        (os::MMAP_CALLS.load(Relaxed), os::MREMAP_CALLS.load(Relaxed)),
        calls,
        "growing into the cached range made a system call"
    );
    // SAFETY: `q` is a live block of 1 MiB whose first 512 KiB were written; freed once.
    unsafe {
        assert!(std::slice::from_raw_parts(q, 512 << 10)
            .iter()
            .all(|&b| b == 7));
        std::ptr::write_bytes(q, 8, 1 << 20);
        alloc::free(q);
    }
    large::trim();
}

#[test]
fn growing_large_blocks_reuse_cached_pages_and_the_cache_stays_near_the_peak() {
    let _g = alone();
    large::trim();
    // Buffers that grow by doubling (300 KiB to 1.2 MiB) and then drop to a small block, taking
    // turns at random so that a neighbour often sits past a growing one, as in
    // bench/realloc_growth. Once the cache holds what they need, growing seldom faults fresh
    // pages (mmap, mremap), and the large blocks and the cache together (all pages touched) stay
    // within twice the most that was live.
    const N: usize = 8;
    const STEPS: usize = 4000;
    let mut bufs = [(std::ptr::null_mut::<u8>(), 0usize, 0u8); N];
    let (mut calls, mut growths, mut peak_live, mut peak_all) = ((0, 0), 0, 0, 0);
    let mut rng = 1u64;
    for step in 0..STEPS {
        if step == STEPS / 4 {
            calls = (os::MMAP_CALLS.load(Relaxed), os::MREMAP_CALLS.load(Relaxed));
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let k = (rng % N as u64) as usize;
        let (p, len, was) = bufs[k];
        let n = match len {
            0 => 300 << 10,
            l if l < 1200 << 10 => 2 * l,
            _ => 100 << 10,
        };
        let q = if len == 0 {
            alloc::malloc(n)
        } else {
            // SAFETY: `p` is a live block from hakmem.
            unsafe { alloc::realloc(p, n) }
        };
        assert!(!q.is_null());
        if n > len && len > 0 && step >= STEPS / 4 {
            growths += 1;
        }
        // SAFETY: `q` is a live block of `n` bytes; when `len` > 0 its first min(len, n) bytes
        // are those of the buffer's last step, all `was`.
        unsafe {
            let kept = std::slice::from_raw_parts(q, len.min(n));
            assert!(
                kept.iter().all(|&b| b == was),
                "realloc lost the block's contents"
            );
            std::ptr::write_bytes(q, step as u8, n);
        }
        if n < 256 << 10 {
            // SAFETY: a live block from hakmem, freed once.
            unsafe { alloc::free(q) };
            bufs[k] = (std::ptr::null_mut(), 0, 0);
        } else {
            bufs[k] = (q, n, step as u8);
        }
        let (_, live, _, cached) = large::usage();
        peak_live = peak_live.max(live);
        peak_all = peak_all.max(live + cached);
    }
    let fresh = os::MMAP_CALLS.load(Relaxed) - calls.0 + os::MREMAP_CALLS.load(Relaxed) - calls.1;
    assert!(
        fresh * 50 <= growths,
        "{fresh} mmap and mremap calls for {growths} growths: fresh pages instead of cached ones"
    );
    assert!(
        peak_all <= 2 * peak_live,
        "large blocks and the cache came to {peak_all} bytes, {peak_live} at most live"
    );
    for (p, _, _) in bufs {
        // SAFETY: live blocks from hakmem (or null), each freed once.
        unsafe { alloc::free(p) };
    }
    large::trim();
}

#[test]
fn empty_superslabs_are_reused_by_another_slab_kind() {
    let _g = alone();
    assert_eq!(kind_of(class_of(48)), KIND_SMALL);
    assert_eq!(kind_of(class_of(20_000)), KIND_MEDIUM);
    // Enough 48-byte blocks to fill several SuperSlabs with small slabs: ten, of which the slab
    // caches and slabs other tests left in use keep up to four from emptying.
    let n = 10 * superslab::ss_size() / 48;
    let small: Vec<usize> = (0..n).map(|_| alloc::malloc(48) as usize).collect();
    let bases: std::collections::HashSet<usize> = small.iter().map(|&p| ss_base(p)).collect();
    free_all(small);
    let mapped = superslab::SS_MAPPED.load(Relaxed);
    let medium: Vec<usize> = (0..3 * superslab::ss_size() / 20_000)
        .map(|_| alloc::malloc(20_000) as usize)
        .collect();
    let in_old = medium
        .iter()
        .filter(|&&p| bases.contains(&ss_base(p)))
        .count();
    assert!(
        in_old * 2 > medium.len(),
        "{in_old} of {} medium blocks lie in SuperSlabs the small blocks emptied",
        medium.len()
    );
    assert_eq!(
        superslab::SS_MAPPED.load(Relaxed),
        mapped,
        "new SuperSlabs were mapped"
    );
    free_all(medium);
}

#[test]
fn slabs_given_back_resident_are_taken_again_before_purged_ones() {
    let _g = alone();
    // Every free slab is purged now. The heap takes a batch of them from the pool, formats a
    // dozen for 1000-byte blocks (writing their pages) and leaves the rest of the batch unused.
    alloc::trim();
    let first: Vec<usize> = (0..12 * 64).map(|_| alloc::malloc(1000) as usize).collect();
    let resident: std::collections::HashSet<usize> = first.iter().map(|p| p >> 16).collect();
    free_all(first);
    alloc::hot_lists_back();
    // All of the heap's empty slabs go back to the pool, used and unused, as its reclaim gives
    // them back before it would map a new SuperSlab.
    // SAFETY: this thread's heap, attached by the mallocs above; no reference into it is held.
    unsafe { heap::release_caches((*tls::thread_cache()).heap) };
    // Eight slabs of another class (the class of 1000 bytes keeps its current slab): the ones
    // whose pages are resident come first.
    let second: Vec<usize> = (0..8 * 32).map(|_| alloc::malloc(2000) as usize).collect();
    let again = second
        .iter()
        .filter(|&&p| resident.contains(&(p >> 16)))
        .count();
    assert!(
        again * 10 >= second.len() * 9,
        "only {again} of {} blocks lie in the slabs just given back",
        second.len()
    );
    free_all(second);
}

/// How many of `pages` (page addresses) are resident now, by mincore.
fn resident(pages: &std::collections::BTreeSet<usize>) -> usize {
    let mut n = 0;
    for &pg in pages {
        let mut v = 0u8;
        // SAFETY: mincore only reads the page table entry of one mapped page into `v`.
        let rc = unsafe { libc::mincore(pg as *mut libc::c_void, os::PAGE, &mut v) };
        assert_eq!(rc, 0, "mincore({pg:#x})");
        n += (v & 1) as usize;
    }
    n
}

#[test]
fn trim_returns_free_pages_to_the_os() {
    let _g = alone();
    let n = 20_000;
    let v: Vec<usize> = (0..n).map(|_| alloc::malloc(1000) as usize).collect();
    for &p in &v {
        // SAFETY: live 1000-byte blocks.
        unsafe { std::ptr::write_bytes(p as *mut u8, 0x5a, 1000) };
    }
    let pages: std::collections::BTreeSet<usize> =
        v.iter().map(|&p| (p + 500) & !(os::PAGE - 1)).collect();
    free_all(v);
    let before = resident(&pages);
    assert!(before > 1000, "only {before} pages resident before trim");
    alloc::trim();
    let after = resident(&pages);
    assert!(
        after * 4 < before,
        "trim left {after} of {before} pages of the freed blocks resident"
    );
}

#[test]
fn superslabs_in_the_cage_keep_their_address_space() {
    let _g = alone();
    let (base, _) = hakmem_core::cage::extent();
    assert_ne!(base, 0, "no cage in this process");
    let v: Vec<usize> = (0..4 * superslab::ss_size() / 16)
        .map(|_| alloc::malloc(16) as usize)
        .collect();
    let mid = v[v.len() / 2];
    assert!(hakmem_core::cage::contains(mid));
    free_all(v);
    let unmapped = superslab::SS_UNMAPPED.load(Relaxed);
    alloc::trim();
    assert_eq!(superslab::SS_UNMAPPED.load(Relaxed), unmapped);
    assert!(superslab::contains(mid));
    let mut v = 0u8;
    // SAFETY: mincore only reads the page table for one page and writes one byte into `v`.
    let rc = unsafe {
        libc::mincore(
            (mid & !(os::PAGE - 1)) as *mut libc::c_void,
            os::PAGE,
            &mut v,
        )
    };
    assert_eq!(rc, 0, "a SuperSlab of the cage was unmapped");
}

/// Alone: between two frees of one block another test could get the same address back.
#[test]
fn large_blocks_freed_by_racing_threads_are_freed_exactly_once() {
    let _g = alone();
    let sizes = [300 << 10, 1 << 20, 3 << 20, (5 << 20) + 100];
    for round in 0..4 {
        let blocks: Vec<usize> = (0..64)
            .map(|i| {
                let p = alloc::malloc(sizes[(i + round) % sizes.len()]);
                assert!(!p.is_null());
                p as usize
            })
            .collect();
        // Four threads free every block at once: one free of each must win, the other three
        // must be refused (a double free), never free it again.
        let wins: usize = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|t| {
                    let blocks = &blocks;
                    s.spawn(move || {
                        (0..blocks.len())
                            .filter(|k| large::free(blocks[(k + t * 16) % blocks.len()] as *mut u8))
                            .count()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(wins, blocks.len(), "each large block is freed exactly once");
        for &p in &blocks {
            assert_eq!(
                large::usable_size(p as *mut u8),
                None,
                "a freed block is no block"
            );
            assert!(
                !large::free(p as *mut u8),
                "a later double free is refused too"
            );
        }
    }
}
