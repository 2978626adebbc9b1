//! The Rust workload on hakmem (`hakmem::HakMem`).
#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

/// hakmem's own statistics must count the boxes allocated here.
fn check() -> Result<String, String> {
    let before = hakmem::stats().allocs;
    let boxes: Vec<Box<u64>> = (0..1000).map(Box::new).collect();
    let after = hakmem::stats().allocs;
    drop(boxes);
    if after >= before + 1000 {
        Ok(format!(
            "hakmem's statistics count {} allocations ({} for 1000 boxes)",
            after,
            after - before
        ))
    } else {
        Err(format!(
            "hakmem's statistics counted {} allocations for 1000 boxes",
            after - before
        ))
    }
}

fn main() {
    rust_workload::main("hakmem", check)
}
