//! When a thread exits, its heap is parked until a new thread adopts it, and the blocks other
//! threads free into its slabs wait there. A live thread that would take a fresh slab takes
//! over the parked heap's partial slabs of that class instead (`heap::adopt_parked`), after
//! collecting the frees waiting there, so that what the exited thread's blocks span is used
//! again before new memory is. A binary of its own, so that the SuperSlab counts are this
//! test's alone.

use hakmem_core::{alloc, superslab};
use std::sync::atomic::Ordering::Relaxed;

const SIZE: usize = 4000; // the 4 KiB class: 16 blocks per 64 KiB slab
const BLOCKS: usize = 4096; // 256 slabs' worth

fn fill(p: *mut u8, b: u8) {
    // SAFETY: `p` is a live block of SIZE bytes.
    unsafe { p.write_bytes(b, SIZE) };
}

fn check(p: *mut u8, b: u8) {
    // SAFETY: `p` is a live block of SIZE bytes.
    unsafe {
        assert!(
            *p == b && *p.add(SIZE - 1) == b,
            "a block lost its contents"
        )
    };
}

#[test]
fn a_live_thread_reuses_the_slabs_of_an_exited_threads_heap() {
    // This thread's heap exists before the other thread exits (a heap started later would
    // adopt the parked one whole).
    let own = alloc::malloc(SIZE);
    assert!(!own.is_null());
    let blocks: Vec<usize> = std::thread::spawn(|| {
        (0..BLOCKS)
            .map(|i| {
                let p = alloc::malloc(SIZE);
                assert!(!p.is_null());
                fill(p, i as u8);
                p as usize
            })
            .collect()
    })
    .join()
    .unwrap();
    // Freed here, by another thread than their allocator's, which has exited: most go back to
    // the slabs of its parked heap.
    for (i, &p) in blocks.iter().enumerate() {
        check(p as *mut u8, i as u8);
        // SAFETY: a live block from `malloc`, freed once.
        unsafe { alloc::free(p as *mut u8) };
    }
    let mapped = || superslab::SS_MAPPED.load(Relaxed) - superslab::SS_UNMAPPED.load(Relaxed);
    let before = mapped();
    let again: Vec<*mut u8> = (0..BLOCKS)
        .map(|i| {
            let p = alloc::malloc(SIZE);
            assert!(!p.is_null());
            fill(p, !(i as u8));
            p
        })
        .collect();
    let new = mapped() - before;
    assert!(
        new <= 1,
        "{new} SuperSlabs mapped for {BLOCKS} blocks (16 MiB) while the exited thread's heap \
         holds as many free ones: its slabs were not used again"
    );
    for (i, &p) in again.iter().enumerate() {
        check(p, !(i as u8));
        // SAFETY: a live block from `malloc`, freed once.
        unsafe { alloc::free(p) };
    }
    // SAFETY: `own` is live, freed once.
    unsafe { alloc::free(own) };
}
