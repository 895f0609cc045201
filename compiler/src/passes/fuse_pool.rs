//! `fuse_pool`: a max-pool whose input is a conv with no other user becomes the last stage of that
//! conv's epilogue, so the full-resolution (activated) result is never stored:
//!
//! ```text
//! %c = conv2d(%x, %w, %b) {…, activation=relu} : f32[1, 32, 32, 32]
//! %p = max_pool2d(%c) {kernel=[2, 2], …} : f32[1, 32, 16, 16]
//!   ⇒
//! %c = conv2d(%x, %w, %b) {…, activation=relu, pool_kernel=[2, 2], …} : f32[1, 32, 16, 16]
//! ```
//!
//! Runs after `fuse_activation`, since the pool comes after the activation in the epilogue. Any
//! conv qualifies (with or without an activation); a linear cannot pool. Refused when the conv's
//! result has another user or is a graph output (they need the full-resolution value), or when the
//! conv already pools.
//!
//! A relu (or a leaky_relu with a non-negative slope) right after the pool joins too, although the
//! epilogue applies it before the pool: for a non-decreasing `f`, `max(f(a), f(b)) = f(max(a, b))`
//! exactly — `f` is applied to the same element either way — and NaN stays NaN either way
//! (`relu(NaN)` is NaN, and a window holding a NaN pools to NaN). The −∞ padding never wins a
//! window that holds an input element; but a window lying wholly in the padding (possible with
//! dilation) pools to −∞, and `relu(−∞) = 0` differs from the maximum of no activated element, so
//! such a pool keeps its relu outside. Other activations are not monotonic (gelu) or not exactly so
//! in floating point, and stay:
//!
//! ```text
//! %c = conv2d(%x, %w) {…}             %c = conv2d(%x, %w) {…, activation=relu, pool_kernel=[2, 2], …}
//! %p = max_pool2d(%c) {…}        ⇒
//! %r = relu(%p)                       return %c
//! ```

use super::remarks::Remark;
use super::rewrite::{fuse_into_producer, refusals, rewrite_all, sole_use_refusal, value_name};
use super::{fuse_activation, Changed, Pass};
use crate::error::Result;
use crate::ir::graph::{Graph, ValueId};
use kiln_runtime::ops::{Activation, MaxPool2d, Op};

/// The max-pool fusion pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct FusePool;

const NAME: &str = "fuse_pool";

struct Fusion {
    pool: MaxPool2d,
    pool_value: ValueId,
    conv: ValueId,
    /// Whether every window of the pool covers at least one element of its input.
    no_empty_window: bool,
}

impl Pass for FusePool {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(&self, graph: &mut Graph) -> Result<Changed> {
        Ok(Changed::by(rewrite_all(NAME, graph, candidate, apply)?))
    }

    fn explain(&self, graph: &Graph) -> Vec<Remark> {
        let mut remarks = refusals(graph, candidate);
        // An activation left after a conv that now pools: say why it stayed out.
        remarks.extend(fuse_activation::refused_after(
            graph,
            NAME,
            |op| matches!(op, Op::Conv2d(c) if c.epilogue.pool.is_some()),
        ));
        remarks
    }
}

/// Whether `max(f(a), f(b)) = f(max(a, b))` holds exactly for every pair of floats.
fn commutes_with_max(a: &Activation) -> bool {
    match a {
        Activation::Relu => true,
        Activation::LeakyRelu { negative_slope } => *negative_slope >= 0.0,
        _ => false,
    }
}

/// `None` unless `v` is a max-pool of a conv; else the fusion or why not.
fn candidate(graph: &Graph, v: ValueId) -> Option<Result<Fusion, Remark>> {
    let Some(Op::MaxPool2d(pool)) = graph.op(v) else {
        return None;
    };
    let conv = *graph.operands(v).first()?;
    let Some(Op::Conv2d(c)) = graph.op(conv) else {
        return None;
    };
    let refuse = |why: String| Remark::new(NAME, graph.name(v), format!("not fused: {why}"));
    if let Some(why) = sole_use_refusal(graph, conv, v) {
        return Some(Err(refuse(why)));
    }
    if c.epilogue.pool.is_some() {
        return Some(Err(refuse(format!(
            "{} already ends in a max-pool",
            value_name(graph, conv)
        ))));
    }
    Some(Ok(Fusion {
        pool: pool.clone(),
        pool_value: v,
        conv,
        no_empty_window: no_empty_window(pool, &graph.ty(conv).shape, &graph.ty(v).shape),
    }))
}

/// Whether every output window of `pool` (input `[N, C, H, W]`, output `[N, C, OH, OW]`) has at
/// least one tap inside the input, rather than only in the padding.
fn no_empty_window(pool: &MaxPool2d, input: &[usize], output: &[usize]) -> bool {
    let (Some(&[h, w]), Some(&[oh, ow])) = (input.get(2..4), output.get(2..4)) else {
        return false;
    };
    let pads = [pool.padding.top, pool.padding.left];
    [(h, oh, 0), (w, ow, 1)].into_iter().all(|(size, out, d)| {
        (0..out).all(|o| {
            (0..pool.kernel[d]).any(|k| {
                let at = o * pool.stride[d] + k * pool.dilation[d];
                at >= pads[d] && at - pads[d] < size
            })
        })
    })
}

fn apply(graph: &mut Graph, f: Fusion) -> Result<()> {
    let Some(Op::Conv2d(mut conv)) = graph.op(f.conv).cloned() else {
        return Err(crate::Error::Graph(format!(
            "{NAME}: producer is not a conv"
        )));
    };
    conv.epilogue.pool = Some(f.pool);
    let operands = graph.operands(f.conv);
    fuse_into_producer(
        graph,
        f.conv,
        f.pool_value,
        Op::Conv2d(conv.clone()),
        &operands,
    )?;
    // A relu after the pool commutes with it: take it in as the epilogue's activation.
    let users = graph.users(f.conv);
    let [act] = users[..] else { return Ok(()) };
    let Some(Op::Activation(a)) = graph.op(act).cloned() else {
        return Ok(());
    };
    if conv.epilogue.activation.is_some()
        || !f.no_empty_window
        || !commutes_with_max(&a)
        || sole_use_refusal(graph, f.conv, act).is_some()
    {
        return Ok(());
    }
    conv.epilogue.activation = Some(a);
    fuse_into_producer(graph, f.conv, act, Op::Conv2d(conv), &operands)
}
