//! Hardened free-list links and the free-block tag.
//!
//! A free block's first word holds the link to the next free block of its slab, never in plain
//! form: the link is the next block's *offset* from the slab's start (its index times the block
//! size), encoded with a per-process secret and the address the word is stored at:
//!
//! ```text
//! word  = (offset * INV) ^ address        offset = (word ^ address) * MUL
//! ```
//!
//! `MUL` is a random odd 64-bit number and `INV` its inverse modulo 2^64. The multiplication
//! spreads any change of the word (a one-byte overflow too) over all 64 bits of the offset, and
//! the address makes a word copied from another block decode to garbage, so a forged, shifted or
//! copied link decodes to an offset far past the end of any slab. An offset is checked against
//! the bytes the slab has carved before it is turned into a pointer (`start + offset`), and a
//! link that fails stops the process: hakmem never hands out a pointer outside its slabs. A
//! garbage word passes that check with probability (carved bytes) / 2^64, under 2^-42 for the
//! largest slab. The end of a list is the offset `NIL`, which no slab reaches.
//!
//! The link is an offset rather than an index so that the block after the one malloc hands out
//! is one multiplication away from the loaded word (decode, then add the slab's start), not two
//! (decode, then scale the index): consecutive mallocs of one class wait on each other through
//! that chain.
//!
//! A free block's second word holds `TAG`, a second random number, from the moment it is carved
//! or freed until malloc hands it out (which clears the word). `free` reports a block whose
//! second word already holds the tag as a double free: one load and one compare on the fast path.
//!
//! Like glibc's safe-linking, this stops blind writes (overflows, writes after free); a program
//! that lets an attacker read freed memory can leak enough words to recover the keys.

use crate::os;
use crate::slab::Slab;
use core::cell::UnsafeCell;

/// The index that ends a list; no slab has that many blocks.
pub const NIL: u64 = u64::MAX;

#[repr(C)]
struct Keys {
    mul: u64,
    inv: u64,
    tag: u64,
    /// The seed of checking mode's canaries (`check`): drawn with the others, used by no link.
    canary: u64,
}

struct KeyCell(UnsafeCell<Keys>);
// SAFETY: written once by `init_keys` during process initialisation, before any thread can
// encode or decode a link (every list is built after `init::ensure`); read-only afterwards.
unsafe impl Sync for KeyCell {}

/// Usable values before `init_keys` (nothing is encoded before it, but a zero multiplier or tag
/// must never be possible).
static KEYS: KeyCell = KeyCell(UnsafeCell::new(Keys {
    mul: 1,
    inv: 1,
    tag: 0x6861_6b6d_6672_6565,
    canary: 0x6861_6b6d_6368_6b21,
}));

#[inline(always)]
fn keys() -> &'static Keys {
    // SAFETY: see `KeyCell`: no writer runs concurrently with readers.
    unsafe { &*KEYS.0.get() }
}

/// The inverse of odd `o` modulo 2^64 (Newton's iteration doubles the correct bits: 3, 6, ... 96).
pub const fn inverse(o: u64) -> u64 {
    let mut x = o;
    let mut i = 0;
    while i < 5 {
        x = x.wrapping_mul(2u64.wrapping_sub(o.wrapping_mul(x)));
        i += 1;
    }
    x
}

/// Sets the keys from `getrandom`, or from a mix of clocks, process id and ASLR addresses when
/// the kernel cannot give random bytes. Called once, from process initialisation, before any
/// list exists; a fork child keeps its parent's keys, which its lists were encoded with.
pub fn init_keys() {
    let mut r = [0u64; 3];
    if !os::random(&mut r) {
        r = fallback_seed();
    }
    set_keys(r[0], r[1], r[2]);
}

/// The per-process secret checking mode keys its canaries with.
pub fn canary_key() -> u64 {
    keys().canary
}

fn set_keys(m: u64, t: u64, canary: u64) {
    let mul = m | 1;
    let mul = if mul == 1 || mul == u64::MAX {
        0x9e37_79b9_7f4a_7c15
    } else {
        mul
    };
    // A zero tag would match every cleared block; NIL-like values are avoided for clarity.
    let tag = if t == 0 || t == u64::MAX {
        0x6861_6b6d_6672_6565
    } else {
        t
    };
    // SAFETY: called from process initialisation only, before any link is encoded or decoded.
    unsafe {
        *KEYS.0.get() = Keys {
            mul,
            inv: inverse(mul),
            tag,
            canary,
        };
    }
}

/// A 64-bit mixing function (splitmix64's finaliser): every input bit moves every output bit.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Weak entropy that still differs between processes: two clocks, the pid, the addresses of a
/// stack slot, of this library and of libc (ASLR), and the kernel's AT_RANDOM bytes, hashed.
fn fallback_seed() -> [u64; 3] {
    let local = 0u8;
    let mut h =
        os::clock_ns(libc::CLOCK_MONOTONIC) ^ os::clock_ns(libc::CLOCK_REALTIME).rotate_left(32);
    h = mix(h ^ os::pid() as u64);
    h = mix(h ^ (&local as *const u8 as u64));
    h = mix(h ^ (fallback_seed as *const () as u64));
    h = mix(h ^ (libc::getpid as *const () as u64));
    let aux = os::at_random();
    let a = mix(h ^ aux[0]);
    let b = mix(a ^ aux[1] ^ 0x6861_6b6d);
    [a, mix(b), mix(b ^ h)]
}

/// The encoded form of a link to the block at offset `next` of its slab (or NIL), stored at
/// address `at`.
#[inline(always)]
pub fn encode(next: u64, at: usize) -> u64 {
    next.wrapping_mul(keys().inv) ^ at as u64
}

/// The offset a link word stored at `at` names (unchecked: compare it with the bytes the slab
/// has carved).
#[inline(always)]
pub fn decode(word: u64, at: usize) -> u64 {
    (word ^ at as u64).wrapping_mul(keys().mul)
}

/// Reads the link of free block `at`.
///
/// # Safety
/// `at` is a carved block of a slab (mapped, at least 16 bytes).
#[inline(always)]
pub unsafe fn next_of(at: usize) -> u64 {
    // SAFETY: `at` is a carved block (this fn's contract): mapped, 16-byte aligned, at least
    // 16 bytes.
    decode(unsafe { *(at as *const u64) }, at)
}

/// Writes the link of free block `at`.
///
/// # Safety
/// As for `next_of`; the block is free.
#[inline(always)]
pub unsafe fn set_next(at: usize, next: u64) {
    // SAFETY: as for `next_of`; the block is free, so its first word is ours to write.
    unsafe { *(at as *mut u64) = encode(next, at) };
}

#[inline(always)]
pub fn tag() -> u64 {
    keys().tag
}

/// Whether block `at` carries the free tag (it is free, or never handed out).
///
/// # Safety
/// `at` is a carved block of a slab.
#[inline(always)]
pub unsafe fn is_tagged(at: usize) -> bool {
    // SAFETY: `at` is a carved block (this fn's contract): its second word is mapped and
    // aligned.
    unsafe { *((at + 8) as *const u64) == tag() }
}

/// # Safety
/// `at` is a carved block of a slab, now free.
#[inline(always)]
pub unsafe fn set_tag(at: usize) {
    // SAFETY: `at` is a carved block, now free (this fn's contract): its second word is ours.
    unsafe { *((at + 8) as *mut u64) = tag() };
}

/// Clears the tag of a block being handed out.
///
/// # Safety
/// `at` is a carved block of a slab.
#[inline(always)]
pub unsafe fn clear_tag(at: usize) {
    // SAFETY: `at` is a carved block being handed out by its owner (this fn's contract).
    unsafe { *((at + 8) as *mut u64) = 0 };
}

/// A link of slab `s` names no block of it: the list was overwritten. Stops the process.
/// `at` is the block that held the link, or 0 when it is not known (then the slab is searched
/// for a block whose link still decodes to `bad`).
///
/// # Safety
/// `s` is a formatted slab descriptor.
#[cold]
#[inline(never)]
pub unsafe fn corrupt(s: *const Slab, at: usize, bad: u64) -> ! {
    let mut at = at;
    if at == 0 {
        // SAFETY: `s` is a formatted slab (this fn's contract); every index below `carved` is
        // a carved block in mapped memory. Some are user-held, so this reads user data, which
        // may race with the program's own writes: harmless here, the process is stopping.
        unsafe {
            for i in 0..(*s).carved.load(core::sync::atomic::Ordering::Relaxed) {
                let b = (*s).block_at(i);
                if next_of(b) == bad {
                    at = b;
                    break;
                }
            }
        }
    }
    let mut where_ = os::StackBuf::<64>::new();
    let _ = if at != 0 {
        core::fmt::Write::write_fmt(&mut where_, format_args!("at {at:#x}"))
    } else {
        core::fmt::Write::write_fmt(&mut where_, format_args!("handed out last"))
    };
    // SAFETY: `s` is a formatted slab descriptor, mapped while formatted (this fn's contract); the
    // message reads its class, block size and start.
    unsafe {
        crate::hk_eprint!(
            "hakmem: heap corruption detected: the free-list link in the block {} (size class {}, \
             {}-byte blocks, slab {:#x}) decodes to {:#x}, not a free block of that slab (an overflow \
             into a free block, or a write after free); aborting\n",
            core::str::from_utf8(where_.as_bytes()).unwrap_or("?"),
            (*s).class,
            (*s).block_size,
            (*s).start,
            bad
        );
    }
    os::abort()
}

/// Reports a corrupt link on the hot list of class `c` (a thread's latest frees of the class,
/// `heap::push_hot`) and stops the process.
#[cold]
pub fn corrupt_hot(c: usize, bad: u64) -> ! {
    crate::hk_eprint!(
        "hakmem: heap corruption detected: the free-list link in a block this thread freed lately \
         (size class {}, {}-byte blocks) decodes to {:#x}, not a free block of that class (an \
         overflow into a free block, or a write after free); aborting\n",
        c,
        crate::size_class::class_size(c),
        bad
    );
    os::abort()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::size_class::{class_size, NUM_CLASSES};
    use crate::slab::{index_magic, list_len_tail, tf_head};
    use core::mem::MaybeUninit;
    use core::sync::atomic::Ordering::Relaxed;

    /// A slab descriptor over `mem`, for blocks of `bs` bytes, with `carved` blocks carved.
    fn fake_slab(mem: &mut [u64], bs: u32) -> Slab {
        // SAFETY: all-zero is a valid Slab (null pointers, zero counters, atomics at 0).
        let mut s: Slab = unsafe { MaybeUninit::zeroed().assume_init() };
        let (inv, shift) = index_magic(bs);
        s.start = mem.as_mut_ptr() as usize;
        s.block_size = bs;
        s.inv = inv;
        s.shift = shift;
        s.capacity = (mem.len() * 8 / bs as usize) as u32;
        s.local_free = NIL;
        s
    }

    #[test]
    fn inverse_is_the_inverse_of_every_odd_number() {
        let mut x = 0x1234_5678_9abc_def1u64;
        for o in (1..2000u64).step_by(2).chain((0..2000).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x | 1
        })) {
            assert_eq!(o.wrapping_mul(inverse(o)), 1, "o = {o}");
        }
    }

    #[test]
    fn index_of_accepts_exactly_the_carved_block_boundaries() {
        let base = 0x7f00_0000_0000usize;
        for c in 0..NUM_CLASSES {
            let bs = class_size(c) as u32;
            let (inv, shift) = index_magic(bs);
            // SAFETY: all-zero is a valid Slab; nothing is dereferenced.
            let mut s: Slab = unsafe { MaybeUninit::zeroed().assume_init() };
            s.start = base;
            s.block_size = bs;
            s.inv = inv;
            s.shift = shift;
            let carved = (64 << 10) / bs as u64 + 1;
            s.carved = carved.into();
            let span = carved as i64 * bs as i64;
            // SAFETY: `s` is a valid descriptor, which these only read.
            let holds = |a| unsafe { Slab::holds_block(&s, a) };
            // SAFETY: as above.
            let index = |a| unsafe { Slab::index_of(&s, a) };
            let step = if bs <= 1024 { 1 } else { 7 };
            let mut off = -3 * bs as i64;
            while off < span + 3 * bs as i64 {
                let a = (base as i64 + off) as usize;
                let boundary = off >= 0 && off % bs as i64 == 0 && off < span;
                assert_eq!(holds(a), boundary, "class {c} ({bs} B), offset {off}");
                if boundary {
                    assert_eq!(index(a), (off / bs as i64) as u64);
                    assert_eq!(s.block_at(index(a)), a);
                }
                off += step;
            }
            // far away addresses, either side
            for a in [
                0usize,
                16,
                base - (1 << 30),
                base + (1 << 40),
                usize::MAX - 15,
            ] {
                assert!(!holds(a), "class {c}: {a:#x}");
            }
        }
    }

    #[test]
    fn links_round_trip_and_nil_ends_a_list() {
        crate::init::ensure();
        for at in [0x7f12_3456_7890usize, 0x10, 0x5555_0000_0040] {
            for i in [0u64, 1, 2, 1000, 65535, 1 << 20, NIL] {
                assert_eq!(decode(encode(i, at), at), i);
            }
        }
    }

    #[test]
    fn a_changed_or_moved_link_decodes_far_past_any_slab() {
        crate::init::ensure();
        const MAX_BLOCKS: u64 = 1 << 32; // past the end of any slab (offsets are bytes)
        let at = 0x7f00_1234_5640usize;
        for i in [0u64, 1, 7, 100, 4095, NIL] {
            let w = encode(i, at);
            // every one-byte overwrite (the NUL of an off-by-one included)
            for byte in 0..8 {
                for v in [0u64, 1, 0x41, 0x80, 0xff] {
                    let mask = 0xffu64 << (byte * 8);
                    let w2 = (w & !mask) | (v << (byte * 8));
                    if w2 != w {
                        let d = decode(w2, at);
                        assert!(
                            d >= MAX_BLOCKS && d != NIL,
                            "index {i}, byte {byte} = {v:#x}"
                        );
                    }
                }
            }
            // a plain pointer written over the link (the attacker's address)
            for target in [0x5555_5555_4000u64, 0x7ffd_0000_1000, at as u64 + 64] {
                let d = decode(target, at);
                assert!(d >= MAX_BLOCKS, "forged {target:#x} decoded to {d}");
            }
            // the same word copied into another block of the slab
            for other in [at + 16, at + 64, at + 4096, at - 48] {
                let d = decode(w, other);
                assert!(
                    d >= MAX_BLOCKS,
                    "index {i} copied from {at:#x} to {other:#x}: {d}"
                );
            }
        }
    }

    #[test]
    fn an_offset_names_a_block_only_at_a_carved_boundary() {
        let mut mem = vec![0u64; 4096];
        let mut s = fake_slab(&mut mem, 48);
        s.carved = 10.into();
        // SAFETY: `s` is a valid descriptor, which `holds_offset` only reads.
        let holds = |p| unsafe { Slab::holds_offset(&s, p) };
        for i in 0..10u64 {
            assert!(holds(i * 48), "block {i}");
            for d in [1u64, 8, 16, 32, 47] {
                assert!(!holds(i * 48 + d), "{d} bytes into block {i}");
            }
        }
        for p in [480u64, 481, 4096 * 8, 1 << 40, NIL, NIL - 47, u64::MAX / 2] {
            assert!(!holds(p), "offset {p:#x}");
        }
    }

    #[test]
    fn carved_lists_are_linked_tagged_and_walked() {
        crate::init::ensure();
        let mut mem = vec![0u64; 4096];
        let mut s = fake_slab(&mut mem, 48);
        // SAFETY: the slab's memory is `mem`, alive for the whole test.
        unsafe {
            let head = Slab::carve(&mut s, 10);
            assert_eq!((head, s.carved.load(Relaxed)), (0, 10));
            let (n, tail) = list_len_tail(&s, head);
            assert_eq!((n, tail), (10, s.block_at(9)));
            for i in 0..10 {
                assert!(
                    is_tagged(s.block_at(i)),
                    "carved block {i} must carry the free tag"
                );
            }
            let head2 = Slab::carve(&mut s, 5);
            assert_eq!(head2, 10 * 48);
            // splice the second list behind the first, as install and drain_remote do
            set_next(tail, head2);
            assert_eq!(list_len_tail(&s, head).0, 15);
            clear_tag(s.block_at(3));
            assert!(!is_tagged(s.block_at(3)));
            assert_eq!(list_len_tail(&s, NIL), (0, 0));
        }
    }

    #[test]
    fn thread_free_words_keep_the_notified_bit_apart() {
        use crate::remote_list::{pack, run, Run, MAX_INDEX};
        let tf_word = |i: u64| pack(i, i, 1);
        for i in [0u64, 1, 4095, MAX_INDEX - 1] {
            assert_eq!(tf_head(tf_word(i)), i);
            assert_eq!(tf_head(tf_word(i) | crate::slab::NOTIFIED), i);
            assert_ne!(tf_word(i) & !crate::slab::NOTIFIED, 0);
            for (t, n) in [(i, 1u32), (0, 4096), (MAX_INDEX - 1, 65535)] {
                let r = Run {
                    head: i,
                    tail: t,
                    n,
                };
                assert_eq!(run(pack(i, t, n) | crate::slab::NOTIFIED), r);
            }
        }
        assert_eq!(tf_head(0), NIL);
        assert_eq!(tf_head(crate::slab::NOTIFIED), NIL);
        assert_eq!(
            run(crate::slab::NOTIFIED),
            Run {
                head: NIL,
                tail: NIL,
                n: 0
            }
        );
    }

    #[test]
    fn keys_are_set_and_usable() {
        crate::init::ensure();
        let k = keys();
        assert_eq!(k.mul & 1, 1);
        assert_eq!(k.mul.wrapping_mul(k.inv), 1);
        assert_ne!(k.tag, 0);
        assert_ne!(
            k.mul, 1,
            "getrandom or the fallback must have replaced the placeholder"
        );
        let a = fallback_seed();
        assert!(a[0] != a[1] && a[1] != a[2] && a[0] != a[2]);
    }
}
