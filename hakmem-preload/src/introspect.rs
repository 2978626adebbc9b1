//! glibc's introspection API over hakmem's own figures (`hakmem_core::stats::usage`):
//! mallinfo2, mallinfo, malloc_stats, malloc_info, and mallopt. What each field means for
//! hakmem is in the README ("glibc's introspection API"). Nothing here allocates inside hakmem:
//! text is formatted into stack buffers and handed to stdio (fwrite), holding no lock of ours.

use core::ffi::c_int;
use core::fmt::Write;
use hakmem_core::os::{self, StackBuf};
use hakmem_core::size_class::{class_size, NUM_CLASSES};
use hakmem_core::stats::{self, Totals, Usage};

/// glibc's `struct mallinfo2` (every field a size_t).
#[repr(C)]
pub struct Mallinfo2 {
    pub arena: usize,
    pub ordblks: usize,
    pub smblks: usize,
    pub hblks: usize,
    pub hblkhd: usize,
    pub usmblks: usize,
    pub fsmblks: usize,
    pub uordblks: usize,
    pub fordblks: usize,
    pub keepcost: usize,
}

/// glibc's `struct mallinfo` (every field an int; hakmem saturates at INT_MAX).
#[repr(C)]
pub struct Mallinfo {
    pub arena: c_int,
    pub ordblks: c_int,
    pub smblks: c_int,
    pub hblks: c_int,
    pub hblkhd: c_int,
    pub usmblks: c_int,
    pub fsmblks: c_int,
    pub uordblks: c_int,
    pub fordblks: c_int,
    pub keepcost: c_int,
}

fn figures(u: &Usage) -> Mallinfo2 {
    let arena = u.arena_bytes();
    Mallinfo2 {
        arena: arena as usize,
        ordblks: u.slabs_in_use as usize,
        smblks: 0,
        hblks: u.large_blocks as usize,
        hblkhd: u.large_bytes as usize,
        usmblks: u.peak_mapped_bytes as usize,
        fsmblks: 0,
        uordblks: u.small_bytes as usize,
        fordblks: (arena.saturating_sub(u.small_bytes) + u.large_cached_bytes) as usize,
        keepcost: u.large_cached_bytes as usize,
    }
}

fn now() -> (Totals, Usage) {
    let t = stats::collect();
    let u = stats::usage(&t);
    (t, u)
}

#[no_mangle]
pub extern "C" fn mallinfo2() -> Mallinfo2 {
    figures(&now().1)
}

#[no_mangle]
pub extern "C" fn mallinfo() -> Mallinfo {
    let m = figures(&now().1);
    let sat = |v: usize| v.min(c_int::MAX as usize) as c_int;
    Mallinfo {
        arena: sat(m.arena),
        ordblks: sat(m.ordblks),
        smblks: sat(m.smblks),
        hblks: sat(m.hblks),
        hblkhd: sat(m.hblkhd),
        usmblks: sat(m.usmblks),
        fsmblks: sat(m.fsmblks),
        uordblks: sat(m.uordblks),
        fordblks: sat(m.fordblks),
        keepcost: sat(m.keepcost),
    }
}

/// Prints the totals on stderr in glibc's layout (one arena: hakmem's heaps are not arenas).
#[no_mangle]
pub extern "C" fn malloc_stats() {
    let u = now().1;
    let mut b = StackBuf::<1024>::new();
    let _ = write!(
        b,
        "Arena 0:\nsystem bytes     = {:>10}\nin use bytes     = {:>10}\nTotal (incl. mmap):\n\
         system bytes     = {:>10}\nin use bytes     = {:>10}\nmax mmap regions = {:>10}\n\
         max mmap bytes   = {:>10}\n",
        u.arena_bytes(),
        u.small_bytes,
        u.mapped_bytes,
        u.small_bytes + u.large_bytes,
        u.large_blocks,
        u.peak_mapped_bytes
    );
    os::write_stderr(b.as_bytes());
}

fn malloc_info_xml(w: &mut dyn Write, t: &Totals, u: &Usage) -> core::fmt::Result {
    writeln!(w, "<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>")?;
    for c in 0..NUM_CLASSES {
        let k = &t.classes[c];
        let live = k.allocs.saturating_sub(k.frees + k.remote_frees);
        if live > 0 {
            let from = if c == 0 { 1 } else { class_size(c - 1) + 1 };
            let size = class_size(c);
            let total = live * size as u64;
            writeln!(
                w,
                "  <size from=\"{from}\" to=\"{size}\" total=\"{total}\" count=\"{live}\"/>"
            )?;
        }
    }
    let arena = u.arena_bytes();
    writeln!(w, "</sizes>\n<total type=\"fast\" count=\"0\" size=\"0\"/>")?;
    writeln!(
        w,
        "<total type=\"rest\" count=\"{}\" size=\"{}\"/>",
        u.small_blocks, u.small_bytes
    )?;
    writeln!(
        w,
        "<system type=\"current\" size=\"{arena}\"/>\n<system type=\"max\" size=\"{}\"/>",
        u.peak_mapped_bytes
    )?;
    writeln!(
        w,
        "<aspace type=\"total\" size=\"{arena}\"/>\n<aspace type=\"mprotect\" size=\"{arena}\"/>\n</heap>"
    )?;
    writeln!(w, "<total type=\"fast\" count=\"0\" size=\"0\"/>")?;
    writeln!(
        w,
        "<total type=\"rest\" count=\"{}\" size=\"{}\"/>",
        u.small_blocks, u.small_bytes
    )?;
    writeln!(
        w,
        "<total type=\"mmap\" count=\"{}\" size=\"{}\"/>",
        u.large_blocks, u.large_bytes
    )?;
    writeln!(
        w,
        "<system type=\"current\" size=\"{}\"/>\n<system type=\"max\" size=\"{}\"/>",
        u.mapped_bytes, u.peak_mapped_bytes
    )?;
    writeln!(
        w,
        "<aspace type=\"total\" size=\"{0}\"/>\n<aspace type=\"mprotect\" size=\"{0}\"/>\n</malloc>",
        u.mapped_bytes
    )
}

/// Writes hakmem's figures as glibc's XML to `fp`: 0, or -1 if the write failed. `options`
/// must be 0; any other value returns EINVAL (as glibc does: the error number, not -1).
///
/// # Safety
/// `fp` is an open stdio stream.
#[no_mangle]
pub unsafe extern "C" fn malloc_info(options: c_int, fp: *mut libc::FILE) -> c_int {
    if options != 0 {
        return libc::EINVAL;
    }
    let (t, u) = now();
    let mut b = StackBuf::<8192>::new();
    let _ = malloc_info_xml(&mut b, &t, &u);
    let bytes = b.as_bytes();
    // Outside every hakmem lock: stdio may allocate its buffer, which is an ordinary malloc.
    if libc::fwrite(bytes.as_ptr() as *const libc::c_void, 1, bytes.len(), fp) != bytes.len() {
        return -1;
    }
    0
}

// glibc's mallopt parameters (malloc.h).
const M_MXFAST: c_int = 1;
const M_TRIM_THRESHOLD: c_int = -1;
const M_TOP_PAD: c_int = -2;
const M_MMAP_THRESHOLD: c_int = -3;
const M_MMAP_MAX: c_int = -4;
const M_CHECK_ACTION: c_int = -5;
const M_PERTURB: c_int = -6;
const M_ARENA_TEST: c_int = -7;
const M_ARENA_MAX: c_int = -8;

/// 1 (accepted, ignored: hakmem's tunables are the HAKMEM_* variables) for the parameters glibc
/// knows, 0 for any other.
#[no_mangle]
pub extern "C" fn mallopt(param: c_int, _value: c_int) -> c_int {
    matches!(
        param,
        M_MXFAST
            | M_TRIM_THRESHOLD
            | M_TOP_PAD
            | M_MMAP_THRESHOLD
            | M_MMAP_MAX
            | M_CHECK_ACTION
            | M_PERTURB
            | M_ARENA_TEST
            | M_ARENA_MAX
    ) as c_int
}
