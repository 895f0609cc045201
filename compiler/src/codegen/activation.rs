//! Vector (f32x4) forms of the activations, applied in registers by every kernel's epilogue.
//!
//! Accuracy against the reference (`Activation::eval_scalar`), measured by
//! `tests/jit_activations.rs` over a dense grid on [−20, 20], log-spaced magnitudes up to
//! `f32::MAX`, ±0, subnormals, ±∞ and NaN; the test's bound is a maximum absolute error of 1e-6 for
//! every activation, and the measured maxima are:
//!
//! | activation | form | max abs error |
//! |---|---|---|
//! | `relu`, `leaky_relu` | the reference's compares (NaN and −0 pass through) | 0 (exact) |
//! | `sigmoid` | `1 / (1 + e^−x)`, the reference's own formula | 1.2e-7 |
//! | `tanh` | `sign(x)·(1 − 2 / (e^{2|x|} + 1))` (−0 → −0) | 1.3e-7 |
//! | `gelu` (erf) | `x·Φ(x)`, `Φ = ½·erfc(−x/√2)`, Numerical Recipes' `erfcc` (relative error < 1.2e-7) | 4.8e-7 |
//! | `gelu` (tanh) | `x / (1 + e^{−2u})`, `u = √(2/π)·(x + 0.044715·x³)` | 4.8e-7 |
//! | `elu` | `x > 0 ? x : α·(e^x − 1)` | 6.0e-8 (α = 1) |
//!
//! All but relu build on one vector `exp`: Cephes' `expf` scheme — `x = n·ln2 + r`, a degree-5
//! polynomial for `e^r` on `|r| ≤ ln2/2`, `2^n` built in the exponent bits — about 1–2 ulp
//! relative. Inputs are clamped to `[−87.3, 88.7]` (below, the result is ≈1.2e-38 instead of a
//! subnormal or 0: an absolute error under 2e-38) and `x > 88.72` gives +∞. For `gelu` with
//! `x < 0`, `Φ` keeps its relative accuracy (no `1 + erf` cancellation); for `x ≥ 0`,
//! `Φ = 1 − ½·erfc(x/√2)`; the largest errors are a few ulp of results near |x| ≈ 4–5.
//!
//! NaN propagates through every form (compares are false for NaN and the arithmetic keeps it).

use super::jit::Emitter;
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::types::{F32X4, I32X4};
use cranelift_codegen::ir::{InstBuilder, Value};
use kiln_runtime::ops::{Activation, GeluApproximate};

/// Whether `act` (none, or an activation) may be applied after a max-pool instead of before: it
/// must be monotone non-decreasing, rounding included (relu, and leaky_relu with a slope ≥ 0), so
/// that the max of the activated values is the activated max. The fused-pool kernels then apply
/// bias and activation once per pooled output instead of once per conv output.
pub fn commutes_with_max(act: Option<&Activation>) -> bool {
    match act {
        None | Some(Activation::Relu) => true,
        Some(Activation::LeakyRelu { negative_slope }) => *negative_slope >= 0.0,
        Some(_) => false,
    }
}

/// Applies `act` to the four lanes of `x`.
pub fn emit(em: &mut Emitter, act: &Activation, x: Value) -> Value {
    match *act {
        Activation::Relu => {
            // `x < 0 ? 0 : x`: false for NaN and −0, which pass through as in PyTorch. One
            // compare and a blend, where `fmax` would lower to a NaN-fixing sequence.
            let zero = em.vconst(0.0);
            let neg = em.b.ins().fcmp(FloatCC::LessThan, x, zero);
            em.select_mask(neg, zero, x)
        }
        Activation::LeakyRelu { negative_slope } => {
            let zero = em.vconst(0.0);
            let pos = em.b.ins().fcmp(FloatCC::GreaterThan, x, zero);
            let slope = em.vconst(negative_slope);
            let scaled = em.b.ins().fmul(x, slope);
            em.select_mask(pos, x, scaled)
        }
        Activation::Sigmoid => {
            let nx = em.b.ins().fneg(x);
            let e = exp(em, nx);
            let one = em.vconst(1.0);
            let d = em.b.ins().fadd(one, e);
            em.b.ins().fdiv(one, d)
        }
        Activation::Tanh => tanh(em, x),
        Activation::Gelu {
            approximate: GeluApproximate::None,
        } => gelu_erf(em, x),
        Activation::Gelu {
            approximate: GeluApproximate::Tanh,
        } => {
            // x / (1 + e^(−2u)), u = √(2/π)·(x + 0.044715·x³).
            let c = em.vconst(0.044715);
            let x2 = em.b.ins().fmul(x, x);
            let x3 = em.b.ins().fmul(x2, x);
            let inner = em.b.ins().fma(c, x3, x);
            let k = em.vconst(-2.0 * 0.797_884_6);
            let m2u = em.b.ins().fmul(inner, k);
            let e = exp(em, m2u);
            let one = em.vconst(1.0);
            let d = em.b.ins().fadd(one, e);
            em.b.ins().fdiv(x, d)
        }
        Activation::Elu { alpha } => {
            let e = exp(em, x);
            let one = em.vconst(1.0);
            let em1 = em.b.ins().fsub(e, one);
            let a = em.vconst(alpha);
            let neg = em.b.ins().fmul(em1, a);
            let zero = em.vconst(0.0);
            let pos = em.b.ins().fcmp(FloatCC::GreaterThan, x, zero);
            em.select_mask(pos, x, neg)
        }
    }
}

/// `min(max(x, lo), hi)` that keeps NaN (compare-and-blend: false compares leave `x`).
fn clamp(em: &mut Emitter, x: Value, lo: f32, hi: f32) -> Value {
    let lo_v = em.vconst(lo);
    let below = em.b.ins().fcmp(FloatCC::LessThan, x, lo_v);
    let x = em.select_mask(below, lo_v, x);
    let hi_v = em.vconst(hi);
    let above = em.b.ins().fcmp(FloatCC::GreaterThan, x, hi_v);
    em.select_mask(above, hi_v, x)
}

/// `e^x` on four lanes (see the module doc for its accuracy and range).
pub fn exp(em: &mut Emitter, x: Value) -> Value {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in a part with few bits (exact products with n) and the rest (Cephes).
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    let xc = clamp(em, x, -87.3, 88.7);
    let l2e = em.vconst(LOG2E);
    let t = em.b.ins().fmul(xc, l2e);
    let n = em.b.ins().nearest(t);
    let c1 = em.vconst(-C1);
    let r = em.b.ins().fma(n, c1, xc);
    let c2 = em.vconst(-C2);
    let r = em.b.ins().fma(n, c2, r);
    // e^r ≈ 1 + r + r²·P(r).
    let coeffs = [
        1.987_569_1e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        5e-1,
    ];
    let mut p = em.vconst(coeffs[0]);
    for &c in &coeffs[1..] {
        let cv = em.vconst(c);
        p = em.b.ins().fma(p, r, cv);
    }
    let r2 = em.b.ins().fmul(r, r);
    let one = em.vconst(1.0);
    let r1 = em.b.ins().fadd(r, one);
    let y = em.b.ins().fma(p, r2, r1);
    // 2^n from the exponent bits: n ∈ [−126, 128) after the clamp, so n + 127 is a valid biased
    // exponent except at the top, where the overflow test below takes over.
    let ni = em.b.ins().fcvt_to_sint_sat(I32X4, n);
    let bias = em.iconst4(127);
    let e = em.b.ins().iadd(ni, bias);
    let e = em.b.ins().ishl_imm_u(e, 23);
    let scale = em.bitcast(F32X4, e);
    let y = em.b.ins().fmul(y, scale);
    // Overflow: x > 88.72 (ln of the largest float) is +∞.
    let lim = em.vconst(88.722_84);
    let over = em.b.ins().fcmp(FloatCC::GreaterThan, x, lim);
    let inf = em.vconst(f32::INFINITY);
    em.select_mask(over, inf, y)
}

/// `tanh(x) = sign(x)·(1 − 2 / (e^{2|x|} + 1))`.
fn tanh(em: &mut Emitter, x: Value) -> Value {
    let ax = em.b.ins().fabs(x);
    let two = em.vconst(2.0);
    let ax2 = em.b.ins().fmul(ax, two);
    let e = exp(em, ax2);
    let one = em.vconst(1.0);
    let d = em.b.ins().fadd(e, one);
    let q = em.b.ins().fdiv(two, d);
    let t = em.b.ins().fsub(one, q);
    // Put x's sign bit on |tanh| (keeps −0 and NaN's payload sign).
    let sign = em.and_bits(x, 0x8000_0000);
    em.b.ins().bor(t, sign)
}

/// `erfc(z)` for `z ≥ 0` (Numerical Recipes' `erfcc`, relative error < 1.2e-7):
/// `t = 1/(1 + z/2)`, `erfc = t·exp(−z² − 1.26551223 + t·(1.00002368 + t·(…)))`.
fn erfc_nonneg(em: &mut Emitter, z: Value) -> Value {
    const C: [f32; 10] = [
        -1.265_512_2,
        1.000_023_7,
        0.374_091_96,
        0.096_784_18,
        -0.186_288_06,
        0.278_868_07,
        -1.135_204,
        1.488_515_9,
        -0.822_152_23,
        0.170_872_77,
    ];
    let half = em.vconst(0.5);
    let one = em.vconst(1.0);
    let d = em.b.ins().fma(z, half, one);
    let t = em.b.ins().fdiv(one, d);
    let mut p = em.vconst(C[9]);
    for &c in C[..9].iter().rev() {
        let cv = em.vconst(c);
        p = em.b.ins().fma(p, t, cv);
    }
    let z2 = em.b.ins().fmul(z, z);
    let arg = em.b.ins().fsub(p, z2);
    let e = exp(em, arg);
    em.b.ins().fmul(t, e)
}

/// Exact GELU `x·Φ(x)` with `Φ(x) = ½·erfc(−x/√2)`.
fn gelu_erf(em: &mut Emitter, x: Value) -> Value {
    let k = em.vconst(std::f32::consts::FRAC_1_SQRT_2);
    let z = em.b.ins().fmul(x, k);
    let az = em.b.ins().fabs(z);
    let ec = erfc_nonneg(em, az);
    let half = em.vconst(0.5);
    let tail = em.b.ins().fmul(ec, half); // ½·erfc(|z|)
    let one = em.vconst(1.0);
    let upper = em.b.ins().fsub(one, tail); // Φ for x ≥ 0
    let zero = em.vconst(0.0);
    let neg = em.b.ins().fcmp(FloatCC::LessThan, x, zero);
    let phi = em.select_mask(neg, tail, upper);
    em.b.ins().fmul(x, phi)
}
