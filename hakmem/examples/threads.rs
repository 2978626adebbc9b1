//! A Rust program with hakmem as its global allocator: threads build and drop maps, then the
//! program prints hakmem's statistics. `cargo run --release -p hakmem --example threads`.
use std::collections::HashMap;

#[global_allocator]
static GLOBAL: hakmem::HakMem = hakmem::HakMem;

fn main() {
    let workers: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut m: HashMap<String, Vec<u32>> = HashMap::new();
                for i in 0..20_000u32 {
                    m.entry(format!("{t}-{}", i % 1000)).or_default().push(i);
                }
                m.values().map(|v| v.len()).sum::<usize>()
            })
        })
        .collect();
    let total: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let s = hakmem::stats();
    println!(
        "threads: {total} values; hakmem served {} allocations, {} frees, {} heaps",
        s.allocs, s.frees, s.heaps
    );
    hakmem::print_stats(false);
}
