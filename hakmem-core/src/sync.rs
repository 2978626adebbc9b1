//! A futex mutex that never allocates, for the few global structures (slab pool, large blocks).
//! Each lock counts its acquisitions, the ones that found it taken and the ones that slept; the
//! holder updates them with plain loads and stores (no extra atomic operation), so counting costs
//! an uncontended lock two instructions.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

pub struct Mutex<T> {
    state: AtomicU32, // 0 free, 1 locked, 2 locked with waiters
    value: UnsafeCell<T>,
    acquired: AtomicU64,
    contended: AtomicU64,
    slept: AtomicU64,
}

/// How often a lock was taken, found taken, and waited for in the kernel.
#[derive(Clone, Copy, Default)]
pub struct LockCounts {
    pub acquired: u64,
    pub contended: u64,
    pub slept: u64,
}

/// Adds one to a counter that only the lock holder writes.
#[inline(always)]
fn bump(c: &AtomicU64) {
    add_single_writer(c, 1);
}

/// Adds `n` to a counter that one thread writes (its owner, or the holder of its lock) while
/// others may read it: a Relaxed load and store, no read-modify-write, so it costs what a plain
/// `+=` does (one `add` to memory on x86_64) and readers see whole values.
#[inline(always)]
pub fn add_single_writer(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

// SAFETY: access to `value` is serialised by `state`.
unsafe impl<T: Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    pub const fn new(value: T) -> Self {
        Mutex {
            state: AtomicU32::new(0),
            value: UnsafeCell::new(value),
            acquired: AtomicU64::new(0),
            contended: AtomicU64::new(0),
            slept: AtomicU64::new(0),
        }
    }

    /// The lock's counters (read without the lock: each is one word, written by the holder).
    pub fn counts(&self) -> LockCounts {
        LockCounts {
            acquired: self.acquired.load(Relaxed),
            contended: self.contended.load(Relaxed),
            slept: self.slept.load(Relaxed),
        }
    }

    #[inline]
    pub fn lock(&self) -> Guard<'_, T> {
        if self.state.compare_exchange(0, 1, Acquire, Relaxed).is_err() {
            self.lock_contended();
        }
        bump(&self.acquired);
        Guard { m: self }
    }

    /// The lock if it is free now; None if another thread (or this one, further up its stack)
    /// holds it. Never waits.
    #[inline]
    pub fn try_lock(&self) -> Option<Guard<'_, T>> {
        if self.state.compare_exchange(0, 1, Acquire, Relaxed).is_err() {
            return None;
        }
        bump(&self.acquired);
        Some(Guard { m: self })
    }

    #[cold]
    fn lock_contended(&self) {
        let mut spins = 0;
        while spins < 100 {
            if self.state.load(Relaxed) == 0
                && self.state.compare_exchange(0, 1, Acquire, Relaxed).is_ok()
            {
                bump(&self.contended);
                return;
            }
            core::hint::spin_loop();
            spins += 1;
        }
        let mut sleeps = 0;
        while self.state.swap(2, Acquire) != 0 {
            sleeps += 1;
            // SAFETY: futex wait on a live atomic; spurious wake-ups are handled by the loop.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.state.as_ptr(),
                    libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                    2,
                    0usize,
                );
            }
        }
        bump(&self.contended);
        self.slept.store(self.slept.load(Relaxed) + sleeps, Relaxed);
    }

    /// Locks without a guard (for fork's prepare handler); pair with `force_unlock`.
    pub fn raw_lock(&self) {
        core::mem::forget(self.lock());
    }

    /// Unlocks after `raw_lock`, or resets the lock in a fork child where its holder is gone.
    ///
    /// # Safety
    /// The caller owns the lock (after `raw_lock`) or is the only thread (fork child).
    pub unsafe fn force_unlock(&self) {
        if self.state.swap(0, Release) == 2 {
            // SAFETY: FUTEX_WAKE on the lock word, a live aligned u32; it touches no memory.
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    self.state.as_ptr(),
                    libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                    1,
                )
            };
        }
    }

    /// Whether some thread holds the lock now (for debug assertions).
    pub fn is_locked(&self) -> bool {
        self.state.load(Relaxed) != 0
    }

    /// The protected value's address, without locking and without making a reference to it:
    /// what the caller does with it must be under the lock or atomic.
    pub fn data_ptr(&self) -> *mut T {
        self.value.get()
    }
}

pub struct Guard<'a, T> {
    m: &'a Mutex<T>,
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held.
        unsafe { &*self.m.value.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard proves the lock is held.
        unsafe { &mut *self.m.value.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this guard holds the lock.
        unsafe { self.m.force_unlock() }
    }
}

#[cfg(test)]
mod tests {
    use super::Mutex;

    #[test]
    fn lock_counts_every_acquisition_exactly_under_contention() {
        static M: Mutex<u64> = Mutex::new(0);
        const N: u64 = 20_000;
        let ts: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..N {
                        *M.lock() += 1;
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        let c = M.counts();
        assert_eq!(*M.lock(), 4 * N);
        // The holder's plain updates lose nothing: the lock serialises them.
        assert_eq!(c.acquired, 4 * N);
        assert!(c.contended <= c.acquired && c.slept <= 4 * N * 4);
    }
}
