//! A thread's bins stay with its heap when it exits: the slab each bin was using and the free
//! blocks on the bin's list wait, uncounted, for the next thread on that heap, which allocates
//! from them at once (no walk of the lists at exit, no refill at the next thread's start).
//! `malloc_trim` hands them back to their slabs and gives the empty ones to the pool. A binary of
//! its own, so that the parked heap is this test's alone.

use hakmem_core::slab::{Slab, CURRENT_USED};
use hakmem_core::{alloc, superslab};
use std::sync::atomic::Ordering::Relaxed;

const SIZE: usize = 160; // 409 blocks to a 64 KiB slab
const BLOCKS: usize = 100;

fn slab(p: usize) -> *mut Slab {
    superslab::slab_of(p)
}

#[test]
fn an_exited_threads_bins_serve_the_next_thread_on_its_heap() {
    // The exiting thread's current slab of the class: every block it made is free again.
    let s = std::thread::spawn(|| {
        let v: Vec<usize> = (0..BLOCKS).map(|_| alloc::malloc(SIZE) as usize).collect();
        assert!(v.iter().all(|&p| p != 0));
        let s = slab(v[BLOCKS - 1]) as usize;
        for p in v {
            // SAFETY (test): live blocks from `malloc`, freed once each.
            unsafe { alloc::free(p as *mut u8) };
        }
        s
    })
    .join()
    .unwrap() as *mut Slab;
    // SAFETY (test): `s` is a slab descriptor in a SuperSlab of the cage, which stays mapped;
    // its owner is parked, so nothing changes it.
    let carved = unsafe {
        // A bin's current slab counts down from CURRENT_USED; taken out of the bin (its list
        // walked), it would count 0 blocks in use and be retired.
        assert!(
            (*s).used_full > CURRENT_USED - (*s).capacity,
            "the exited thread's slab was taken out of its bin (walked and classified)"
        );
        (*s).carved.load(Relaxed)
    };
    assert!(carved >= 1);
    // The next thread on the heap: its blocks come off the kept list, nothing is carved.
    let s_addr = s as usize;
    std::thread::spawn(move || {
        let s = s_addr as *mut Slab;
        let v: Vec<usize> = (0..10).map(|_| alloc::malloc(SIZE) as usize).collect();
        // SAFETY (test): as above; this thread owns `s` now.
        unsafe {
            assert!(
                v.iter().all(|&p| slab(p) == s),
                "the next thread's blocks came from another slab than the kept one"
            );
            assert_eq!(
                (*s).carved.load(Relaxed),
                carved,
                "the next thread carved new blocks past the kept list (its blocks leak)"
            );
        }
        for p in v {
            // SAFETY (test): live blocks from `malloc`, freed once each.
            unsafe { alloc::free(p as *mut u8) };
        }
    })
    .join()
    .unwrap();
    // Parked again with the slab in its bin; malloc_trim gives it back.
    alloc::trim();
    // SAFETY (test): as above.
    unsafe {
        assert!(
            (*s).heap.load(Relaxed).is_null(),
            "malloc_trim left the slab a parked heap kept in its bin (all its blocks free) formatted"
        );
    }
}
