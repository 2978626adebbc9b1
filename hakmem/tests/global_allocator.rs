//! hakmem as the global allocator of this test binary (nothing preloaded): every Rust
//! allocation here, the test harness's included, comes from hakmem.

use std::alloc::{alloc, alloc_zeroed, dealloc, realloc, Layout};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

/// Is `p` a block hakmem handed out? (Small blocks live in its SuperSlabs.)
fn from_hakmem(p: *const u8) -> bool {
    hakmem_core::superslab::contains(p as usize)
}

static EARLY: AtomicUsize = AtomicUsize::new(0);

extern "C" fn allocate_before_main() {
    let s = String::from("allocated by a constructor, before main");
    EARLY.store(Box::into_raw(Box::new(s)) as usize, Relaxed);
}

#[used]
#[link_section = ".init_array"]
static EARLY_CTOR: extern "C" fn() = allocate_before_main;

#[test]
fn allocation_before_main_comes_from_hakmem() {
    let p = EARLY.load(Relaxed) as *mut String;
    assert!(!p.is_null(), "the constructor did not run");
    assert!(from_hakmem(p as *const u8));
    // SAFETY: the constructor leaked this box for the test.
    let s = unsafe { Box::from_raw(p) };
    assert!(from_hakmem(s.as_ptr()));
    assert_eq!(*s, "allocated by a constructor, before main");
}

#[test]
fn fork_handlers_are_registered_without_the_preload_library() {
    assert!(hakmem_core::process::fork_handlers_registered());
}

#[test]
fn collections_work_and_are_counted() {
    let before = hakmem::stats().allocs;
    let mut m: HashMap<String, Vec<u64>> = HashMap::new();
    for i in 0..10_000u64 {
        m.entry(format!("key-{}", i % 997)).or_default().push(i);
    }
    let mut b = BTreeMap::new();
    for (k, v) in &m {
        b.insert(k.clone(), v.iter().sum::<u64>());
    }
    assert_eq!(b.values().sum::<u64>(), (0..10_000u64).sum());
    assert!(from_hakmem(m.keys().next().unwrap().as_ptr()));
    assert!(hakmem::stats().allocs >= before + 1000);
}

#[test]
fn threads_allocate_and_free_across_each_other() {
    let (tx, rx) = std::sync::mpsc::channel::<Vec<Box<[u8; 48]>>>();
    let producers: Vec<_> = (0..4)
        .map(|t| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for r in 0..50u8 {
                    tx.send((0..200).map(|_| Box::new([t as u8 ^ r; 48])).collect())
                        .unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let consumer = std::thread::spawn(move || rx.iter().map(|v| v.len()).sum::<usize>());
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(consumer.join().unwrap(), 4 * 50 * 200);
}

#[test]
fn exiting_threads_hand_their_heap_back() {
    for _ in 0..64 {
        std::thread::spawn(|| {
            let v: Vec<String> = (0..500).map(|i| i.to_string()).collect();
            assert_eq!(v.len(), 500);
        })
        .join()
        .unwrap();
    }
    // Heaps of exited threads are parked and adopted by new threads: without the thread-exit
    // hook there would be one heap per thread ever started.
    let heaps = hakmem::stats().heaps;
    assert!(heaps < 40, "{heaps} heaps for at most a dozen live threads");
}

fn check_layout(align: usize, size: usize) {
    let l = Layout::from_size_align(size, align).unwrap();
    // SAFETY: every layout has a non-zero size; every block is freed once with its layout.
    unsafe {
        for new in [size * 2 + 100, size + 1, size / 2 + 1] {
            let p = alloc(l);
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0, "alloc({size}, {align})");
            for i in 0..size {
                *p.add(i) = (i % 251) as u8;
            }
            let q = realloc(p, l, new);
            assert!(!q.is_null());
            assert_eq!(q as usize % align, 0, "realloc({size} -> {new}, {align})");
            for i in 0..size.min(new) {
                assert_eq!(
                    *q.add(i),
                    (i % 251) as u8,
                    "byte {i} after realloc to {new}"
                );
            }
            dealloc(q, Layout::from_size_align(new, align).unwrap());
        }
        let z = alloc_zeroed(l);
        assert_eq!(z as usize % align, 0);
        assert!(
            (0..size).all(|i| *z.add(i) == 0),
            "alloc_zeroed({size}, {align})"
        );
        dealloc(z, l);
    }
}

#[test]
fn large_alignments_hold_through_realloc_and_zeroing() {
    for align in [32, 64, 4096, 1 << 20] {
        for size in [1, 100, 4096, 70_000, 300_000, 3 << 20] {
            check_layout(align, size);
        }
    }
}

#[test]
fn realloc_keeps_contents_while_growing() {
    let mut v: Vec<u64> = Vec::new();
    for i in 0..2_000_000u64 {
        v.push(i * 3);
    }
    assert!(v.iter().enumerate().all(|(i, x)| *x == i as u64 * 3));
    v.truncate(10);
    v.shrink_to_fit();
    assert_eq!(v, (0..10u64).map(|i| i * 3).collect::<Vec<_>>());
    let mut s = String::new();
    for i in 0..100_000 {
        s.push_str(&i.to_string());
    }
    assert!(s.starts_with("0123456789101112"));
}

#[test]
fn zeroed_allocations_are_zero() {
    for n in [1usize, 17, 1000, 100_000, 1 << 20, 5 << 20] {
        let mut v = vec![0u8; n];
        assert!(v.iter().all(|b| *b == 0));
        v.fill(0xAA); // dirty the block so that a reused one would show
        drop(v);
        let v = vec![0u8; n];
        assert!(v.iter().all(|b| *b == 0), "vec![0; {n}]");
    }
}

#[test]
fn fork_child_allocates_while_parent_threads_hold_the_allocator() {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy: Vec<_> = (0..2)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0usize;
                while !stop.load(Relaxed) {
                    // large blocks take hakmem's large-block lock; small ones the slab paths
                    let big = vec![t as u8; 300_000 + n % 100_000];
                    let small: Vec<Box<u64>> = (0..100).map(|i| Box::new(i as u64)).collect();
                    n = n.wrapping_add(big.len() + small.len());
                }
                n
            })
        })
        .collect();
    // Where a child got to, in memory it shares with this process: if one hangs (once in
    // several hundred runs of this binary, 2026-11-24, not reproduced since), the failure says
    // at which step.
    // SAFETY: a fresh shared anonymous page, unmapped only at the end of the process.
    let stage = unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        &*(p as *const std::sync::atomic::AtomicU8)
    };
    const STEPS: [&str; 5] = [
        "forked",
        "small blocks allocated",
        "a 4 MiB block allocated",
        "a thread spawned",
        "the thread joined",
    ];
    for _ in 0..60 {
        stage.store(0, Relaxed);
        // SAFETY: the child only allocates, spawns one thread and leaves with _exit; an alarm
        // kills it if a lock left held across fork makes it hang.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            unsafe { libc::alarm(10) };
            let v: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
            stage.store(1, Relaxed);
            let big = vec![1u8; 4 << 20];
            stage.store(2, Relaxed);
            let t = std::thread::spawn(|| (0..1000).map(Box::new).map(|b| *b).sum::<i32>());
            stage.store(3, Relaxed);
            let sum = t.join().unwrap();
            stage.store(4, Relaxed);
            let ok = v[9999] == "9999" && big[(4 << 20) - 1] == 1 && sum == 499_500;
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waiting for the child forked above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child status {status:#x}, last step done: {}",
            STEPS[stage.load(Relaxed) as usize]
        );
    }
    stop.store(true, Relaxed);
    for b in busy {
        b.join().unwrap();
    }
}

/// Rust passes the old layout to realloc; hakmem grows or shrinks a small block in place while
/// the new size fits its size class (and is not under half of it), and the whole new size is
/// then the program's: writing it keeps the old bytes and reaches no neighbour.
#[test]
fn realloc_in_place_within_the_block_keeps_contents_and_neighbours() {
    for size in (1..=1100).step_by(9).chain([5000, 70_000]) {
        let l = Layout::from_size_align(size, 8).unwrap();
        // SAFETY: every layout has a non-zero size; each block is freed once with its layout.
        unsafe {
            let p = alloc(l);
            let usable = hakmem_core::usable_size(p);
            for i in 0..size {
                *p.add(i) = (i % 253) as u8;
            }
            let q = realloc(p, l, usable);
            assert_eq!(
                q, p,
                "realloc({size} -> {usable}) within the block moved it"
            );
            let neighbour = alloc(l);
            neighbour.write_bytes(0x5A, size);
            for i in size..usable {
                *q.add(i) = 0xC3;
            }
            assert!(
                (0..size).all(|i| *q.add(i) == (i % 253) as u8),
                "realloc({size} -> {usable})"
            );
            assert!(
                (0..size).all(|i| *neighbour.add(i) == 0x5A),
                "realloc({size} -> {usable})"
            );
            let grown = realloc(q, Layout::from_size_align(usable, 8).unwrap(), usable + 1);
            assert!(
                (0..size).all(|i| *grown.add(i) == (i % 253) as u8),
                "realloc(-> {})",
                usable + 1
            );
            assert!(
                (size..usable).all(|i| *grown.add(i) == 0xC3),
                "realloc(-> {})",
                usable + 1
            );
            dealloc(grown, Layout::from_size_align(usable + 1, 8).unwrap());
            dealloc(neighbour, l);
        }
    }
}
