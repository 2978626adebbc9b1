//! The background purger (HAKMEM_BACKGROUND=1; on in the lean profile), as jemalloc's
//! `background_thread`: one thread that wakes every half purge delay (at least 10 ms, at most
//! a second) and does what the decay otherwise does only when the program allocates or frees:
//! it purges the pool's free slabs and unmaps its empty SuperSlabs once their delays passed
//! (`purge::decay`), unmaps cached large blocks past their time (`large::decay_cached`), and
//! for the heaps of exited threads parked longer than the purge delay, purges their idle big
//! free blocks (`block_decay::walk`) and hands their empty slabs to the pool. So memory goes
//! back from a program that went idle after a burst, and from threads that exited, which
//! otherwise keep it until the program next allocates enough to walk the pool
//! (`bench/extra/idle_retention.c`). The heaps of live threads stay their owners' alone: an
//! idle live thread keeps its hot lists and free blocks, as under jemalloc and tcmalloc.
//!
//! The thread starts once memory has gone back to the pool or the large-block cache, or a
//! thread exited (`note_release`, which only raises a flag under the locks those hold), at the next
//! allocation refill, large free or thread exit (`maybe_start`, where no allocator lock is
//! held), never at load time; a forked child, which has no such thread, starts one the same way.
//! Not in checking mode, whose calls all take one lock. It blocks every signal (they are the
//! program's threads' to take), never allocates, and takes the pool lock only for one walk,
//! with `try_lock`: a walk never waits behind the program's threads, it waits for the next
//! period.
//!
//! Only a process that is multi-threaded already gets the thread: in a single-threaded one it
//! would make glibc take the locks it skips there (stdio's; fork's own, on which a signal
//! handler that forks inside fork then waits forever), and such a process has no exited
//! threads' heaps to give back.

use crate::heap::{self, Heap};
use crate::os;
use crate::policy::{self, Opt};
use crate::pool::POOL;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::*};

const OFF: u8 = 0;
const STARTING: u8 = 1;
const RUNNING: u8 = 2;
/// pthread_create refused (a thread limit, a sandbox): not tried again.
const FAILED: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(OFF);
/// Memory has gone back to the pool or the large-block cache since the process (or forked
/// child) started: there is something for the thread to do.
static PENDING: AtomicBool = AtomicBool::new(false);
/// Walks the thread made (statistics).
pub static TICKS: AtomicU64 = AtomicU64::new(0);

/// The thread's stack: it calls nothing deep.
const STACK: usize = 128 << 10;

/// Whether the policy asks for the thread (never in checking mode).
fn wanted() -> bool {
    policy::get(Opt::Background) != 0 && !policy::checked()
}

/// Memory went back to the pool or the large-block cache: the next `maybe_start` starts the
/// thread. Callable under any lock.
#[inline]
pub fn note_release() {
    if !PENDING.load(Relaxed) {
        PENDING.store(true, Relaxed);
    }
}

/// How long the thread sleeps between walks (ms): half the purge delay, so that nothing waits
/// more than half a delay past its time (as `purge::Decay::due`), within 10 ms and a second.
pub fn period_ms() -> u64 {
    (policy::get(Opt::PurgeDelayMs) as u64 / 2).clamp(10, 1000)
}

/// Starts the thread if memory has gone back, the policy wants it, it is not running and the
/// process is multi-threaded. The caller holds no allocator lock: pthread_create allocates
/// (through this allocator).
#[inline]
pub fn maybe_start() {
    if STATE.load(Relaxed) == OFF
        && PENDING.load(Relaxed)
        && wanted()
        && !crate::fork::single_threaded()
    {
        start();
    }
}

#[cold]
#[inline(never)]
fn start() {
    if STATE
        .compare_exchange(OFF, STARTING, Acquire, Relaxed)
        .is_err()
    {
        return;
    }
    // Whatever pthread_create does to errno, the caller's malloc or free leaves it as it was.
    let e = os::errno();
    // SAFETY: plain libc calls on valid out-parameters; the new thread inherits the blocked
    // mask, and this thread's own mask is restored before returning.
    let ok = unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        libc::pthread_attr_init(&mut attr);
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        libc::pthread_attr_setstacksize(&mut attr, STACK);
        let mut all: libc::sigset_t = core::mem::zeroed();
        let mut old: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        let mut t: libc::pthread_t = 0;
        let r = libc::pthread_create(&mut t, &attr, run, core::ptr::null_mut());
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut());
        libc::pthread_attr_destroy(&mut attr);
        r == 0
    };
    STATE.store(if ok { RUNNING } else { FAILED }, Release);
    os::set_errno(e);
}

/// Whether the thread runs (statistics, tests).
pub fn running() -> bool {
    STATE.load(Acquire) == RUNNING
}

/// pthread_atfork child: the child has no background thread. It starts one only once memory
/// goes back in the child itself, so that a child which forks only to exec never does.
pub fn forked_child() {
    PENDING.store(false, Relaxed);
    if STATE.load(Relaxed) == RUNNING {
        STATE.store(OFF, Relaxed);
    }
}

extern "C" fn run(_: *mut libc::c_void) -> *mut libc::c_void {
    // SAFETY: names the calling thread (as `top` and debuggers show it); a valid C string.
    unsafe {
        libc::prctl(
            libc::PR_SET_NAME,
            c"hakmem-bg".as_ptr() as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    let mut idle = 0u32;
    loop {
        // A walk that gave nothing back doubles the sleep, up to 64 periods and a second at
        // most: an idle program is woken a few times a second, not a hundred.
        let ms = (period_ms() << idle.min(6)).min(1000);
        let ts = libc::timespec {
            tv_sec: (ms / 1000) as libc::time_t,
            tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
        };
        // SAFETY: a valid timespec; an interruption only shortens one sleep.
        unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
        let before = given_back();
        tick();
        idle = if given_back() == before { idle + 1 } else { 0 };
    }
}

/// Bytes purged and unmapped so far, by anyone.
fn given_back() -> usize {
    crate::purge::PURGED_BYTES.load(Relaxed)
        + crate::large::UNMAPPED_BYTES.load(Relaxed)
        + crate::superslab::SS_UNMAPPED.load(Relaxed)
}

/// One walk: the parked heaps, the pool, the large-block cache; skipped while another thread
/// holds the pool lock.
fn tick() {
    let Some(mut p) = POOL.try_lock() else {
        return;
    };
    TICKS.fetch_add(1, Relaxed);
    let now = os::now_ms();
    let delay = policy::get(Opt::PurgeDelayMs) as u64;
    let mut h: *mut Heap = p.dead_heaps;
    while !h.is_null() {
        // SAFETY: a parked heap is owned by the pool lock's holder (`heap::Heap`), held here:
        // no thread adopts it meanwhile, and its lists, bins and slab cache are ours to walk
        // and release. Heaps are never freed.
        unsafe {
            if now.saturating_sub((*h).parked_ms) >= delay {
                crate::block_decay::walk(h);
                heap::release_caches_locked(h, &mut p);
            }
            h = (*h).next_dead;
        }
    }
    // SAFETY: the pool lock is held; every listed slab and SuperSlab is free and mapped.
    unsafe { crate::purge::decay(&mut p, now, false) };
    drop(p);
    crate::large::decay_cached();
}
