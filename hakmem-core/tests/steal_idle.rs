//! A slab whose blocks other threads freed, all of them, while its owner thread stays alive and
//! no longer allocates, is taken by a thread that needs slabs (`steal`), and serves another size
//! class there; but never while it is still its owner's current slab, which the owner takes
//! back on its next allocation. A binary of its own, so that no other test's heap is looked at.

use hakmem_core::slab::Slab;
use hakmem_core::{alloc, remote_list, steal, superslab};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;

fn slab(p: usize) -> *mut Slab {
    superslab::slab_of(p)
}

/// `steal` from a thread that has a heap (a thread gets one with its first allocation), twice:
/// a heap is taken from when it collected nothing between two looks.
fn steal_here() -> usize {
    // SAFETY (test): a live block from `malloc`, freed once.
    unsafe { alloc::free(alloc::malloc(64)) };
    steal::steal_for_this_thread() + steal::steal_for_this_thread()
}

/// Blocks of `size` a slab holds.
fn capacity(size: usize) -> usize {
    let p = alloc::malloc(size);
    // SAFETY (test): `p` is a live block; its slab descriptor stays mapped while it is.
    let cap = unsafe { (*slab(p as usize)).capacity as usize };
    // SAFETY (test): a live block from `malloc`, freed once.
    unsafe { alloc::free(p) };
    cap
}

/// An owner thread allocates `n` blocks of `size` and then waits, alive and idle, until told to
/// allocate once more; another thread frees the first `cap` of them and exits (its foreign
/// cache goes home at exit). Returns the blocks, the channel that wakes the owner, and the
/// owner's handle, which yields the block of its last allocation.
fn owner_with_freed_slab(
    size: usize,
    n: usize,
    cap: usize,
) -> (Vec<usize>, mpsc::Sender<()>, std::thread::JoinHandle<usize>) {
    let (tx_blocks, rx_blocks) = mpsc::channel();
    let (tx_go, rx_go) = mpsc::channel::<()>();
    let owner = std::thread::spawn(move || {
        let v: Vec<usize> = (0..n).map(|_| alloc::malloc(size) as usize).collect();
        assert!(v.iter().all(|&p| p != 0));
        tx_blocks.send(v).unwrap();
        rx_go.recv().unwrap();
        alloc::malloc(size) as usize
    });
    let v = rx_blocks.recv().unwrap();
    let first: Vec<usize> = v[..cap].to_vec();
    std::thread::spawn(move || {
        for p in first {
            // SAFETY (test): live blocks from `malloc`, freed once each.
            unsafe { alloc::free(p as *mut u8) };
        }
    })
    .join()
    .unwrap();
    // What its foreign cache passed to the transfer cache goes home too (as `malloc_trim` does).
    hakmem_core::foreign::flush_transfer();
    // SAFETY (test): the slab descriptor of a block of this test's; `thread_free` is atomic.
    let w = unsafe { (*slab(v[0])).thread_free.load(Relaxed) };
    assert_eq!(
        remote_list::run(w).n as usize,
        cap,
        "the freed blocks did not all reach their slab"
    );
    (v, tx_go, owner)
}

#[test]
fn a_slab_freed_whole_under_an_idle_owner_is_taken_but_never_its_current_one() {
    // 1. The owner's current slab, every block handed out and freed by another thread: its
    //    owner still uses it (its next allocation collects the frees), so it stays.
    let size = 1536;
    let cap = capacity(size);
    let (v, go, owner) = owner_with_freed_slab(size, cap, cap);
    let s = slab(v[0]);
    assert!(v.iter().all(|&p| slab(p) == s), "the blocks span slabs");
    // SAFETY (test): `s` is a slab descriptor of a mapped SuperSlab; `heap` is atomic.
    let owner_heap = unsafe { (*s).heap.load(Relaxed) };
    let got = std::thread::spawn(steal_here).join().unwrap();
    // SAFETY (test): as above.
    unsafe {
        assert_eq!(
            (*s).heap.load(Relaxed),
            owner_heap,
            "the owner's current slab was taken ({got} slabs taken)"
        );
    }
    go.send(()).unwrap();
    let again = owner.join().unwrap();
    assert_eq!(
        slab(again),
        s,
        "the owner's next block did not come from its current slab's freed blocks"
    );
    // SAFETY (test): a live block from `malloc`, freed once.
    unsafe { alloc::free(again as *mut u8) };

    // 2. A slab the owner filled and left (its next block came from a new slab), every block
    //    freed by another thread, the owner idle: taken, and formatted for another size.
    let size = 1792;
    let cap = capacity(size);
    let (v, go, owner) = owner_with_freed_slab(size, cap + 1, cap);
    let s = slab(v[0]);
    assert!(v[..cap].iter().all(|&p| slab(p) == s) && slab(v[cap]) != s);
    let s_addr = s as usize;
    let reused = std::thread::spawn(move || {
        let got = steal_here();
        // Blocks of another class until one lies in the taken slab (it is in this thread's
        // slab cache, first in line for a new slab of its kind).
        let w: Vec<usize> = (0..200).map(|_| alloc::malloc(3000) as usize).collect();
        let hit = w.iter().any(|&p| slab(p) as usize == s_addr);
        for p in w {
            // SAFETY (test): live blocks from `malloc`, freed once each.
            unsafe { alloc::free(p as *mut u8) };
        }
        (got, hit)
    })
    .join()
    .unwrap();
    assert!(
        reused.0 >= 1,
        "no slab was taken from the idle owner ({} taken)",
        reused.0
    );
    assert!(
        reused.1,
        "the slab taken from the idle owner did not serve the taker's other size"
    );
    assert!(steal::STOLEN.load(Relaxed) >= 1);
    go.send(()).unwrap();
    let last = owner.join().unwrap();
    assert_ne!(
        slab(last),
        s,
        "the taken slab went on serving its old owner"
    );
    // SAFETY (test): live blocks from `malloc`, freed once each.
    unsafe {
        alloc::free(last as *mut u8);
        alloc::free(v[cap] as *mut u8);
    }
}
