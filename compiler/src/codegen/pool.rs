//! Pooling kernels: max and average pooling over a padded copy of each plane (see
//! [`pack`](super::pack)), and global average pooling.
//!
//! Max and average pools run in two phases: each plane is copied into scratch with its padding
//! (−∞ for max, 0 for average), then each output row is computed four columns at a time; a tap
//! gathers the four outputs' columns with one load (stride 1), two loads and a shuffle (stride 2)
//! or four scalar loads (larger strides). Max-pool follows the reference
//! exactly (`v > m || v is NaN` replaces `m`, so NaN sticks); average pool sums the taps row by
//! row like the reference and divides by a divisor table computed at compile time with the
//! reference's window-clipping rules (so `count_include_pad` and `ceil_mode` need no code).

use super::jit::{Base, Emitter, Loc};
use super::pack::PaddedLayout;
use super::{CodegenError, StepCx};
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::types::F32X4;
use cranelift_codegen::ir::{InstBuilder, Value};
use kiln_runtime::ops::{AvgPool2d, MaxPool2d};

/// The window geometry of a pool over one plane.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolGeom {
    /// Max (else average).
    pub max: bool,
    /// Window rows, columns.
    pub kernel: [usize; 2],
    /// Strides.
    pub stride: [usize; 2],
    /// Dilations.
    pub dilation: [usize; 2],
    /// Output rows and columns.
    pub out: [usize; 2],
}

impl PoolGeom {
    /// The padded layout a pool over `[h, w]` planes padded by `top`/`left` reads: plain rows (no
    /// phase split; the pool gathers strided columns itself), with room for every window of every
    /// output vector, tail lanes included.
    pub fn layout(&self, h: usize, w: usize, top: usize, left: usize) -> PaddedLayout {
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.stride;
        let [dh, dw] = self.dilation;
        let [oh, ow] = self.out;
        let owr = ow.div_ceil(4) * 4;
        let rows = (oh - 1) * sh + (kh - 1) * dh + 1;
        // Stride 2 reads eight floats per tap and vector; 4 more columns cover the last one.
        let cols = (owr - 1) * sw + (kw - 1) * dw + 1 + if sw == 2 { 4 } else { 0 };
        PaddedLayout::plain(
            (h, w),
            (top, left),
            (rows, cols),
            if self.max { f32::NEG_INFINITY } else { 0.0 },
        )
    }

    /// Emits the pool of one padded plane at `src` into the `[oh, ow]` plane at `dst`; `div` points
    /// at the average pool's `[oh][⌈ow/4⌉·4]` divisor table; `post` maps each result vector before
    /// its store (a conv's bias and activation, when they commute with the max).
    pub fn emit_plane(
        &self,
        em: &mut Emitter,
        layout: &PaddedLayout,
        src: Value,
        dst: Value,
        div: Option<Value>,
        post: &mut dyn FnMut(&mut Emitter, Value) -> Value,
    ) {
        let [oh, ow] = self.out;
        let row_bytes = (layout.row_floats() * 4) as i64;
        let owr = ow.div_ceil(4) * 4;
        let sw = self.stride[1] as i64;
        let mut carried = vec![src, dst];
        carried.extend(div);
        em.for_const(0, oh as i64, 1, &carried, &mut |em, _, c| {
            let (src_row, dst_row) = (c[0], c[1]);
            let div_row = c.get(2).copied();
            let full = (ow / 4) as i64;
            if full > 0 {
                em.for_const(0, full * 16, 16, &[src_row], &mut |em, off, c| {
                    let d = em.b.ins().iadd(dst_row, off);
                    let dv = div_row.map(|p| em.b.ins().iadd(p, off));
                    let v = self.window(em, layout, c[0], dv);
                    let v = post(em, v);
                    em.vstore(v, d, 0);
                    vec![em.add_imm(c[0], 16 * sw)]
                });
            }
            let rem = ow % 4;
            if rem > 0 {
                let off = full * 16;
                let s = em.add_imm(src_row, off * sw);
                let d = em.add_imm(dst_row, off);
                let dv = div_row.map(|p| em.add_imm(p, off));
                let v = self.window(em, layout, s, dv);
                let v = post(em, v);
                em.vstore_partial(v, d, 0, rem);
            }
            let mut next = vec![
                em.add_imm(src_row, self.stride[0] as i64 * row_bytes),
                em.add_imm(dst_row, 4 * ow as i64),
            ];
            if let Some(p) = div_row {
                next.push(em.add_imm(p, 4 * owr as i64));
            }
            next
        });
    }

    /// Four outputs whose windows start at `src` (first tap of the first output, in a plain
    /// padded row); each tap gathers the four outputs' columns `sw` apart.
    fn window(
        &self,
        em: &mut Emitter,
        layout: &PaddedLayout,
        src: Value,
        div: Option<Value>,
    ) -> Value {
        let [kh, kw] = self.kernel;
        let [dh, dw] = self.dilation;
        let sw = self.stride[1] as i64;
        let row_bytes = layout.row_floats() * 4;
        if self.max && self.kernel == [2, 2] && self.stride == [2, 2] && self.dilation == [1, 1] {
            // The common 2×2/2 pool: the two rows' maxima first (whole vectors), then the maxima
            // of neighbouring columns: 4 loads, 2 shuffles, 3 maxima per 4 outputs. The same
            // value as the reference's tap order (max is order-free but for the sign of a zero).
            let row = row_bytes as i64;
            let a0 = em.vload(src, 0);
            let a1 = em.vload(src, 16);
            let b0 = em.vload(src, row);
            let b1 = em.vload(src, row + 16);
            let v0 = nan_max(em, a0, b0);
            let v1 = nan_max(em, a1, b1);
            let even = em.even_lanes(v0, v1);
            let odd = em.shuffle32(v0, v1, [1, 3, 5, 7]);
            return nan_max(em, even, odd);
        }
        let mut acc: Option<Value> = None;
        for ky in 0..kh {
            for kx in 0..kw {
                let off = (ky * dh * row_bytes + kx * dw * 4) as i64;
                let x = match sw {
                    1 => em.vload(src, off),
                    2 => {
                        // Eight neighbours, then their even lanes: one shuffle per tap.
                        let a = em.vload(src, off);
                        let b = em.vload(src, off + 16);
                        em.even_lanes(a, b)
                    }
                    _ => {
                        let mut v = em.vconst(0.0);
                        for lane in 0..4 {
                            let s = em.fload(src, off + 4 * lane * sw);
                            v = em.b.ins().insertlane(v, s, lane as u8);
                        }
                        v
                    }
                };
                acc = Some(match acc {
                    None => x,
                    Some(m) if self.max => nan_max(em, m, x),
                    Some(s) => em.b.ins().fadd(s, x),
                });
            }
        }
        // A window has at least one tap (kernel sizes are ≥ 1).
        let acc = acc.unwrap_or_else(|| em.vconst(0.0));
        match div {
            Some(d) => {
                let dv = em.vload(d, 0);
                em.b.ins().fdiv(acc, dv)
            }
            None => acc,
        }
    }
}

/// The reference max-pool's update `m = (x > m || x is NaN) ? x : m`: the larger value, NaN as
/// soon as either is NaN.
///
/// Three instructions: `x > m ? x : m` in this operand order is one `maxps` (which keeps `m`
/// when either is NaN, so a NaN `m` sticks), then an all-ones NaN is OR-ed in where `x` is NaN.
/// Ties keep `m`, as the reference does (the sign of equal zeros).
pub fn nan_max(em: &mut Emitter, m: Value, x: Value) -> Value {
    let lt = em.b.ins().fcmp(FloatCC::LessThan, m, x);
    let hi = em.select_mask(lt, x, m);
    let nan = em.b.ins().fcmp(FloatCC::Unordered, x, x);
    let nan = em.bitcast(F32X4, nan);
    em.b.ins().bor(hi, nan)
}

/// A max or average pool step.
#[derive(Debug, Clone)]
pub struct PoolKernel {
    geom: PoolGeom,
    planes: usize,
    h: usize,
    w: usize,
    layout: PaddedLayout,
    /// Average pool divisors, `[oh][⌈ow/4⌉·4]`.
    divisors: Option<Vec<f32>>,
}

impl PoolKernel {
    /// The kernel of a max-pool over `input` giving `out`.
    pub fn max(p: &MaxPool2d, input: &[usize], out: &[usize]) -> Result<PoolKernel, String> {
        let geom = PoolGeom {
            max: true,
            kernel: p.kernel,
            stride: p.stride,
            dilation: p.dilation,
            out: [out[2], out[3]],
        };
        Self::build(geom, input, p.padding.top, p.padding.left, None)
    }

    /// The kernel of an average pool over `input` giving `out`.
    pub fn avg(p: &AvgPool2d, input: &[usize], out: &[usize]) -> Result<PoolKernel, String> {
        let geom = PoolGeom {
            max: false,
            kernel: p.kernel,
            stride: p.stride,
            dilation: [1, 1],
            out: [out[2], out[3]],
        };
        let (h, w) = (input[2], input[3]);
        let [oh, ow] = geom.out;
        let owr = ow.div_ceil(4) * 4;
        let mut div = vec![1f32; oh * owr];
        let pd = p.padding;
        // The reference's clipping, in i128 as there.
        let (hi, wi) = (h as i128, w as i128);
        let [kh, kw] = p.kernel.map(|k| k as i128);
        let [sh, sw] = p.stride.map(|s| s as i128);
        for oy in 0..oh {
            for ox in 0..ow {
                let (y0, x0) = (
                    oy as i128 * sh - pd.top as i128,
                    ox as i128 * sw - pd.left as i128,
                );
                let y1 = (y0 + kh).min(hi + pd.bottom as i128);
                let x1 = (x0 + kw).min(wi + pd.right as i128);
                let padded_area = (y1 - y0) * (x1 - x0);
                let (cy0, cx0, cy1, cx1) = (y0.max(0), x0.max(0), y1.min(hi), x1.min(wi));
                let d = if p.count_include_pad {
                    padded_area
                } else {
                    (cy1 - cy0) * (cx1 - cx0)
                };
                // An empty window sums only padding zeros; any non-zero divisor gives 0.
                div[oy * owr + ox] = if cy0 >= cy1 || cx0 >= cx1 || d <= 0 {
                    1.0
                } else {
                    d as f32
                };
            }
        }
        Self::build(geom, input, pd.top, pd.left, Some(div))
    }

    fn build(
        geom: PoolGeom,
        input: &[usize],
        top: usize,
        left: usize,
        divisors: Option<Vec<f32>>,
    ) -> Result<PoolKernel, String> {
        let [n, c, h, w] = input else {
            return Err("pooling needs a 4-d input".into());
        };
        let layout = geom.layout(*h, *w, top, left);
        Ok(PoolKernel {
            geom,
            planes: n * c,
            h: *h,
            w: *w,
            layout,
            divisors,
        })
    }

    /// Scratch bytes: the padded copy of every plane.
    pub fn scratch_bytes(&self) -> usize {
        self.planes * self.layout.plane_floats() * 4
    }

    /// Emits the copy and the pool phases.
    pub fn emit(&self, cx: &mut StepCx) -> Result<(), CodegenError> {
        let input = cx.loc(cx.step.inputs[0]);
        let out = cx.loc(cx.step.output);
        let scratch = cx.scratch;
        let div_off = self.divisors.as_ref().map(|d| cx.blob.push(d));
        let plane_in = (self.h * self.w * 4) as i64;
        let plane_pad = (self.layout.plane_floats() * 4) as i64;
        let [oh, ow] = self.geom.out;
        let plane_out = (oh * ow * 4) as i64;
        let layout = self.layout.clone();
        cx.phase("pad", self.planes as u64, &mut |em, item| {
            let src = plane_ptr(em, input, item, plane_in);
            let dst = plane_ptr(em, scratch, item, plane_pad);
            layout.emit_copy(em, src, dst);
        })?;
        cx.phase("pool", self.planes as u64, &mut |em, item| {
            let src = plane_ptr(em, scratch, item, plane_pad);
            let dst = plane_ptr(em, out, item, plane_out);
            let div = div_off.map(|o| {
                em.addr(Loc {
                    base: Base::Weights,
                    offset: o,
                })
            });
            self.geom
                .emit_plane(em, &self.layout, src, dst, div, &mut |_, v| v);
        })
    }
}

/// `loc + item·plane_bytes`.
pub fn plane_ptr(em: &mut Emitter, loc: Loc, item: Value, plane_bytes: i64) -> Value {
    let base = em.addr(loc);
    let off = em.mul_imm(item, plane_bytes);
    em.b.ins().iadd(base, off)
}

/// Global average pooling: the mean of each plane.
#[derive(Debug, Clone)]
pub struct GlobalAvgKernel {
    planes: usize,
    plane: usize,
}

impl GlobalAvgKernel {
    /// The kernel for an input of `shape` `[N, C, H, W]`.
    pub fn new(shape: &[usize]) -> Result<GlobalAvgKernel, String> {
        let [n, c, h, w] = shape else {
            return Err("global_avg_pool2d needs a 4-d input".into());
        };
        Ok(GlobalAvgKernel {
            planes: n * c,
            plane: h * w,
        })
    }

    /// Emits the phase: one work item per plane, four partial sums, then their total / (H·W).
    pub fn emit(&self, cx: &mut StepCx) -> Result<(), CodegenError> {
        let input = cx.loc(cx.step.inputs[0]);
        let out = cx.loc(cx.step.output);
        let plane = self.plane;
        if self.planes == 0 {
            return Ok(());
        }
        cx.phase("gap", self.planes as u64, &mut |em, item| {
            let src = plane_ptr(em, input, item, (plane * 4) as i64);
            let dst = plane_ptr(em, out, item, 4);
            let zero = em.vconst(0.0);
            let full = (plane / 4) as i64;
            let acc = em.for_const(0, full * 16, 16, &[zero], &mut |em, off, c| {
                let p = em.b.ins().iadd(src, off);
                let v = em.vload(p, 0);
                vec![em.b.ins().fadd(c[0], v)]
            })[0];
            let rem = plane % 4;
            let acc = if rem > 0 {
                let v = em.vload_partial(src, full * 16, rem, 0.0);
                em.b.ins().fadd(acc, v)
            } else {
                acc
            };
            let s = em.hsum(acc);
            let n = em.b.ins().f32const(plane as f32);
            let mean = em.b.ins().fdiv(s, n);
            em.fstore(mean, dst, 0);
        })
    }
}
