//! Core tests, run by `cargo test` in an ordinary test binary (nothing is preloaded: the
//! allocator is called through its Rust API, the test harness itself uses the system malloc).

use crate::policy::{self, Opt};
use crate::size_class::{class_size, MAX_SMALL, NUM_CLASSES};
use crate::{alloc, init, os, stats};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Once;

static SETUP: Once = Once::new();

/// Initialise once with the balanced defaults, but report invalid pointers instead of aborting.
fn setup() {
    SETUP.call_once(|| {
        init::ensure();
        let mut v = [0u32; policy::N];
        for d in policy::OPTIONS {
            v[d.opt as usize] = d.defaults[1];
        }
        v[Opt::Profile as usize] = 1;
        v[Opt::InvalidFree as usize] = 1;
        policy::set_all(&v);
    });
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn fill(p: *mut u8, n: usize, seed: u8) {
    for i in 0..n {
        unsafe { *p.add(i) = seed.wrapping_add(i as u8) };
    }
}

fn check(p: *const u8, n: usize, seed: u8) -> bool {
    (0..n).all(|i| unsafe { *p.add(i) } == seed.wrapping_add(i as u8))
}

#[test]
fn every_size_is_16_aligned_and_usable_size_covers_it() {
    setup();
    let mut sizes: Vec<usize> = (0..5000).collect();
    for k in 12..27 {
        sizes.push(1 << k);
        sizes.push((1 << k) + 1);
    }
    for &n in &sizes {
        let p = alloc::malloc(n);
        assert!(!p.is_null(), "malloc({n})");
        assert_eq!(p as usize % 16, 0, "malloc({n}) = {p:?}");
        let u = unsafe { alloc::usable_size(p) };
        assert!(u >= n, "usable {u} < {n}");
        fill(p, n.min(4096), n as u8);
        assert!(check(p, n.min(4096), n as u8));
        unsafe { alloc::free(p) };
    }
}

#[test]
fn malloc_zero_is_unique_and_free_null_is_nothing() {
    setup();
    let a = alloc::malloc(0);
    let b = alloc::malloc(0);
    assert!(!a.is_null() && !b.is_null() && a != b);
    unsafe {
        alloc::free(a);
        alloc::free(b);
        alloc::free(std::ptr::null_mut());
    }
}

#[test]
fn free_preserves_errno() {
    setup();
    for n in [16, 5000, 1 << 20] {
        let p = alloc::malloc(n);
        os::set_errno(1234);
        unsafe { alloc::free(p) };
        assert_eq!(os::errno(), 1234, "size {n}");
    }
}

#[test]
fn absurd_sizes_fail_with_enomem() {
    setup();
    for n in [usize::MAX, usize::MAX / 2 + 1, isize::MAX as usize] {
        os::set_errno(0);
        assert!(alloc::malloc(n).is_null());
        assert_eq!(os::errno(), libc::ENOMEM);
    }
    os::set_errno(0);
    assert!(alloc::calloc(usize::MAX / 2, 4).is_null());
    assert_eq!(os::errno(), libc::ENOMEM);
    let p = alloc::malloc(100);
    fill(p, 100, 7);
    unsafe {
        os::set_errno(0);
        assert!(alloc::reallocarray(p, usize::MAX / 2, 3).is_null());
        assert_eq!(os::errno(), libc::ENOMEM);
        assert!(alloc::realloc(p, usize::MAX).is_null());
        assert_eq!(os::errno(), libc::ENOMEM);
        assert!(check(p, 100, 7), "a failed realloc must keep the block");
        alloc::free(p);
    }
}

#[test]
fn realloc_keeps_contents_across_every_path() {
    setup();
    let mut p = alloc::malloc(16);
    fill(p, 16, 3);
    let mut n = 16;
    let steps = [
        100,
        1000,
        5000,
        70_000,
        300_000,
        5 << 20,
        40 << 20,
        1 << 20,
        200_000,
        3000,
        20,
    ];
    for &m in &steps {
        let q = unsafe { alloc::realloc(p, m) };
        assert!(!q.is_null());
        let keep = n.min(m);
        assert!(check(q, keep, 3), "realloc {n} -> {m} lost data");
        fill(q, m, 3);
        p = q;
        n = m;
    }
    unsafe {
        assert!(
            alloc::realloc(p, 0).is_null(),
            "realloc(p, 0) frees and returns NULL"
        );
        let r = alloc::realloc(std::ptr::null_mut(), 50);
        assert!(!r.is_null());
        alloc::free(r);
    }
}

#[test]
fn aligned_family_follows_glibc() {
    setup();
    let mut out: *mut u8 = 0x1234 as *mut u8;
    unsafe {
        for bad in [0usize, 3, 4, 24, 48] {
            assert_eq!(
                alloc::posix_memalign(&mut out, bad, 10),
                libc::EINVAL,
                "align {bad}"
            );
            assert_eq!(out as usize, 0x1234, "*out untouched");
        }
        assert_eq!(
            alloc::posix_memalign(&mut out, 64, usize::MAX - 100),
            libc::ENOMEM
        );
        assert_eq!(out as usize, 0x1234);
        for shift in 3..22 {
            let a = 1usize << shift;
            for size in [0usize, 1, 7, 100, 4096, 1 << 20] {
                assert_eq!(alloc::posix_memalign(&mut out, a, size), 0);
                assert_eq!(out as usize % a, 0, "posix_memalign({a}, {size})");
                fill(out, size, 9);
                alloc::free(out);
                let q = alloc::aligned_alloc(a, size + 3);
                assert_eq!(q as usize % a, 0, "aligned_alloc({a}, {})", size + 3);
                assert!(alloc::usable_size(q) >= size + 3);
                alloc::free(q);
            }
        }
        let v = alloc::valloc(10);
        assert_eq!(v as usize % 4096, 0);
        alloc::free(v);
        let pv = alloc::pvalloc(5000);
        assert_eq!(pv as usize % 4096, 0);
        assert!(alloc::usable_size(pv) >= 8192);
        alloc::free(pv);
        os::set_errno(0);
        assert!(alloc::pvalloc(usize::MAX).is_null());
        assert_eq!(os::errno(), libc::ENOMEM);
        let m = alloc::memalign(48, 10); // rounded up to 64, as glibc does
        assert_eq!(m as usize % 64, 0);
        alloc::free(m);
    }
}

#[test]
fn calloc_zeroes_reused_memory() {
    setup();
    for &n in &[8usize, 100, 1000, 10_000, 100_000, 1 << 20, 3 << 20] {
        for _ in 0..4 {
            let p = alloc::malloc(n);
            unsafe { std::ptr::write_bytes(p, 0xAA, n) };
            unsafe { alloc::free(p) };
            let q = alloc::calloc(1, n);
            assert!(
                (0..n).all(|i| unsafe { *q.add(i) } == 0),
                "calloc({n}) not zero"
            );
            unsafe { alloc::free(q) };
        }
    }
}

#[test]
fn shadow_model_no_overlap_alignment_contents() {
    setup();
    let mut rng = Rng(0x9E3779B97F4A7C15);
    let mut live: Vec<(usize, usize, u8)> = Vec::new();
    for step in 0..60_000u32 {
        let op = rng.below(10);
        if op < 5 || live.is_empty() {
            let n = match rng.below(20) {
                0 => rng.below(MAX_SMALL as u64 + 200_000) as usize,
                1..=3 => rng.below(16_384) as usize,
                _ => rng.below(512) as usize,
            };
            let p = match rng.below(8) {
                0 => alloc::calloc(1, n),
                1 => alloc::aligned(1 << (4 + rng.below(9)), n),
                _ => alloc::malloc(n),
            };
            assert!(!p.is_null());
            assert_eq!(p as usize % 16, 0);
            assert!(unsafe { alloc::usable_size(p) } >= n);
            let seed = step as u8;
            fill(p, n, seed);
            live.push((p as usize, n, seed));
        } else if op < 8 {
            let i = rng.below(live.len() as u64) as usize;
            let (p, n, seed) = live.swap_remove(i);
            assert!(
                check(p as *const u8, n, seed),
                "block {p:#x} ({n} B) corrupted"
            );
            unsafe { alloc::free(p as *mut u8) };
        } else {
            let i = rng.below(live.len() as u64) as usize;
            let (p, n, seed) = live[i];
            let cap = if rng.below(10) == 0 { 600_000 } else { 2000 };
            let m = rng.below(cap) as usize + 1;
            let q = unsafe { alloc::realloc(p as *mut u8, m) };
            assert!(!q.is_null());
            assert!(check(q, n.min(m), seed), "realloc {n}->{m} lost data");
            fill(q, m, seed);
            live[i] = (q as usize, m, seed);
        }
        if step % 5000 == 0 {
            let mut v: Vec<(usize, usize)> = live.iter().map(|&(p, n, _)| (p, n.max(1))).collect();
            v.sort();
            for w in v.windows(2) {
                assert!(w[0].0 + w[0].1 <= w[1].0, "blocks overlap: {:x?}", w);
            }
        }
    }
    for (p, n, seed) in live {
        assert!(check(p as *const u8, n, seed));
        unsafe { alloc::free(p as *mut u8) };
    }
}

#[test]
fn producer_consumer_threads_keep_every_byte() {
    setup();
    use std::sync::mpsc;
    let (tx, rx) = mpsc::sync_channel::<(usize, usize)>(1024);
    let prod = std::thread::spawn(move || {
        let mut rng = Rng(42);
        for i in 0..100_000usize {
            let n = 8 + rng.below(3000) as usize;
            let p = alloc::malloc(n);
            fill(p, n, i as u8);
            tx.send((p as usize, n | (i << 32))).unwrap();
        }
    });
    let cons = std::thread::spawn(move || {
        while let Ok((p, meta)) = rx.recv() {
            let n = meta & 0xffff_ffff;
            assert!(check(p as *const u8, n, (meta >> 32) as u8));
            unsafe { alloc::free(p as *mut u8) };
        }
    });
    prod.join().unwrap();
    cons.join().unwrap();
}

#[test]
fn invalid_pointers_are_refused_not_followed() {
    setup(); // HAKMEM_INVALID_FREE=report for this binary
    let p = alloc::malloc(64);
    let x = 5u64;
    unsafe {
        fill(p, 64, 1);
        alloc::free(p.add(8)); // middle of a block
        alloc::free(&x as *const u64 as *mut u8); // stack
        assert_eq!(alloc::usable_size(p.add(16)), 0);
        assert!(alloc::realloc(p.add(16), 10).is_null());
        assert!(check(p, 64, 1), "the real block must be untouched");
        let q = alloc::malloc(64);
        assert_ne!(q, p.add(8), "a refused pointer must never be handed out");
        alloc::free(q);
        alloc::free(p);
    }
}

#[test]
fn every_class_round_trips() {
    setup();
    for c in 0..NUM_CLASSES {
        let n = class_size(c);
        // A class over 1 KiB out of slabs may hand out a free block of one of the next
        // two classes (this thread's heap may be a parked one, with such blocks in its bins).
        let most = if c >= crate::heap::FIRST_BORROWER {
            class_size((c + crate::heap::BORROW_CLASSES).min(NUM_CLASSES - 1))
        } else {
            n
        };
        let v: Vec<usize> = (0..20).map(|_| alloc::malloc(n) as usize).collect();
        for &p in &v {
            let u = unsafe { alloc::usable_size(p as *mut u8) };
            assert!(
                u >= n && u <= most,
                "class {c} ({n} bytes): usable size {u}"
            );
        }
        for p in v {
            unsafe { alloc::free(p as *mut u8) };
        }
    }
}

#[test]
fn emptied_slabs_are_reused_from_the_heap_without_the_pool() {
    setup();
    std::thread::spawn(|| {
        let v: Vec<usize> = (0..30_000).map(|_| alloc::malloc(48) as usize).collect();
        for p in v {
            unsafe { alloc::free(p as *mut u8) };
        }
        // This thread's heap's cache counters (read through the raw pointer, as statistics do).
        let counts = || unsafe {
            let c = std::ptr::addr_of!((*(*crate::tls::thread_cache()).heap).slab_cache);
            ((*c).hits.load(Relaxed), (*c).grabs.load(Relaxed))
        };
        let (hits, grabs) = counts();
        // About 19 slabs of 64 KiB for another class: the cached ones first, then the pool in
        // batches of four (one lock each), never one lock per slab.
        let w: Vec<usize> = (0..3_000).map(|_| alloc::malloc(400) as usize).collect();
        let (hits, grabs) = (counts().0 - hits, counts().1 - grabs);
        assert!(hits >= 4, "only {hits} slabs came from the heap's cache");
        assert!(grabs <= 5, "{grabs} pool batches for about 15 slabs");
        for p in w {
            unsafe { alloc::free(p as *mut u8) };
        }
    })
    .join()
    .unwrap();
}

#[test]
fn usage_counts_live_small_and_large_bytes() {
    setup();
    // Other tests run at the same time: only this test's own live blocks are certain.
    let small: Vec<usize> = (0..5000).map(|_| alloc::malloc(1000) as usize).collect();
    let large: Vec<usize> = (0..5).map(|_| alloc::malloc(1 << 20) as usize).collect();
    let u = stats::usage(&stats::collect());
    assert!(u.small_bytes >= 5000 * 1000, "{u:?}");
    assert!(u.large_bytes >= 5 << 20, "{u:?}");
    assert!(u.large_blocks >= 5 && u.mapped_bytes >= u.large_bytes + u.small_bytes);
    for p in small.into_iter().chain(large) {
        // SAFETY: each pointer came from malloc above and is freed once.
        unsafe { alloc::free(p as *mut u8) };
    }
}

#[test]
fn double_frees_are_refused_and_never_hand_a_block_out_twice() {
    setup(); // HAKMEM_INVALID_FREE=report for this binary: reported, then ignored
    for remote in [false, true] {
        let keep: Vec<usize> = (0..50).map(|_| alloc::malloc(80) as usize).collect();
        let p = alloc::malloc(80) as usize;
        let free_twice = move || unsafe {
            alloc::free(p as *mut u8);
            assert!(
                crate::freelist::is_tagged(p),
                "a freed block carries the free tag"
            );
            alloc::free(p as *mut u8); // reported, ignored
        };
        if remote {
            std::thread::spawn(free_twice).join().unwrap();
        } else {
            free_twice();
        }
        let got: Vec<usize> = (0..3000).map(|_| alloc::malloc(80) as usize).collect();
        let mut sorted = got.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            got.len(),
            "a block was handed out twice (remote: {remote})"
        );
        for &q in &got {
            assert!(
                !unsafe { crate::freelist::is_tagged(q) },
                "a live block keeps no tag"
            );
        }
        for q in got.into_iter().chain(keep) {
            unsafe { alloc::free(q as *mut u8) };
        }
    }
}

#[test]
fn blocks_freed_by_another_thread_are_reused_by_that_thread() {
    setup();
    let mine: Vec<usize> = (0..64).map(|_| alloc::malloc(48) as usize).collect();
    for &p in &mine {
        fill(p as *mut u8, 48, 7);
    }
    let theirs = mine.clone();
    let reused = std::thread::spawn(move || {
        for &p in &theirs {
            unsafe { alloc::free(p as *mut u8) };
        }
        let got: Vec<usize> = (0..64).map(|_| alloc::malloc(48) as usize).collect();
        let n = got.iter().filter(|p| theirs.contains(p)).count();
        for &q in &got {
            assert!(
                !unsafe { crate::freelist::is_tagged(q) },
                "a live block keeps no tag"
            );
            fill(q as *mut u8, 48, 9);
        }
        for q in got {
            unsafe { alloc::free(q as *mut u8) };
        }
        n
    })
    .join()
    .unwrap();
    // The foreign cache keeps 32 blocks of 48 bytes and sends the older half home when full.
    assert!(
        reused >= 16,
        "only {reused} of 64 blocks freed by the thread were reused by it"
    );
}

#[test]
fn an_exiting_thread_sends_the_blocks_it_kept_home() {
    setup();
    let mine: Vec<usize> = (0..20).map(|_| alloc::malloc(96) as usize).collect();
    let slabs: Vec<*mut crate::slab::Slab> =
        mine.iter().map(|&p| crate::superslab::slab_of(p)).collect();
    let theirs = mine.clone();
    std::thread::spawn(move || {
        unsafe { alloc::free(alloc::malloc(16)) }; // this thread has a heap from here on
        for p in theirs {
            unsafe { alloc::free(p as *mut u8) };
        }
    })
    .join()
    .unwrap();
    // This thread has not allocated since, so nothing collected the blocks: they wait on their
    // slabs' remote stacks, where the exiting thread's flush put them.
    for s in slabs {
        let w = unsafe { (*s).thread_free.load(core::sync::atomic::Ordering::Acquire) };
        assert_ne!(
            w, 0,
            "a block freed by an exited thread never reached its slab"
        );
    }
}

#[test]
fn realloc_sized_grows_and_shrinks_in_place_within_the_block_and_keeps_contents() {
    setup();
    for old in (1..=1100).step_by(7).chain([4000, 70_000, 250_000]) {
        let p = alloc::malloc(old);
        fill(p, old, 5);
        let usable = unsafe { alloc::usable_size(p) };
        for new in [
            old + 1,
            usable,
            usable + 1,
            usable / 2 + 1,
            usable / 2,
            old / 3 + 1,
        ] {
            let p = alloc::malloc(old);
            fill(p, old, 5);
            // This block's own usable size: a class over 1 KiB out of slabs may have borrowed
            // a bigger block (`heap::borrow`).
            let usable = unsafe { alloc::usable_size(p) };
            let q = unsafe { alloc::realloc_sized(p, old, new) };
            assert!(!q.is_null());
            let u = unsafe { alloc::usable_size(q) };
            assert!(
                u >= new,
                "realloc_sized({old} -> {new}) gave {u} usable bytes"
            );
            let in_place = new <= usable && (new >= usable / 2 || usable <= 64);
            assert_eq!(
                q == p,
                in_place,
                "realloc_sized({old} -> {new}), usable {usable}"
            );
            assert!(
                check(q, old.min(new), 5),
                "realloc_sized({old} -> {new}) lost data"
            );
            // The whole new size is the caller's: writing it must not reach a neighbour.
            let nb = alloc::malloc(old);
            fill(nb, old, 9);
            fill(q, new, 7);
            assert!(
                check(nb, old, 9),
                "realloc_sized({old} -> {new}) overlaps a neighbour"
            );
            assert!(check(q, new, 7));
            unsafe {
                alloc::free(nb);
                alloc::free(q);
            }
        }
        unsafe { alloc::free(p) };
    }
}

#[test]
fn realloc_sized_takes_reallocs_path_for_large_blocks_and_refuses_non_blocks() {
    setup();
    let p = alloc::malloc(100);
    fill(p, 100, 2);
    unsafe {
        let q = alloc::realloc_sized(p, 100, 300_000);
        assert!(check(q, 100, 2));
        fill(q, 300_000, 4);
        let r = alloc::realloc_sized(q, 300_000, 5 << 20);
        assert!(check(r, 300_000, 4));
        let s = alloc::realloc_sized(r, 5 << 20, 50);
        assert!(check(s, 50, 4));
        assert!(alloc::usable_size(s) >= 50);
        // HAKMEM_INVALID_FREE=report here: the middle of a block is reported, never resized.
        assert!(alloc::realloc_sized(s.add(16), 16, 100).is_null());
        assert!(check(s, 50, 4), "the real block must be untouched");
        alloc::free(s);
    }
}

#[test]
fn large_blocks_from_many_threads_keep_their_contents() {
    setup();
    std::thread::scope(|s| {
        for t in 0..4u8 {
            s.spawn(move || {
                let mut rng = Rng(0x9E37 + t as u64);
                let mut live: Vec<(usize, usize, u8)> = Vec::new();
                for step in 0..300 {
                    if live.len() > 6 || (!live.is_empty() && rng.below(2) == 0) {
                        let (p, n, seed) = live.swap_remove(rng.below(live.len() as u64) as usize);
                        assert!(check(p as *const u8, n.min(8192), seed));
                        assert!(unsafe { alloc::usable_size(p as *mut u8) } >= n);
                        unsafe { alloc::free(p as *mut u8) };
                    } else {
                        let n = (MAX_SMALL + 1) + rng.below(8 << 20) as usize;
                        let p = alloc::malloc(n);
                        assert!(!p.is_null());
                        let seed = (step as u8) ^ t;
                        fill(p, n.min(8192), seed);
                        live.push((p as usize, n, seed));
                    }
                }
                for (p, _, _) in live {
                    unsafe { alloc::free(p as *mut u8) };
                }
            });
        }
    });
}

#[test]
fn large_interior_pointers_are_refused() {
    setup(); // HAKMEM_INVALID_FREE=report: reported, then ignored
    let n = 1 << 20;
    let p = alloc::malloc(n);
    fill(p, n, 7);
    unsafe {
        alloc::free(p.add(4096)); // an interior page boundary
        alloc::free(p.add(16));
        assert_eq!(alloc::usable_size(p.add(4096)), 0);
        assert!(alloc::realloc(p.add(8192), 2 << 20).is_null());
        assert!(check(p, n, 7), "the block is untouched");
        assert!(alloc::usable_size(p) >= n);
        alloc::free(p);
    }
}

/// The remote-free word of slab `s` (passed as an address, so that it crosses threads), without
/// the bit that says the slab is a bin's current one: its stack and NOTIFIED.
fn remote_word(s: usize) -> usize {
    // SAFETY: `s` is a slab descriptor of a SuperSlab, which stays mapped while the test holds
    // a block of it; `thread_free` is atomic.
    unsafe {
        (*(s as *mut crate::slab::Slab))
            .thread_free
            .load(core::sync::atomic::Ordering::Acquire)
            & !crate::remote_list::CURRENT
    }
}

/// How many blocks of class `c` this thread's foreign cache holds.
fn foreign_held(c: usize) -> usize {
    // SAFETY: the calling thread's own cache, read by it alone.
    unsafe { (*crate::tls::thread_cache()).foreign[c].n }
}

#[test]
fn a_thread_that_only_frees_a_class_keeps_few_of_its_foreign_blocks() {
    setup();
    let c = crate::size_class::class_of(4096);
    let theirs: Vec<usize> = (0..32).map(|_| alloc::malloc(4096) as usize).collect();
    std::thread::spawn(move || {
        // From here on this thread has a heap.
        unsafe { alloc::free(alloc::malloc(16)) };
        // It frees 16 blocks of 4 KiB that another thread made and makes none: it would never
        // reuse more than a few of them, so it keeps at most 8 KiB (the open cap is 32 KiB).
        let mut most = 0;
        for &p in &theirs[..16] {
            unsafe { alloc::free(p as *mut u8) };
            most = most.max(foreign_held(c));
        }
        assert!(
            (1..=2).contains(&most),
            "a thread that only frees 4 KiB blocks kept {most} of them"
        );
        // Once it reuses one, it keeps up to the open cap.
        let q = alloc::malloc(4096) as usize;
        assert!(theirs.contains(&q), "the kept block is the next one");
        unsafe { alloc::free(q as *mut u8) };
        for &p in &theirs[16..] {
            unsafe { alloc::free(p as *mut u8) };
            most = most.max(foreign_held(c));
        }
        assert!(
            most > 2,
            "a thread that reuses what it keeps kept only {most} blocks of 4 KiB"
        );
    })
    .join()
    .unwrap();
}

#[test]
fn a_kept_block_the_thread_reused_and_frees_again_goes_home() {
    setup();
    let p = alloc::malloc(112) as usize;
    let s = crate::superslab::slab_of(p) as usize;
    std::thread::spawn(move || {
        unsafe { alloc::free(alloc::malloc(16)) }; // this thread has a heap from here on
        unsafe { alloc::free(p as *mut u8) }; // kept in the foreign cache
        assert_eq!(remote_word(s), 0, "a kept block went home at once");
        let q = alloc::malloc(112) as usize;
        assert_eq!(
            q, p,
            "the kept block is this thread's next block of its size"
        );
        unsafe { alloc::free(q as *mut u8) }; // freed again by the thread that reused it
        assert_ne!(
            remote_word(s),
            0,
            "a reused foreign block freed by the same thread must go home, not circulate"
        );
    })
    .join()
    .unwrap();
}

#[test]
fn a_thread_downstream_of_a_hand_off_keeps_the_blocks_it_reuses() {
    setup();
    // Two blocks of another thread's slab, freed by this one: its frees of the class are all
    // hand-offs, so a block it reuses and frees again stays with it.
    let theirs: Vec<usize> = (0..2).map(|_| alloc::malloc(176) as usize).collect();
    let s = crate::superslab::slab_of(theirs[1]) as usize;
    std::thread::spawn(move || {
        unsafe { alloc::free(alloc::malloc(16)) }; // this thread has a heap from here on
        for &p in &theirs {
            unsafe { alloc::free(p as *mut u8) };
        }
        let q = alloc::malloc(176) as usize;
        assert_eq!(q, theirs[1], "the newest kept block is handed out first");
        let kept = crate::stats::collect().reissued_kept;
        unsafe { alloc::free(q as *mut u8) }; // two hand-offs against one reissued block
        assert_eq!(
            remote_word(s),
            0,
            "a thread that frees mostly others' blocks sent a block it reused home"
        );
        assert!(
            crate::stats::collect().reissued_kept > kept,
            "the statistics did not count a reissued block kept"
        );
        assert_eq!(
            alloc::malloc(176) as usize,
            q,
            "the block it kept is its next one of the class"
        );
        // Its own blocks from here on (the first is the other kept block, which it holds on
        // to): once they outnumber the hand-offs, a reissued block goes home.
        let own: Vec<usize> = (0..16).map(|_| alloc::malloc(176) as usize).collect();
        assert_eq!(own[0], theirs[0], "the other kept block is handed out next");
        for &p in &own[1..] {
            unsafe { alloc::free(p as *mut u8) };
        }
        assert_eq!(
            remote_word(s),
            0,
            "a free into this thread's own slabs went remote"
        );
        let home = crate::stats::collect().reissued_home;
        unsafe { alloc::free(q as *mut u8) };
        assert!(
            crate::stats::collect().reissued_home > home,
            "the statistics did not count a reissued block sent home"
        );
        assert_ne!(
            remote_word(s),
            0,
            "a thread whose frees are mostly its own kept circulating another heap's block"
        );
        unsafe { alloc::free(own[0] as *mut u8) };
    })
    .join()
    .unwrap();
}

#[test]
fn an_owners_free_into_its_current_slab_is_the_next_block_handed_out() {
    setup();
    std::thread::spawn(|| {
        let v: Vec<usize> = (0..8).map(|_| alloc::malloc(80) as usize).collect();
        // SAFETY (test): the blocks are live blocks of this thread, freed once each.
        unsafe {
            alloc::free(v[3] as *mut u8);
            alloc::free(v[5] as *mut u8);
            // Last in, first out, before any block carved but never handed out.
            assert_eq!(alloc::malloc(80) as usize, v[5]);
            assert_eq!(alloc::malloc(80) as usize, v[3]);
            for p in v {
                alloc::free(p as *mut u8);
            }
        }
    })
    .join()
    .unwrap();
}

#[test]
fn an_owners_free_into_a_full_slab_makes_it_partial_and_the_last_one_retires_it() {
    use crate::slab::{IN_EMPTY, IN_PARTIAL, IN_POOL};
    setup();
    std::thread::spawn(|| {
        // 64-byte blocks: 1024 per 64 KiB slab, so the first slab is full and not current
        // long before the 3000th block.
        let v: Vec<usize> = (0..3_000).map(|_| alloc::malloc(64) as usize).collect();
        crate::heap::without_hot_lists();
        let s = crate::superslab::slab_of(v[0]);
        let mine: Vec<usize> = v
            .iter()
            .copied()
            .filter(|&p| crate::superslab::slab_of(p) == s)
            .collect();
        // SAFETY (test): `s` is a slab of this thread's heap; only this thread touches it.
        unsafe {
            assert!(
                (*s).is_full(),
                "a slab whose blocks are all user-held is not full"
            );
            assert_eq!((*s).used() as usize, mine.len());
            alloc::free(mine[0] as *mut u8);
            assert!(!(*s).is_full(), "a free into a full slab left it full");
            assert!(
                (*s).flags & IN_PARTIAL != 0,
                "... and not on the partial list"
            );
            assert_eq!((*s).used() as usize, mine.len() - 1);
            for &p in &mine[1..] {
                alloc::free(p as *mut u8);
            }
            assert_eq!((*s).used(), 0);
            assert!(
                (*s).flags & (IN_EMPTY | IN_POOL) != 0,
                "an emptied slab was not retired"
            );
        }
        for p in v {
            if crate::superslab::slab_of(p) != s {
                unsafe { alloc::free(p as *mut u8) };
            }
        }
    })
    .join()
    .unwrap();
}

/// Blocks on the calling thread's hot list of class `c`.
fn hot_len(c: usize) -> usize {
    // SAFETY (test): the calling thread's own bin; the list holds free blocks of the cage.
    unsafe {
        let bin = &raw mut (*crate::tls::thread_cache()).bins[c];
        let mut a = (*bin).hot;
        let mut n = 0;
        while a != 0 {
            n += 1;
            a = crate::freelist::next_of(a) as usize;
        }
        n
    }
}

/// The blocks of `v` whose slabs belong to the calling thread's heap (a new thread's first
/// blocks of a class may come from the transfer cache: other threads' blocks).
fn own_blocks(v: &[usize]) -> Vec<usize> {
    // SAFETY (test): the blocks are live, so their slabs are formatted; `heap` is atomic.
    v.iter()
        .copied()
        .filter(|&p| unsafe {
            (*crate::superslab::slab_of(p)).heap.load(Relaxed) == (*crate::tls::thread_cache()).heap
        })
        .collect()
}

#[test]
fn an_owners_frees_from_any_of_its_slabs_come_back_newest_first() {
    use crate::superslab::slab_of;
    setup();
    std::thread::spawn(|| {
        // 4 KiB blocks: 16 to a 64 KiB slab, so 100 of them fill several slabs, and the bin's
        // current slab is the last one's. Three of this thread's blocks in three other slabs:
        let v: Vec<usize> = (0..100).map(|_| alloc::malloc(4096) as usize).collect();
        let current = slab_of(v[99]);
        let c = crate::size_class::class_of(4096);
        let mut picks: Vec<usize> = Vec::new();
        // Not a block the class borrowed from the next ones up (its slab's class is theirs).
        // SAFETY (test): the blocks are live, so their slabs are formatted.
        for p in own_blocks(&v)
            .into_iter()
            .filter(|&p| unsafe { (*slab_of(p)).class as usize } == c)
        {
            if slab_of(p) != current && picks.iter().all(|&q| slab_of(q) != slab_of(p)) {
                picks.push(p);
            }
        }
        picks.truncate(3);
        assert_eq!(picks.len(), 3, "three slabs of this thread's blocks");
        let slabs: Vec<_> = picks.iter().map(|&p| slab_of(p)).collect();
        // SAFETY (test): the blocks are live blocks of this thread, freed once each; the slabs
        // are this thread's.
        unsafe {
            let used: Vec<u32> = slabs.iter().map(|&s| (*s).used()).collect();
            for &p in &picks {
                alloc::free(p as *mut u8);
            }
            // On the hot list: still counted in use by their slabs (no slab bookkeeping on the
            // free), and handed out again newest first, before the current slab's blocks.
            for (&s, &u) in slabs.iter().zip(&used) {
                assert_eq!(
                    (*s).used(),
                    u,
                    "a free onto the hot list touched its slab's count"
                );
            }
            assert_eq!(hot_len(c), 3);
            for &p in picks.iter().rev() {
                assert_eq!(alloc::malloc(4096) as usize, p);
            }
            for p in v {
                alloc::free(p as *mut u8);
            }
        }
    })
    .join()
    .unwrap();
}

#[test]
fn a_hot_list_grows_while_its_thread_frees_the_class_and_stops_at_its_cap() {
    use crate::size_class::class_of;
    setup();
    std::thread::spawn(|| {
        let (kib, big) = (class_of(1024), class_of(8192));
        let v = own_blocks(
            &(0..300)
                .map(|_| alloc::malloc(1024) as usize)
                .collect::<Vec<_>>(),
        );
        let w = own_blocks(
            &(0..100)
                .map(|_| alloc::malloc(8192) as usize)
                .collect::<Vec<_>>(),
        );
        assert!(
            v.len() >= 200 && w.len() >= 20,
            "{} and {} own blocks",
            v.len(),
            w.len()
        );
        // SAFETY (test): live blocks of this thread, freed once each; its own bins.
        unsafe {
            let bins = &raw mut (*crate::tls::thread_cache()).bins;
            // Opened at 16 blocks by the first refill (or free) after 64 allocations of the
            // class: 300 blocks of 1 KiB span several slabs.
            assert_eq!((*bins)[kib].hot_max, 16, "a hot list opens at 16 blocks");
            assert_eq!((*bins)[kib].hot_cap, 128);
            alloc::free(v[0] as *mut u8);
            assert_eq!(hot_len(kib), 1);
            for &p in &v[1..100] {
                alloc::free(p as *mut u8);
            }
            // 16, 32, 64, then 128: the cap for 1 KiB blocks (128 blocks, 128 KiB).
            assert_eq!((*bins)[kib].hot_max, 128);
            assert_eq!(hot_len(kib), 100);
            for &p in &v[100..200] {
                alloc::free(p as *mut u8);
            }
            assert_eq!(hot_len(kib), 128, "the rest go to their slabs");
            assert_eq!((*bins)[kib].hot_room, 0);
            // 8 KiB blocks: 128 KiB is 16 of them, which is where the list starts.
            assert_eq!((*bins)[big].hot_cap, 16);
            for &p in &w[..20] {
                alloc::free(p as *mut u8);
            }
            assert_eq!(hot_len(big), 16);
            assert_eq!((*bins)[big].hot_max, 16);
            // Classes whose free blocks decay have `big_hot_bytes` of them, at most 128.
            let first = crate::block_decay::FIRST_CLASS;
            assert_eq!(
                (*bins)[first].hot_cap as usize,
                (crate::heap::big_hot_bytes() >> 14).min(128)
            );
            for &p in v[200..].iter().chain(&w[20..]) {
                alloc::free(p as *mut u8);
            }
        }
    })
    .join()
    .unwrap();
}

#[test]
fn trim_hands_the_hot_lists_back_to_their_slabs() {
    use crate::slab::{IN_EMPTY, IN_POOL};
    setup();
    std::thread::spawn(|| {
        // 2 KiB blocks: 32 to a slab. Other tests' threads leave blocks of this class in the
        // transfer cache and partial slabs in parked heaps, so take a slab of this thread's heap
        // all of whose blocks are among the 200.
        let v: Vec<usize> = (0..200).map(|_| alloc::malloc(2048) as usize).collect();
        let in_slab = |s| {
            v.iter()
                .copied()
                .filter(|&p| crate::superslab::slab_of(p) == s)
                .collect::<Vec<usize>>()
        };
        // SAFETY (test): `heap` is atomic; the thread's cache is its own.
        let mine_heap = |s: *mut crate::slab::Slab| unsafe {
            (*s).heap.load(Relaxed) == (*crate::tls::thread_cache()).heap
        };
        let s = v
            .iter()
            .map(|&p| crate::superslab::slab_of(p))
            .find(|&s| mine_heap(s) && in_slab(s).len() == 32)
            .expect("no slab of this thread with 32 of the blocks");
        let mine = in_slab(s);
        // SAFETY (test): live blocks of this thread, freed once each; `s` is its slab.
        unsafe {
            assert!((*s).is_full());
            for &p in &mine {
                alloc::free(p as *mut u8);
            }
            // All 32 on the hot list (it grew to 32): the slab still counts them.
            assert_eq!(hot_len(crate::size_class::class_of(2048)), 32);
            assert!(
                (*s).is_full(),
                "a slab whose blocks are on the hot list emptied"
            );
            alloc::trim();
            assert_eq!(hot_len(crate::size_class::class_of(2048)), 0);
            assert!(
                (*s).flags & (IN_EMPTY | IN_POOL) != 0,
                "a slab whose blocks all came back from the hot list was not retired"
            );
            for p in v {
                if crate::superslab::slab_of(p) != s {
                    alloc::free(p as *mut u8);
                }
            }
        }
    })
    .join()
    .unwrap();
}

/// Blocks of 1 KiB that the calling thread allocated and still holds, enough that its hot list
/// of the class is open (the first refill after 64 allocations opens it).
fn open_kib_list() -> Vec<usize> {
    let v: Vec<usize> = (0..300).map(|_| alloc::malloc(1024) as usize).collect();
    // SAFETY (test): the calling thread's own bin.
    let max =
        unsafe { (*crate::tls::thread_cache()).bins[crate::size_class::class_of(1024)].hot_max };
    assert!(max > 0, "the hot list of 1 KiB blocks did not open");
    v
}

#[test]
fn another_threads_block_freed_here_comes_back_from_the_hot_list_and_goes_home_on_trim() {
    use std::sync::mpsc::channel;
    setup();
    let c = crate::size_class::class_of(1024);
    let (to_b, from_a) = channel::<usize>();
    let (done_tx, done_rx) = channel::<()>();
    // The owner: one of its own blocks to the other thread, then it waits (allocating nothing,
    // so nothing collects its slabs' remote stacks) until the other has checked.
    let a = std::thread::spawn(move || {
        let v: Vec<usize> = (0..8).map(|_| alloc::malloc(1024) as usize).collect();
        let p = own_blocks(&v)[0];
        to_b.send(p).unwrap();
        done_rx.recv().unwrap();
        for q in v.into_iter().filter(|&q| q != p) {
            // SAFETY (test): live blocks of this thread, freed once each.
            unsafe { alloc::free(q as *mut u8) };
        }
    });
    let p = from_a.recv().unwrap();
    std::thread::spawn(move || {
        let mine = open_kib_list();
        let s = crate::superslab::slab_of(p);
        // SAFETY (test): `p` is a live block of the owner's slab `s`, handed over, freed once
        // per time this thread got it; `mine` are this thread's live blocks.
        unsafe {
            let used = (*s).used();
            alloc::free(p as *mut u8);
            assert_eq!(hot_len(c), 1, "another thread's block missed the hot list");
            assert_eq!(
                (*s).used(),
                used,
                "the free onto the hot list touched its slab"
            );
            assert_eq!(
                alloc::malloc(1024) as usize,
                p,
                "the hot list's block was not reused"
            );
            // Freed again by the thread that reused it: onto the hot list again.
            alloc::free(p as *mut u8);
            assert_eq!(hot_len(c), 1);
            assert_eq!(remote_word(s as usize), 0);
            alloc::trim();
            assert_eq!(hot_len(c), 0);
            assert_ne!(
                remote_word(s as usize),
                0,
                "the flushed block did not go home to its slab's remote stack"
            );
            for q in mine {
                alloc::free(q as *mut u8);
            }
        }
    })
    .join()
    .unwrap();
    done_tx.send(()).unwrap();
    a.join().unwrap();
}

/// Runs `make` on an owner thread, which then waits, allocating nothing, while `body` runs on
/// another thread with what `make` returned (blocks the owner allocated, handed over).
fn handed_over<T: Send + 'static>(make: fn() -> T, body: impl FnOnce(T) + Send + 'static) {
    use std::sync::mpsc::channel;
    let (to_b, from_a) = channel::<T>();
    let (done_tx, done_rx) = channel::<()>();
    let a = std::thread::spawn(move || {
        to_b.send(make()).unwrap();
        done_rx.recv().unwrap();
    });
    let t = from_a.recv().unwrap();
    std::thread::spawn(move || body(t)).join().unwrap();
    done_tx.send(()).unwrap();
    a.join().unwrap();
}

/// Blocks of a class whose free blocks decay.
const DECAYING: usize = 20 << 10;

#[test]
fn a_decaying_class_keeps_a_hot_list_of_its_threads_frees_and_of_another_threads_block() {
    setup();
    let c = crate::size_class::class_of(DECAYING);
    assert!(c >= crate::block_decay::FIRST_CLASS);
    // One block of the class from its owner.
    handed_over(
        || alloc::malloc(DECAYING) as usize,
        move |p| {
            // SAFETY (test): this thread's own bin; its own blocks and `p` (handed over) are
            // live and freed once each per time this thread got them.
            unsafe {
                // Its own blocks, made and freed: past `HOT_AFTER` allocations, the list
                // opens and takes them, newest first (their slabs held a few each, and every
                // malloc switched slabs: random_mixed_256k).
                let v: Vec<usize> = (0..100).map(|_| alloc::malloc(DECAYING) as usize).collect();
                let bin = &raw mut (*crate::tls::thread_cache()).bins[c];
                let cap = (crate::heap::big_hot_bytes() / crate::size_class::class_size(c)).min(128)
                    as u16;
                assert_eq!((*bin).hot_cap, cap);
                assert!(cap >= 64, "a cap of {cap} blocks of 20 KiB");
                for &q in &v[..50] {
                    alloc::free(q as *mut u8);
                }
                assert_eq!(
                    hot_len(c),
                    50,
                    "an owner's frees of a decaying class missed its list"
                );
                assert_eq!(alloc::malloc(DECAYING) as usize, v[49]);
                assert_eq!(hot_len(c), 49);
                // Another thread's block goes onto it too, and malloc hands it out next.
                alloc::free(p as *mut u8);
                assert_eq!(hot_len(c), 50, "another thread's block missed the hot list");
                assert_eq!(
                    alloc::malloc(DECAYING) as usize,
                    p,
                    "the hot list's block was not reused"
                );
                alloc::trim();
                assert_eq!(hot_len(c), 0);
                for q in v[49..].iter().copied().chain([p]) {
                    alloc::free(q as *mut u8);
                }
            }
        },
    );
}

#[test]
fn a_thread_that_only_frees_a_decaying_class_keeps_no_hot_list_of_it() {
    setup();
    let c = crate::size_class::class_of(DECAYING);
    handed_over(
        || {
            (0..10)
                .map(|_| alloc::malloc(DECAYING) as usize)
                .collect::<Vec<_>>()
        },
        move |v| {
            // SAFETY (test): blocks handed over, freed once each; this thread's own bin.
            unsafe {
                // A consumer: it never allocates the class, so its list stays closed.
                let _ = alloc::malloc(16);
                for q in v {
                    alloc::free(q as *mut u8);
                }
                assert_eq!((*crate::tls::thread_cache()).bins[c].hot_max, 0);
                assert_eq!(hot_len(c), 0);
            }
        },
    );
}

#[test]
fn a_thread_past_its_exit_handler_keeps_no_block_on_its_hot_lists() {
    setup();
    let c = crate::size_class::class_of(1024);
    let v: Vec<usize> = (0..8).map(|_| alloc::malloc(1024) as usize).collect();
    let theirs = own_blocks(&v);
    assert!(!theirs.is_empty());
    let slabs: Vec<_> = theirs
        .iter()
        .map(|&p| crate::superslab::slab_of(p))
        .collect();
    let sent = theirs.clone();
    std::thread::spawn(move || {
        for q in open_kib_list() {
            // SAFETY (test): this thread's live blocks, freed once each.
            unsafe { alloc::free(q as *mut u8) };
        }
        let tc = crate::tls::thread_cache();
        // SAFETY (test): this thread's cache and heap; its exit handler finds no heap after
        // this and does nothing. The thread allocates nothing afterwards.
        unsafe {
            crate::heap::detach(tc, (*tc).heap);
            for &p in &sent {
                alloc::free(p as *mut u8);
            }
        }
        assert_eq!(
            hot_len(c),
            0,
            "a detached thread kept blocks on its hot list"
        );
    })
    .join()
    .unwrap();
    // This thread has not allocated since, so the blocks wait on their slabs' remote stacks.
    for s in slabs {
        assert_ne!(
            remote_word(s as usize),
            0,
            "a block freed after the exit handler never reached its slab"
        );
    }
    for p in v.into_iter().filter(|p| !theirs.contains(p)) {
        // SAFETY (test): this thread's live blocks, freed once each.
        unsafe { alloc::free(p as *mut u8) };
    }
}

#[test]
fn a_thread_that_makes_few_blocks_of_a_class_keeps_no_hot_list_of_it() {
    setup();
    std::thread::spawn(|| {
        let c = crate::size_class::class_of(3000);
        let v = own_blocks(
            &(0..10)
                .map(|_| alloc::malloc(3000) as usize)
                .collect::<Vec<_>>(),
        );
        assert!(!v.is_empty());
        // SAFETY (test): live blocks of this thread, freed once each; its own bin and slabs.
        unsafe {
            let s = crate::superslab::slab_of(v[0]);
            let used = (*s).used_full;
            alloc::free(v[0] as *mut u8);
            let bin = &raw mut (*crate::tls::thread_cache()).bins[c];
            assert_eq!((*bin).hot_max, 0, "a hot list opened after 10 allocations");
            assert_eq!(hot_len(c), 0);
            assert_eq!((*s).used_full, used - 1, "the free did not reach its slab");
            for &p in &v[1..] {
                alloc::free(p as *mut u8);
            }
        }
    })
    .join()
    .unwrap();
}

/// A block going round a thread's hot list (freed onto it, handed out again) counts nothing and
/// stays counted in use, as a tcache's blocks do; the list's blocks count as freed when it gives
/// them back. So the bin's counts stay exact for the live bytes (`stats::usage`) without a
/// counter on the hot list's push and pop.
#[test]
fn a_hot_lists_blocks_count_in_use_until_it_gives_them_back() {
    setup();
    std::thread::spawn(|| {
        // Blocks of the 320-byte class, counted in this (new) thread's own bin.
        let c = crate::size_class::class_of(270);
        // SAFETY (test): this thread's own bin, read by this thread.
        let counts = || unsafe {
            let bin = &raw const (*crate::tls::thread_cache()).bins[c];
            ((*bin).allocs.load(Relaxed), (*bin).frees.load(Relaxed))
        };
        let (a0, f0) = counts();
        let v: Vec<usize> = (0..200).map(|_| alloc::malloc(270) as usize).collect();
        assert_eq!(counts(), (a0 + 200, f0), "fresh blocks leave their slabs");
        for &p in v.iter().rev() {
            // SAFETY (test): live blocks of this thread, freed once each.
            unsafe { alloc::free(p as *mut u8) };
        }
        let held = hot_len(c) as u64;
        assert!(held >= 10, "the hot list took {held} of 200 blocks");
        let (a1, f1) = counts();
        assert_eq!(
            a1 - f1,
            a0 - f0 + held,
            "the hot list's blocks count in use, no other"
        );
        let w: Vec<usize> = (0..10).map(|_| alloc::malloc(270) as usize).collect();
        assert_eq!(
            counts(),
            (a1, f1),
            "blocks handed out from the hot list were counted"
        );
        // SAFETY (test): this thread's cache.
        unsafe { crate::heap::hot_flush_all(crate::tls::thread_cache()) };
        let (a2, f2) = counts();
        assert_eq!(
            a2 - f2,
            a0 - f0 + 10,
            "after the flush, the 10 blocks held are what counts in use"
        );
        for &p in &w {
            // SAFETY (test): live blocks of this thread, freed once each.
            unsafe { alloc::free(p as *mut u8) };
        }
        // SAFETY (test): as above.
        unsafe { crate::heap::hot_flush_all(crate::tls::thread_cache()) };
        let (a3, f3) = counts();
        assert_eq!(a3 - f3, a0 - f0, "every block freed and given back");
    })
    .join()
    .unwrap();
}

/// Another heap's blocks that a thread frees onto its hot list count nothing until the list
/// gives them back, and then count as that thread's remote frees: none is lost (it would stay
/// counted in use for good) and none counted twice.
#[test]
fn another_heaps_blocks_off_a_hot_list_count_as_remote_frees() {
    use std::sync::mpsc::channel;
    setup();
    // Blocks of the 384-byte class; the counts read are the freeing thread's own.
    let size = 330;
    let c = crate::size_class::class_of(size);
    let (to_b, from_a) = channel::<Vec<usize>>();
    let (done, wait) = channel::<()>();
    // The owner stays alive (its heap attached) until the other thread is done, so that the
    // other thread cannot take its heap over.
    let a = std::thread::spawn(move || {
        to_b.send((0..50).map(|_| alloc::malloc(size) as usize).collect())
            .unwrap();
        wait.recv().unwrap();
    });
    let blocks = from_a.recv().unwrap();
    std::thread::spawn(move || {
        let tc = crate::tls::thread_cache();
        // This thread's list of the class opens once it has made 64 blocks of it.
        let own: Vec<usize> = (0..100).map(|_| alloc::malloc(size) as usize).collect();
        for &p in &own {
            // SAFETY (test): live blocks of this thread, freed once each.
            unsafe { alloc::free(p as *mut u8) };
        }
        // SAFETY (test): this thread's cache, read by this thread.
        let counts = || unsafe {
            crate::heap::hot_flush_all(tc);
            let bin = &raw const (*tc).bins[c];
            (
                (*bin).frees.load(Relaxed),
                (*tc).remote_frees[c].load(Relaxed),
            )
        };
        let (f0, r0) = counts();
        for &p in &blocks {
            // SAFETY (test): live blocks of the other thread, freed once each, by this one.
            unsafe { alloc::free(p as *mut u8) };
        }
        let held = hot_len(c);
        assert!(
            held > 0,
            "no block of the other heap went onto the hot list"
        );
        // SAFETY (test): as above.
        let r1 = unsafe { (*tc).remote_frees[c].load(Relaxed) };
        assert_eq!(
            r1 - r0,
            50 - held as u64,
            "a block on the hot list was counted"
        );
        let (f2, r2) = counts();
        assert_eq!((f2 - f0, r2 - r0), (0, 50), "the flush counted them wrong");
        done.send(()).unwrap();
    })
    .join()
    .unwrap();
    a.join().unwrap();
}
