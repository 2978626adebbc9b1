//! Cached large mappings go back to the OS once they have stayed unused for
//! HAKMEM_LARGE_CACHE_MS, also when the program only allocates from then on. A binary of its
//! own, because the setting must be in place before the first allocation of the process.

use hakmem_core::{alloc, init, large};
use std::time::Duration;

const DECAY_MS: u64 = 100;

#[test]
fn a_cached_range_past_its_decay_time_is_unmapped_by_the_next_large_allocation() {
    std::env::set_var("HAKMEM_LARGE_CACHE_MS", DECAY_MS.to_string());
    init::ensure();
    large::trim();
    let p = alloc::malloc(8 << 20);
    assert!(!p.is_null());
    // SAFETY: a live block from hakmem, freed once.
    unsafe { alloc::free(p) };
    let (_, _, cached, cached_bytes) = large::usage();
    assert_eq!(cached, 1, "a freed 8 MiB block was not cached");
    assert!(cached_bytes >= 8 << 20);
    std::thread::sleep(Duration::from_millis(3 * DECAY_MS));
    let q = alloc::malloc(300 << 10);
    assert!(!q.is_null());
    let (_, _, cached, _) = large::usage();
    assert_eq!(
        cached, 0,
        "a range unused past its decay time stayed cached across a large allocation"
    );
    // SAFETY: a live block from hakmem, freed once.
    unsafe { alloc::free(q) };
    large::trim();
}
