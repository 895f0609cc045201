//! A test-only allocator placing a buffer against an inaccessible (`PROT_NONE`) page, so that a
//! JIT read or write one float outside an input, output or arena faults instead of passing
//! silently; and a guarded run of a compiled model.

use kiln::engine::CompiledModel;

const PAGE: usize = 4096;

/// `len` floats whose first (or last) element touches a `PROT_NONE` page; the other side has
/// one too. Reading or writing one float outside the buffer on the touching side faults.
pub struct Guarded {
    map: *mut u8,
    map_len: usize,
    data: *mut f32,
    len: usize,
}

impl Guarded {
    pub fn new(len: usize, at_end: bool) -> Guarded {
        let bytes = len * 4;
        let pages = bytes.div_ceil(PAGE).max(1);
        let map_len = (pages + 2) * PAGE;
        // SAFETY: an anonymous private mapping, not aliased by anything; the result is checked.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(map != libc::MAP_FAILED, "mmap failed");
        let map = map.cast::<u8>();
        // SAFETY: both ranges are whole pages inside the mapping just created.
        unsafe {
            assert_eq!(libc::mprotect(map.cast(), PAGE, libc::PROT_NONE), 0);
            assert_eq!(
                libc::mprotect(map.add((pages + 1) * PAGE).cast(), PAGE, libc::PROT_NONE),
                0
            );
        }
        let offset = if at_end {
            (pages + 1) * PAGE - bytes
        } else {
            PAGE
        };
        // SAFETY: `offset + bytes` ≤ `(pages + 1)·PAGE` < `map_len`: inside the mapping.
        let data = unsafe { map.add(offset) }.cast::<f32>();
        Guarded {
            map,
            map_len,
            data,
            len,
        }
    }

    pub fn from(values: &[f32], at_end: bool) -> Guarded {
        let mut g = Guarded::new(values.len(), at_end);
        g.slice_mut().copy_from_slice(values);
        g
    }

    /// The first float (for tests that poke past the end on purpose).
    pub fn as_ptr(&self) -> *const f32 {
        self.data
    }

    pub fn slice(&self) -> &[f32] {
        // SAFETY: `data..data + len` lies in the readable part of the mapping, which lives as
        // long as `self`; the anonymous mapping starts zeroed, so every float is initialised.
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }

    pub fn slice_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `slice`; `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.data, self.len) }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `new` created; no slice of it outlives `self`.
        unsafe { libc::munmap(self.map.cast(), self.map_len) };
    }
}

/// Runs `model` on `inputs` with the inputs, the arena and every output each against a guard page
/// (after their end if `at_end`, else before their start); returns the outputs' values.
pub fn run_guarded(
    model: &CompiledModel,
    inputs: &[&[f32]],
    output_lens: &[usize],
    at_end: bool,
) -> Result<Vec<Vec<f32>>, String> {
    let guarded_inputs: Vec<Guarded> = inputs.iter().map(|x| Guarded::from(x, at_end)).collect();
    let input_slices: Vec<&[f32]> = guarded_inputs.iter().map(Guarded::slice).collect();
    let mut arena = Guarded::new(model.arena_floats(), at_end);
    let mut outs: Vec<Guarded> = output_lens
        .iter()
        .map(|&n| Guarded::new(n, at_end))
        .collect();
    {
        let mut out_slices: Vec<&mut [f32]> = outs.iter_mut().map(Guarded::slice_mut).collect();
        model
            .run_with_arena(&input_slices, arena.slice_mut(), &mut out_slices)
            .map_err(|e| format!("guarded run: {e}"))?;
    }
    Ok(outs.iter().map(|o| o.slice().to_vec()).collect())
}
