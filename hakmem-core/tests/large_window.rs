//! Cached large memory that no allocation needed for a whole HAKMEM_LARGE_CACHE_MS window goes
//! back to the OS, also while the program keeps allocating and freeing large blocks that merge
//! with it again and again (and so never let it get old). A binary of its own, because the
//! setting must be in place before the first allocation of the process.

use hakmem_core::{alloc, init, large};
use std::time::{Duration, Instant};

const WINDOW_MS: u64 = 50;

#[test]
fn a_cache_bigger_than_the_program_needs_shrinks_window_by_window() {
    std::env::set_var("HAKMEM_LARGE_CACHE_MS", WINDOW_MS.to_string());
    init::ensure();
    large::trim();
    // One 16 MiB range cached.
    let big = alloc::malloc(16 << 20);
    assert!(!big.is_null());
    // SAFETY: a live block from hakmem, freed once.
    unsafe { alloc::free(big) };
    let (_, _, _, cached) = large::usage();
    assert!(cached >= 16 << 20, "a freed 16 MiB block was not cached");
    let unmapped_before = large::UNMAPPED_BYTES.load(std::sync::atomic::Ordering::Relaxed);
    // The program now needs 1 MiB at a time: each block is split off the cached range and
    // merges back into it when freed, which makes the merged range new again each time.
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(12 * WINDOW_MS) {
        let p = alloc::malloc(1 << 20);
        assert!(!p.is_null());
        // SAFETY: `p` is a live block of 1 MiB.
        unsafe {
            p.write_bytes(0x5a, 1 << 20);
            alloc::free(p);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let (_, _, _, cached) = large::usage();
    assert!(
        cached <= 4 << 20,
        "{cached} bytes still cached after twelve windows in which 1 MiB was enough"
    );
    let unmapped =
        large::UNMAPPED_BYTES.load(std::sync::atomic::Ordering::Relaxed) - unmapped_before;
    assert!(
        unmapped >= 12 << 20,
        "the statistics counted {unmapped} bytes unmapped by the decay"
    );
    large::trim();
}
