//! Hardened free-list links and the free-block tag.
//!
//! A free block's first word holds the link to the next free block of its slab, never in plain
//! form: the link is the next block's *index* in the slab, encoded with a per-process secret and
//! the address the word is stored at:
//!
//! ```text
//! word  = (index * INV) ^ address        index = (word ^ address) * MUL
//! ```
//!
//! `MUL` is a random odd 64-bit number and `INV` its inverse modulo 2^64. The multiplication
//! spreads any change of the word (a one-byte overflow too) over all 64 bits of the index, and
//! the address makes a word copied from another block decode to garbage, so a forged, shifted or
//! copied link decodes to an index far past the last block of any slab. An index is checked
//! against the slab's `carved` count before it is turned into a pointer (`start + index * size`),
//! so a link that passes names a block boundary of the slab by construction, and a link that
//! fails stops the process: hakmem never hands out a pointer outside its slabs. The end of a
//! list is the index `NIL`, which no slab reaches.
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
    let mut r = [0u64; 2];
    if !os::random(&mut r) {
        r = fallback_seed();
    }
    set_keys(r[0], r[1]);
}

fn set_keys(m: u64, t: u64) {
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
        };
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Weak entropy that still differs between processes: two clocks, the pid, the addresses of a
/// stack slot, of this library and of libc (ASLR), and the kernel's AT_RANDOM bytes, hashed.
fn fallback_seed() -> [u64; 2] {
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
    [a, mix(b)]
}

/// The encoded form of a link to block `next` (an index, or NIL), stored at address `at`.
#[inline(always)]
pub fn encode(next: u64, at: usize) -> u64 {
    next.wrapping_mul(keys().inv) ^ at as u64
}

/// The index a link word stored at `at` names (unchecked: compare it with the slab's `carved`).
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
    decode(*(at as *const u64), at)
}

/// Writes the link of free block `at`.
///
/// # Safety
/// As for `next_of`; the block is free.
#[inline(always)]
pub unsafe fn set_next(at: usize, next: u64) {
    *(at as *mut u64) = encode(next, at);
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
    *((at + 8) as *const u64) == tag()
}

/// # Safety
/// `at` is a carved block of a slab, now free.
#[inline(always)]
pub unsafe fn set_tag(at: usize) {
    *((at + 8) as *mut u64) = tag();
}

/// Clears the tag of a block being handed out.
///
/// # Safety
/// `at` is a carved block of a slab.
#[inline(always)]
pub unsafe fn clear_tag(at: usize) {
    *((at + 8) as *mut u64) = 0;
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
        for i in 0..(*s).carved {
            let b = (*s).block_at(i);
            if next_of(b) == bad {
                at = b;
                break;
            }
        }
    }
    let mut where_ = os::StackBuf::<64>::new();
    let _ = if at != 0 {
        core::fmt::Write::write_fmt(&mut where_, format_args!("at {at:#x}"))
    } else {
        core::fmt::Write::write_fmt(&mut where_, format_args!("handed out last"))
    };
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
    os::abort()
}
