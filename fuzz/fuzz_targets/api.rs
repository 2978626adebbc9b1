//! Fuzzes hakmem's allocation API against a shadow model.
//!
//! The input is a program: each operation takes an opcode byte and a few argument bytes and calls
//! malloc, calloc, realloc, reallocarray, free, the aligned family or usable-size on one of 64
//! slots, on this thread or on a helper thread (so that frees are remote and blocks of a foreign
//! heap come back). The model remembers each live block's size, alignment and a fill seed, and
//! checks on every step: the block is non-null for a satisfiable request and null with ENOMEM for
//! an absurd one, aligned to 16 bytes (and to the requested alignment), its usable size covers the
//! request, calloc's memory is zero, realloc keeps the common prefix, and every byte of every live
//! block is still what was written into it when it is freed (so two live blocks that overlap, or a
//! block handed out twice, are caught by the pattern of the other). Every block is freed at the
//! end of each input.
#![no_main]

use hakmem_core as hk;
use libfuzzer_sys::fuzz_target;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Mutex, OnceLock};

const SLOTS: usize = 64;
/// Bytes filled and checked per block: whole blocks up to this size, the head and tail beyond.
const FILL_CAP: usize = 256 << 10;

#[derive(Clone, Copy)]
struct Live {
    p: usize,
    size: usize,
    seed: u8,
}

struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn u16(&mut self) -> Option<usize> {
        Some(((self.byte()? as usize) << 8) | self.byte()? as usize)
    }

    /// A size: mostly small, sometimes mid-sized or large, rarely absurd.
    fn size(&mut self) -> Option<usize> {
        let sel = self.byte()?;
        let v = self.u16()?;
        Some(match sel % 16 {
            0..=8 => v % 1100,
            9..=11 => v % 20000,
            12 => v * 4 % (300 << 10),
            13 => (v << 6) % (3 << 20),
            14 => [0, 16, 17, 4096, 65536, 262144, 262145, 1 << 21][v % 8],
            _ => usize::MAX - v * 4096,
        })
    }

    /// An alignment: a power of two up to 64 KiB, or an invalid or absurd one.
    fn align(&mut self) -> Option<usize> {
        let v = self.byte()?;
        Some(match v % 32 {
            0..=16 => 1usize << (v % 17),
            17..=29 => 1usize << (v % 13),
            30 => 24 + (v as usize >> 5) * 8,
            _ => 1usize << 63,
        })
    }
}

/// The helper thread: frees what it is sent (a remote free), or allocates what it is asked for
/// (so that the main thread later frees a block of another heap). Answers every request.
enum Req {
    Free(usize),
    Malloc(usize),
}

struct Helper {
    tx: Sender<Req>,
    rx: Receiver<usize>,
}

fn helper() -> &'static Mutex<Helper> {
    static H: OnceLock<Mutex<Helper>> = OnceLock::new();
    H.get_or_init(|| {
        let (tx, req_rx) = channel::<Req>();
        let (ans_tx, rx) = channel::<usize>();
        std::thread::spawn(move || {
            for r in req_rx {
                let ans = match r {
                    // SAFETY: the main thread sends only live blocks it got from hakmem and
                    // forgets them before sending.
                    Req::Free(p) => unsafe {
                        hk::free(p as *mut u8);
                        0
                    },
                    Req::Malloc(n) => hk::malloc(n) as usize,
                };
                if ans_tx.send(ans).is_err() {
                    return;
                }
            }
        });
        Mutex::new(Helper { tx, rx })
    })
}

fn on_helper(r: Req) -> usize {
    let h = helper().lock().unwrap();
    h.tx.send(r).unwrap();
    h.rx.recv().unwrap()
}

fn fill(l: &Live) {
    let p = l.p as *mut u8;
    for (i, off) in checked_offsets(l.size).enumerate() {
        // SAFETY: `off < l.size` and the block is live with at least `l.size` usable bytes.
        unsafe { *p.add(off) = l.seed.wrapping_add(i as u8) };
    }
}

fn verify(l: &Live, upto: usize, what: &str) {
    let p = l.p as *const u8;
    for (i, off) in checked_offsets(l.size).enumerate() {
        if off >= upto {
            break;
        }
        // SAFETY: as in `fill`.
        let got = unsafe { *p.add(off) };
        let want = l.seed.wrapping_add(i as u8);
        assert_eq!(
            got, want,
            "{what}: byte {off} of the {}-byte block at {:#x} changed",
            l.size, l.p
        );
    }
}

/// The offsets of a block that are filled and checked: all of it up to FILL_CAP, else its first
/// and last FILL_CAP / 2 bytes.
fn checked_offsets(size: usize) -> impl Iterator<Item = usize> {
    let half = FILL_CAP / 2;
    let head = if size <= FILL_CAP { size } else { half };
    let tail_start = if size <= FILL_CAP { size } else { size - half };
    (0..head).chain(tail_start..size)
}

fn satisfiable(size: usize) -> bool {
    size <= 64 << 20
}

/// Checks a fresh block and records it in `slot`; frees whatever the slot held first.
fn adopt(
    slots: &mut [Option<Live>; SLOTS],
    slot: usize,
    p: *mut u8,
    size: usize,
    align: usize,
    seed: u8,
    what: &str,
) {
    if p.is_null() {
        assert!(
            !satisfiable(size) || align > 1 << 20,
            "{what}({size}, align {align}) failed"
        );
        return;
    }
    assert_eq!(
        p as usize % align.max(16),
        0,
        "{what}({size}) = {p:?}: misaligned for {align}"
    );
    // SAFETY: `p` is a live block just returned by hakmem.
    let usable = unsafe { hk::usable_size(p) };
    assert!(usable >= size, "{what}({size}): usable size {usable}");
    release(slots, slot);
    let l = Live {
        p: p as usize,
        size,
        seed,
    };
    fill(&l);
    slots[slot] = Some(l);
}

fn release(slots: &mut [Option<Live>; SLOTS], slot: usize) {
    if let Some(l) = slots[slot].take() {
        verify(&l, usize::MAX, "free");
        // SAFETY: `l.p` is live and forgotten by the model now.
        unsafe { hk::free(l.p as *mut u8) };
    }
}

fn expect_enomem(p: *mut u8, what: &str) {
    assert!(p.is_null(), "{what}: an absurd request succeeded");
    assert_eq!(hk::os::errno(), libc_enomem(), "{what}: errno");
}

fn libc_enomem() -> i32 {
    12
}

fn run(data: &[u8]) {
    let mut inp = Input { data };
    let mut slots: [Option<Live>; SLOTS] = [None; SLOTS];
    let mut seed = 1u8;
    while let Some(op) = inp.byte() {
        let Some(s) = inp.byte().map(|b| b as usize % SLOTS) else {
            break;
        };
        seed = seed.wrapping_add(37);
        match op % 12 {
            0 => {
                let Some(n) = inp.size() else { break };
                let p = hk::malloc(n);
                if satisfiable(n) {
                    adopt(&mut slots, s, p, n, 16, seed, "malloc");
                } else {
                    expect_enomem(p, "malloc");
                }
            }
            1 => {
                let (Some(a), Some(b)) = (inp.u16(), inp.byte()) else {
                    break;
                };
                let (n, m) = if b == 255 {
                    (usize::MAX / 2, 3)
                } else {
                    (a % 4096, b as usize % 64)
                };
                let p = hk::calloc(n, m);
                if n.checked_mul(m).is_some_and(satisfiable) {
                    let total = n * m;
                    // SAFETY: a live block of at least `total` bytes.
                    assert!(
                        (0..total).all(|i| unsafe { *p.add(i) } == 0),
                        "calloc({n}, {m}) not zeroed"
                    );
                    adopt(&mut slots, s, p, total, 16, seed, "calloc");
                } else {
                    expect_enomem(p, "calloc");
                }
            }
            2 | 10 => {
                let Some(n) = inp.size() else { break };
                let old = slots[s].take();
                if let Some(l) = old {
                    verify(&l, usize::MAX, "realloc (before)");
                }
                let oldp = old.map_or(core::ptr::null_mut(), |l| l.p as *mut u8);
                // SAFETY: `oldp` is null or a live block the model just forgot.
                let q = unsafe {
                    if op % 12 == 10 {
                        hk::reallocarray(oldp, n, 1)
                    } else {
                        hk::realloc(oldp, n)
                    }
                };
                if n == 0 && !oldp.is_null() {
                    assert!(q.is_null(), "realloc(p, 0) must free and return NULL");
                    continue;
                }
                if !satisfiable(n) {
                    expect_enomem(q, "realloc");
                    slots[s] = old; // a failed realloc keeps the block
                    if let Some(l) = old {
                        verify(&l, usize::MAX, "realloc (failed)");
                    }
                    continue;
                }
                assert!(!q.is_null(), "realloc({n}) failed");
                if let Some(l) = old {
                    verify(&Live { p: q as usize, ..l }, n, "realloc (kept prefix)");
                }
                adopt(&mut slots, s, q, n, 16, seed, "realloc");
            }
            3 => release(&mut slots, s),
            4..=6 => {
                let (Some(a), Some(n)) = (inp.align(), inp.size()) else {
                    break;
                };
                let valid = a.is_power_of_two() && a >= 8;
                let p = match op % 12 {
                    4 => {
                        let mut out = core::ptr::null_mut();
                        // SAFETY: `out` is a valid place for the result.
                        let rc = unsafe { hk::posix_memalign(&mut out, a, n) };
                        if !valid {
                            assert_eq!(rc, 22, "posix_memalign({a}) must be EINVAL");
                        }
                        assert_eq!(
                            rc == 0,
                            !out.is_null(),
                            "posix_memalign rc {rc} with {out:?}"
                        );
                        out
                    }
                    5 => hk::aligned_alloc(a, n),
                    _ => hk::memalign(a, n),
                };
                // posix_memalign refuses alignments below a pointer's size, aligned_alloc
                // non-powers of two; memalign rounds those up.
                let accepted = match op % 12 {
                    4 => valid,
                    5 => a.is_power_of_two(),
                    _ => true,
                };
                let align = a.next_power_of_two();
                if accepted && a <= 1 << 20 && satisfiable(n) {
                    adopt(&mut slots, s, p, n, align, seed, "aligned");
                } else {
                    assert!(p.is_null(), "aligned({n}, align {a}) must fail");
                }
            }
            7 => {
                let Some(n) = inp.size() else { break };
                let p = if seed & 1 == 0 {
                    hk::valloc(n)
                } else {
                    hk::pvalloc(n)
                };
                if satisfiable(n) {
                    adopt(&mut slots, s, p, n, 4096, seed, "valloc");
                } else {
                    assert!(p.is_null(), "valloc of an absurd size succeeded");
                }
            }
            8 => {
                if let Some(l) = slots[s] {
                    // SAFETY: `l.p` is live.
                    assert!(unsafe { hk::usable_size(l.p as *mut u8) } >= l.size);
                    verify(&l, usize::MAX, "usable_size");
                }
            }
            9 => {
                if let Some(l) = slots[s].take() {
                    verify(&l, usize::MAX, "remote free");
                    on_helper(Req::Free(l.p));
                }
            }
            _ => {
                let Some(n) = inp.size() else { break };
                if satisfiable(n) {
                    let p = on_helper(Req::Malloc(n)) as *mut u8;
                    adopt(&mut slots, s, p, n, 16, seed, "malloc on the helper thread");
                }
            }
        }
    }
    for s in 0..SLOTS {
        release(&mut slots, s);
    }
}

fuzz_target!(|data: &[u8]| run(data));
