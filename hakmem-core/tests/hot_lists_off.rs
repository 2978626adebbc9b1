//! HAKMEM_HOT_KB=0 turns the hot lists off: a thread's frees then go to their slabs, whatever it
//! allocates. A binary of its own, because the setting is read once, before the first
//! allocation of the process.

use hakmem_core::{alloc, init, size_class::class_of, tls};

#[test]
fn hakmem_hot_kb_0_keeps_no_hot_list() {
    std::env::set_var("HAKMEM_HOT_KB", "0");
    init::ensure();
    std::thread::spawn(|| {
        let v: Vec<usize> = (0..300).map(|_| alloc::malloc(2048) as usize).collect();
        // SAFETY (test): live blocks of this thread, freed once each; its own bins.
        unsafe {
            for &p in &v {
                alloc::free(p as *mut u8);
            }
            let bin = &raw const (*tls::thread_cache()).bins[class_of(2048)];
            assert_eq!((*bin).hot_cap, 0, "a hot list allowed with HAKMEM_HOT_KB=0");
            assert_eq!((*bin).hot_max, 0);
            assert_eq!((*bin).hot, 0, "a block on a hot list with HAKMEM_HOT_KB=0");
        }
    })
    .join()
    .unwrap();
}
