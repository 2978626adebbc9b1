//! Process start and exit: initialise early, register the fork handlers, print statistics
//! (`hakmem_core::process`, shared with the Rust global allocator crate).

extern "C" fn on_load() {
    hakmem_core::process::start();
}

extern "C" fn on_unload() {
    hakmem_core::process::exit();
}

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = on_load;

#[used]
#[link_section = ".fini_array"]
static FINI: extern "C" fn() = on_unload;
