//! Process start and exit hooks shared by every front end: the preload library and the Rust
//! global allocator each call `start` from their `.init_array` and `exit` from their
//! `.fini_array`, so fork handling and the exit report exist once.

use crate::init;
use core::sync::atomic::{AtomicBool, Ordering::*};

static FORK_HANDLERS: AtomicBool = AtomicBool::new(false);

/// Initialises hakmem and registers its fork handlers (once, however often it is called).
pub fn start() {
    init::ensure();
    if FORK_HANDLERS.swap(true, AcqRel) {
        return;
    }
    // pthread_atfork may allocate (glibc keeps the handlers in a growable array): under the
    // preload library that is an ordinary allocation, initialisation being complete; in a Rust
    // program it goes to glibc's malloc.
    // SAFETY: the handlers are plain functions that stay valid for the life of the process.
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
}

/// Whether `start` has registered the fork handlers.
pub fn fork_handlers_registered() -> bool {
    FORK_HANDLERS.load(Acquire)
}

/// At process exit: the statistics report HAKMEM_STATS asks for.
pub fn exit() {
    crate::stats::report_at_exit();
}

extern "C" fn prepare() {
    crate::fork::prepare();
}

extern "C" fn parent() {
    crate::fork::parent();
}

extern "C" fn child() {
    crate::fork::child();
    crate::background::forked_child();
}
