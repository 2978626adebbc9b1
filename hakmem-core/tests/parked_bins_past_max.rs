//! Past the parked heaps that may keep their caches (`slab_cache::PARKED_MAX`, 8), an exiting
//! thread's heap keeps nothing: the slabs in its bins go back with its empty slabs, instead of
//! staying with a heap no new thread may come for (a program whose thread count shrinks). A
//! binary of its own, so that every parked heap is this test's.

use hakmem_core::{alloc, superslab};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Barrier};

const THREADS: usize = 12; // more than PARKED_MAX
const SIZE: usize = 160;

#[test]
fn heaps_parked_past_the_limit_keep_no_slab_in_their_bins() {
    let all_done = Arc::new(Barrier::new(THREADS));
    // Every thread alive at once, so each has a heap of its own; each frees all it made, so
    // its bin's slab is empty when it exits.
    let slabs: Vec<usize> = (0..THREADS)
        .map(|_| {
            let all_done = all_done.clone();
            std::thread::spawn(move || {
                let v: Vec<usize> = (0..100).map(|_| alloc::malloc(SIZE) as usize).collect();
                let s = superslab::slab_of(v[99]) as usize;
                for p in v {
                    // SAFETY (test): live blocks from `malloc`, freed once each.
                    unsafe { alloc::free(p as *mut u8) };
                }
                all_done.wait();
                s
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    // SAFETY (test): slab descriptors in SuperSlabs of the cage, which stay mapped; every
    // thread that could change them has exited.
    let back = slabs
        .iter()
        .filter(|&&s| unsafe {
            (*(s as *const hakmem_core::slab::Slab))
                .heap
                .load(Relaxed)
                .is_null()
        })
        .count();
    assert!(
        back >= THREADS - 8,
        "only {back} of {THREADS} exited threads' empty bin slabs went back to the pool"
    );
}
