//! Slabs change owners while their blocks are live when a thread takes over a parked heap's
//! partial slabs (`heap::adopt_parked`), and a free racing with that may queue a slab on its old
//! owner, which passes it on (`heap::drain_remote`). This stress runs long-lived threads beside
//! threads that exit all the time, all passing blocks through one array of slots, so that
//! blocks are freed into parked heaps, taken over and freed again; every block's contents are
//! checked when it comes out, and the debug build checks every slab's owner as it goes.

use hakmem_core::{alloc, heap};
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::Arc;

const SLOTS: usize = 2048;

/// A block: its size in the first word, then bytes that all hold its tag.
fn make(size: usize, tag: u8) -> usize {
    let p = alloc::malloc(size);
    assert!(!p.is_null(), "malloc({size}) failed");
    // SAFETY: `p` is a fresh block of `size >= 16` bytes.
    unsafe {
        (p as *mut usize).write(size);
        p.add(8).write_bytes(tag, size - 8);
    }
    p as usize
}

fn check_and_free(a: usize) {
    let p = a as *mut u8;
    // SAFETY: `a` came out of a slot, so it is a live block made by `make`, freed once here.
    unsafe {
        let size = (p as *const usize).read();
        assert!(
            (16..=8192).contains(&size),
            "block {a:#x} corrupted (size {size})"
        );
        let tag = *p.add(8);
        assert!(
            *p.add(size - 1) == tag && *p.add(size / 2 + 4) == tag,
            "block {a:#x} lost its contents"
        );
        alloc::free(p);
    }
}

fn work(slots: &[AtomicUsize], seed: u64, ops: usize) {
    let mut x = seed | 1;
    for _ in 0..ops {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let size = 16 + (x >> 20) as usize % 4080 + if x & 7 == 0 { 4096 } else { 0 };
        let a = make(size, (x >> 40) as u8);
        let old = slots[(x >> 8) as usize % SLOTS].swap(a, AcqRel);
        if old != 0 {
            check_and_free(old);
        }
    }
}

#[test]
fn blocks_stay_whole_while_parked_heaps_are_taken_over() {
    let slots: Arc<Vec<AtomicUsize>> = Arc::new((0..SLOTS).map(|_| AtomicUsize::new(0)).collect());
    let adopted = heap::ADOPTED_SLABS.load(Relaxed);
    let long: Vec<_> = (0..2u64)
        .map(|t| {
            let slots = slots.clone();
            std::thread::spawn(move || work(&slots, 0x1234_5678 + t, 60_000))
        })
        .collect();
    // Short-lived threads, several at once, so that some heaps stay parked while others run.
    for round in 0..40u64 {
        let short: Vec<_> = (0..3u64)
            .map(|t| {
                let slots = slots.clone();
                std::thread::spawn(move || work(&slots, 0x9e37_79b9 ^ (round << 8) ^ t, 3000))
            })
            .collect();
        for h in short {
            h.join().unwrap();
        }
    }
    for h in long {
        h.join().unwrap();
    }
    for s in slots.iter() {
        let a = s.swap(0, AcqRel);
        if a != 0 {
            check_and_free(a);
        }
    }
    assert!(
        heap::ADOPTED_SLABS.load(Relaxed) > adopted,
        "no slab of a parked heap was taken over: the test did not exercise what it is for"
    );
}
