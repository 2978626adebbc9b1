//! Pointers the program passes that are not live blocks of ours (invalid and double frees, bad
//! pointers to realloc or malloc_usable_size), reported as HAKMEM_INVALID_FREE says: abort
//! (the default), report and go on, or ignore. Every path that validates a pointer (the API in
//! `alloc`, cross-thread frees in `remote`, checking mode in `check`) reports here.

use crate::init;
use crate::os;
use crate::policy::{self, Opt};

/// A free of a block that is already free (or was carved but never handed out); the block is
/// left where it is.
#[cold]
#[inline(never)]
pub fn report_double_free(p: *mut u8) {
    bad_pointer(
        p,
        "free",
        "double free (the block is already free, or was never handed out)",
    );
}

/// A pointer that is no block hakmem handed out, given to `caller`.
#[cold]
#[inline(never)]
pub fn report_invalid(p: *mut u8, caller: &str) {
    bad_pointer(p, caller, "invalid pointer (not a block hakmem handed out)");
}

/// Reports bad pointer `p` given to `caller` (`what` says what is wrong with it).
#[cold]
#[inline(never)]
pub fn bad_pointer(p: *mut u8, caller: &str, what: &str) {
    init::ensure();
    let action = policy::get(Opt::InvalidFree);
    if action == 2 {
        return;
    }
    crate::hk_eprint!(
        "hakmem: {}(): {} {:#x}{}\n",
        caller,
        what,
        p as usize,
        if action == 0 {
            "; aborting (HAKMEM_INVALID_FREE=report continues)"
        } else {
            ""
        }
    );
    if action == 0 {
        os::abort();
    }
}
