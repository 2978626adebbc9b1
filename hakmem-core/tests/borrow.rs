//! A size class over 1 KiB that is out of free blocks and slabs takes a free block of one
//! of the next two classes up from the thread's bins before it takes a new slab (`heap::borrow`).
//! A binary of its own with one test: its thread must start with empty bins, and in the
//! library's test binary it may attach a parked heap whose bins hold other tests' free blocks.

use hakmem_core::{alloc, stats};

#[test]
fn a_class_out_of_free_blocks_takes_one_of_the_next_two_classes_before_carving() {
    std::thread::spawn(|| {
        let usable = |p: *mut u8| unsafe { alloc::usable_size(p) };
        let borrowed = || stats::collect().borrowed;
        // A borrowed block is as aligned as the class's own: the aligned allocations pick a
        // class whose size is a multiple of the alignment (the fuzzer found `valloc(9451)`
        // 2048-aligned when the 12 KiB class took a 14 KiB block). Two 14 KiB blocks of a fresh
        // slab: the second lies 14 KiB in, 2048-aligned only; freed, it heads the bin that the
        // 12 KiB class would borrow from.
        let a = alloc::malloc(14_000);
        let b = alloc::malloc(14_000);
        assert_eq!(b as usize - a as usize, 14 << 10);
        unsafe { alloc::free(b) };
        let v = alloc::valloc(9451);
        assert_eq!(v as usize % 4096, 0, "valloc(9451) = {v:?}");
        unsafe {
            alloc::free(v);
            alloc::free(a);
        }
        // A free 12 KiB block on this thread's bin, and no 10 KiB block yet: 10 000 bytes
        // get the 12 KiB block, which goes back to its own class when freed.
        let d = alloc::malloc(12_000);
        assert_eq!(usable(d), 12 << 10);
        unsafe { alloc::free(d) };
        let before = borrowed();
        let p = alloc::malloc(10_000);
        assert_eq!(
            p, d,
            "10 000 bytes carved a new block beside a free 12 KiB one"
        );
        assert!(borrowed() > before, "the borrow was not counted");
        unsafe { alloc::free(p) };
        let q = alloc::malloc(12_000);
        assert_eq!(q, d, "the borrowed block did not go back to its class");
        unsafe { alloc::free(q) };
        // The classes over 1 KiB borrow too: 2500 bytes get a free 3 KiB block.
        let d = alloc::malloc(3000);
        assert_eq!(usable(d), 3 << 10);
        unsafe { alloc::free(d) };
        let p = alloc::malloc(2500);
        assert_eq!(
            p, d,
            "2500 bytes carved a new block beside a free 3 KiB one"
        );
        unsafe { alloc::free(p) };
        // Three classes up (20 KiB from 32 KiB) is too far; so is a block whose free copies
        // decay (14 KiB from 16 KiB); and the classes up to 1 KiB, which churn too fast for
        // the slow path's borrow, carve their own (1000 bytes beside a free 1280-byte block).
        for (far, n) in [(32_000, 20_000), (16_000, 14_000), (1200, 1000)] {
            let f = alloc::malloc(far);
            unsafe { alloc::free(f) };
            let p = alloc::malloc(n);
            assert_ne!(p, f, "{n} bytes took a free block of {far}");
            assert!(usable(p) < usable(f));
            unsafe { alloc::free(p) };
        }
        // A class borrows only instead of taking a new slab: with room in its current slab it
        // carves (here a big class, one slab per SuperSlab, so that its slab fills instead of
        // the next class's taking more SuperSlabs).
        let first = alloc::malloc(80_000);
        let d = alloc::malloc(98_000);
        assert_eq!(usable(d), 96 << 10);
        unsafe { alloc::free(d) };
        let p = alloc::malloc(80_000);
        assert_ne!(
            p, d,
            "a big class with room in its slab took a free block of the next"
        );
        unsafe {
            alloc::free(p);
            alloc::free(first);
        }
    })
    .join()
    .unwrap();
}
