//! Model checking of the cross-thread free protocol with loom: `src/remote_list.rs`, the very file
//! the allocator runs, is compiled here over loom's atomics, and loom explores the interleavings
//! (and the weak-memory reorderings its model allows) of two or three freeing threads and the
//! owner. Block links live in loom cells, so a link read without a happens-before edge from its
//! write is reported as a data race.
//!
//! Every model checks the protocol's promises: each freed block is collected exactly once, no
//! block is lost once the frees have finished and the owner drains one last time, a slab is never
//! in the queue twice at once (that would make the queue a cycle or drop a slab), and when the
//! last drain is done every slab's word is 0 and the queue empty.

#[path = "../src/remote_list.rs"]
#[allow(dead_code)]
mod remote_list;

mod atomic {
    pub use loom::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
}

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::*};
use loom::sync::Arc;
use remote_list::{Queued, EMPTY};
use std::collections::HashSet;

const BLOCKS: usize = 4;

/// A slab as the protocol sees it: the thread_free word, the queue link, and the blocks' links.
struct Slab {
    id: usize,
    thread_free: AtomicUsize,
    next_remote: AtomicPtr<Slab>,
    links: [UnsafeCell<u64>; BLOCKS],
}

impl Queued for Slab {
    unsafe fn next_remote<'a>(s: *mut Slab) -> &'a AtomicPtr<Slab> {
        // SAFETY: the caller's promise: `s` is valid for `'a`.
        unsafe { &(*s).next_remote }
    }
}

impl Slab {
    fn new(id: usize) -> Self {
        Slab {
            id,
            thread_free: AtomicUsize::new(0),
            next_remote: AtomicPtr::new(std::ptr::null_mut()),
            links: std::array::from_fn(|_| UnsafeCell::new(EMPTY)),
        }
    }

    /// Walks a stack taken from `thread_free` into `got`, checking it ends within BLOCKS links
    /// and that the word's length and last block are the walk's.
    fn walk(&self, r: remote_list::Run, got: &mut Vec<(usize, u64)>) {
        let mut k = r.head;
        let mut n = 0;
        let mut last = EMPTY;
        while k != EMPTY {
            n += 1;
            assert!(n <= BLOCKS, "slab {}: the stack loops", self.id);
            got.push((self.id, k));
            last = k;
            k = self.links[k as usize].with(|p| unsafe { *p });
        }
        assert_eq!(
            r.n as usize, n,
            "slab {}: the word's count is not the stack's",
            self.id
        );
        if n > 0 {
            assert_eq!(
                r.tail, last,
                "slab {}: the word's tail is not the stack's",
                self.id
            );
        }
    }
}

/// The heap: its queue of notified slabs.
struct Heap {
    queue: AtomicPtr<Slab>,
}

/// A freeing thread's free of block `k` of `s`: the steps of `remote::free_remote`.
fn free_remote(heap: &Heap, s: &Slab, k: u64) {
    let queue_it = remote_list::push(&s.thread_free, k, |old| {
        s.links[k as usize].with_mut(|p| unsafe { *p = old })
    });
    if queue_it {
        unsafe { remote_list::enqueue(&heap.queue, s as *const Slab as *mut Slab) };
    }
}

/// The owner's drain: the steps of `heap::drain_remote`.
fn drain(heap: &Heap, got: &mut Vec<(usize, u64)>) {
    let mut s = remote_list::take_queue(&heap.queue);
    let mut seen = HashSet::new();
    while !s.is_null() {
        let slab = unsafe { &*s };
        assert!(
            seen.insert(slab.id),
            "slab {} is in the queue twice",
            slab.id
        );
        let next = unsafe { remote_list::next(s) };
        let r = remote_list::take_and_clear(&slab.thread_free);
        slab.walk(r, got);
        s = next;
    }
}

/// The owner collecting its current slab's stack without the queue (`Slab::take_remote_keep_flag`).
fn take_current(s: &Slab, got: &mut Vec<(usize, u64)>) {
    let r = remote_list::take_keep_flag(&s.thread_free);
    s.walk(r, got);
}

fn check_all_collected(got: &[(usize, u64)], freed: &[(usize, u64)]) {
    let set: HashSet<_> = got.iter().copied().collect();
    assert_eq!(set.len(), got.len(), "a block was collected twice: {got:?}");
    let want: HashSet<_> = freed.iter().copied().collect();
    assert_eq!(set, want, "collected {got:?}, freed {freed:?}");
}

/// Two threads free the slab's four blocks (0 and 2, 1 and 3).
fn free_all_from_two_threads(
    heap: &Arc<Heap>,
    slab: &Arc<Slab>,
) -> Vec<loom::thread::JoinHandle<()>> {
    (0..2u64)
        .map(|t| {
            let (h, s) = (heap.clone(), slab.clone());
            loom::thread::spawn(move || {
                free_remote(&h, &s, t);
                free_remote(&h, &s, t + 2);
            })
        })
        .collect()
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

fn quiescent(heap: &Heap, slabs: &[Arc<Slab>]) {
    assert!(heap.queue.load(Relaxed).is_null(), "the queue is not empty");
    for s in slabs {
        assert_eq!(s.thread_free.load(Relaxed), 0, "slab {} keeps a word", s.id);
    }
}

#[test]
fn two_freeing_threads_and_a_draining_owner() {
    model(|| {
        let heap = Arc::new(Heap {
            queue: AtomicPtr::new(std::ptr::null_mut()),
        });
        let slab = Arc::new(Slab::new(0));
        let freers = free_all_from_two_threads(&heap, &slab);
        let mut got = Vec::new();
        drain(&heap, &mut got);
        for f in freers {
            f.join().unwrap();
        }
        drain(&heap, &mut got);
        check_all_collected(&got, &[(0, 0), (0, 1), (0, 2), (0, 3)]);
        quiescent(&heap, &[slab]);
    });
}

#[test]
fn owner_takes_its_current_slab_while_it_is_queued() {
    model(|| {
        let heap = Arc::new(Heap {
            queue: AtomicPtr::new(std::ptr::null_mut()),
        });
        let slab = Arc::new(Slab::new(0));
        let freers: Vec<_> = (0..2u64)
            .map(|t| {
                let (h, s) = (heap.clone(), slab.clone());
                loom::thread::spawn(move || free_remote(&h, &s, t))
            })
            .collect();
        let mut got = Vec::new();
        take_current(&slab, &mut got);
        drain(&heap, &mut got);
        for f in freers {
            f.join().unwrap();
        }
        take_current(&slab, &mut got);
        drain(&heap, &mut got);
        check_all_collected(&got, &[(0, 0), (0, 1)]);
        quiescent(&heap, &[slab]);
    });
}

#[test]
fn two_slabs_queued_by_racing_threads() {
    model(|| {
        let heap = Arc::new(Heap {
            queue: AtomicPtr::new(std::ptr::null_mut()),
        });
        let slabs = [Arc::new(Slab::new(0)), Arc::new(Slab::new(1))];
        let freers: Vec<_> = (0..2usize)
            .map(|t| {
                let h = heap.clone();
                let (a, b) = (slabs[t].clone(), slabs[1 - t].clone());
                loom::thread::spawn(move || {
                    free_remote(&h, &a, t as u64);
                    free_remote(&h, &b, t as u64 + 2);
                })
            })
            .collect();
        let mut got = Vec::new();
        drain(&heap, &mut got);
        for f in freers {
            f.join().unwrap();
        }
        drain(&heap, &mut got);
        check_all_collected(&got, &[(0, 0), (1, 2), (1, 1), (0, 3)]);
        quiescent(&heap, &slabs);
    });
}

/// A thread exits while frees are in flight (its exit handler drains its queue and parks the
/// heap), and a new thread adopts the heap and drains it: nothing freed meanwhile is lost.
#[test]
fn frees_racing_with_thread_exit_reach_the_heap_that_adopts_it() {
    model(|| {
        let heap = Arc::new(Heap {
            queue: AtomicPtr::new(std::ptr::null_mut()),
        });
        let slab = Arc::new(Slab::new(0));
        let freers: Vec<_> = (0..2u64)
            .map(|t| {
                let (h, s) = (heap.clone(), slab.clone());
                loom::thread::spawn(move || free_remote(&h, &s, t))
            })
            .collect();
        let (h, s) = (heap.clone(), slab.clone());
        let exiting = loom::thread::spawn(move || {
            let mut got = Vec::new();
            take_current(&s, &mut got);
            drain(&h, &mut got);
            got
        });
        let mut got = exiting.join().unwrap();
        let (h, s) = (heap.clone(), slab.clone());
        let adopter = loom::thread::spawn(move || {
            let mut got = Vec::new();
            drain(&h, &mut got);
            let _ = &s;
            got
        });
        got.extend(adopter.join().unwrap());
        for f in freers {
            f.join().unwrap();
        }
        drain(&heap, &mut got);
        check_all_collected(&got, &[(0, 0), (0, 1)]);
        quiescent(&heap, &[slab]);
    });
}

/// A thread that does not own the heap takes a slab whose every block was freed remotely
/// (`steal`), while the owner stops using it as its current slab (`heap::refill` on an exhausted
/// slab: it takes what frees came, and if none, marks the slab full and clears CURRENT last).
/// The taker must never get a slab that is still current, and its use of the slab's owner-side
/// fields (a loom cell here) must follow the owner's last write: loom reports a race otherwise.
/// Each block is collected exactly once, by the owner or with the slab.
#[test]
fn a_slab_freed_whole_is_taken_only_after_its_owner_let_it_go() {
    model(|| {
        let heap = Arc::new(Heap {
            queue: AtomicPtr::new(std::ptr::null_mut()),
        });
        let slab = Arc::new(Slab::new(0));
        // Its owner's field (`used_full`); the slab starts as the owner's current slab, every
        // block handed out.
        let owner_field = Arc::new(UnsafeCell::new(0u32));
        remote_list::take_set_current(&slab.thread_free);
        let freers = free_all_from_two_threads(&heap, &slab);
        let (s, f) = (slab.clone(), owner_field.clone());
        let owner = loom::thread::spawn(move || {
            let mut got = Vec::new();
            let r = remote_list::take_keep_flag(&s.thread_free);
            if r.n > 0 {
                s.walk(r, &mut got); // still current: the owner goes on with it
                (got, true)
            } else {
                f.with_mut(|p| unsafe { *p = 1 }); // full
                remote_list::clear_current(&s.thread_free);
                (got, false)
            }
        });
        // The taker: the steps of `steal::take_free_slabs`.
        let mut stolen = false;
        let mut s = remote_list::take_queue(&heap.queue);
        while !s.is_null() {
            let next = unsafe { remote_list::next(s) };
            let sl = unsafe { &*s };
            if remote_list::take_free(&sl.thread_free, BLOCKS as u32) {
                owner_field.with_mut(|p| unsafe { *p = 0 });
                stolen = true;
            } else {
                unsafe { remote_list::enqueue(&heap.queue, s) };
            }
            s = next;
        }
        let (mut got, still_current) = owner.join().unwrap();
        for f in freers {
            f.join().unwrap();
        }
        if stolen {
            assert!(
                !still_current,
                "a slab was taken while its owner kept it current"
            );
            assert!(got.is_empty(), "blocks of a taken slab were collected");
            got.extend((0..BLOCKS as u64).map(|k| (0, k)));
        } else {
            if still_current {
                take_current(&slab, &mut got);
            }
            drain(&heap, &mut got);
            if !still_current {
                // Full and never taken: the owner's drain collected the rest.
                let w = slab.thread_free.load(Relaxed);
                assert_eq!(w & remote_list::CURRENT, 0);
            }
        }
        check_all_collected(&got, &[(0, 0), (0, 1), (0, 2), (0, 3)]);
        if !still_current {
            quiescent(&heap, &[slab]);
        }
    });
}
