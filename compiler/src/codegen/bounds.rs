//! The geometry bound: before any kernel is built for a step, an upper bound of every padded copy
//! it may make (the conv's padded, phase-split input, a pool's padded plane, a fused pool's
//! scratch plane) is computed in `u128` and checked against the memory limit and [`MAX_SCRATCH`].
//!
//! Kiln's [`limits`](kiln_runtime::limits) keep every dimension and attribute below 2³¹, so a
//! product of two of them fits in 64 bits, but a padded plane is a product of four (rows ×
//! phases × columns per phase), which may not: a stride of 2³¹ − 1 over a one-pixel input gives a
//! phase-split row of 2³³ floats. Once a step passes this check, every size the kernels compute
//! in `usize` (plane floats, row bytes, scratch offsets) is below the bound, so no kernel
//! arithmetic, and no offset baked into generated code, can wrap.

use super::CodegenError;
use kiln_runtime::ops::{Conv2d, MaxPool2d, Padding2d};
use kiln_runtime::plan::{Plan, Step};
use kiln_runtime::Op;

/// The most scratch bytes one step may need, whatever the memory limit: 2⁴⁸ (256 TiB).
pub const MAX_SCRATCH: u128 = 1 << 48;

/// One sliding-window pass over `[h, w]` planes: the input side of a conv or a pool.
struct Windows {
    planes: u128,
    hw: [u128; 2],
    pad: Padding2d,
    kernel: [u128; 2],
    stride: [u128; 2],
    dilation: [u128; 2],
    out: [u128; 2],
}

impl Windows {
    /// Floats of all padded planes, bounding every layout the kernels build for these windows:
    /// rows reach the last window or the padded source, and a phase-split row holds `stride`
    /// phases of (output columns rounded up to 4, plus the window's reach, plus the source) with
    /// room to round each phase up to 4.
    fn padded_floats(&self) -> u128 {
        let [h, w] = self.hw;
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.stride;
        let [dh, dw] = self.dilation;
        let [oh, ow] = self.out;
        let p = &self.pad;
        let (top, bottom) = (p.top as u128, p.bottom as u128);
        let (left, right) = (p.left as u128, p.right as u128);
        let rows = (top + h + bottom).max(oh.saturating_sub(1) * sh + (kh - 1) * dh + 1);
        let ow_read = ow.div_ceil(4) * 4;
        let cols = ow_read * sw + (kw - 1) * dw + left + w + right + 8 * sw + 8;
        self.planes * rows * cols
    }
}

/// Checks the padded copies `step` may make against `limit` bytes (and [`MAX_SCRATCH`]).
pub fn check_step(plan: &Plan, index: usize, step: &Step, limit: u64) -> Result<(), CodegenError> {
    let shape = |i: usize| plan.buffer(step.inputs[i]).shape.clone();
    let out = plan.buffer(step.output).shape.clone();
    let mut passes = Vec::new();
    match &step.op {
        Op::Conv2d(c) => {
            let (x, w) = (shape(0), shape(1));
            let Ok(conv_out) = c.conv_shape(&x, &w) else {
                return Ok(()); // the kernel reports the shape error itself
            };
            passes.push(conv_windows(c, &x, &w, &conv_out));
            if let Some(p) = &c.epilogue.pool {
                passes.push(pool_windows(p, &conv_out, &out));
            }
        }
        Op::MaxPool2d(p) => passes.push(pool_windows(p, &shape(0), &out)),
        Op::AvgPool2d(p) => {
            let as_max = MaxPool2d {
                kernel: p.kernel,
                stride: p.stride,
                padding: p.padding,
                dilation: [1, 1],
                ceil_mode: p.ceil_mode,
            };
            passes.push(pool_windows(&as_max, &shape(0), &out));
        }
        _ => {}
    }
    let bytes: u128 = passes.iter().flatten().map(|w| 4 * w.padded_floats()).sum();
    let cap = u128::from(limit).min(MAX_SCRATCH);
    if bytes > cap {
        return Err(CodegenError::TooLarge {
            what: format!("padded copies of step {index} ({})", step.op.name()),
            needed: u64::try_from(bytes).unwrap_or(u64::MAX),
            limit: u64::try_from(cap).unwrap_or(u64::MAX),
        });
    }
    Ok(())
}

fn conv_windows(c: &Conv2d, x: &[usize], w: &[usize], out: &[usize; 4]) -> Option<Windows> {
    let u = |v: usize| v as u128;
    (x.len() == 4 && w.len() == 4).then(|| Windows {
        planes: u(x[0]) * u(x[1]),
        hw: [u(x[2]), u(x[3])],
        pad: c.padding,
        kernel: [u(w[2]).max(1), u(w[3]).max(1)],
        stride: c.stride.map(u),
        dilation: c.dilation.map(u),
        out: [u(out[2]), u(out[3])],
    })
}

fn pool_windows(p: &MaxPool2d, x: &[usize], out: &[usize]) -> Option<Windows> {
    let u = |v: usize| v as u128;
    (x.len() == 4 && out.len() == 4).then(|| Windows {
        planes: u(x[0]) * u(x[1]),
        hw: [u(x[2]), u(x[3])],
        pad: p.padding,
        kernel: p.kernel.map(|k| u(k).max(1)),
        stride: p.stride.map(u),
        dilation: p.dilation.map(u),
        out: [u(out[2]), u(out[3])],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_stride_over_a_small_input_is_bounded_without_wrapping() {
        // 1×1 input, stride 2³¹ − 1: a phase-split row of about 2³³ floats, 2³⁵ bytes.
        let w = Windows {
            planes: 1,
            hw: [1, 1],
            pad: Padding2d::default(),
            kernel: [1, 1],
            stride: [(1 << 31) - 1, (1 << 31) - 1],
            dilation: [1, 1],
            out: [1, 1],
        };
        let floats = w.padded_floats();
        assert!(floats > 1 << 33 && floats < 1 << 36, "{floats}");
    }

    #[test]
    fn an_ordinary_layer_needs_little() {
        // SimpleCNN's conv2 input: 32 planes of 16×16 padded by 1, 3×3 stride 1.
        let w = Windows {
            planes: 32,
            hw: [16, 16],
            pad: Padding2d::symmetric(1, 1),
            kernel: [3, 3],
            stride: [1, 1],
            dilation: [1, 1],
            out: [16, 16],
        };
        // 18 rows × (16 + 2 + 18 + 16) columns per plane, at most.
        assert_eq!(w.padded_floats(), 32 * 18 * 52);
    }
}
