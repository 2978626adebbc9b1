//! Process start and exit: initialise early, register the fork handlers, print statistics.

extern "C" fn on_load() {
    hakmem_core::init::ensure();
    // pthread_atfork may allocate (glibc keeps the handlers in a growable array); initialisation
    // is complete by now, so that allocation is an ordinary one.
    // SAFETY: the handlers are plain functions that stay valid for the life of the process.
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
}

extern "C" fn on_unload() {
    hakmem_core::stats::report_at_exit();
}

extern "C" fn prepare() {
    hakmem_core::fork::prepare();
}

extern "C" fn parent() {
    hakmem_core::fork::parent();
}

extern "C" fn child() {
    hakmem_core::fork::child();
}

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = on_load;

#[used]
#[link_section = ".fini_array"]
static FINI: extern "C" fn() = on_unload;
