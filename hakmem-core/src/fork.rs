//! fork: the pthread_atfork handlers. The allocator's locks are held across fork so that the
//! child finds every shared structure consistent, taken in the order glibc's own fork takes its
//! locks, so that fork cannot join a lock cycle with stdio (glibc bug 19431); and not at all in
//! a single-threaded process, so that fork from a signal handler never waits on itself.
//!
//! glibc 2.36's fork runs the prepare handlers, then (only when the process is multi-threaded)
//! takes stdio's list lock (`_IO_list_lock`) and then its malloc locks; the parent releases
//! them in reverse before running the parent handlers, the child resets them before running
//! the child handlers. Other threads already nest stdio and malloc that way: `fflush(NULL)`
//! holds the list lock while it takes each FILE's lock, `getline` holds a FILE's lock while it
//! calls `realloc`. So prepare takes the list lock (it is recursive) before our own locks, and
//! a forking thread never holds an allocator lock while it waits for a stdio lock.
//!
//! With one thread no other thread can hold our locks, and the locks are skipped as glibc skips
//! its own. A prepare handler re-entered on the same thread (a signal handler that forks while
//! this thread is inside fork) only counts a level; the outermost level alone locks and unlocks.
//! The transitions run with signals blocked, so a nested fork only ever sees all or none of the
//! locks taken. The child keeps the heaps of threads that do not exist in it as they are: their
//! blocks stay allocated, and frees of them wait in remote queues nobody drains.

use crate::heap::SHARED;
use crate::pool::POOL;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::*};

// glibc (libc.so.6 exports all four; `__libc_single_threaded` since 2.32).
extern "C" {
    fn _IO_list_lock();
    fn _IO_list_unlock();
    fn _IO_list_resetlock();
    static __libc_single_threaded: libc::c_char;
}

/// The thread inside fork (its pthread_self), or 0. Written only by that thread, while it holds
/// stdio's list lock or is the only thread.
static HOLDER: AtomicUsize = AtomicUsize::new(0);
/// How many of HOLDER's prepare handlers are open: more than one only when a signal handler
/// forked inside a fork.
static DEPTH: AtomicU32 = AtomicU32::new(0);
/// Whether the outermost prepare took the locks (not when the process was single-threaded).
static LOCKED: AtomicBool = AtomicBool::new(false);

/// Whether the process has had one thread only (glibc clears the byte for good when a second
/// thread starts).
pub(crate) fn single_threaded() -> bool {
    // SAFETY: a byte that glibc exports and reads the same way at the start of fork.
    unsafe { core::ptr::read_volatile(core::ptr::addr_of!(__libc_single_threaded)) != 0 }
}

fn me() -> usize {
    // SAFETY: pthread_self reads the thread pointer; it is async-signal-safe.
    unsafe { libc::pthread_self() as usize }
}

/// Runs `f` with every signal blocked on this thread.
fn signals_blocked(f: impl FnOnce()) {
    // SAFETY: both sets are valid; pthread_sigmask only changes this thread's mask and is
    // async-signal-safe; the old mask is restored before returning.
    unsafe {
        let mut all: libc::sigset_t = core::mem::zeroed();
        let mut old: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        f();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, core::ptr::null_mut());
    }
}

/// pthread_atfork prepare.
pub fn prepare() {
    signals_blocked(|| {
        let me = me();
        if HOLDER.load(Relaxed) == me {
            DEPTH.fetch_add(1, Relaxed);
            return;
        }
        let lock = !single_threaded();
        if lock {
            // SAFETY: glibc's recursive stdio list lock; released in `parent` or reset in `child`.
            unsafe { _IO_list_lock() };
            SHARED.raw_lock();
            POOL.raw_lock();
            crate::transfer::lock_all();
        }
        LOCKED.store(lock, Relaxed);
        DEPTH.store(1, Relaxed);
        HOLDER.store(me, Relaxed);
    });
}

/// pthread_atfork parent.
pub fn parent() {
    // SAFETY: `_IO_list_unlock` releases the list lock this thread took in `prepare`.
    release(|| unsafe { _IO_list_unlock() });
}

/// pthread_atfork child: the calling thread is the child's only thread.
pub fn child() {
    // glibc has reset the list lock already when it saw several threads; resetting it again is
    // harmless and also covers a process that became multi-threaded inside the prepare handlers.
    // SAFETY: the child's only thread, which took the list lock in `prepare`.
    release(|| unsafe { _IO_list_resetlock() });
}

/// The outermost parent or child handler releases what `prepare` took (`list_lock` ends stdio's
/// list lock); a nested one only counts down.
fn release(list_lock: impl FnOnce()) {
    signals_blocked(|| {
        if HOLDER.load(Relaxed) != me() {
            return; // registered while a fork was under way: its prepare never ran
        }
        if DEPTH.fetch_sub(1, Relaxed) > 1 {
            return; // a fork nested in a fork: the outer one goes on
        }
        HOLDER.store(0, Relaxed);
        if LOCKED.load(Relaxed) {
            crate::transfer::unlock_all();
            // SAFETY: this thread (the only one, in a child) took these locks in `prepare`.
            unsafe {
                POOL.force_unlock();
                SHARED.force_unlock();
            }
            list_lock();
        }
    });
}
