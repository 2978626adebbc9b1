//! A futex mutex that never allocates, for the few global structures (slab pool, large blocks).

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU32, Ordering::*};

pub struct Mutex<T> {
    state: AtomicU32, // 0 free, 1 locked, 2 locked with waiters
    value: UnsafeCell<T>,
}

// SAFETY: access to `value` is serialised by `state`.
unsafe impl<T: Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    pub const fn new(value: T) -> Self {
        Mutex {
            state: AtomicU32::new(0),
            value: UnsafeCell::new(value),
        }
    }

    #[inline]
    pub fn lock(&self) -> Guard<'_, T> {
        if self.state.compare_exchange(0, 1, Acquire, Relaxed).is_err() {
            self.lock_contended();
        }
        Guard { m: self }
    }

    #[cold]
    fn lock_contended(&self) {
        let mut spins = 0;
        while spins < 100 {
            if self.state.load(Relaxed) == 0
                && self.state.compare_exchange(0, 1, Acquire, Relaxed).is_ok()
            {
                return;
            }
            core::hint::spin_loop();
            spins += 1;
        }
        while self.state.swap(2, Acquire) != 0 {
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
            libc::syscall(
                libc::SYS_futex,
                self.state.as_ptr(),
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                1,
            );
        }
    }

    /// The protected value without locking.
    ///
    /// # Safety
    /// The caller must hold the lock by other means (e.g. `raw_lock`) or be single-threaded.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get_unlocked(&self) -> &mut T {
        &mut *self.value.get()
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
