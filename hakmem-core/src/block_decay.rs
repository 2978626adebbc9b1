//! Decay of free blocks inside slabs in use: the pages of a big free block that stays idle for
//! HAKMEM_PURGE_DELAY_MS go back to the OS, while its slab keeps serving its other blocks.
//!
//! `purge` returns whole free slabs; a slab of blocks of 16 KiB and more (512 KiB medium slabs,
//! 2 MiB big ones) rarely empties while a program uses its class, and the pages of every block
//! its owner ever carved stay resident: a program whose live count of such blocks rose once to
//! ten and then sits at two keeps ten blocks' pages (`soak`: the big classes' current slabs held
//! 14 MiB resident for about 3 MiB live). So, as jemalloc decays the dirty pages of free extents,
//! the owner walks its lists of free blocks of those classes (its slabs' lists and its hot
//! lists) now and then and purges the whole pages of each block but its first (which keeps the
//! block's link, free tag and decay mark, so the lists and the double-free check are
//! untouched): the next user of the block faults fresh zero pages in as it touches them.
//!
//! Which blocks are idle: a walk marks every free block it finds (`SEEN`, in the block's third
//! word), and malloc clears the mark of the block it hands out (for these classes only), so a
//! block still marked at the next walk stayed free the whole period between them: it is purged
//! and marked `PURGED`, which later walks skip until malloc hands it out again.
//!
//! The walk runs on the owning thread, from its allocations of these classes (every `TICK` of
//! them, when the delay has passed since the last walk): the lists are the owner's, and no other
//! thread reads a free block's pages.

use crate::freelist;
use crate::heap::Heap;
use crate::os::{self, PAGE};
use crate::policy::{self, Opt};
use crate::size_class::{calc_class_of, calc_class_size, NUM_CLASSES};
use crate::slab::Slab;
use crate::tls::{Bin, ThreadCache};
use core::ptr;
use core::sync::atomic::Ordering::Relaxed;

/// The first class whose free blocks decay: 16 KiB blocks (at least three whole pages past the
/// first).
pub const FIRST_CLASS: usize = calc_class_of(16 << 10);
const _: () = assert!(calc_class_size(FIRST_CLASS) == 16 << 10);

/// Allocations of the decaying classes between two looks at the clock.
const TICK: u32 = 64;

/// The bytes a block keeps resident: its link, free tag and decay mark.
const KEEP: usize = 24;

/// The decay marks of a free block's third word: found free by a walk, and purged (key-derived,
/// so user data left there matches one by chance only).
#[inline(always)]
fn seen() -> u64 {
    freelist::tag().rotate_left(29) ^ 0x6465_6361_7965_6421
}
#[inline(always)]
fn purged() -> u64 {
    seen() ^ 0x7075_7267_6564_2121
}

/// Per-heap state of the walk (owner-only): when the last walk ran (ms).
pub struct State {
    last_ms: u64,
}

impl State {
    pub const fn new() -> Self {
        State { last_ms: 0 }
    }
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}

/// Called after malloc handed out block `p` of a decaying class (not in checking mode, whose
/// blocks come from the shared heap): clears the block's decay mark, and every `TICK` calls
/// walks this thread's heap when the delay passed. The count is the thread cache's, not the
/// heap's: the fast path then reads no line but the block's and the thread's (bench/README.md,
/// "Hot lists for every size").
///
/// # Safety
/// `tc` is this thread's cache, `p` a block of at least 24 bytes just handed out.
#[inline]
pub unsafe fn on_alloc(tc: *mut ThreadCache, p: *mut u8) {
    // SAFETY: `p` was just handed out and is not yet the program's: its third word is ours;
    // `tc` is this thread's cache (this fn's contract), whose fields only this thread touches.
    unsafe {
        clear_mark(p);
        let t = (*tc).decay_tick.wrapping_add(1);
        (*tc).decay_tick = t;
        if t % TICK == 0 {
            look_from(tc);
        }
    }
}

/// `look` for this thread's heap, if it has one.
///
/// # Safety
/// `tc` is this thread's cache.
#[cold]
#[inline(never)]
unsafe fn look_from(tc: *mut ThreadCache) {
    // SAFETY: `tc` is this thread's cache (this fn's contract); its heap is this thread's.
    unsafe {
        let heap = (*tc).heap;
        if !heap.is_null() {
            look(heap);
        }
    }
}

/// Clears the decay mark of block `p` of a decaying class: as malloc hands it out (`on_alloc`,
/// which every allocation of these classes goes through, aligned ones too) and as a slab
/// carves it (`Slab::carve`), so that a mark on a free block says what the walk did to it
/// since it was last freed (`zeroed_past` relies on it). A smaller class never borrows one
/// (`heap::borrow` stops at the decaying classes' boundary).
///
/// # Safety
/// `p` is a block of at least 24 bytes that is free or just handed out, not yet the program's.
#[inline]
pub unsafe fn clear_mark(p: *mut u8) {
    // SAFETY: this fn's contract: the block's third word is still ours.
    unsafe { *(p.add(16) as *mut u64) = 0 };
}

/// For free block `p` of class `c` about to be handed out by calloc: the range of it that
/// reads as zero because a walk purged it with MADV_DONTNEED since it was last freed (its
/// whole pages past its first `KEEP` bytes and below the end of a block of class `c`), or
/// None. Read before `on_alloc` clears the mark. A block borrowed from a bigger class was
/// purged up to its own end, past the end of a block of class `c`.
///
/// # Safety
/// `p` is a free block of class `c` or bigger (a decaying class), just taken off a list and
/// not yet the program's.
#[inline]
pub unsafe fn zeroed_past(p: *mut u8, c: usize) -> Option<(usize, usize)> {
    if policy::purge_kind() != os::PurgeKind::DontNeed {
        return None;
    }
    // SAFETY: this fn's contract: the block's third word, in its first page, is ours.
    if unsafe { *(p.add(16) as *const u64) } != purged() {
        return None;
    }
    let a = p as usize;
    let lo = (a + KEEP + PAGE - 1) & !(PAGE - 1);
    let hi = (a + calc_class_size(c)) & !(PAGE - 1);
    (hi > lo).then_some((lo, hi))
}

/// Walks `heap` if the delay passed since the last walk.
///
/// # Safety
/// The caller owns `heap` (its thread's) and holds no reference into it.
unsafe fn look(heap: *mut Heap) {
    if policy::purge_kind() == os::PurgeKind::None {
        return;
    }
    let now = os::now_ms();
    let delay = policy::get(Opt::PurgeDelayMs) as u64;
    // SAFETY: the caller owns `heap`, so its decay state.
    unsafe {
        let st = ptr::addr_of_mut!((*heap).block_decay);
        if now.wrapping_sub((*st).last_ms) < delay {
            return;
        }
        (*st).last_ms = now;
        walk(heap);
    }
}

/// Purges the free blocks of `heap`'s decaying classes that the last walk found free already,
/// and marks the others (nothing under HAKMEM_PURGE=none). Returns the bytes purged.
///
/// # Safety
/// The caller owns `heap` (its thread's, or a heap it holds) and holds no reference into it.
pub unsafe fn walk(heap: *mut Heap) -> usize {
    let kind = policy::purge_kind();
    if kind == os::PurgeKind::None {
        // Nothing is purged: no block may be marked as if it were.
        return 0;
    }
    let mut purged = 0;
    for c in FIRST_CLASS..NUM_CLASSES {
        // SAFETY: the caller owns `heap`, hence its bins, lists and the free blocks on them.
        unsafe {
            let bin = ptr::addr_of_mut!((*Heap::bins(heap))[c]);
            let s = (*bin).slab;
            if !s.is_null() {
                purged += purge_list(s, (*bin).free, kind);
            }
            purged += purge_hot(bin, calc_class_size(c), kind);
            for list in [
                ptr::addr_of!((*heap).partial[c]),
                ptr::addr_of!((*heap).empty[c]),
            ] {
                let mut s = (*list).head;
                while !s.is_null() {
                    purged += purge_list(s, (*s).local_free, kind);
                    s = (*s).next;
                }
            }
        }
    }
    purged
}

/// `walk` for the list of slab `s` headed by `head`; stops at a link that names no block (the
/// allocation that reaches it reports the corruption), and after `carved` blocks (a list made
/// into a loop by a corruption ends the walk, not the thread).
///
/// # Safety
/// The caller owns `s` and the list.
unsafe fn purge_list(s: *mut Slab, head: u64, kind: os::PurgeKind) -> usize {
    let mut purged = 0;
    let mut p = head;
    // SAFETY: the caller owns `s` and the list (this fn's contract): every offset
    // `holds_offset` accepts is a free block of `s`, whose words and pages are the caller's.
    unsafe {
        let carved = (*s).carved.load(Relaxed);
        let size = (*s).block_size as usize;
        let mut n = 0;
        while Slab::holds_offset(s, p) && n < carved {
            let a = (*s).at(p);
            purged += purge_block(a, size, kind);
            p = freelist::next_of(a);
            n += 1;
        }
    }
    purged
}

/// `walk` for the hot list of `bin` (blocks of `size` bytes, of any slab in the cage, which the
/// list's thread alone reaches): as many blocks as the list holds, up to a link that names no
/// block of the cage (`pop_hot` refuses it and the slow path reports it).
///
/// # Safety
/// The caller owns `bin`.
unsafe fn purge_hot(bin: *mut Bin, size: usize, kind: os::PurgeKind) -> usize {
    let mut purged = 0;
    // SAFETY: the caller owns `bin` (this fn's contract); the list holds `hot_max - hot_room`
    // free blocks, each the list's alone (`heap::push_hot`), so their words and pages are the
    // caller's; a link that decodes outside the cage ends the walk before it is followed.
    unsafe {
        let mut a = (*bin).hot;
        let mut n = (*bin).hot_max - (*bin).hot_room;
        while n > 0 && crate::heap::hot_link_ok(a) {
            purged += purge_block(a, size, kind);
            a = freelist::next_of(a) as usize;
            n -= 1;
        }
    }
    purged
}

/// Free block `a` (of `size` bytes): marks it `SEEN`, or if it was so already, purges its whole
/// pages past its first `KEEP` bytes and marks it `PURGED`; nothing if it is so already.
/// Returns the bytes purged.
///
/// # Safety
/// `a` is a free block of `size` bytes that the caller owns.
unsafe fn purge_block(a: usize, size: usize, kind: os::PurgeKind) -> usize {
    let mark_at = (a + 16) as *mut u64;
    // SAFETY: the block is free and the caller's (this fn's contract); its third word lies in
    // its first page, which is never purged.
    unsafe {
        let m = *mark_at;
        if m == purged() {
            return 0;
        }
        if m != seen() {
            *mark_at = seen();
            return 0;
        }
        let lo = (a + KEEP + PAGE - 1) & !(PAGE - 1);
        let hi = (a + size) & !(PAGE - 1);
        if hi <= lo {
            return 0;
        }
        let zeroed = crate::purge::purge_range(lo, hi - lo, kind);
        if !zeroed && kind == os::PurgeKind::DontNeed {
            // The madvise failed: still `SEEN`, the next walk tries again. `PURGED` under
            // DONTNEED promises `zeroed_past` that the pages read as zero.
            return 0;
        }
        *mark_at = purged();
        hi - lo
    }
}

#[cfg(test)]
mod tests {
    use super::{walk, FIRST_CLASS, KEEP};
    use crate::alloc;
    use crate::os::PAGE;
    use crate::size_class::{class_of, class_size};
    use crate::tls::thread_cache;

    /// Resident pages of `a..a+len` (page-aligned).
    fn resident(a: usize, len: usize) -> usize {
        let mut v = vec![0u8; len / PAGE];
        // SAFETY: `a..a+len` is mapped (a slab's pages) and `v` has one byte per page.
        let r = unsafe { libc::mincore(a as *mut libc::c_void, len, v.as_mut_ptr()) };
        assert_eq!(r, 0);
        v.iter().filter(|&&b| b & 1 != 0).count()
    }

    /// The whole pages of block `p` of `size` bytes past its first `KEEP` bytes.
    fn interior(p: usize, size: usize) -> (usize, usize) {
        let lo = (p + KEEP + PAGE - 1) & !(PAGE - 1);
        (lo, ((p + size) & !(PAGE - 1)) - lo)
    }

    /// Runs `body` on a new thread with 80 live blocks of 100 000 bytes (past `HOT_AFTER`
    /// allocations of their class, so its hot list is open) and their class size, then frees
    /// them: `body` leaves every one of them live.
    fn with_big_blocks(body: fn(&[usize], usize)) {
        crate::init::ensure();
        std::thread::spawn(move || {
            crate::heap::use_fresh_heap();
            const N: usize = 100_000;
            let v: Vec<usize> = (0..80).map(|_| alloc::malloc(N) as usize).collect();
            body(&v, class_size(class_of(N)));
            for &p in &v {
                // SAFETY (test): live blocks of this thread (`body`'s promise), freed once.
                unsafe { alloc::free(p as *mut u8) };
            }
        })
        .join()
        .unwrap();
    }

    /// Frees `v`'s blocks (`size` bytes, filled with `0xee` first) and walks this
    /// thread's heap twice, so that they are purged; then checks their interiors went back.
    ///
    /// # Safety
    /// `v` are live blocks of this thread, freed once here.
    unsafe fn free_and_purge(v: &[usize], size: usize) {
        // SAFETY: this fn's contract; the heap is this thread's.
        unsafe {
            for &p in v {
                core::ptr::write_bytes(p as *mut u8, 0xee, size);
                alloc::free(p as *mut u8);
            }
            let heap = (*thread_cache()).heap;
            walk(heap);
            walk(heap);
            for &p in v {
                let (lo, len) = interior(p, size);
                assert_eq!(resident(lo, len), 0);
            }
        }
    }

    #[test]
    fn calloc_leaves_a_purged_blocks_pages_alone_and_returns_zeros() {
        crate::init::ensure();
        if crate::policy::purge_kind() != crate::os::PurgeKind::DontNeed {
            return;
        }
        with_big_blocks(|v, size| {
            // SAFETY (test): this thread's blocks, freed once each per time they were handed
            // out (the first five by `free_and_purge`, then calloc hands them back).
            unsafe {
                free_and_purge(&v[..5], size);
                for &p in v[..5].iter().rev() {
                    let q = alloc::calloc(1, 100_000) as usize;
                    assert_eq!(q, p, "calloc did not take the purged block");
                    let (lo, len) = interior(q, size);
                    assert_eq!(
                        resident(lo, len),
                        0,
                        "calloc touched pages that read as zero"
                    );
                    let b = core::slice::from_raw_parts(q as *const u8, 100_000);
                    assert!(b.iter().all(|&x| x == 0), "calloc returned a non-zero byte");
                }
            }
        });
    }

    #[test]
    fn a_purged_block_handed_out_aligned_and_written_is_zeroed_by_the_next_calloc() {
        crate::init::ensure();
        std::thread::spawn(|| {
            crate::heap::use_fresh_heap();
            const N: usize = 16 << 10;
            let size = class_size(class_of(N));
            assert_eq!(size, N);
            let v: Vec<usize> = (0..80).map(|_| alloc::malloc(N) as usize).collect();
            // SAFETY (test): this thread's blocks, each freed once per time it was handed out.
            unsafe {
                for &p in &v[1..] {
                    alloc::free(p as *mut u8);
                }
                free_and_purge(&v[..1], size);
                // Handed out by the aligned path (no `on_alloc`), written everywhere but its
                // third word, and freed: its mark must not survive to the next calloc.
                let q = alloc::aligned(4096, N) as usize;
                assert_eq!(q, v[0]);
                core::ptr::write_bytes(q as *mut u8, 0x5a, 16);
                core::ptr::write_bytes((q + 24) as *mut u8, 0x5a, N - 24);
                alloc::free(q as *mut u8);
                let r = alloc::calloc(1, N) as usize;
                assert_eq!(r, q);
                let b = core::slice::from_raw_parts(r as *const u8, N);
                assert!(
                    b.iter().all(|&x| x == 0),
                    "calloc trusted a decay mark left on a block handed out aligned"
                );
                alloc::free(r as *mut u8);
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn idle_blocks_on_a_hot_list_decay_too_and_the_list_stays_intact() {
        with_big_blocks(|v, size| {
            let c = class_of(size);
            for &p in &v[..5] {
                // SAFETY (test): `p` is a live block of `size` usable bytes.
                unsafe { core::ptr::write_bytes(p as *mut u8, 0xcd, size) };
            }
            // SAFETY (test): this thread's heap and bins, which only this thread touches; the
            // blocks are this thread's, freed once each per time they were handed out.
            unsafe {
                let heap = (*thread_cache()).heap;
                for &p in &v[..5] {
                    alloc::free(p as *mut u8);
                }
                let bin = &raw const (*thread_cache()).bins[c];
                assert_eq!(
                    (*bin).hot_max - (*bin).hot_room,
                    5,
                    "the frees missed the hot list"
                );
                walk(heap);
                let (lo, len) = interior(v[0], size);
                assert_eq!(resident(lo, len), len / PAGE, "purged after one walk");
                walk(heap);
                for &p in &v[..5] {
                    let (lo, len) = interior(p, size);
                    assert_eq!(
                        resident(lo, len),
                        0,
                        "an idle block on a hot list kept its pages"
                    );
                }
                // The list is intact: the same blocks come back, newest first, zero past their
                // first page.
                for &p in v[..5].iter().rev() {
                    let q = alloc::malloc(100_000) as usize;
                    assert_eq!(q, p);
                    let (lo, len) = interior(q, size);
                    let s = core::slice::from_raw_parts(lo as *const u8, len);
                    assert!(s.iter().all(|&b| b == 0));
                }
            }
        });
    }

    #[test]
    fn a_block_free_across_two_walks_gives_its_pages_back_and_keeps_its_links() {
        crate::init::ensure();
        std::thread::spawn(|| {
            crate::heap::use_fresh_heap();
            const N: usize = 100_000;
            let size = class_size(class_of(N));
            assert!(class_of(N) >= FIRST_CLASS);
            let v: Vec<usize> = (0..6).map(|_| alloc::malloc(N) as usize).collect();
            for &p in &v {
                // SAFETY (test): `p` is a live block of `size` usable bytes.
                unsafe { core::ptr::write_bytes(p as *mut u8, 0xab, size) };
            }
            // SAFETY (test): this thread's heap, which only this thread touches; the blocks are
            // this thread's, freed once each.
            unsafe {
                let heap = (*thread_cache()).heap;
                for &p in &v[..5] {
                    alloc::free(p as *mut u8);
                }
                let (lo, len) = interior(v[0], size);
                assert_eq!(resident(lo, len), len / PAGE);
                // The first walk only finds them free.
                assert_eq!(walk(heap), 0);
                assert_eq!(resident(lo, len), len / PAGE);
                // Still free at the second: purged, all but their first page.
                assert_eq!(walk(heap), 5 * len);
                for &p in &v[..5] {
                    let (lo, len) = interior(p, size);
                    assert_eq!(resident(lo, len), 0, "an idle free block kept its pages");
                    assert_eq!(resident(p & !(PAGE - 1), PAGE), 1);
                }
                assert_eq!(walk(heap), 0, "a purged block purged again");
                // The live block is untouched.
                let live = core::slice::from_raw_parts(v[5] as *const u8, N);
                assert!(live.iter().all(|&b| b == 0xab));
                // The lists are intact: the same blocks come back, last freed first, their
                // purged pages zero.
                for &p in v[..5].iter().rev() {
                    let q = alloc::malloc(N) as usize;
                    assert_eq!(q, p);
                    let (lo, len) = interior(q, size);
                    let s = core::slice::from_raw_parts(lo as *const u8, len);
                    assert!(s.iter().all(|&b| b == 0));
                }
                // A block handed out between two walks is not purged by the second; freed
                // again and idle, it decays again.
                alloc::free(v[0] as *mut u8);
                assert_eq!(walk(heap), 0);
                let q = alloc::malloc(N) as usize;
                assert_eq!(q, v[0]);
                alloc::free(q as *mut u8);
                assert_eq!(
                    walk(heap),
                    0,
                    "a block handed out since the last walk purged"
                );
                assert_eq!(walk(heap), len);
                for &p in &v[1..] {
                    alloc::free(p as *mut u8);
                }
            }
        })
        .join()
        .unwrap();
    }
}
