//! The Rust workload on jemalloc (the `tikv-jemallocator` crate).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A box from the global allocator must be one jemalloc knows: `arenas.lookup` names its arena
/// (for any other pointer it fails or crashes, and verification fails either way).
fn check() -> Result<String, String> {
    let b = Box::new(42u64);
    let mut p = &*b as *const u64 as *mut core::ffi::c_void;
    let mut arena: u32 = u32::MAX;
    let mut len = core::mem::size_of::<u32>();
    // SAFETY: the name is NUL-terminated, the out-parameter is a u32 of the stated length, and
    // the new value is a pointer to a live jemalloc block.
    let rc = unsafe {
        tikv_jemalloc_sys::mallctl(
            c"arenas.lookup".as_ptr(),
            &mut arena as *mut u32 as *mut core::ffi::c_void,
            &mut len,
            &mut p as *mut *mut core::ffi::c_void as *mut core::ffi::c_void,
            core::mem::size_of::<*mut core::ffi::c_void>(),
        )
    };
    if rc == 0 {
        Ok(format!(
            "mallctl(arenas.lookup) puts a Box in jemalloc arena {arena}"
        ))
    } else {
        Err(format!("mallctl(arenas.lookup) failed for a Box ({rc})"))
    }
}

fn main() {
    rust_workload::main("jemalloc", check)
}
