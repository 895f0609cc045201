//! The fully connected kernel: `y = x·Wᵀ + b`, vectorised over output features.
//!
//! Weights are packed at compile time into blocks of `4·ov` outputs, transposed so that one input
//! feature's `4·ov` weights are contiguous ([`pack_linear_weights`]). A work item is one row of the
//! batch and one block: per input feature it broadcasts `x[n, k]` and issues `ov` FMAs whose weight
//! operand is a single-use load (folded into the FMA). Each output is summed over `k` in order, as
//! in the reference. The epilogue (bias, residual, activation) runs in registers before the store.

use super::jit::{Base, Emitter, Loc};
use super::pack::pack_linear_weights;
use super::pool::plane_ptr;
use super::{activation, CodegenError, StepCx};
use cranelift_codegen::ir::{InstBuilder, Value};
use kiln_runtime::ops::{Epilogue, Linear};

/// A planned linear step.
#[derive(Debug, Clone)]
pub struct LinearKernel {
    n: usize,
    k: usize,
    m: usize,
    ov: usize,
    nob: usize,
    bias: bool,
    epilogue: Epilogue,
}

impl LinearKernel {
    /// Plans `input [N, K]` × `weight [M, K]ᵀ`.
    pub fn new(attrs: &Linear, input: &[usize], weight: &[usize]) -> Result<LinearKernel, String> {
        let ([n, k], [m, _]) = (input, weight) else {
            return Err("linear needs a 2-d input and weight".into());
        };
        let ov = m.div_ceil(4).clamp(1, 8);
        Ok(LinearKernel {
            n: *n,
            k: *k,
            m: *m,
            ov,
            nob: m.div_ceil(4 * ov).max(1),
            bias: attrs.bias,
            epilogue: attrs.epilogue.clone(),
        })
    }

    /// Emits the step's phase.
    pub fn emit(&self, cx: &mut StepCx) -> Result<(), CodegenError> {
        let step = cx.step;
        let weight = cx
            .param(step.inputs[1])
            .ok_or_else(|| cx.unsupported("the weight must be a parameter"))?;
        let width = 4 * self.ov;
        let w_off = cx
            .blob
            .push(&pack_linear_weights(weight.data(), self.m, self.k, width));
        let mut next = 2;
        let b_off = if self.bias {
            next += 1;
            Some(cx.padded_bias(step.inputs[2], self.nob * width)?)
        } else {
            None
        };
        let residual = self.epilogue.residual.then(|| cx.loc(step.inputs[next]));
        let x = cx.loc(step.inputs[0]);
        let out = cx.loc(step.output);
        if x.base == out.base
            && ranges_overlap(
                x.offset,
                self.n * self.k * 4,
                out.offset,
                self.n * self.m * 4,
            )
        {
            return Err(cx.unsupported("the result may not share memory with the input"));
        }
        if self.n == 0 || self.m == 0 {
            return Ok(());
        }
        let items = self.n * self.nob;
        let tail = self.m % width;
        cx.phase("linear", items as u64, &mut |em, item| {
            let (ni, ob) = em.divmod_imm(item, self.nob as i64);
            let xrow = plane_ptr(em, x, ni, (self.k * 4) as i64);
            let w_blk = plane_ptr(
                em,
                Loc {
                    base: Base::Weights,
                    offset: w_off,
                },
                ob,
                (self.k * width * 4) as i64,
            );
            // Output element (ni, ob·width): the same offset in the result and the residual.
            let row = em.mul_imm(ni, self.m as i64);
            let col = em.mul_imm(ob, width as i64);
            let first = em.b.ins().iadd(row, col);
            let o = plane_ptr(em, out, first, 4);
            let r = residual.map(|r| plane_ptr(em, r, first, 4));
            let b = b_off.map(|off| {
                plane_ptr(
                    em,
                    Loc {
                        base: Base::Weights,
                        offset: off,
                    },
                    ob,
                    (width * 4) as i64,
                )
            });
            let ptrs = [xrow, w_blk];
            if tail == 0 {
                self.block(em, ptrs, b, r, o, width);
            } else {
                let is_tail = em.eq_imm(ob, self.nob as i64 - 1);
                let blocks = em.if_begin(is_tail);
                self.block(em, ptrs, b, r, o, tail);
                em.if_otherwise(&blocks);
                self.block(em, ptrs, b, r, o, width);
                em.if_end(blocks);
            }
        })
    }

    /// One block of `valid` outputs (of `4·ov`).
    fn block(
        &self,
        em: &mut Emitter,
        [xrow, w_blk]: [Value; 2],
        b: Option<Value>,
        res: Option<Value>,
        out: Value,
        valid: usize,
    ) {
        let nv = valid.div_ceil(4);
        let width_bytes = (4 * self.ov * 4) as i64;
        let zero = em.vconst(0.0);
        let mut carried = vec![xrow, w_blk];
        carried.extend(std::iter::repeat_n(zero, nv));
        // Four input features per iteration, then the rest one at a time.
        let unroll = 4usize;
        let main = (self.k / unroll * unroll) as i64;
        let fma_step = |em: &mut Emitter, xp: Value, wp: Value, acc: &mut [Value], u: usize| {
            let xb = em.splat_load(xp, 4 * u as i64);
            for (v, a) in acc.iter_mut().enumerate() {
                let w = em.vload(wp, u as i64 * width_bytes + 16 * v as i64);
                *a = em.b.ins().fma(w, xb, *a);
            }
        };
        let c = em.for_const(0, main, unroll as i64, &carried, &mut |em, _, c| {
            let (xp, wp) = (c[0], c[1]);
            let mut acc = c[2..].to_vec();
            for u in 0..unroll {
                fma_step(em, xp, wp, &mut acc, u);
            }
            let mut next = vec![
                em.add_imm(xp, 4 * unroll as i64),
                em.add_imm(wp, unroll as i64 * width_bytes),
            ];
            next.extend(acc);
            next
        });
        let (xp, wp) = (c[0], c[1]);
        let mut acc = c[2..].to_vec();
        for u in 0..self.k % unroll {
            fma_step(em, xp, wp, &mut acc, u);
        }
        for (v, a) in acc.into_iter().enumerate() {
            let lanes = (valid - 4 * v).min(4);
            let mut r = a;
            if let Some(bp) = b {
                let bv = em.vload(bp, 16 * v as i64);
                r = em.b.ins().fadd(r, bv);
            }
            if let Some(rp) = res {
                let rv = em.vload_partial(rp, 16 * v as i64, lanes, 0.0);
                r = em.b.ins().fadd(r, rv);
            }
            if let Some(act) = &self.epilogue.activation {
                r = activation::emit(em, act, r);
            }
            em.vstore_partial(r, out, 16 * v as i64, lanes);
        }
    }
}

/// Whether byte ranges `[a, a + la)` and `[b, b + lb)` overlap.
fn ranges_overlap(a: usize, la: usize, b: usize, lb: usize) -> bool {
    a < b + lb && b < a + la
}
