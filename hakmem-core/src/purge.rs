//! Decay: how the memory of free slabs and empty SuperSlabs goes back to the OS, in two steps
//! (as jemalloc's dirty and muzzy decay). A free slab or empty SuperSlab unused for
//! HAKMEM_PURGE_DELAY_MS has its pages purged (madvise): the memory goes back, the address
//! space stays. An empty SuperSlab outside the cage unused for HAKMEM_UNMAP_DELAY_MS is
//! unmapped: its address space goes back too, and a stale pointer into it is reported as
//! invalid (its registry bits are cleared first). SuperSlabs in the cage are only purged: the
//! cage's reservation holds their address space whether they are mapped or not.
//!
//! The pool is walked when slabs come back to it, at most twice per delay, and everything at
//! once on `malloc_trim`; when a mapping fails, `pool::release_for_retry` unmaps every empty
//! SuperSlab outside the cage whatever its age. One system call per slab or SuperSlab, never
//! per block; under the pool lock, so the lists stay consistent.

use crate::os::{self, PurgeKind};
use crate::policy::{self, Opt};
use crate::pool::Pool;
use crate::superslab::{self, slab_bytes, ss_size, SuperSlab};
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Bytes purged (madvise) from free slabs and empty SuperSlabs.
pub static PURGED_BYTES: AtomicUsize = AtomicUsize::new(0);

/// What the decay does with one free slab or empty SuperSlab.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Step {
    Keep,
    Purge,
    Unmap,
}

/// The decay's settings for one walk of the pool.
#[derive(Clone, Copy, Debug)]
pub struct Decay {
    /// How pages are purged; None: never (unless forced).
    pub purge: Option<PurgeKind>,
    pub purge_delay: u64,
    pub unmap_delay: u64,
    /// Everything now, whatever its age (malloc_trim).
    pub force: bool,
}

impl Decay {
    fn from_policy(force: bool) -> Self {
        let purge = match policy::purge_kind() {
            PurgeKind::None if force => Some(PurgeKind::DontNeed),
            PurgeKind::None => None,
            k => Some(k),
        };
        Decay {
            purge,
            purge_delay: policy::get(Opt::PurgeDelayMs) as u64,
            unmap_delay: policy::get(Opt::UnmapDelayMs) as u64,
            force,
        }
    }

    /// Whether a walk is due, `since_last` ms after the previous one: at most twice per
    /// delay, so that nothing waits more than half a delay past its time.
    pub fn due(&self, since_last: u64) -> bool {
        let purge = if self.purge.is_some() {
            self.purge_delay
        } else {
            u64::MAX
        };
        let every = purge.min(self.unmap_delay).div_ceil(2);
        self.force || since_last >= every
    }

    /// The step for something free for `idle` ms, already purged or not, that may be unmapped
    /// (an empty SuperSlab outside the cage) or not.
    pub fn step(&self, idle: u64, purged: bool, unmappable: bool) -> Step {
        if unmappable && (self.force || idle >= self.unmap_delay) {
            Step::Unmap
        } else if self.purge.is_some() && !purged && (self.force || idle >= self.purge_delay) {
            Step::Purge
        } else {
            Step::Keep
        }
    }
}

/// Purges free slabs and empty SuperSlabs, and unmaps empty SuperSlabs outside the cage, that
/// have been free for their delay (all of them when `force`).
///
/// # Safety
/// `p` is the guarded pool (its lock is held): its listed slabs and SuperSlabs are free,
/// mapped, and used by no thread.
pub unsafe fn decay(p: &mut Pool, now: u64, force: bool) {
    let d = Decay::from_policy(force);
    if !d.due(now.saturating_sub(p.last_decay)) {
        return;
    }
    p.last_decay = now;
    let kind = d.purge.unwrap_or(PurgeKind::DontNeed);
    let mut link: *mut *mut SuperSlab = &mut p.empty_ss;
    // SAFETY: the pool lock is held (this fn's contract); `link` points to the list head or to
    // the `next` field of an empty SuperSlab on the list: mapped, and no slab of it in use, so
    // its pages past the descriptors hold nothing live.
    unsafe {
        while !(*link).is_null() {
            let ss = *link;
            let idle = now.saturating_sub((*ss).empty_since);
            match d.step(idle, (*ss).purged, superslab::unmappable(ss)) {
                Step::Unmap => {
                    *link = (*ss).next;
                    superslab::unmap(ss);
                    continue;
                }
                Step::Purge => {
                    let first = (*ss).first_offset as usize;
                    purge_range(ss as usize + first, ss_size() - first, kind);
                    (*ss).purged = true;
                }
                Step::Keep => {}
            }
            link = &mut (*ss).next;
        }
    }
    for list in &p.free_slabs {
        let mut s = list.head;
        while !s.is_null() {
            // SAFETY: `s` is a free slab on a pool list, guarded by the held pool lock: its
            // blocks hold nothing live, and its descriptor is in a formatted SuperSlab, which
            // is in use, so it is never unmapped here.
            unsafe {
                let idle = now.saturating_sub((*s).empty_since);
                if d.step(idle, (*s).purged, false) == Step::Purge {
                    purge_range((*s).start, slab_bytes(s), kind);
                    (*s).purged = true;
                }
                s = (*s).next;
            }
        }
    }
}

/// Unmaps every empty SuperSlab outside the cage now; the bytes unmapped.
///
/// # Safety
/// As for `decay`.
pub unsafe fn unmap_empty(p: &mut Pool) -> usize {
    let mut n = 0;
    let mut link: *mut *mut SuperSlab = &mut p.empty_ss;
    // SAFETY: as in `decay`: the lock is held and every SuperSlab on the list is empty.
    unsafe {
        while !(*link).is_null() {
            let ss = *link;
            if superslab::unmappable(ss) {
                *link = (*ss).next;
                superslab::unmap(ss);
                n += ss_size();
            } else {
                link = &mut (*ss).next;
            }
        }
    }
    n
}

/// Purges `a..a+len` and counts it in `PURGED_BYTES`. True when the range now reads as zero
/// (`os::purge`).
///
/// # Safety
/// `a..a+len` is page-aligned free memory of a mapped slab or SuperSlab that no thread uses
/// (or a free block's pages that only its slab's owner, or the thread whose hot list holds it,
/// reaches).
pub unsafe fn purge_range(a: usize, len: usize, kind: PurgeKind) -> bool {
    PURGED_BYTES.fetch_add(len, Relaxed);
    // SAFETY: the caller's promise.
    unsafe { os::purge(a as *mut u8, len, kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decay(purge: Option<PurgeKind>, purge_delay: u64, unmap_delay: u64) -> Decay {
        Decay {
            purge,
            purge_delay,
            unmap_delay,
            force: false,
        }
    }

    #[test]
    fn an_empty_superslab_is_purged_then_unmapped_only_outside_the_cage() {
        let d = decay(Some(PurgeKind::DontNeed), 10, 10_000);
        assert_eq!(d.step(5, false, true), Step::Keep);
        assert_eq!(d.step(10, false, true), Step::Purge);
        assert_eq!(d.step(9_999, true, true), Step::Keep);
        assert_eq!(d.step(10_000, true, true), Step::Unmap);
        assert_eq!(
            d.step(10_000, false, true),
            Step::Unmap,
            "no purge before an unmap"
        );
        assert_eq!(d.step(1 << 40, false, false), Step::Purge);
        assert_eq!(
            d.step(1 << 40, true, false),
            Step::Keep,
            "the cage keeps its address space"
        );
    }

    #[test]
    fn forced_decay_purges_and_unmaps_everything_now() {
        let d = Decay {
            force: true,
            ..decay(Some(PurgeKind::Free), 600_000, 600_000)
        };
        assert!(d.due(0));
        assert_eq!(d.step(0, false, true), Step::Unmap);
        assert_eq!(d.step(0, false, false), Step::Purge);
        assert_eq!(d.step(0, true, false), Step::Keep);
    }

    #[test]
    fn unmapping_goes_on_when_purging_is_off() {
        let d = decay(None, 0, 1000);
        assert_eq!(d.step(1 << 40, false, false), Step::Keep);
        assert_eq!(d.step(999, false, true), Step::Keep);
        assert_eq!(d.step(1000, false, true), Step::Unmap);
        assert!(!d.due(499));
        assert!(d.due(500));
    }

    #[test]
    fn walks_come_twice_per_shortest_delay() {
        let d = decay(Some(PurgeKind::DontNeed), 1000, 10_000);
        assert!(!d.due(499));
        assert!(d.due(500));
        let d = decay(Some(PurgeKind::DontNeed), 0, 10_000);
        assert!(d.due(0), "a zero purge delay walks on every release");
    }
}
