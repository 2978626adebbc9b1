//! The Rust workload on the system allocator (glibc's malloc through `std::alloc::System`).
#[global_allocator]
static GLOBAL: std::alloc::System = std::alloc::System;

/// glibc's own accounting (mallinfo2) must grow by a block the global allocator hands out.
fn check() -> Result<String, String> {
    // SAFETY: mallinfo2 has no preconditions.
    let before = unsafe { libc::mallinfo2() }.uordblks;
    let v: Vec<u8> = std::hint::black_box(Vec::with_capacity(64 << 10));
    let after = unsafe { libc::mallinfo2() }.uordblks;
    drop(v);
    if after >= before + (64 << 10) {
        Ok(format!(
            "glibc's mallinfo2 in-use bytes grew by {} for a 64 KiB Vec",
            after - before
        ))
    } else {
        Err(format!(
            "glibc's mallinfo2 in-use bytes grew by {} for a 64 KiB Vec",
            after as i64 - before as i64
        ))
    }
}

fn main() {
    rust_workload::main("system", check)
}
