//! A thread's empty slabs stay with its heap when it exits: the next thread on that heap reuses
//! each for the class it was formatted for, whose blocks its pages already hold, instead of
//! reformatting it for whatever class runs dry first (a thread-churning program then ended up
//! with every page of every slab resident). `malloc_trim` gives them back to the pool. A binary
//! of its own, so that the parked heap is this test's alone.

use hakmem_core::{alloc, superslab};
use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;

const SIZE: usize = 3000; // the 3 KiB class: 21 blocks per 64 KiB slab
const BLOCKS: usize = 60; // three slabs' worth; a heap keeps HAKMEM_TCACHE (1) empty per class

/// Whether slab `s` is formatted (owned by a heap, blocks carved) for blocks of `size`.
fn formatted_for(s: usize, size: usize) -> bool {
    let s = s as *const hakmem_core::slab::Slab;
    // SAFETY (test): `s` is a slab descriptor in a SuperSlab of the cage, which stays mapped;
    // the atomics are read as statistics read them, the format fields only while no thread
    // formats the slab (the threads that could have exited or are this one).
    unsafe {
        !(*s).heap.load(Relaxed).is_null()
            && (*s).carved.load(Relaxed) > 0
            && (*s).block_size as usize
                == hakmem_core::size_class::class_size(hakmem_core::size_class::class_of(size))
    }
}

#[test]
fn an_exited_threads_empty_slabs_wait_on_its_heap_for_their_class() {
    let slabs: HashSet<usize> = std::thread::spawn(|| {
        let v: Vec<usize> = (0..BLOCKS).map(|_| alloc::malloc(SIZE) as usize).collect();
        assert!(v.iter().all(|&p| p != 0));
        let slabs = v.iter().map(|&p| superslab::slab_of(p) as usize).collect();
        for p in v {
            // SAFETY (test): live blocks from `malloc`, freed once each.
            unsafe { alloc::free(p as *mut u8) };
        }
        slabs
    })
    .join()
    .unwrap();
    assert!(slabs.len() >= 2);
    // The rest went to the slab cache, unformatted.
    let kept: HashSet<usize> = slabs
        .iter()
        .copied()
        .filter(|&s| formatted_for(s, SIZE))
        .collect();
    assert!(
        !kept.is_empty(),
        "every empty slab of an exited thread lost its format (they went to the slab cache)"
    );
    // The next thread takes the parked heap: a block of another class comes from elsewhere, one
    // of the class from the slabs that held it.
    let again = kept.clone();
    std::thread::spawn(move || {
        let other = alloc::malloc(96);
        let same = alloc::malloc(SIZE);
        assert!(
            !again.contains(&(superslab::slab_of(other as usize) as usize)),
            "a slab of the 3 KiB class was reformatted for 96 B blocks"
        );
        assert!(
            again.contains(&(superslab::slab_of(same as usize) as usize)),
            "a 3 KiB block came from another slab than the parked heap's empty one"
        );
        // SAFETY (test): live blocks from `malloc`, freed once each.
        unsafe {
            alloc::free(other);
            alloc::free(same);
        }
    })
    .join()
    .unwrap();
    // Parked again with its empty slabs; malloc_trim gives them back.
    alloc::trim();
    for &s in &kept {
        assert!(
            !formatted_for(s, SIZE),
            "malloc_trim left a parked heap's empty slab {s:#x} formatted"
        );
    }
}
