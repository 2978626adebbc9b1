//! The `HAKMEM_*` environment policy: one table of options (name, type, defaults per profile,
//! accepted values, description). Parsing, validation messages and the README's option table
//! all follow from it. Values are read once at initialisation, without allocating, into plain
//! statics that the allocator reads directly.

use crate::hk_eprint;
use crate::os::PurgeKind;
use core::cell::UnsafeCell;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(usize)]
pub enum Opt {
    Profile,
    Tcache,
    HotKb,
    RefillBatch,
    SuperslabMb,
    SlabReuse,
    PurgeDelayMs,
    Purge,
    UnmapDelayMs,
    LargeCacheMb,
    LargeCacheMs,
    Background,
    Prewarm,
    HugePage,
    InvalidFree,
    Check,
    Stats,
    StatsFile,
    Verbose,
}

pub enum Kind {
    /// An integer in `min..=max`.
    Int { min: u32, max: u32 },
    /// One of the names; the value is its index.
    Choice(&'static [&'static str]),
    /// Text of at most `TEXT_MAX` bytes (a file name), copied at start-up; the value is its
    /// length, 0 when unset. Read it with `text`.
    Text,
}

pub struct OptDef {
    pub opt: Opt,
    pub name: &'static str,
    pub kind: Kind,
    /// Defaults for the profiles fast, balanced, lean.
    pub defaults: [u32; 3],
    pub help: &'static str,
}

pub const PROFILES: &[&str] = &["fast", "balanced", "lean"];
const DEFAULT_PROFILE: usize = 1;

pub static OPTIONS: &[OptDef] = &[
    OptDef {
        opt: Opt::Profile,
        name: "HAKMEM_PROFILE",
        kind: Kind::Choice(PROFILES),
        defaults: [1, 1, 1],
        help: "coherent defaults for every other option: fast (throughput), balanced, lean (memory)",
    },
    OptDef {
        opt: Opt::Tcache,
        name: "HAKMEM_TCACHE",
        kind: Kind::Int { min: 0, max: 64 },
        defaults: [4, 1, 0],
        help: "empty slabs a thread keeps per size class (and 8x as many free 64 KiB slabs for any class) before returning them to the shared pool",
    },
    OptDef {
        opt: Opt::HotKb,
        name: "HAKMEM_HOT_KB",
        kind: Kind::Int { min: 0, max: 1024 },
        defaults: [256, 128, 16],
        help: "KiB of its latest frees of each size class under 16 KiB a thread keeps on a hot list, handed out before its slabs' blocks (at most 128 blocks; 0: no hot lists); 16x for blocks of 16-256 KiB",
    },
    OptDef {
        opt: Opt::RefillBatch,
        name: "HAKMEM_REFILL_BATCH",
        kind: Kind::Int { min: 1, max: 4096 },
        defaults: [256, 64, 16],
        help: "most new blocks carved into a thread's free list at once (also capped at 32 KiB; a slab's first carve is one page, and each later one at most doubles what it has carved)",
    },
    OptDef {
        opt: Opt::SuperslabMb,
        name: "HAKMEM_SUPERSLAB_MB",
        kind: Kind::Choice(&["1", "2", "4", "8", "16"]),
        defaults: [2, 1, 0],
        help: "SuperSlab size in MiB (a power of two); blocks over 64 KiB take one whole SuperSlab per slab",
    },
    OptDef {
        opt: Opt::SlabReuse,
        name: "HAKMEM_SLAB_REUSE",
        kind: Kind::Int { min: 0, max: 1 },
        defaults: [1, 1, 1],
        help: "1: an empty SuperSlab may be re-carved for any slab size; 0: it keeps its slab size",
    },
    OptDef {
        opt: Opt::PurgeDelayMs,
        name: "HAKMEM_PURGE_DELAY_MS",
        kind: Kind::Int { min: 0, max: 600_000 },
        defaults: [1000, 100, 0],
        help: "how long free slabs, and free blocks of 16 KiB and more in slabs in use, stay resident before their pages go back to the OS (0: at once)",
    },
    OptDef {
        opt: Opt::Purge,
        name: "HAKMEM_PURGE",
        kind: Kind::Choice(&["dontneed", "free", "none"]),
        defaults: [1, 0, 0],
        help: "how free pages go back: madvise(MADV_DONTNEED), madvise(MADV_FREE), or never",
    },
    OptDef {
        opt: Opt::UnmapDelayMs,
        name: "HAKMEM_UNMAP_DELAY_MS",
        kind: Kind::Int { min: 0, max: 600_000 },
        defaults: [60_000, 10_000, 1000],
        help: "how long an empty SuperSlab outside the cage stays mapped before its address space goes back to the OS (those in the cage are only purged; a failed mapping or malloc_trim unmaps at once)",
    },
    OptDef {
        opt: Opt::LargeCacheMb,
        name: "HAKMEM_LARGE_CACHE_MB",
        kind: Kind::Int { min: 0, max: 65536 },
        defaults: [256, 64, 0],
        help: "MiB of freed large blocks (over 256 KiB) kept mapped for reuse, beyond half the most bytes live large blocks have held at once (0: unmap at once)",
    },
    OptDef {
        opt: Opt::LargeCacheMs,
        name: "HAKMEM_LARGE_CACHE_MS",
        kind: Kind::Int { min: 0, max: 600_000 },
        defaults: [10_000, 1000, 0],
        help: "how long a freed large block stays cached before it is unmapped; also how often half of what stayed cached that long goes back",
    },
    OptDef {
        opt: Opt::Background,
        name: "HAKMEM_BACKGROUND",
        kind: Kind::Int { min: 0, max: 1 },
        defaults: [0, 0, 1],
        help: "1: in a multi-threaded process, a background thread (started once memory goes back) does the purging and unmapping above every half purge delay (10 ms to 1 s), also while the program is idle, and for the heaps of exited threads (as jemalloc's background_thread)",
    },
    OptDef {
        opt: Opt::Prewarm,
        name: "HAKMEM_PREWARM",
        kind: Kind::Int { min: 0, max: 64 },
        defaults: [1, 0, 0],
        help: "SuperSlabs mapped and faulted in at start-up",
    },
    OptDef {
        opt: Opt::HugePage,
        name: "HAKMEM_HUGEPAGE",
        kind: Kind::Int { min: 0, max: 2 },
        defaults: [1, 1, 0],
        help: "transparent huge pages (madvise): 0 never, 1 large blocks of 2 MiB and more, 2 SuperSlabs too",
    },
    OptDef {
        opt: Opt::InvalidFree,
        name: "HAKMEM_INVALID_FREE",
        kind: Kind::Choice(&["abort", "report", "ignore"]),
        defaults: [0, 0, 0],
        help: "what a double free, or a free/realloc/malloc_usable_size of a pointer hakmem never handed out, does",
    },
    OptDef {
        opt: Opt::Check,
        name: "HAKMEM_CHECK",
        kind: Kind::Int { min: 0, max: 1 },
        defaults: [0, 0, 0],
        help: "1: detect double frees and heap overruns (slow: every call takes a global lock)",
    },
    OptDef {
        opt: Opt::Stats,
        name: "HAKMEM_STATS",
        kind: Kind::Choice(&["0", "1", "json"]),
        defaults: [0, 0, 0],
        help: "print statistics on stderr at exit: 1 a readable summary, json one JSON line",
    },
    OptDef {
        opt: Opt::StatsFile,
        name: "HAKMEM_STATS_FILE",
        kind: Kind::Text,
        defaults: [0, 0, 0],
        help: "write the exit statistics to this file instead of stderr (`%p`: the pid); implies HAKMEM_STATS=1 unless it is set",
    },
    OptDef {
        opt: Opt::Verbose,
        name: "HAKMEM_VERBOSE",
        kind: Kind::Int { min: 0, max: 1 },
        defaults: [0, 0, 0],
        help: "1: print the version and the effective settings on stderr at start-up",
    },
];

pub const N: usize = 19;
const _: () = assert!(OPTIONS.len() == N);

static VALUES: [AtomicU32; N] = [const { AtomicU32::new(0) }; N];
static CHECKED: AtomicBool = AtomicBool::new(false);

/// Longest accepted value of a text option, in bytes.
pub const TEXT_MAX: usize = 1024;
/// How many text options the table may hold.
const TEXT_SLOTS: usize = 2;

/// The values of the text options, one slot each in table order.
pub struct Texts([[u8; TEXT_MAX]; TEXT_SLOTS]);

impl Texts {
    pub const fn new() -> Self {
        Texts([[0; TEXT_MAX]; TEXT_SLOTS])
    }
}

impl Default for Texts {
    fn default() -> Self {
        Self::new()
    }
}

struct SharedTexts(UnsafeCell<Texts>);
// SAFETY: written once by `init_from_process`, before initialisation publishes READY (a
// release store that every reader's acquire load of the state follows); read-only afterwards.
unsafe impl Sync for SharedTexts {}
static TEXTS: SharedTexts = SharedTexts(UnsafeCell::new(Texts::new()));

/// The slot of text option `o` (its rank among the table's text options).
fn text_slot(o: Opt) -> usize {
    OPTIONS[..o as usize]
        .iter()
        .filter(|d| matches!(d.kind, Kind::Text))
        .count()
}

/// The value of text option `o` (empty when unset).
pub fn text(o: Opt) -> &'static [u8] {
    let len = (get(o) as usize).min(TEXT_MAX);
    // SAFETY: see `SharedTexts`; the slot is in bounds (a test checks the table's text count).
    let texts: &'static Texts = unsafe { &*TEXTS.0.get() };
    &texts.0[text_slot(o)][..len]
}

#[inline(always)]
pub fn get(o: Opt) -> u32 {
    VALUES[o as usize].load(Relaxed)
}

/// Checking mode (HAKMEM_CHECK=1).
#[inline(always)]
pub fn checked() -> bool {
    CHECKED.load(Relaxed)
}

pub fn purge_kind() -> PurgeKind {
    match get(Opt::Purge) {
        0 => PurgeKind::DontNeed,
        1 => PurgeKind::Free,
        _ => PurgeKind::None,
    }
}

/// log2 of the SuperSlab size. Checking mode keeps it at most 4 MiB, so that the live-block
/// bitmaps in the header stay inside the first 64 KiB page.
pub fn superslab_shift() -> usize {
    let shift = 20 + get(Opt::SuperslabMb) as usize;
    if checked() {
        shift.min(22)
    } else {
        shift
    }
}

fn def(o: Opt) -> &'static OptDef {
    &OPTIONS[o as usize]
}

/// Parses `value` for option `d`; None if it is not accepted.
pub fn parse(d: &OptDef, value: &[u8]) -> Option<u32> {
    match d.kind {
        Kind::Int { min, max } => {
            if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let v = value.iter().fold(0u32, |a, d| a * 10 + (d - b'0') as u32);
            (min..=max).contains(&v).then_some(v)
        }
        Kind::Choice(names) => names
            .iter()
            .position(|n| n.as_bytes() == value)
            .map(|i| i as u32),
        Kind::Text => (value.len() <= TEXT_MAX).then_some(value.len() as u32),
    }
}

/// Describes what `d` accepts, for messages and the README.
pub struct Accepts<'a>(pub &'a OptDef);

impl fmt::Display for Accepts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.kind {
            Kind::Int { min, max } => write!(f, "an integer from {min} to {max}"),
            Kind::Choice(names) => {
                for (i, n) in names.iter().enumerate() {
                    if i > 0 {
                        f.write_str("|")?;
                    }
                    f.write_str(n)?;
                }
                Ok(())
            }
            Kind::Text => write!(f, "text of at most {TEXT_MAX} bytes"),
        }
    }
}

struct Shown<'a>(&'a OptDef, u32);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.kind {
            Kind::Int { .. } => write!(f, "{}", self.1),
            Kind::Choice(names) => f.write_str(names[self.1 as usize]),
            Kind::Text if self.1 == 0 => f.write_str("unset"),
            Kind::Text => write!(f, "{}", Lossy(text(self.0.opt))),
        }
    }
}

/// Environment entries as `NAME=value` byte strings.
pub trait Env {
    fn for_each(&self, f: &mut dyn FnMut(&[u8]));
}

/// The process environment, read from `environ` without allocating.
pub struct ProcessEnv;

extern "C" {
    static environ: *const *const libc::c_char;
}

impl Env for ProcessEnv {
    fn for_each(&self, f: &mut dyn FnMut(&[u8])) {
        // SAFETY: `environ` is a null-terminated array of NUL-terminated strings; nothing here
        // modifies the environment while it is read.
        unsafe {
            let mut e = environ;
            if e.is_null() {
                return;
            }
            while !(*e).is_null() {
                f(core::ffi::CStr::from_ptr(*e).to_bytes());
                e = e.add(1);
            }
        }
    }
}

/// Reads the policy from `env`, reporting bad values and unknown names through `warn` (one line
/// each; the default is used).
pub fn load(env: &dyn Env, warn: &mut dyn FnMut(fmt::Arguments)) -> [u32; N] {
    load_with_texts(env, &mut Texts::new(), warn)
}

/// `load`, also copying the text options' values into `texts`.
pub fn load_with_texts(
    env: &dyn Env,
    texts: &mut Texts,
    warn: &mut dyn FnMut(fmt::Arguments),
) -> [u32; N] {
    let mut raw: [Option<&[u8]>; N] = [None; N];
    // The environment outlives this call, so the borrowed slices stay valid inside it.
    let mut seen: [(*const u8, usize); N] = [(core::ptr::null(), 0); N];
    env.for_each(&mut |entry| {
        if !entry.starts_with(b"HAKMEM_") {
            return;
        }
        let eq = entry.iter().position(|&c| c == b'=').unwrap_or(entry.len());
        let (name, value) = (&entry[..eq], entry.get(eq + 1..).unwrap_or(&[]));
        match OPTIONS.iter().position(|d| d.name.as_bytes() == name) {
            Some(i) => seen[i] = (value.as_ptr(), value.len()),
            None => {
                warn(format_args!(
                    "hakmem: unknown variable {} ignored (known: HAKMEM_PROFILE, HAKMEM_TCACHE, ... see README)\n",
                    Lossy(name)
                ));
            }
        }
    });
    for (i, s) in seen.iter().enumerate() {
        if !s.0.is_null() {
            // SAFETY: the pointer and length came from a live environment entry above.
            raw[i] = Some(unsafe { core::slice::from_raw_parts(s.0, s.1) });
        }
    }
    let mut profile = DEFAULT_PROFILE;
    if let Some(v) = raw[Opt::Profile as usize] {
        match parse(def(Opt::Profile), v) {
            Some(p) => profile = p as usize,
            None => bad(def(Opt::Profile), v, PROFILES[DEFAULT_PROFILE], warn),
        }
    }
    let mut out = [0u32; N];
    for (i, d) in OPTIONS.iter().enumerate() {
        let dflt = d.defaults[profile];
        out[i] = match raw[i] {
            Some(v) if i != Opt::Profile as usize => parse(d, v).unwrap_or_else(|| {
                let mut s = crate::os::StackBuf::<32>::new();
                let _ = write!(s, "{}", Shown(d, dflt));
                bad(
                    d,
                    v,
                    core::str::from_utf8(s.as_bytes()).unwrap_or("?"),
                    warn,
                );
                dflt
            }),
            _ => dflt,
        };
    }
    out[Opt::Profile as usize] = profile as u32;
    if out[Opt::StatsFile as usize] != 0 && raw[Opt::Stats as usize].is_none() {
        out[Opt::Stats as usize] = 1;
    }
    for (i, d) in OPTIONS.iter().enumerate() {
        if let (Kind::Text, Some(v)) = (&d.kind, raw[i]) {
            let n = out[i] as usize;
            texts.0[text_slot(d.opt)][..n].copy_from_slice(&v[..n]);
        }
    }
    out
}

fn bad(d: &OptDef, v: &[u8], dflt: &str, warn: &mut dyn FnMut(fmt::Arguments)) {
    warn(format_args!(
        "hakmem: {}={} is not accepted (expected {}); using the default {}\n",
        d.name,
        Lossy(v),
        Accepts(d),
        dflt
    ));
}

/// Bytes shown as text, non-UTF-8 bytes as `?`.
struct Lossy<'a>(&'a [u8]);

impl fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0.iter().take(64) {
            f.write_char(if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '?'
            })?;
        }
        Ok(())
    }
}

/// Loads the process policy into the statics. Called once, by `init`.
pub fn init_from_process() {
    // SAFETY: initialisation runs once, before any reader (see `SharedTexts`).
    let texts = unsafe { &mut *TEXTS.0.get() };
    let v = load_with_texts(&ProcessEnv, texts, &mut |a| hk_eprint!("{}", a));
    for (i, x) in v.iter().enumerate() {
        VALUES[i].store(*x, Relaxed);
    }
    CHECKED.store(v[Opt::Check as usize] != 0, Relaxed);
}

/// Sets the statics from explicit values (tests).
pub fn set_all(v: &[u32; N]) {
    for (i, x) in v.iter().enumerate() {
        VALUES[i].store(*x, Relaxed);
    }
    CHECKED.store(v[Opt::Check as usize] != 0, Relaxed);
}

/// `HAKMEM_X=value ...` for the verbose start-up line.
pub fn write_effective(w: &mut dyn Write) -> fmt::Result {
    for d in OPTIONS {
        write!(w, " {}={}", &d.name[7..], Shown(d, get(d.opt)))?;
    }
    Ok(())
}

/// The README's option table.
pub fn write_markdown_table(w: &mut dyn Write) -> fmt::Result {
    writeln!(
        w,
        "| variable | accepts | fast | balanced | lean | what it does |"
    )?;
    writeln!(w, "|---|---|---|---|---|---|")?;
    for d in OPTIONS {
        match d.kind {
            Kind::Int { min, max } => write!(w, "| `{}` | {min}–{max} |", d.name)?,
            Kind::Choice(names) => {
                write!(w, "| `{}` |", d.name)?;
                for (i, n) in names.iter().enumerate() {
                    write!(w, "{}`{n}`", if i == 0 { " " } else { ", " })?;
                }
                w.write_str(" |")?;
            }
            Kind::Text => write!(w, "| `{}` | a file name |", d.name)?,
        }
        for (p, dflt) in d.defaults.iter().enumerate() {
            if d.opt == Opt::Profile {
                write!(w, " {} |", PROFILES[p])?;
            } else {
                write!(w, " {} |", Shown(d, *dflt))?;
            }
        }
        writeln!(w, " {} |", d.help)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FakeEnv(Vec<&'static str>);
    impl Env for FakeEnv {
        fn for_each(&self, f: &mut dyn FnMut(&[u8])) {
            for e in &self.0 {
                f(e.as_bytes());
            }
        }
    }

    fn run(env: Vec<&'static str>) -> ([u32; N], String) {
        let mut msgs = String::new();
        let v = load(&FakeEnv(env), &mut |a| msgs.push_str(&a.to_string()));
        (v, msgs)
    }

    #[test]
    fn defaults_follow_the_balanced_profile() {
        let (v, msgs) = run(vec!["PATH=/bin", "HOME=/root"]);
        assert!(msgs.is_empty());
        for d in OPTIONS {
            assert_eq!(v[d.opt as usize], d.defaults[1], "{}", d.name);
        }
    }

    #[test]
    fn profile_sets_defaults_and_explicit_variables_win() {
        let (v, msgs) = run(vec!["HAKMEM_PROFILE=lean", "HAKMEM_TCACHE=7"]);
        assert!(msgs.is_empty(), "{msgs}");
        assert_eq!(v[Opt::Profile as usize], 2);
        assert_eq!(v[Opt::Tcache as usize], 7);
        assert_eq!(
            v[Opt::LargeCacheMb as usize],
            def(Opt::LargeCacheMb).defaults[2]
        );
    }

    #[test]
    fn bad_profile_names_variable_value_and_accepted_values() {
        let (v, msgs) = run(vec!["HAKMEM_PROFILE=fastest"]);
        assert_eq!(v[Opt::Profile as usize], DEFAULT_PROFILE as u32);
        assert_eq!(msgs.lines().count(), 1);
        assert!(msgs.contains("HAKMEM_PROFILE=fastest"), "{msgs}");
        assert!(msgs.contains("fast|balanced|lean"), "{msgs}");
        assert!(msgs.contains("default balanced"), "{msgs}");
    }

    #[test]
    fn negative_number_is_rejected_with_range_and_default_used() {
        let (v, msgs) = run(vec!["HAKMEM_TCACHE=-3"]);
        assert_eq!(v[Opt::Tcache as usize], def(Opt::Tcache).defaults[1]);
        assert!(msgs.contains("HAKMEM_TCACHE=-3"), "{msgs}");
        assert!(msgs.contains("from 0 to 64"), "{msgs}");
        for bad in [
            "HAKMEM_TCACHE=",
            "HAKMEM_TCACHE=65",
            "HAKMEM_TCACHE=1x",
            "HAKMEM_TCACHE=99999999999",
        ] {
            let (v, msgs) = run(vec![bad]);
            assert_eq!(v[Opt::Tcache as usize], 1, "{bad}");
            assert_eq!(msgs.lines().count(), 1, "{bad}");
        }
    }

    #[test]
    fn unknown_hakmem_variable_is_reported() {
        let (_, msgs) = run(vec!["HAKMEM_TCAHCE=4", "HAKMEMX=1", "OTHER_HAKMEM_X=1"]);
        assert_eq!(msgs.lines().count(), 1, "{msgs}");
        assert!(msgs.contains("unknown variable HAKMEM_TCAHCE"), "{msgs}");
    }

    #[test]
    fn stats_file_is_copied_and_implies_readable_stats() {
        let mut texts = Texts::new();
        let v = load_with_texts(
            &FakeEnv(vec!["HAKMEM_STATS_FILE=/tmp/s-%p.txt"]),
            &mut texts,
            &mut |a| panic!("{a}"),
        );
        let n = v[Opt::StatsFile as usize] as usize;
        assert_eq!(&texts.0[text_slot(Opt::StatsFile)][..n], b"/tmp/s-%p.txt");
        assert_eq!(v[Opt::Stats as usize], 1);
        let (v, msgs) = run(vec!["HAKMEM_STATS_FILE=/tmp/s", "HAKMEM_STATS=json"]);
        assert!(msgs.is_empty(), "{msgs}");
        assert_eq!(v[Opt::Stats as usize], 2);
        let (v, _) = run(vec!["HAKMEM_STATS_FILE="]);
        assert_eq!((v[Opt::StatsFile as usize], v[Opt::Stats as usize]), (0, 0));
    }

    #[test]
    fn too_long_text_is_rejected() {
        let long: &'static str =
            Box::leak(format!("HAKMEM_STATS_FILE={}", "x".repeat(TEXT_MAX + 1)).into_boxed_str());
        let (v, msgs) = run(vec![long]);
        assert_eq!(v[Opt::StatsFile as usize], 0);
        assert!(msgs.contains("text of at most"), "{msgs}");
    }

    #[test]
    fn text_options_fit_their_slots() {
        let n = OPTIONS
            .iter()
            .filter(|d| matches!(d.kind, Kind::Text))
            .count();
        assert!(n <= TEXT_SLOTS);
    }

    #[test]
    fn readme_option_table_is_generated_from_the_table() {
        let mut t = String::new();
        write_markdown_table(&mut t).unwrap();
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let begin = "<!-- options:begin -->\n";
        let a = readme
            .find(begin)
            .expect("README has no options:begin marker")
            + begin.len();
        let b = readme
            .find("<!-- options:end -->")
            .expect("README has no options:end marker");
        assert_eq!(
            &readme[a..b],
            t,
            "README option table is stale: regenerate it from policy::write_markdown_table"
        );
    }
}
