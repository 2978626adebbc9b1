//! The background thread (HAKMEM_BACKGROUND=1): an exited thread's free big blocks go back to
//! the OS while the program does nothing more. A binary of its own: the policy is read once,
//! and the parked heap must be this test's alone.

use hakmem_core::{alloc, background, os};
use std::time::{Duration, Instant};

const SIZE: usize = 100_000; // a class whose free blocks decay
const BLOCKS: usize = 40;

/// Resident pages of the whole pages inside `[p + 4096, p + SIZE)` of each block (its first page
/// keeps the block's link and marks).
fn resident_interiors(blocks: &[usize]) -> usize {
    let mut n = 0;
    for &p in blocks {
        let lo = (p + os::PAGE) & !(os::PAGE - 1);
        let hi = (p + SIZE) & !(os::PAGE - 1);
        let mut v = vec![0u8; (hi - lo) / os::PAGE];
        // SAFETY: mincore only reads the page table entries of mapped pages (a slab's, in the
        // cage, which stays mapped) into `v`, one byte per page.
        let rc = unsafe { libc::mincore(lo as *mut libc::c_void, hi - lo, v.as_mut_ptr()) };
        assert_eq!(rc, 0);
        n += v.iter().filter(|&&b| b & 1 != 0).count();
    }
    n
}

#[test]
fn an_exited_threads_big_free_blocks_go_back_while_the_program_idles() {
    std::env::set_var("HAKMEM_BACKGROUND", "1");
    // Long enough that the first look below comes before any purge, on a loaded machine too.
    std::env::set_var("HAKMEM_PURGE_DELAY_MS", "300");
    hakmem_core::init::ensure();
    assert_eq!(background::period_ms(), 150);
    assert!(!background::running(), "started before memory went back");
    let blocks: Vec<usize> = std::thread::spawn(|| {
        let v: Vec<usize> = (0..BLOCKS).map(|_| alloc::malloc(SIZE) as usize).collect();
        for &p in &v {
            assert_ne!(p, 0);
            // SAFETY (test): a live block of SIZE bytes.
            unsafe { std::ptr::write_bytes(p as *mut u8, 0xee, SIZE) };
        }
        for &p in &v {
            // SAFETY (test): live blocks from `malloc`, freed once each.
            unsafe { alloc::free(p as *mut u8) };
        }
        v
    })
    .join()
    .unwrap();
    assert!(
        background::running(),
        "a thread exited, and the background thread did not start"
    );
    let before = resident_interiors(&blocks);
    assert!(
        before > BLOCKS * 10,
        "the blocks were purged before the test looked: {before}"
    );
    // Nothing allocates or frees from here on: only the background thread can give them back.
    let start = Instant::now();
    loop {
        let left = resident_interiors(&blocks);
        if left == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{left} of {before} pages of an exited thread's free blocks still resident after 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The blocks are whole again when handed out.
    let p = alloc::malloc(SIZE);
    // SAFETY (test): a live block of SIZE bytes, freed once.
    unsafe {
        std::ptr::write_bytes(p, 1, SIZE);
        assert_eq!(*p.add(SIZE - 1), 1);
        alloc::free(p);
    }
}
