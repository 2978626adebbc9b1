//! Process-wide initialisation (lazy, from any entry point), and a thread's start and exit
//! (fork: `fork`).

use crate::heap::{self, Heap};
use crate::policy;
use crate::superslab;
use crate::tls::{thread_cache, ThreadCache};
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering::*};

const UNINIT: u8 = 0;
const BUSY: u8 = 1;
const READY: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNINIT);
static KEY: AtomicU32 = AtomicU32::new(u32::MAX);

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[inline(always)]
pub fn ensure() {
    if STATE.load(Acquire) != READY {
        init_slow();
    }
}

#[cold]
#[inline(never)]
fn init_slow() {
    if STATE
        .compare_exchange(UNINIT, BUSY, Acquire, Acquire)
        .is_err()
    {
        // Another thread is initialising; nothing in that path allocates, so it finishes.
        while STATE.load(Acquire) != READY {
            core::hint::spin_loop();
        }
        return;
    }
    policy::init_from_process();
    crate::freelist::init_keys();
    superslab::set_ss_shift(policy::superslab_shift());
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: pthread_key_create writes the key; glibc keeps keys in a static table (no malloc).
    if unsafe { libc::pthread_key_create(&mut key, Some(on_thread_exit)) } == 0 {
        KEY.store(key, Relaxed);
    }
    STATE.store(READY, Release);
    crate::pool::prewarm(policy::get(policy::Opt::Prewarm) as usize);
    if policy::get(policy::Opt::Verbose) != 0 {
        let mut b = crate::os::StackBuf::<1024>::new();
        let _ = core::fmt::Write::write_fmt(&mut b, format_args!("hakmem {VERSION}: loaded;"));
        let _ = policy::write_effective(&mut b);
        crate::os::write_stderr(b.as_bytes());
        crate::os::write_stderr(b"\n");
    }
}

/// A thread's start: gives the calling thread a heap (`heap::attach`) and arranges for it to
/// be flushed and parked when the thread exits. Null when out of memory.
///
/// # Safety
/// `tc` is the calling thread's cache and it has no heap.
pub unsafe fn attach_thread(tc: *mut ThreadCache) -> *mut Heap {
    // SAFETY: this fn's contract, as `attach` requires; the exit handler is registered below.
    let heap = unsafe { heap::attach(tc) };
    if !heap.is_null() {
        register_thread_exit(heap);
    }
    heap
}

/// Arranges for `heap` to be flushed and parked when the calling thread exits.
fn register_thread_exit(heap: *mut Heap) {
    let key = KEY.load(Relaxed);
    if key != u32::MAX {
        // SAFETY: a valid key; glibc stores the first 32 keys' values in the thread descriptor.
        unsafe { libc::pthread_setspecific(key, heap as *const libc::c_void) };
    }
}

/// The pthread key destructor: detaches the exiting thread's heap.
///
/// # Safety
/// Called by libc on the exiting thread, once, with the value `register_thread_exit` stored.
unsafe extern "C" fn on_thread_exit(arg: *mut libc::c_void) {
    let tc = thread_cache();
    let heap = arg as *mut Heap;
    // SAFETY: `tc` is this thread's cache, still alive in the key destructor; when `heap` is
    // its heap, this is its exit handler, run once (this fn's contract), as `detach` requires.
    unsafe {
        if !heap.is_null() && (*tc).heap == heap {
            heap::detach(tc, heap);
        }
    }
}
