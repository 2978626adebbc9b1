//! A Rust workload for comparing global allocators: several threads each build a
//! `HashMap<String, Vec<u64>>` and a `BTreeMap` index over it, query both, replace part of the
//! entries, and hand the finished map to a neighbour thread, which drops it (so many frees are
//! cross-thread). Built once per allocator (src/bin/*.rs); each binary prints
//! `RESULT ops_per_sec=... checksum=... threads=... allocator=...`. The checksum depends only on
//! the arguments (sums are order-independent, HashMap's random iteration order does not matter).
//!
//! `BINARY verify [key=value ...]` runs the allocator's own check first (see the binaries) and
//! then a short workload; it exits 0 only when the check proves the allocator served the run.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

struct Params {
    threads: usize,
    rounds: usize,
    keys: usize,
    seed: u64,
}

const HELP: &str =
    "usage: rust_workload_ALLOCATOR [verify] [threads=N] [rounds=N] [keys=N] [seed=N]
  threads  worker threads (default 4)
  rounds   map build/query/drop rounds per thread (default 6)
  keys     entries per map (default 20000)
  seed     PRNG seed (default 1)";

fn parse(args: &[String]) -> Result<Params, String> {
    let mut p = Params {
        threads: 4,
        rounds: 6,
        keys: 20_000,
        seed: 1,
    };
    for a in args {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| format!("bad argument {a}"))?;
        let n: u64 = v.parse().map_err(|_| format!("bad number in {a}"))?;
        match k {
            "threads" if n >= 1 => p.threads = n as usize,
            "rounds" if n >= 1 => p.rounds = n as usize,
            "keys" if n >= 1 => p.keys = n as usize,
            "seed" => p.seed = n,
            _ => return Err(format!("unknown or out-of-range argument {a}")),
        }
    }
    Ok(p)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

type Map = HashMap<String, Vec<u64>>;

/// One thread's rounds; returns (operations, checksum).
fn worker(p: &Params, t: usize, handoff: &Mutex<Vec<Option<Map>>>) -> (u64, u64) {
    let mut rng = Rng(p.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ((t as u64 + 1) * 0x2545_F491));
    let (mut ops, mut sum) = (0u64, 0u64);
    for _ in 0..p.rounds {
        let mut map: Map = HashMap::with_capacity(p.keys / 4);
        let mut index: BTreeMap<u64, String> = BTreeMap::new();
        for i in 0..p.keys {
            let r = rng.next();
            let key = format!("key-{:x}-{i}", r & 0xffff_ffff);
            let len = 1 + (r >> 40) as usize % 24;
            let vals: Vec<u64> = (0..len as u64)
                .map(|j| r.rotate_left(j as u32) ^ j)
                .collect();
            index.insert(r >> 8, key.clone());
            map.insert(key, vals);
            ops += 2;
        }
        // Queries: through the index into the map, and a range scan of the index.
        for (n, (k, key)) in index.range(..).step_by(3).enumerate() {
            if let Some(v) = map.get(key) {
                sum = sum.wrapping_add(v.iter().fold(*k, |a, x| a.wrapping_add(*x)));
            }
            if n % 64 == 0 {
                let probe = format!("{key}-missing");
                sum = sum.wrapping_add(map.contains_key(&probe) as u64);
                ops += 1;
            }
            ops += 1;
        }
        // Replace a third of the entries: remove, then insert longer values.
        let victims: Vec<String> = index.values().step_by(3).cloned().collect();
        for key in victims {
            if let Some(mut v) = map.remove(&key) {
                v.extend_from_slice(&[sum & 0xff; 8]);
                sum = sum.wrapping_add(v.len() as u64);
                map.insert(key + "+", v);
            }
            ops += 2;
        }
        sum = sum.wrapping_add(map.len() as u64);
        drop(index);
        // Hand the map to the next thread's slot; drop what the previous thread left in ours.
        let (old, mine) = {
            let mut slots = handoff.lock().unwrap();
            let next = (t + 1) % slots.len();
            (slots[next].replace(map), slots[t].take())
        };
        drop((old, mine));
        ops += 1;
    }
    (ops, sum)
}

/// Runs the workload with the arguments in `std::env::args()`. `check` is the allocator's own
/// proof that it serves this binary's allocations (run by `verify`).
pub fn main(allocator: &str, check: fn() -> Result<String, String>) {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{HELP}");
        return;
    }
    let verify = args.first().map(|a| a == "verify").unwrap_or(false);
    if verify {
        args.remove(0);
        match check() {
            Ok(msg) => println!("verify: ok: {allocator}: {msg}"),
            Err(msg) => {
                println!("verify: FAIL: {allocator}: {msg}");
                std::process::exit(1);
            }
        }
    }
    let p = match parse(&args) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            eprintln!("{e}\n{HELP}");
            std::process::exit(2);
        }
    };
    let handoff = Arc::new(Mutex::new((0..p.threads).map(|_| None).collect::<Vec<_>>()));
    let start = Instant::now();
    let workers: Vec<_> = (0..p.threads)
        .map(|t| {
            let (p, handoff) = (p.clone(), handoff.clone());
            std::thread::spawn(move || worker(&p, t, &handoff))
        })
        .collect();
    let (mut ops, mut sum) = (0u64, 0u64);
    for w in workers {
        let (o, s) = w.join().expect("worker panicked");
        ops += o;
        sum = sum.wrapping_add(s);
    }
    handoff.lock().unwrap().clear();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "RESULT ops_per_sec={:.0} checksum={:016x} threads={} allocator={allocator}",
        ops as f64 / secs,
        sum,
        p.threads
    );
}
