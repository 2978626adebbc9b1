//! The large cache's `take(len, false)` hands out a range of at least `len` bytes even while
//! other threads take and refill the slot it chose (it re-reads the slot after claiming it).
//! A binary of its own: its ranges are numbers, never memory, so no allocation of this process
//! may take them (nothing here allocates through hakmem).

use hakmem_core::large_cache::{self, Range};

const K: usize = 4096;

#[test]
fn take_without_or_smaller_never_hands_out_a_shorter_range() {
    let threads: Vec<_> = (0..4usize)
        .map(|t| {
            std::thread::spawn(move || {
                // Each thread's ranges come from its own stretch of (never touched) address
                // space, 1 TiB apart, so that ranges of two threads never merge.
                let mut next = (t + 1) << 40;
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t as u64;
                let mut rnd = |n: u64| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x % n
                };
                let mut held: Vec<Range> = Vec::new();
                let mut short = 0;
                for _ in 0..200_000 {
                    if held.len() < 8 && rnd(2) == 0 {
                        let len = (1 + rnd(64) as usize) * 16 * K;
                        match large_cache::take(len, false) {
                            Some(r) => {
                                if r.len < len {
                                    short += 1;
                                }
                                held.push(r);
                            }
                            None => {
                                // a gap after each fresh range keeps it apart from the next
                                held.push(Range { base: next, len });
                                next += len + 64 * K;
                            }
                        }
                    } else if let Some(r) = held.pop() {
                        let _ = large_cache::put(r);
                    }
                }
                for r in held {
                    let _ = large_cache::put(r);
                }
                short
            })
        })
        .collect();
    let short: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(
        short, 0,
        "take(len, false) handed out {short} ranges shorter than len"
    );
    while large_cache::take_any().is_some() {}
}
