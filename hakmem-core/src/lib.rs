//! hakmem-core: a general-purpose memory allocator that allocates from no heap but its own.
//!
//! Reading order: `size_class` → `tls` (thread cache) → `alloc` (fast paths and the API) →
//! `heap` (refill, thread exit) → `slab` → `slab_cache` → `pool` (free slabs and SuperSlabs) →
//! `superslab` (one SuperSlab's layout, mapping and unmapping) → `purge` (memory going back, and
//! `background`, the thread that walks it when the program does not) → `os`;
//! beside them `registry` and `cage` (which addresses are SuperSlabs), `meta` (heap metadata),
//! `freelist` (hardened links), `remote` (cross-thread frees),
//! `foreign` (blocks freed across threads, kept for reuse) and `transfer` (their overflow, shared), `large` (with `large_map`, `large_cache`), `policy`, `stats`, `check`,
//! `report` (bad pointers), `init`, `fork`, `process`. `tests/module_cycles.rs` keeps the untangled
//! module cycles from coming back.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod alloc;
pub mod background;
pub mod block_decay;
pub mod cage;
pub mod check;
pub mod foreign;
pub mod fork;
pub mod freelist;
pub mod heap;
pub mod init;
pub mod large;
pub mod large_cache;
pub mod large_map;
pub mod meta;
pub mod os;
pub mod policy;
pub mod pool;
pub mod process;
pub mod purge;
pub mod registry;
pub mod remote;
pub mod remote_list;
pub mod report;
pub mod size_class;
pub mod slab;
pub mod slab_cache;
pub mod stats;
pub mod steal;
pub mod superslab;
pub mod sync;
pub mod tls;
pub mod transfer;

pub use alloc::*;

/// The atomics `remote_list` is written over (its model-checking test supplies loom's).
mod atomic {
    pub use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
}

#[cfg(test)]
mod tests;
