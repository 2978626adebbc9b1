//! hakmem-core: a general-purpose memory allocator that allocates from no heap but its own.
//!
//! Reading order: `size_class` → `tls` (thread cache) → `alloc` (fast paths and the API) →
//! `heap` (refill, thread exit) → `slab` → `slab_cache` → `superslab` (registry, pool) → `os`; beside them
//! `freelist` (hardened links), `remote` (cross-thread frees), `large`, `policy`, `stats`, `check`,
//! `report` (bad pointers), `init`, `fork`, `process`. `tests/module_cycles.rs` keeps the untangled
//! module cycles from coming back.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod alloc;
pub mod cage;
pub mod check;
pub mod fork;
pub mod freelist;
pub mod heap;
pub mod init;
pub mod large;
pub mod os;
pub mod policy;
pub mod process;
pub mod remote;
pub mod remote_list;
pub mod report;
pub mod size_class;
pub mod slab;
pub mod slab_cache;
pub mod stats;
pub mod superslab;
pub mod sync;
pub mod tls;

pub use alloc::*;

/// The atomics `remote_list` is written over (its model-checking test supplies loom's).
mod atomic {
    pub use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
}

#[cfg(test)]
mod tests;
