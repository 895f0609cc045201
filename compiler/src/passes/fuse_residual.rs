//! `fuse_residual`: `add(conv(x), y)` becomes one conv whose epilogue adds `y` after the bias, and
//! an activation after that add joins the epilogue too (the ResNet block tail):
//!
//! ```text
//! %c2 = conv2d(%r1, %w2, %b2) {…}             %c2 = conv2d(%r1, %w2, %b2, %x) {…, residual=true, activation=relu}
//! %add = add(%c2, %x)                     ⇒
//! %out = relu(%add)                           return %c2
//! return %out
//! ```
//!
//! Either operand of the add may be the conv (operand 0 is tried first); the other becomes the
//! residual operand. The conv's result must have no other user and must not be a graph output, and
//! its epilogue must not already hold a residual, an activation or a pool (the epilogue's order is
//! bias, residual, activation, pool). The single-use rule also keeps the graph acyclic: nothing but
//! the add reads the conv, so `y` cannot depend on it.

use super::remarks::Remark;
use super::rewrite::{
    epilogue, epilogue_mut, fuse_into_producer, refusals, rewrite_all, sole_use_refusal, value_name,
};
use super::{fuse_activation, Changed, Pass};
use crate::error::Result;
use crate::ir::graph::{Graph, ValueId};
use kiln_runtime::ops::Op;

/// The residual-add fusion pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct FuseResidual;

const NAME: &str = "fuse_residual";

/// An add that can join a producer's epilogue.
struct Fusion {
    add: ValueId,
    producer: ValueId,
    residual: ValueId,
}

impl Pass for FuseResidual {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(&self, graph: &mut Graph) -> Result<Changed> {
        Ok(Changed::by(rewrite_all(NAME, graph, candidate, apply)?))
    }

    fn explain(&self, graph: &Graph) -> Vec<Remark> {
        let mut remarks = refusals(graph, candidate);
        // An activation left after a fused residual add: say why it stayed out.
        remarks.extend(fuse_activation::refused_after(graph, NAME, |op| {
            epilogue(op).is_some_and(|e| e.residual)
        }));
        remarks
    }
}

/// `None` when `add` is not an add with a conv or linear operand; else the fusion or why not.
fn candidate(graph: &Graph, add: ValueId) -> Option<Result<Fusion, Remark>> {
    let Some(Op::Add(_)) = graph.op(add) else {
        return None;
    };
    let operands = graph.operands(add);
    let [a, b] = operands[..] else {
        return None;
    };
    let fusable = |v: ValueId| graph.op(v).and_then(epilogue).is_some();
    if !fusable(a) && !fusable(b) {
        return None;
    }
    let refuse = |why: String| Remark::new(NAME, graph.name(add), format!("not fused: {why}"));
    if a == b {
        return Some(Err(refuse(format!(
            "both operands are {}",
            value_name(graph, a)
        ))));
    }
    let mut reasons = Vec::new();
    for (producer, residual) in [(a, b), (b, a)] {
        let Some(epi) = graph.op(producer).and_then(epilogue) else {
            continue;
        };
        let p = value_name(graph, producer);
        let why = if let Some(why) = sole_use_refusal(graph, producer, add) {
            why
        } else if epi.residual {
            format!("{p} already adds a residual")
        } else if let Some(act) = &epi.activation {
            format!(
                "{p} already applies {}, and the residual add must come before it",
                act.name()
            )
        } else if epi.pool.is_some() {
            format!("{p} already ends in a max-pool")
        } else {
            return Some(Ok(Fusion {
                add,
                producer,
                residual,
            }));
        };
        reasons.push(why);
    }
    Some(Err(refuse(reasons.join("; "))))
}

fn apply(graph: &mut Graph, f: Fusion) -> Result<()> {
    let mut op = graph
        .op(f.producer)
        .cloned()
        .ok_or_else(|| crate::Error::Graph(format!("{NAME}: producer is not an op")))?;
    if let Some(epi) = epilogue_mut(&mut op) {
        epi.residual = true;
    }
    let mut operands = graph.operands(f.producer);
    operands.push(f.residual);
    fuse_into_producer(graph, f.producer, f.add, op, &operands)?;
    // The add's activation, if any, now reads the conv directly: take it in as well.
    let users = graph.users(f.producer);
    if let [user] = users[..] {
        if let Some(Ok(act)) = fuse_activation::candidate(graph, user) {
            fuse_activation::apply(graph, act)?;
        }
    }
    Ok(())
}
