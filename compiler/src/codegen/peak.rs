//! The f32x4 FMA peak of this machine, measured by a JIT'd loop: the ceiling the kernels are
//! compared against (`kiln bench` reports "share of peak" against this number, measured in the same
//! run).
//!
//! The loop keeps [`ACCUMULATORS`] independent f32x4 accumulators (enough to cover the FMA latency on
//! two FMA ports) and issues one FMA into each per iteration, with both multiplicands in registers,
//! so it measures FMA throughput and nothing else.

use super::jit::{self, flags};
use super::CodegenError;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{F32, F32X4, I64};
use cranelift_codegen::ir::{BlockArg, InstBuilder};
use std::time::{Duration, Instant};

/// Independent accumulators in the loop.
pub const ACCUMULATORS: usize = 12;

/// Flops per loop iteration: one 4-lane FMA (2 flops per lane) per accumulator.
const FLOPS_PER_ITER: u64 = (ACCUMULATORS * 4 * 2) as u64;

/// Measures the single-thread f32x4 FMA throughput in GFLOP/s: the best of ten runs of about
/// `budget / 10` each (the best, because interference from other processes only ever slows a run
/// down, and short runs are likelier to find a quiet moment on a shared machine).
pub fn measure_peak_gflops(budget: Duration) -> Result<f64, CodegenError> {
    // fn(iters: i64, out: *mut f32x4[ACCUMULATORS])
    let (module, ptr) = jit::standalone(2, &mut |b, params| {
        let (iters, out) = (params[0], params[1]);
        let x = b.ins().f32const(1.000_000_1f32);
        let x = b.ins().splat(F32X4, x);
        let y = b.ins().f32const(0.999_999_9f32);
        let y = b.ins().splat(F32X4, y);
        let header = b.create_block();
        let body = b.create_block();
        let exit = b.create_block();
        b.append_block_param(header, I64);
        for _ in 0..ACCUMULATORS {
            b.append_block_param(header, F32X4);
        }
        let zero = b.ins().iconst(I64, 0);
        let init: Vec<BlockArg> = (0..ACCUMULATORS)
            .map(|k| {
                let c = b.ins().f32const(k as f32);
                BlockArg::Value(b.ins().splat(F32X4, c))
            })
            .collect();
        let mut args = vec![BlockArg::Value(zero)];
        args.extend(init);
        b.ins().jump(header, &args);
        b.switch_to_block(header);
        let p = b.block_params(header).to_vec();
        let cond = b.ins().icmp(IntCC::SignedLessThan, p[0], iters);
        b.ins().brif(cond, body, &[], exit, &[]);
        b.switch_to_block(body);
        let mut next = vec![BlockArg::Value(b.ins().iadd_imm_s(p[0], 1))];
        for &acc in &p[1..] {
            next.push(BlockArg::Value(b.ins().fma(x, y, acc)));
        }
        b.ins().jump(header, &next);
        b.switch_to_block(exit);
        for (k, &acc) in p[1..].iter().enumerate() {
            b.ins().store(flags(), acc, out, (16 * k) as i32);
        }
        let _ = F32;
    })?;
    // SAFETY: the function was just defined with the signature (i64 iters, i64 out) and no
    // results; `out` below points at ACCUMULATORS writable f32x4 (16-byte) slots, the only memory
    // it writes; `module` keeps the code mapped until after the last call.
    let f = unsafe { std::mem::transmute::<*const u8, unsafe extern "C" fn(i64, *mut f32)>(ptr) };
    let mut out = vec![0f32; ACCUMULATORS * 4];
    // Calibrate to about a tenth of the budget per run.
    let mut iters: i64 = 1 << 16;
    loop {
        let t = Instant::now();
        // SAFETY: see the transmute above; `out` holds ACCUMULATORS·4 floats.
        unsafe { f(iters, out.as_mut_ptr()) };
        let el = t.elapsed();
        if el >= budget / 40 || iters >= 1 << 40 {
            let per_run = (budget / 10).as_secs_f64();
            let scale = per_run / el.as_secs_f64().max(1e-9);
            iters = ((iters as f64 * scale) as i64).max(1 << 16);
            break;
        }
        iters *= 4;
    }
    let mut best = 0f64;
    for _ in 0..10 {
        let t = Instant::now();
        // SAFETY: as above.
        unsafe { f(iters, out.as_mut_ptr()) };
        let secs = t.elapsed().as_secs_f64().max(1e-9);
        best = best.max(iters as f64 * FLOPS_PER_ITER as f64 / secs / 1e9);
    }
    let module = module.into_inner().unwrap_or_else(|e| e.into_inner());
    // SAFETY: `f` is not called after this point and no copy of it escapes this function.
    unsafe { module.free_memory() };
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_is_measured_and_plausible() {
        let g = measure_peak_gflops(Duration::from_millis(50)).unwrap();
        // Any x86-64 core with FMA does at least a few GFLOP/s; none does 1000 on f32x4.
        assert!(g > 1.0 && g < 1000.0, "{g}");
    }
}
