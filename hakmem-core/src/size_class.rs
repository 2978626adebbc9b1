//! Size classes: 16-byte steps up to 128 B, then four classes per doubling up to 256 KiB
//! (at most 25% internal waste past 128 B). Every class size is a multiple of 16.

pub const NUM_CLASSES: usize = 52;
/// Largest size served from slabs; larger blocks are mapped directly (see `large`).
pub const MAX_SMALL: usize = 256 << 10;
/// Sizes up to this one find their class with one table load.
pub const LUT_MAX: usize = 1024;
/// Classes of the sizes up to `LUT_MAX`: 0 to `LUT_CLASSES - 1`.
pub const LUT_CLASSES: usize = calc_class_of(LUT_MAX) + 1;

pub const fn calc_class_size(c: usize) -> usize {
    if c < 8 {
        (c + 1) * 16
    } else {
        let g = (c - 8) / 4;
        let j = (c - 8) % 4;
        (1usize << (g + 7)) + (j + 1) * (1usize << (g + 5))
    }
}

pub const fn calc_class_of(size: usize) -> usize {
    if size <= 128 {
        if size == 0 {
            0
        } else {
            (size - 1) >> 4
        }
    } else {
        let s = size - 1;
        let k = (usize::BITS - 1 - s.leading_zeros()) as usize;
        (k - 7) * 4 + 8 + ((s - (1usize << k)) >> (k - 2))
    }
}

pub static CLASS_SIZE: [u32; NUM_CLASSES] = {
    let mut t = [0u32; NUM_CLASSES];
    let mut c = 0;
    while c < NUM_CLASSES {
        t[c] = calc_class_size(c) as u32;
        c += 1;
    }
    t
};

/// `CLASS_BY_SIZE[size]` is the class of `size` for `size <= LUT_MAX`: indexed by the size
/// itself, so that the malloc fast path does not round it (1 KiB; mimalloc's table of direct
/// pages, indexed by words, is as big).
pub static CLASS_BY_SIZE: [u8; LUT_MAX + 1] = {
    let mut t = [0u8; LUT_MAX + 1];
    let mut i = 0;
    while i < t.len() {
        t[i] = calc_class_of(i) as u8;
        i += 1;
    }
    t
};

/// Past `LUT_MAX` every class boundary is a multiple of 256 bytes, so `(size - 1) >> 8` picks
/// one class: `MID_LUT[(size - 1) >> 8]` is the class of `LUT_MAX < size <= MAX_SMALL`.
const MID_SHIFT: usize = 8;
static MID_LUT: [u8; MAX_SMALL >> MID_SHIFT] = {
    let mut t = [0u8; MAX_SMALL >> MID_SHIFT];
    let mut i = LUT_MAX >> MID_SHIFT;
    while i < t.len() {
        t[i] = calc_class_of((i + 1) << MID_SHIFT) as u8;
        i += 1;
    }
    t
};

/// The class for `size` (which must be at most `MAX_SMALL`).
#[inline]
pub fn class_of(size: usize) -> usize {
    debug_assert!(size <= MAX_SMALL);
    if size <= LUT_MAX {
        CLASS_BY_SIZE[size] as usize
    } else {
        MID_LUT[(size - 1) >> MID_SHIFT] as usize
    }
}

#[inline]
pub fn class_size(c: usize) -> usize {
    CLASS_SIZE[c] as usize
}

/// The smallest class that holds `size` bytes and whose blocks are all aligned to `align`
/// (a power of two of at most a page), given that every slab's blocks start page-aligned.
pub fn class_for_aligned(size: usize, align: usize) -> Option<usize> {
    let need = if size > align { size } else { align };
    if need > MAX_SMALL {
        return None;
    }
    let mut c = class_of(need);
    while c < NUM_CLASSES {
        if class_size(c) % align == 0 {
            return Some(c);
        }
        c += 1;
    }
    None
}

/// Slab kinds: how big a slab is for a class, so that a slab holds at least eight blocks.
pub const KIND_SMALL: usize = 0; // 64 KiB slabs, blocks up to 8 KiB
pub const KIND_MEDIUM: usize = 1; // 512 KiB slabs, blocks up to 64 KiB
pub const KIND_BIG: usize = 2; // one slab per SuperSlab, blocks up to 256 KiB
pub const NUM_KINDS: usize = 3;
pub const SMALL_SLAB_SHIFT: u32 = 16;
pub const MEDIUM_SLAB_SHIFT: u32 = 19;

#[inline]
pub fn kind_of(c: usize) -> usize {
    let s = class_size(c);
    if s <= 8 << 10 {
        KIND_SMALL
    } else if s <= 64 << 10 {
        KIND_MEDIUM
    } else {
        KIND_BIG
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_maps_to_the_smallest_class_that_fits() {
        for size in 0..=MAX_SMALL {
            let c = class_of(size);
            assert!(class_size(c) >= size, "size {size} class {c}");
            if c > 0 {
                assert!(
                    class_size(c - 1) < size.max(1),
                    "size {size} not smallest class"
                );
            }
        }
    }

    #[test]
    fn the_tables_agree_with_the_computed_class() {
        for size in 0..=MAX_SMALL {
            assert_eq!(class_of(size), calc_class_of(size), "size {size}");
        }
        for c in 0..NUM_CLASSES {
            if class_size(c) > LUT_MAX {
                assert_eq!(class_size(c) % (1 << MID_SHIFT), 0, "class {c}");
            }
        }
    }

    #[test]
    fn classes_are_16_aligned_increasing_and_waste_at_most_25_percent() {
        assert_eq!(class_size(NUM_CLASSES - 1), MAX_SMALL);
        for c in 0..NUM_CLASSES {
            assert_eq!(class_size(c) % 16, 0);
            if c > 0 {
                assert!(class_size(c) > class_size(c - 1));
                if class_size(c) > 128 {
                    let prev = class_size(c - 1);
                    assert!((class_size(c) - prev) * 4 <= prev, "class {c}");
                }
            }
        }
    }

    #[test]
    fn aligned_classes_are_multiples_of_the_alignment() {
        for align in [32usize, 64, 128, 256, 512, 1024, 2048, 4096] {
            for size in [0usize, 1, 17, 100, 255, 256, 257, 1000, 5000, 70000, 200000] {
                let c = class_for_aligned(size, align).unwrap();
                assert_eq!(class_size(c) % align, 0);
                assert!(class_size(c) >= size);
            }
        }
    }
}
