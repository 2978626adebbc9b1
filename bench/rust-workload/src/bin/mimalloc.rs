//! The Rust workload on mimalloc (the `mimalloc` crate).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

extern "C" {
    // mimalloc's own ownership test, from the static library the mimalloc crate links.
    fn mi_is_in_heap_region(p: *const core::ffi::c_void) -> bool;
}

/// A box from the global allocator must lie in mimalloc's heap.
fn check() -> Result<String, String> {
    let b = Box::new(42u64);
    let p = &*b as *const u64 as *const core::ffi::c_void;
    // SAFETY: a query on any address; mimalloc only looks it up.
    if unsafe { mi_is_in_heap_region(p) } {
        Ok("mi_is_in_heap_region() holds for a Box".into())
    } else {
        Err("a Box is not in mimalloc's heap".into())
    }
}

fn main() {
    rust_workload::main("mimalloc", check)
}
