//! HAKMEM_PURGE=none: a walk of a heap's idle big free blocks purges nothing and counts nothing
//! purged (a walk used to mark them purged and count their bytes all the same). A binary of its
//! own: the policy is read once.

use hakmem_core::{alloc, block_decay, purge, tls};
use std::sync::atomic::Ordering::Relaxed;

#[test]
fn with_purging_off_a_walk_purges_and_counts_nothing() {
    std::env::set_var("HAKMEM_PURGE", "none");
    hakmem_core::init::ensure();
    std::thread::spawn(|| {
        const N: usize = 100_000;
        let v: Vec<usize> = (0..6).map(|_| alloc::malloc(N) as usize).collect();
        // SAFETY (test): live blocks of at least N bytes, written, then each freed once; the
        // heap is this thread's, walked by this thread.
        unsafe {
            for &p in &v {
                std::ptr::write_bytes(p as *mut u8, 0xab, N);
            }
            for &p in &v[..5] {
                alloc::free(p as *mut u8);
            }
            let before = purge::PURGED_BYTES.load(Relaxed);
            let heap = (*tls::thread_cache()).heap;
            assert_eq!(block_decay::walk(heap), 0);
            assert_eq!(block_decay::walk(heap), 0, "blocks purged with purging off");
            assert_eq!(purge::PURGED_BYTES.load(Relaxed), before);
            alloc::free(v[5] as *mut u8);
        }
    })
    .join()
    .unwrap();
}
