//! `fuse_activation`: an activation (relu, leaky_relu, sigmoid, tanh, gelu, elu) whose operand is a
//! conv or linear with no other user becomes that op's epilogue, applied while the result is still
//! in registers.
//!
//! ```text
//! %c = conv2d(%x, %w, %b) {…} : f32[1, 8, 4, 4]       %c = conv2d(%x, %w, %b) {…, activation=relu} : f32[1, 8, 4, 4]
//! %r = relu(%c) : f32[1, 8, 4, 4]                 ⇒
//! %p = max_pool2d(%r) {…}                             %p = max_pool2d(%c) {…}
//! ```
//!
//! The epilogue runs bias, residual, activation, pool in that order, so an op that already has an
//! activation or a pool cannot take one more. Refused when the conv's result is a graph output or
//! has another user (who would then see the activated value).

use super::remarks::Remark;
use super::rewrite::{
    epilogue, fuse_into_producer, refusals, rewrite_all, sole_use_refusal, value_name,
};
use super::{Changed, Pass};
use crate::error::Result;
use crate::ir::graph::{Graph, ValueId};
use kiln_runtime::ops::{Activation, Op};

/// The activation fusion pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct FuseActivation;

const NAME: &str = "fuse_activation";

/// An activation that can join its producer's epilogue.
pub(super) struct Fusion {
    activation: Activation,
    act: ValueId,
    producer: ValueId,
}

impl Pass for FuseActivation {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(&self, graph: &mut Graph) -> Result<Changed> {
        Ok(Changed::by(rewrite_all(NAME, graph, candidate, apply)?))
    }

    fn explain(&self, graph: &Graph) -> Vec<Remark> {
        refusals(graph, candidate)
    }
}

/// `None` when `act` is not an activation of a conv or linear; else whether it can be fused (and
/// why not). `fuse_residual` uses it for the activation after a residual add.
pub(super) fn candidate(graph: &Graph, act: ValueId) -> Option<Result<Fusion, Remark>> {
    let Some(Op::Activation(activation)) = graph.op(act) else {
        return None;
    };
    let producer = *graph.operands(act).first()?;
    let epi = epilogue(graph.op(producer)?)?;
    let refuse = |why: String| Remark::new(NAME, graph.name(act), format!("not fused: {why}"));
    if let Some(why) = sole_use_refusal(graph, producer, act) {
        return Some(Err(refuse(why)));
    }
    let p = value_name(graph, producer);
    if let Some(existing) = &epi.activation {
        return Some(Err(refuse(format!(
            "{p} already applies {}",
            existing.name()
        ))));
    }
    if epi.pool.is_some() {
        return Some(Err(refuse(format!(
            "{p} already ends in a max-pool, which must come after the activation"
        ))));
    }
    Some(Ok(Fusion {
        activation: *activation,
        act,
        producer,
    }))
}

/// Moves the activation into the producer's epilogue.
pub(super) fn apply(graph: &mut Graph, f: Fusion) -> Result<()> {
    let mut op = graph
        .op(f.producer)
        .cloned()
        .ok_or_else(|| crate::Error::Graph(format!("{NAME}: producer is not an op")))?;
    if let Some(epi) = super::rewrite::epilogue_mut(&mut op) {
        epi.activation = Some(f.activation);
    }
    let operands = graph.operands(f.producer);
    fuse_into_producer(graph, f.producer, f.act, op, &operands)
}

/// Why each activation that reads an op matching `producer` was not fused, credited to `pass`:
/// passes that grow an epilogue past the activation's place (residual, pool) explain the
/// activations they leave behind.
pub(super) fn refused_after(
    graph: &Graph,
    pass: &'static str,
    producer: impl Fn(&Op) -> bool,
) -> Vec<Remark> {
    graph
        .values()
        .filter(|&v| {
            graph
                .operands(v)
                .first()
                .and_then(|&p| graph.op(p))
                .is_some_and(&producer)
        })
        .filter_map(|v| match candidate(graph, v) {
            Some(Err(mut r)) => {
                r.pass = pass;
                Some(r)
            }
            _ => None,
        })
        .collect()
}
