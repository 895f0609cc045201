//! 64-byte-aligned `f32` storage: a cache line per block, so vector loads never straddle one needlessly
//! and JIT code can rely on the alignment of every tensor's first element.

/// One cache line of floats; a `Vec` of these is 64-byte aligned by construction.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block([f32; 16]);

const BLOCK: usize = 16;

/// Owned, 64-byte-aligned, zero-padded storage of `len` floats.
#[derive(Clone)]
pub(crate) struct AlignedStorage {
    blocks: Vec<Block>,
    len: usize,
}

impl AlignedStorage {
    /// `len` zeros, or `None` when the allocator cannot provide them (no abort: the allocation
    /// is reserved fallibly first).
    pub(crate) fn zeros(len: usize) -> Option<Self> {
        let n = len.div_ceil(BLOCK);
        let mut blocks = Vec::new();
        blocks.try_reserve_exact(n).ok()?;
        blocks.resize(n, Block([0.0; BLOCK]));
        Some(AlignedStorage { blocks, len })
    }

    /// A copy of `values`, or `None` when the allocator cannot provide the room.
    pub(crate) fn from_slice(values: &[f32]) -> Option<Self> {
        let mut s = Self::zeros(values.len())?;
        s.as_mut_slice().copy_from_slice(values);
        Some(s)
    }

    pub(crate) fn as_slice(&self) -> &[f32] {
        // SAFETY: `Block` is `repr(C)` around `[f32; 16]`, so the blocks are one contiguous run of
        // `16 * blocks.len() >= len` initialised floats; the slice borrows `self`.
        unsafe { std::slice::from_raw_parts(self.blocks.as_ptr().cast::<f32>(), self.len) }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: as in `as_slice`; the unique borrow of `self` makes the slice unique.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.as_mut_ptr().cast::<f32>(), self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_is_aligned_and_zeroed() {
        for len in [0, 1, 15, 16, 17, 1000] {
            let s = AlignedStorage::zeros(len).unwrap();
            assert_eq!(s.as_slice().len(), len);
            assert_eq!(s.as_slice().as_ptr() as usize % 64, 0);
            assert!(s.as_slice().iter().all(|&v| v == 0.0));
        }
    }
}
