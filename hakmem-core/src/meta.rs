//! The metadata arena: zeroed memory for heaps, carved from 256 KiB mappings and never returned
//! (heaps are parked and adopted, never freed). It lives in the pool, under the pool's lock.

use crate::os;

pub struct Arena {
    cur: usize,
    end: usize,
}

impl Arena {
    pub const fn new() -> Self {
        Arena { cur: 0, end: 0 }
    }

    /// `size` bytes of zeroed memory, 64-byte aligned, never freed; null if out of memory.
    pub fn alloc(&mut self, size: usize) -> *mut u8 {
        let size = (size + 63) & !63;
        if self.cur + size > self.end {
            let chunk = size.max(256 << 10);
            let m = os::map(chunk, false);
            if m.is_null() {
                return m;
            }
            self.cur = m as usize;
            self.end = m as usize + chunk;
        }
        let p = self.cur as *mut u8;
        self.cur += size;
        p
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}
