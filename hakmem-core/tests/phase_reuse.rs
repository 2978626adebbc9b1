//! A program that moves from one phase of sizes to another (a compiler parsing, then generating
//! code) gets the SuperSlabs the first phase emptied for the second, instead of new ones beside
//! them: before the pool maps a SuperSlab, the heap gives back the empty slabs it keeps (per
//! class, in its slab cache, and its bins' current slabs when all their blocks are free), which
//! otherwise keep their SuperSlabs from being formatted for the other slab size. A binary of its
//! own, so that the SuperSlab counts are this test's alone.

use hakmem_core::{alloc, superslab};
use std::sync::atomic::Ordering::Relaxed;

const MIB: usize = 1 << 20;

/// A xorshift generator: the test's sizes and free order, the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Allocates blocks of sizes from `size` until they span `total` bytes, each filled with its
/// own byte, and frees them in a random order after checking them.
fn phase(total: usize, rng: &mut Rng, size: impl Fn(&mut Rng) -> usize) {
    let mut blocks = Vec::new();
    let mut bytes = 0;
    while bytes < total {
        let n = size(rng);
        let p = alloc::malloc(n);
        assert!(!p.is_null(), "malloc({n}) failed");
        let b = blocks.len() as u8;
        // SAFETY: `p` is a fresh block of `n` bytes.
        unsafe { p.write_bytes(b, n) };
        blocks.push((p, n, b));
        bytes += n;
    }
    for i in (1..blocks.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        blocks.swap(i, j);
    }
    for (p, n, b) in blocks {
        // SAFETY: `p` is a live block of `n` bytes from `malloc` above, freed once.
        unsafe {
            assert!(*p == b && *p.add(n - 1) == b, "a block lost its contents");
            alloc::free(p);
        }
    }
}

#[test]
fn a_phase_of_other_sizes_reuses_the_superslabs_the_last_one_emptied() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let small = |r: &mut Rng| 16 + (r.next() % 241) as usize;
    let medium = |r: &mut Rng| (24 << 10) + (r.next() % (8 << 10)) as usize;
    let mut peak = 0;
    for round in 0..3 {
        for (name, size) in [
            ("small", &small as &dyn Fn(&mut Rng) -> usize),
            ("medium", &medium),
        ] {
            // Another phase's first new mapping is where the heap gives its empty slabs back,
            // at most once per 5 ms (by a clock that ticks every 4 ms here): phases of about
            // 10 ms must share SuperSlabs too (this test failed with the 20 ms of 7b10f6e).
            std::thread::sleep(std::time::Duration::from_millis(10));
            phase(32 * MIB, &mut rng, size);
            let mapped = superslab::SS_MAPPED.load(Relaxed) - superslab::SS_UNMAPPED.load(Relaxed);
            if round == 0 {
                peak = peak.max(mapped);
            } else {
                assert!(
                    mapped <= peak + 2,
                    "round {round}, {name} phase: {mapped} SuperSlabs mapped, against {peak} \
                     after the first small and medium phases: the phases do not share them"
                );
            }
        }
    }
    let ss = superslab::ss_size();
    assert!(
        peak * ss <= 48 * MIB,
        "{peak} SuperSlabs of {ss} bytes for phases of 32 MiB each"
    );
}
