//! Element-wise kernels: activations, `add`, inference batch norm (folded at compile time into one
//! multiply-add per element) and `flatten` (a copy, or nothing when it is in place).
//!
//! Work items are runs of [`CHUNK`] elements (batch norm: one plane each), processed four lanes at a
//! time; the last partial vector is loaded and stored lane by lane, so nothing outside the buffers
//! is touched. An in-place step reads every vector before it writes the same vector back.

use super::jit::Emitter;
use super::{activation, CodegenError, StepCx};
use cranelift_codegen::ir::{InstBuilder, Value};
use kiln_runtime::Op;

/// Elements per work item of the flat kernels (32 KiB of f32, a multiple of 4).
pub const CHUNK: usize = 8192;

/// An element-wise step.
#[derive(Debug, Clone)]
pub struct EltwiseKernel {
    op: Op,
    /// Elements of the result.
    len: usize,
    /// For batch norm: channels and plane size.
    channels: usize,
    plane: usize,
}

impl EltwiseKernel {
    /// The kernel for `op` on an input of `shape`.
    pub fn new(op: &Op, shape: &[usize]) -> Result<EltwiseKernel, String> {
        let len = shape.iter().product();
        let (channels, plane) = match op {
            Op::BatchNorm2d(_) => match shape {
                [_, c, h, w] => (*c, h * w),
                _ => return Err("batch_norm needs a 4-d input".into()),
            },
            _ => (1, len),
        };
        Ok(EltwiseKernel {
            op: op.clone(),
            len,
            channels,
            plane,
        })
    }

    /// Emits the step's phase.
    pub fn emit(&self, cx: &mut StepCx) -> Result<(), CodegenError> {
        let step = cx.step;
        let out = cx.loc(step.output);
        let ins: Vec<_> = step.inputs.iter().map(|&i| cx.loc(i)).collect();
        match &self.op {
            Op::Flatten(_) => {
                if ins[0] == out || self.len == 0 {
                    return Ok(()); // in place: the bytes are already where they belong
                }
                self.flat(cx, &[ins[0]], out, &mut |_, v| v[0])
            }
            Op::Add(_) => self.flat(cx, &[ins[0], ins[1]], out, &mut |em, v| {
                em.b.ins().fadd(v[0], v[1])
            }),
            Op::Activation(a) => {
                let a = *a;
                self.flat(cx, &[ins[0]], out, &mut |em, v| {
                    activation::emit(em, &a, v[0])
                })
            }
            Op::BatchNorm2d(bn) => self.batch_norm(cx, bn.eps, ins[0], out),
            _ => Err(cx.unsupported("not an element-wise op")),
        }
    }

    /// A flat map over `len` elements in chunks.
    fn flat(
        &self,
        cx: &mut StepCx,
        ins: &[super::jit::Loc],
        out: super::jit::Loc,
        f: &mut dyn FnMut(&mut Emitter, &[Value]) -> Value,
    ) -> Result<(), CodegenError> {
        if self.len == 0 {
            return Ok(());
        }
        let items = self.len.div_ceil(CHUNK);
        let last = items - 1;
        let last_len = self.len - last * CHUNK;
        let ins = ins.to_vec();
        cx.phase("map", items as u64, &mut |em, item| {
            let start = em.mul_imm(item, (CHUNK * 4) as i64);
            let mut ptrs: Vec<Value> = ins
                .iter()
                .map(|&l| {
                    let a = em.addr(l);
                    em.b.ins().iadd(a, start)
                })
                .collect();
            let o = em.addr(out);
            ptrs.push(em.b.ins().iadd(o, start));
            if items == 1 {
                span(em, &ptrs, last_len, f);
            } else {
                let is_last = em.eq_imm(item, last as i64);
                let blocks = em.if_begin(is_last);
                span(em, &ptrs, last_len, f);
                em.if_otherwise(&blocks);
                span(em, &ptrs, CHUNK, f);
                em.if_end(blocks);
            }
        })
    }

    /// `y = x·α + β` per channel, with `α = weight / √(var + eps)` and `β = bias − mean·α`
    /// computed here exactly as the reference does.
    fn batch_norm(
        &self,
        cx: &mut StepCx,
        eps: f32,
        input: super::jit::Loc,
        out: super::jit::Loc,
    ) -> Result<(), CodegenError> {
        let step = cx.step;
        let params: Vec<_> = step.inputs[1..5].iter().map(|&i| cx.param(i)).collect();
        let [Some(w), Some(b), Some(mean), Some(var)] = params[..] else {
            return Err(
                cx.unsupported("weight, bias, running_mean and running_var must be parameters")
            );
        };
        let c = self.channels;
        let mut alpha = Vec::with_capacity(c);
        let mut beta = Vec::with_capacity(c);
        for ch in 0..c {
            let inv_std = 1.0 / (var.data()[ch] + eps).sqrt();
            let a = w.data()[ch] * inv_std;
            alpha.push(a);
            beta.push((-mean.data()[ch]).mul_add(a, b.data()[ch]));
        }
        let alpha_off = cx.blob.push(&alpha) as i64;
        let beta_off = cx.blob.push(&beta) as i64;
        let plane = self.plane;
        let planes = self.len / plane.max(1);
        if planes == 0 || plane == 0 {
            return Ok(());
        }
        cx.phase("bn", planes as u64, &mut |em, item| {
            let (_, ch) = em.divmod_imm(item, c as i64);
            let ch4 = em.mul_imm(ch, 4);
            let wb = em.addr(super::jit::Loc {
                base: super::jit::Base::Weights,
                offset: 0,
            });
            let wb = em.b.ins().iadd(wb, ch4);
            let a = em.splat_load(wb, alpha_off);
            let bb = em.splat_load(wb, beta_off);
            let start = em.mul_imm(item, (plane * 4) as i64);
            let i = em.addr(input);
            let i = em.b.ins().iadd(i, start);
            let o = em.addr(out);
            let o = em.b.ins().iadd(o, start);
            span(em, &[i, o], plane, &mut |em, v| em.b.ins().fma(v[0], a, bb));
        })
    }
}

/// Applies `f` to `n` elements: reads at `ptrs[..k]`, writes at `ptrs[k]` (the last pointer), four
/// lanes at a time, then the tail lane by lane.
pub fn span(
    em: &mut Emitter,
    ptrs: &[Value],
    n: usize,
    f: &mut dyn FnMut(&mut Emitter, &[Value]) -> Value,
) {
    let k = ptrs.len() - 1;
    let full = (n / 4) as i64;
    if full > 0 {
        em.for_const(0, full * 16, 16, &[], &mut |em, off, _| {
            let vals: Vec<Value> = ptrs[..k]
                .iter()
                .map(|&p| {
                    let a = em.b.ins().iadd(p, off);
                    em.vload(a, 0)
                })
                .collect();
            let r = f(em, &vals);
            let o = em.b.ins().iadd(ptrs[k], off);
            em.vstore(r, o, 0);
            vec![]
        });
    }
    let rem = n % 4;
    if rem > 0 {
        let off = full * 16;
        let vals: Vec<Value> = ptrs[..k]
            .iter()
            .map(|&p| em.vload_partial(p, off, rem, 0.0))
            .collect();
        let r = f(em, &vals);
        em.vstore_partial(r, ptrs[k], off, rem);
    }
}
