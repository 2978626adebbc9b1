//! A running thread that runs dry of a class takes over the slab an exited thread left in its
//! bin of that class (with the blocks on the bin's list), as it takes over that heap's partial
//! slabs, instead of carving a new one. A binary of its own, so that the parked heap is this
//! test's alone.

use hakmem_core::{alloc, superslab};
use std::sync::mpsc::channel;

const SIZE: usize = 160;

#[test]
fn a_running_thread_takes_over_the_slab_an_exited_thread_left_in_its_bin() {
    let (go_tx, go_rx) = channel::<()>();
    let (res_tx, res_rx) = channel::<usize>();
    // Attached (a heap of its own) before the other thread starts, with no block of the class.
    let b = std::thread::spawn(move || {
        let first = alloc::malloc(16);
        go_rx.recv().unwrap();
        let p = alloc::malloc(SIZE);
        res_tx
            .send(superslab::slab_of(p as usize) as usize)
            .unwrap();
        // SAFETY (test): live blocks from `malloc`, freed once each.
        unsafe {
            alloc::free(p);
            alloc::free(first);
        }
    });
    // An exiting thread keeps one block live, so that its slab is partial, not empty.
    let (kept, s) = std::thread::spawn(|| {
        let v: Vec<usize> = (0..50).map(|_| alloc::malloc(SIZE) as usize).collect();
        let s = superslab::slab_of(v[49]) as usize;
        for &p in &v[..49] {
            // SAFETY (test): live blocks from `malloc`, freed once each.
            unsafe { alloc::free(p as *mut u8) };
        }
        (v[49], s)
    })
    .join()
    .unwrap();
    go_tx.send(()).unwrap();
    assert_eq!(
        res_rx.recv().unwrap(),
        s,
        "the running thread carved a new slab instead of taking over the exited thread's"
    );
    b.join().unwrap();
    // SAFETY (test): the block the exited thread kept, freed once.
    unsafe { alloc::free(kept as *mut u8) };
}
