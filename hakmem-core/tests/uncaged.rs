//! SuperSlabs outside the cage: this test binary sets an address-space limit (RLIMIT_AS) before
//! hakmem starts, so that it reserves no cage and maps every SuperSlab on its own, which it then
//! unmaps once it has been empty for HAKMEM_UNMAP_DELAY_MS. A binary of its own, because the
//! limit and the settings must be in place before the first allocation of the process.

use hakmem_core::{alloc, cage, init, os, superslab};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

const UNMAP_DELAY_MS: u64 = 200;

fn start() {
    let r = libc::rlimit {
        rlim_cur: 8 << 30,
        rlim_max: libc::RLIM_INFINITY,
    };
    let mut old = r;
    // SAFETY: getrlimit and setrlimit read and write one `rlimit` each.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_AS, &mut old), 0);
        let r = libc::rlimit {
            rlim_max: old.rlim_max,
            ..r
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &r), 0, "setrlimit");
    }
    std::env::set_var("HAKMEM_UNMAP_DELAY_MS", UNMAP_DELAY_MS.to_string());
    // Every emptied slab goes straight back to the pool, so each one walks the pool.
    std::env::set_var("HAKMEM_TCACHE", "0");
    std::env::set_var("HAKMEM_INVALID_FREE", "report");
    init::ensure();
    assert_eq!(
        cage::extent().0,
        0,
        "a cage under an 8 GiB address-space limit"
    );
}

/// Whether the page holding `a` is mapped (mincore fails with ENOMEM on an unmapped range).
fn mapped(a: usize) -> bool {
    let mut v = 0u8;
    // SAFETY: mincore only reads the page table for one page and writes one byte into `v`.
    unsafe { libc::mincore((a & !(os::PAGE - 1)) as *mut libc::c_void, os::PAGE, &mut v) == 0 }
}

/// `n` 16-byte blocks, and then empty slabs of another class go back to the pool (a walk of the
/// pool's decay).
fn blocks(n: usize) -> Vec<usize> {
    (0..n).map(|_| alloc::malloc(16) as usize).collect()
}

fn free_all(v: Vec<usize>) {
    for p in v {
        // SAFETY: live blocks from hakmem, freed once.
        unsafe { alloc::free(p as *mut u8) };
    }
}

/// Fills and frees a few slabs of 1000-byte blocks: their slabs go back to the pool, which
/// walks its decay.
fn release_some_slabs() {
    free_all((0..1000).map(|_| alloc::malloc(1000) as usize).collect());
}

#[test]
fn empty_superslabs_outside_the_cage_are_unmapped_once_the_delay_has_passed() {
    start();
    let n = 4 * superslab::ss_size() / 16;
    let v = blocks(n);
    let stale = v[n / 2];
    assert!(superslab::contains(stale) && mapped(stale));
    let unmapped = superslab::SS_UNMAPPED.load(Relaxed);
    free_all(v);
    release_some_slabs();
    assert!(
        superslab::contains(stale) && mapped(stale),
        "unmapped before the delay"
    );
    assert_eq!(superslab::SS_UNMAPPED.load(Relaxed), unmapped);
    std::thread::sleep(Duration::from_millis(UNMAP_DELAY_MS + 50));
    release_some_slabs();
    assert!(
        superslab::SS_UNMAPPED.load(Relaxed) >= unmapped + 2,
        "the emptied SuperSlabs were not unmapped"
    );
    assert!(!superslab::contains(stale), "still registered");
    assert!(!mapped(stale), "still mapped");
    // Reported (HAKMEM_INVALID_FREE=report), never followed.
    // SAFETY: a stale pointer is exactly what `free` must refuse without reading it.
    unsafe { alloc::free(stale as *mut u8) };
    // SAFETY: as above.
    assert_eq!(unsafe { alloc::usable_size(stale as *mut u8) }, 0);
    // The address space serves new blocks again.
    let again = blocks(n);
    assert!(again.iter().all(|&p| p != 0));
    free_all(again);
}
