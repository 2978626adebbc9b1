//! A large block that no single cached range can hold takes the pages of several cached ranges
//! (moved with mremap, not copied, and not faulted afresh), and stays a correct block: calloc
//! zeroes it, realloc keeps its contents when it grows or shrinks it. A binary of its own, so that
//! no other test uses the large cache meanwhile.

use hakmem_core::{alloc, init, large, os};
use std::sync::atomic::Ordering::Relaxed;

const MIB: usize = 1 << 20;
const PAGE: usize = 4096;
const OLD: u8 = 0xA5;

fn malloc(n: usize) -> *mut u8 {
    let p = alloc::malloc(n);
    assert!(!p.is_null(), "malloc({n}) failed");
    p
}

fn free(p: *mut u8) {
    // SAFETY: every pointer freed here is a live block from hakmem, freed once.
    unsafe { alloc::free(p) };
}

/// The pages of `p..p+n` whose first byte is `b`.
fn pages_starting_with(p: *mut u8, n: usize, b: u8) -> usize {
    // SAFETY: `p..p+n` is a live block of ours.
    (0..n / PAGE)
        .filter(|i| unsafe { *p.add(i * PAGE) } == b)
        .count()
}

/// Asserts that page `i` of `p..p+n` (a live block of at least `n` bytes) starts with `i as u8`,
/// as marked before `what` moved the block.
fn assert_page_marks(p: *mut u8, n: usize, what: &str) {
    for i in 0..n / PAGE {
        // SAFETY: `p..p+n` is a live block of ours (this fn's contract).
        assert_eq!(
            unsafe { *p.add(i * PAGE) },
            i as u8,
            "page {i} lost by {what}"
        );
    }
}

/// How many of the process's mappings (/proc/self/maps) overlap `p..p+n`.
fn kernel_mappings(p: *mut u8, n: usize) -> usize {
    let (lo, hi) = (p as usize, p as usize + n);
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| {
            let r = l.split_whitespace().next().unwrap();
            let (a, b) = r.split_once('-').unwrap();
            let a = usize::from_str_radix(a, 16).unwrap();
            let b = usize::from_str_radix(b, 16).unwrap();
            a < hi && lo < b
        })
        .count()
}

/// Bytes of the process's anonymous mappings (/proc/self/maps lines without a name).
fn anon_bytes() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.split_whitespace().nth(5).is_none())
        .map(|l| {
            let (a, b) = l
                .split_whitespace()
                .next()
                .unwrap()
                .split_once('-')
                .unwrap();
            usize::from_str_radix(b, 16).unwrap() - usize::from_str_radix(a, 16).unwrap()
        })
        .sum()
}

/// Leaves two separate cached ranges of 8 MiB whose pages hold `OLD`, with a live block between
/// them (returned, for the caller to free) so that they cannot merge.
fn two_cached_ranges() -> *mut u8 {
    large::trim();
    // Three in a row (the kernel places fresh mappings next to each other), the middle one kept.
    let blocks = [malloc(8 * MIB), malloc(8 * MIB), malloc(8 * MIB)];
    let mut sorted = blocks;
    sorted.sort();
    let (a, between, b) = (sorted[0], sorted[1], sorted[2]);
    // SAFETY: live blocks of 8 MiB.
    unsafe {
        std::ptr::write_bytes(a, OLD, 8 * MIB);
        std::ptr::write_bytes(b, OLD, 8 * MIB);
    }
    free(a);
    free(b);
    let (_, _, cached, bytes) = large::usage();
    assert!(
        cached == 2 && bytes == 16 * MIB,
        "the two freed 8 MiB blocks are not two cached ranges: {cached} ranges, {bytes} bytes \
         ({a:p} {between:p} {b:p})"
    );
    between
}

#[test]
fn a_block_longer_than_any_cached_range_is_made_of_their_pages() {
    init::ensure();
    large::trim();
    let (mapped_before, anon_before) = (os::MAPPED.load(Relaxed), anon_bytes());

    // malloc: 16 MiB from two cached 8 MiB ranges, their old contents still there (fresh pages
    // would read as zero).
    let between = two_cached_ranges();
    let c = malloc(16 * MIB);
    let reused = pages_starting_with(c, 16 * MIB, OLD);
    assert_eq!(
        reused,
        16 * MIB / PAGE,
        "only {reused} of the 16 MiB block's pages came from the cached ranges"
    );
    assert!(
        kernel_mappings(c, 16 * MIB) >= 2,
        "the block is one kernel mapping: it was not assembled from the two ranges"
    );

    // realloc grows it (mremap refuses a block made of several mappings): contents kept.
    // SAFETY: `c` is live; each page gets its own mark.
    for i in 0..16 * MIB / PAGE {
        unsafe { *c.add(i * PAGE) = i as u8 };
    }
    // SAFETY: `c` is a live block; realloc frees it on success.
    let g = unsafe { alloc::realloc(c, 40 * MIB) };
    assert!(!g.is_null());
    assert_page_marks(g, 16 * MIB, "realloc");
    // ... and shrinks it.
    // SAFETY: as above.
    let s = unsafe { alloc::realloc(g, 4 * MIB) };
    assert!(!s.is_null());
    assert_page_marks(s, 4 * MIB, "shrinking");
    free(s);
    free(between);

    // realloc grows a block with mremap: the part it adds takes cached pages too.
    let between = two_cached_ranges();
    let small = malloc(4 * MIB);
    // SAFETY: `small` is a live block of 4 MiB (from the front of a cached range).
    unsafe { std::ptr::write_bytes(small, 0x11, 4 * MIB) };
    // SAFETY: as above; realloc frees it on success.
    let grown = unsafe { alloc::realloc(small, 12 * MIB) };
    assert!(!grown.is_null());
    assert_eq!(pages_starting_with(grown, 4 * MIB, 0x11), 4 * MIB / PAGE);
    // SAFETY: `grown` is a live block of 12 MiB.
    let added = pages_starting_with(unsafe { grown.add(4 * MIB) }, 8 * MIB, OLD);
    assert_eq!(
        added,
        8 * MIB / PAGE,
        "only {added} of the 8 MiB realloc added came from the cache"
    );
    free(grown);
    free(between);

    // calloc: the same reuse, every byte zero.
    let between = two_cached_ranges();
    let z = alloc::calloc(1, 16 * MIB);
    assert!(!z.is_null());
    // SAFETY: `z` is a live block of 16 MiB.
    let bytes = unsafe { std::slice::from_raw_parts(z, 16 * MIB) };
    assert!(
        bytes.iter().all(|&b| b == 0),
        "calloc of a block made of cached pages is not zeroed"
    );
    free(z);
    free(between);
    large::trim();
    // Pages moved onto a fresh mapping replace its own: hakmem's count of mapped bytes moved
    // as the kernel's did (both include the block map's leaves mapped meanwhile).
    assert_eq!(
        os::MAPPED.load(Relaxed) as isize - mapped_before as isize,
        anon_bytes() as isize - anon_before as isize,
        "the count of mapped bytes drifted from the kernel's over moves"
    );
}
