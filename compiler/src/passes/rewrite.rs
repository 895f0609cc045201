//! The graph edits the passes share: the single-use guard, "fuse the consumer into its producer" and
//! "bypass a node". Passes check their pattern first and only then call one of these, so no pass
//! does its own edge surgery.

use super::Remark;
use crate::error::Result;
use crate::ir::graph::{Graph, NodeKind, ValueId};
use kiln_runtime::ops::{Epilogue, Op};

/// The epilogue of a conv or linear (the ops that can absorb what follows them), or `None`.
pub fn epilogue(op: &Op) -> Option<&Epilogue> {
    match op {
        Op::Conv2d(c) => Some(&c.epilogue),
        Op::Linear(l) => Some(&l.epilogue),
        _ => None,
    }
}

/// The epilogue of a conv or linear, mutably.
pub fn epilogue_mut(op: &mut Op) -> Option<&mut Epilogue> {
    match op {
        Op::Conv2d(c) => Some(&mut c.epilogue),
        Op::Linear(l) => Some(&mut l.epilogue),
        _ => None,
    }
}

/// `%name`.
pub fn value_name(graph: &Graph, v: ValueId) -> String {
    format!("%{}", graph.name(v))
}

/// How many operand slots read `v` (a user that reads it twice counts twice).
pub fn use_count(graph: &Graph, v: ValueId) -> usize {
    graph
        .users(v)
        .into_iter()
        .map(|u| graph.operands(u).iter().filter(|&&o| o == v).count())
        .sum()
}

/// Why `producer`'s result cannot be folded into `consumer`, or `None` when `consumer` reads it
/// exactly once and nothing else does: the result must not be a graph output (the caller wants it)
/// and must have no other user (who would then read the fused, different, value).
pub fn sole_use_refusal(graph: &Graph, producer: ValueId, consumer: ValueId) -> Option<String> {
    let name = value_name(graph, producer);
    if graph.is_output(producer) {
        return Some(format!("{name} is a graph output"));
    }
    let users = graph.users(producer);
    if users != [consumer] {
        let list: Vec<String> = users.iter().map(|&u| value_name(graph, u)).collect();
        return Some(format!(
            "{name} has {} users ({})",
            users.len(),
            list.join(", ")
        ));
    }
    let uses = use_count(graph, producer);
    if uses != 1 {
        return Some(format!(
            "{name} is read {uses} times by {}",
            value_name(graph, consumer)
        ));
    }
    None
}

/// Fuses `consumer` into `producer`: the producer becomes `op` on `operands`, takes the consumer's
/// type (a fused pool shrinks it), every user of the consumer (and the output list) reads the
/// producer instead, and the consumer is removed. The producer keeps its name.
///
/// The caller has checked [`sole_use_refusal`], so no one observes the producer's old value.
pub fn fuse_into_producer(
    graph: &mut Graph,
    producer: ValueId,
    consumer: ValueId,
    op: Op,
    operands: &[ValueId],
) -> Result<()> {
    let ty = graph.ty(consumer).clone();
    let node = graph.node_mut(producer);
    node.kind = NodeKind::Op(op);
    node.ty = ty;
    graph.set_operands(producer, operands);
    graph.replace_all_uses(consumer, producer);
    graph.remove(consumer)?;
    Ok(())
}

/// Removes `v` after pointing its users (and the output list) at `replacement`.
pub fn bypass(graph: &mut Graph, v: ValueId, replacement: ValueId) -> Result<()> {
    graph.replace_all_uses(v, replacement);
    graph.remove(v)?;
    Ok(())
}

/// Removes each of `values` that is a parameter no one reads any more (after a rewrite replaced it).
pub fn remove_unused_params(graph: &mut Graph, values: &[ValueId]) -> Result<()> {
    for &v in values {
        let unused = graph.contains(v)
            && matches!(graph.node(v).kind, NodeKind::Param(_))
            && graph.users(v).is_empty()
            && !graph.is_output(v);
        if unused {
            graph.remove(v)?;
        }
    }
    Ok(())
}

/// Runs `step` until it reports that nothing matched, at most `limit` times; a rewrite that keeps
/// matching past the limit is a bug in the pass, reported rather than looped on forever.
pub fn fixpoint(pass: &str, limit: usize, mut step: impl FnMut() -> Result<bool>) -> Result<usize> {
    let mut rewrites = 0;
    while step()? {
        rewrites += 1;
        if rewrites > limit {
            return Err(crate::Error::Graph(format!(
                "pass {pass} did not reach a fixpoint after {limit} rewrites"
            )));
        }
    }
    Ok(rewrites)
}

/// A candidate check: `None` where `v` is not the pattern at all, `Some(Ok(rewrite))` where it
/// matches, `Some(Err(remark))` where it matches but must be refused.
pub type Candidate<R> = fn(&Graph, ValueId) -> Option<std::result::Result<R, Remark>>;

/// The usual pass body: applies the first acceptable candidate, in value order, until none is
/// left ([`fixpoint`], with the graph's size as the limit). Returns the number of rewrites.
pub fn rewrite_all<R>(
    pass: &str,
    graph: &mut Graph,
    candidate: Candidate<R>,
    apply: fn(&mut Graph, R) -> Result<()>,
) -> Result<usize> {
    let limit = graph.len();
    fixpoint(pass, limit, || {
        let found = graph
            .values()
            .filter_map(|v| candidate(graph, v))
            .find_map(|c| c.ok());
        match found {
            Some(rewrite) => apply(graph, rewrite).map(|()| true),
            None => Ok(false),
        }
    })
}

/// The refused candidates' remarks, in value order (what `explain` lists after the pass ran).
pub fn refusals<R>(graph: &Graph, candidate: Candidate<R>) -> Vec<Remark> {
    graph
        .values()
        .filter_map(|v| candidate(graph, v))
        .filter_map(|c| c.err())
        .collect()
}
