//! The address map of large blocks: a two-level radix table keyed by page number, read and
//! written without a lock (the shape of jemalloc's rtree and mimalloc's page map).
//!
//! A live large block has one record, at the page it starts on: the length of its mapping and
//! the mapping's base. Every other page (interior pages, pages of small blocks, foreign memory)
//! reads as zero, so `free`, `realloc` and `malloc_usable_size` of a pointer that is not a live
//! large block find nothing and report it, and nothing is ever read through the pointer itself.
//! Taking a record is one atomic swap: of two threads freeing the same block, one gets it.
//!
//! The root (2^17 pointers, 1 GiB of address space each) is a static in .bss, untouched until
//! used; leaves (4 MiB of virtual memory each) are mapped on first use and never unmapped, so a
//! reader may follow a leaf pointer at any time. A record in a leaf costs a 4 KiB page of it the
//! first time a block starts in that MiB of address space.

use crate::os::{self, PAGE};
use core::ptr;
use core::sync::atomic::{
    AtomicPtr, AtomicUsize,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};

const PAGE_BITS: u32 = 12;
/// User addresses on x86-64 (4-level paging; the kernel maps above this only when asked to).
const ADDR_BITS: u32 = 47;
const LEAF_BITS: u32 = 18;
const ROOT_BITS: u32 = ADDR_BITS - PAGE_BITS - LEAF_BITS;
const LEAF_LEN: usize = 1 << LEAF_BITS;

/// One page's record: `len` is the block's mapping length (0: no block starts here), `base`
/// the mapping's start (below the block for an over-aligned one).
struct Record {
    len: AtomicUsize,
    base: AtomicUsize,
}

type Leaf = [Record; LEAF_LEN];

static ROOT: [AtomicPtr<Leaf>; 1 << ROOT_BITS] =
    [const { AtomicPtr::new(ptr::null_mut()) }; 1 << ROOT_BITS];

/// A block's mapping as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub base: usize,
    pub len: usize,
}

/// Root and leaf index of page-aligned address `p`, or None outside the mapped range.
#[inline]
fn index(p: usize) -> Option<(usize, usize)> {
    if p & (PAGE - 1) != 0 || p >> ADDR_BITS != 0 {
        return None;
    }
    let page = p >> PAGE_BITS;
    Some((page >> LEAF_BITS, page & (LEAF_LEN - 1)))
}

/// The record of page `p`, if its leaf exists.
#[inline]
fn record(p: usize) -> Option<&'static Record> {
    let (r, i) = index(p)?;
    let leaf = ROOT[r].load(Acquire);
    if leaf.is_null() {
        return None;
    }
    // SAFETY: a non-null root entry points to a leaf of LEAF_LEN records, zero-initialised by
    // mmap, published with Release after it was mapped and never unmapped; `i < LEAF_LEN`.
    Some(unsafe { &(*leaf)[i] })
}

/// The record of page `p`, mapping its leaf if needed; None if out of memory or out of range.
#[cold]
fn record_or_new(p: usize) -> Option<&'static Record> {
    if let Some(r) = record(p) {
        return Some(r);
    }
    let (r, _) = index(p)?;
    let size = core::mem::size_of::<Leaf>();
    let fresh = os::map(size, false) as *mut Leaf;
    if fresh.is_null() {
        return None;
    }
    if ROOT[r]
        .compare_exchange(ptr::null_mut(), fresh, AcqRel, Acquire)
        .is_err()
    {
        // Another thread installed this leaf first; ours was never published.
        // SAFETY: `fresh` is the mapping made above and nothing refers to it.
        unsafe { os::unmap(fresh as *mut u8, size) };
    }
    record(p)
}

/// Records the block at `p` (page-aligned) with its mapping; false when no leaf could be mapped
/// (out of memory) or `p` lies outside the map.
///
/// The caller owns the mapping and `p` holds no record (its previous block was taken).
pub fn insert(p: usize, m: Mapping) -> bool {
    debug_assert!(m.len != 0);
    let Some(r) = record_or_new(p) else {
        return false;
    };
    r.base.store(m.base, Relaxed);
    r.len.store(m.len, Release);
    true
}

/// The mapping of the live block that starts at `p`, or None (not a live large block: an
/// interior pointer, a freed block, anything else). A read only: the block stays live.
#[inline]
pub fn lookup(p: usize) -> Option<Mapping> {
    let r = record(p)?;
    let len = r.len.load(Acquire);
    if len == 0 {
        return None;
    }
    Some(Mapping {
        base: r.base.load(Relaxed),
        len,
    })
}

/// Takes the record of the block at `p`: afterwards `p` is no live block for anyone, and the
/// caller owns its mapping. None if `p` was not a live block (or another thread took it first).
#[inline]
pub fn take(p: usize) -> Option<Mapping> {
    let r = record(p)?;
    let len = r.len.swap(0, AcqRel);
    if len == 0 {
        return None;
    }
    // `base` is rewritten only by an insert at `p`, which needs a mapping at `p`, which only
    // exists again after the caller has given this one back.
    Some(Mapping {
        base: r.base.load(Relaxed),
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page-aligned address of our own that nothing else records: a fresh mapping.
    fn fresh(pages: usize) -> usize {
        let p = os::map(pages * PAGE, false) as usize;
        assert_ne!(p, 0);
        p
    }

    #[test]
    fn insert_lookup_take_round_trip() {
        let p = fresh(4);
        let m = Mapping {
            base: p,
            len: 4 * PAGE,
        };
        assert_eq!(lookup(p), None);
        assert!(insert(p, m));
        assert_eq!(lookup(p), Some(m));
        assert_eq!(lookup(p), Some(m), "a lookup leaves the record in place");
        assert_eq!(take(p), Some(m));
        assert_eq!(take(p), None, "a second take (a double free) finds nothing");
        assert_eq!(lookup(p), None);
    }

    #[test]
    fn interior_unaligned_and_out_of_range_pointers_are_not_blocks() {
        let p = fresh(4) + PAGE; // an over-aligned block: its mapping starts a page lower
        let m = Mapping {
            base: p - PAGE,
            len: 4 * PAGE,
        };
        assert!(insert(p, m));
        for q in [p + PAGE, p + 2 * PAGE, p - PAGE, p + 16, p + 1, p - 8] {
            assert_eq!(
                lookup(q),
                None,
                "{q:#x} is inside or beside the block at {p:#x}"
            );
            assert_eq!(take(q), None);
        }
        for q in [0, 8, usize::MAX & !(PAGE - 1), 1 << 47, 1 << 63] {
            assert_eq!(lookup(q), None);
            assert_eq!(take(q), None);
            assert!(!insert(q, m) || q >> ADDR_BITS == 0);
        }
        assert_eq!(take(p), Some(m), "the block itself is still there");
    }

    #[test]
    fn concurrent_takes_of_one_block_succeed_once() {
        for _ in 0..200 {
            let p = fresh(1);
            let m = Mapping { base: p, len: PAGE };
            assert!(insert(p, m));
            let wins: usize = std::thread::scope(|s| {
                let hs: Vec<_> = (0..4)
                    .map(|_| s.spawn(move || take(p).is_some() as usize))
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).sum()
            });
            assert_eq!(wins, 1);
            // SAFETY: the test's own mapping, no longer recorded.
            unsafe { os::unmap(p as *mut u8, PAGE) };
        }
    }

    #[test]
    fn records_across_many_leaves_are_independent() {
        // Addresses 1 GiB apart fall in different leaves; none of them is mapped here, the map
        // only stores numbers.
        let base = 0x1000_0000_0000usize;
        for i in 0..8 {
            let p = base + (i << 30);
            assert!(insert(p, Mapping { base: p, len: PAGE }));
        }
        for i in 0..8 {
            let p = base + (i << 30);
            assert_eq!(lookup(p + PAGE), None);
            assert_eq!(take(p), Some(Mapping { base: p, len: PAGE }));
        }
    }
}
