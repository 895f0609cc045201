//! `fold_batch_norm`: an inference BatchNorm whose input is a conv (or linear) with no other user
//! becomes part of that conv's weights and bias.
//!
//! BatchNorm computes, per output channel `o`, `(y − mean[o]) · s[o] + beta[o]` with
//! `s[o] = gamma[o] / √(var[o] + eps)`. With `y = w ⋆ x + b` that is `(w·s[o]) ⋆ x + (b − mean)·s + beta`,
//! so the conv takes the weight `w'[o, …] = w[o, …]·s[o]` and the bias `b' = (b − mean)·s + beta` (a
//! conv without bias gains one):
//!
//! ```text
//! %c = conv2d(%x, %w) {…}                          %c = conv2d(%x, %w.folded, %c.bias.folded) {…}
//! %bn = batch_norm(%c, %g, %b, %m, %v) {eps=1e-5}   ⇒
//! %r = relu(%bn)                                   %r = relu(%c)
//! ```
//!
//! The folded weight and bias are new parameters (`…folded`), because the optimized graph's text
//! must not claim that a `state_dict` tensor holds values it does not; the old ones are removed once
//! unused. Folding needs the data, so a graph whose weights are not bound keeps its BatchNorms (and
//! says so). The arithmetic is done in f64 and rounded once.

use super::remarks::Remark;
use super::rewrite::{
    epilogue, fixpoint, fuse_into_producer, remove_unused_params, sole_use_refusal, value_name,
};
use super::{Changed, Pass};
use crate::error::Result;
use crate::ir::graph::{Graph, NodeKind, ValueId};
use kiln_runtime::ops::{BatchNorm2d, Op};
use kiln_runtime::Tensor;

/// The BatchNorm folding pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct FoldBatchNorm;

const NAME: &str = "fold_batch_norm";

/// A BatchNorm that can be folded into its producer, with the data the fold needs.
struct Fold {
    bn: ValueId,
    producer: ValueId,
    weight: (ValueId, Tensor),
    bias: Option<(ValueId, Tensor)>,
    /// gamma, beta, running_mean, running_var.
    stats: [(ValueId, Tensor); 4],
    eps: f32,
}

impl Pass for FoldBatchNorm {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(&self, graph: &mut Graph) -> Result<Changed> {
        let limit = graph.len();
        let n = fixpoint(NAME, limit, || {
            let found = candidates(graph).into_iter().find_map(|c| c.ok());
            match found {
                Some(fold) => apply(graph, fold).map(|()| true),
                None => Ok(false),
            }
        })?;
        Ok(Changed::by(n))
    }

    fn explain(&self, graph: &Graph) -> Vec<Remark> {
        candidates(graph)
            .into_iter()
            .filter_map(|c| c.err())
            .collect()
    }
}

/// Every BatchNorm whose input is a conv or linear: foldable, or the reason it is not.
fn candidates(graph: &Graph) -> Vec<Result<Fold, Remark>> {
    let order = graph.values().collect::<Vec<_>>();
    order
        .into_iter()
        .filter_map(|bn| {
            let Some(Op::BatchNorm2d(attrs)) = graph.op(bn) else {
                return None;
            };
            let operands = graph.operands(bn);
            let producer = *operands.first()?;
            let producer_op = graph.op(producer)?;
            let epi = epilogue(producer_op)?;
            Some(check(
                graph,
                bn,
                attrs,
                producer,
                producer_op,
                epi,
                &operands,
            ))
        })
        .collect()
}

fn check(
    graph: &Graph,
    bn: ValueId,
    attrs: &BatchNorm2d,
    producer: ValueId,
    producer_op: &Op,
    epi: &kiln_runtime::ops::Epilogue,
    operands: &[ValueId],
) -> Result<Fold, Remark> {
    let refuse = |why: String| Remark::new(NAME, graph.name(bn), format!("not folded: {why}"));
    if let Some(why) = sole_use_refusal(graph, producer, bn) {
        return Err(refuse(why));
    }
    if !epi.is_empty() {
        return Err(refuse(format!(
            "{} already has a fused epilogue; the BatchNorm would have to come after it",
            value_name(graph, producer)
        )));
    }
    let has_bias = match producer_op {
        Op::Conv2d(c) => c.bias,
        Op::Linear(l) => l.bias,
        _ => false,
    };
    let producer_operands = graph.operands(producer);
    let data = |v: ValueId| -> Result<(ValueId, Tensor), Remark> {
        match &graph.node(v).kind {
            NodeKind::Param(Some(t)) => Ok((v, t.clone())),
            NodeKind::Param(None) => Err(refuse(format!(
                "{} has no data (weights are not bound)",
                value_name(graph, v)
            ))),
            _ => Err(refuse(format!(
                "{} is computed, not a parameter",
                value_name(graph, v)
            ))),
        }
    };
    let weight = data(
        *producer_operands
            .get(1)
            .ok_or_else(|| refuse("no weight".into()))?,
    )?;
    let bias = if has_bias {
        let b = *producer_operands
            .get(2)
            .ok_or_else(|| refuse("no bias operand".into()))?;
        Some(data(b)?)
    } else {
        None
    };
    let stat = |i: usize| -> Result<(ValueId, Tensor), Remark> {
        let v = *operands
            .get(i)
            .ok_or_else(|| refuse("missing BatchNorm operand".into()))?;
        data(v)
    };
    let stats = [stat(1)?, stat(2)?, stat(3)?, stat(4)?];
    let channels = weight.1.shape().first().copied().unwrap_or(0);
    let bias_channels = bias.as_ref().map_or(channels, |(_, t)| t.numel());
    if stats.iter().any(|(_, t)| t.numel() != channels) || bias_channels != channels {
        return Err(refuse(format!(
            "the bias or the BatchNorm's statistics do not have {channels} channels"
        )));
    }
    Ok(Fold {
        bn,
        producer,
        weight,
        bias,
        stats,
        eps: attrs.eps,
    })
}

fn apply(graph: &mut Graph, fold: Fold) -> Result<()> {
    let Fold {
        bn,
        producer,
        weight: (w_id, w),
        bias,
        stats: [(g_id, gamma), (b_id, beta), (m_id, mean), (v_id, var)],
        eps,
    } = fold;
    let channels = w.shape().first().copied().unwrap_or(0);
    let per_channel = w.numel().checked_div(channels).unwrap_or(0);
    // s[o] = gamma[o] / √(var[o] + eps), in f64 so that the fold itself adds no rounding.
    let scale: Vec<f64> = (0..channels)
        .map(|o| f64::from(gamma.data()[o]) / (f64::from(var.data()[o]) + f64::from(eps)).sqrt())
        .collect();
    let mut new_w = w.clone();
    for (i, x) in new_w.data_mut().iter_mut().enumerate() {
        let o = i.checked_div(per_channel).unwrap_or(0);
        *x = (f64::from(*x) * scale[o]) as f32;
    }
    let old_b = bias.as_ref().map(|(_, t)| t.data().to_vec());
    let new_b: Vec<f32> = (0..channels)
        .map(|o| {
            let b = old_b.as_ref().map_or(0.0, |b| f64::from(b[o]));
            ((b - f64::from(mean.data()[o])) * scale[o] + f64::from(beta.data()[o])) as f32
        })
        .collect();
    let new_b = Tensor::from_vec(new_b, &[channels])?;

    let w_name = graph.fresh_name(&format!("{}.folded", graph.name(w_id)));
    let b_name = match &bias {
        Some((b_id, _)) => format!("{}.folded", graph.name(*b_id)),
        None => format!("{}.bias.folded", graph.name(producer)),
    };
    let b_name = graph.fresh_name(&b_name);
    let w_shape = w.shape().to_vec();
    let new_w_id = graph.add_param(&w_name, &w_shape, Some(new_w))?;
    let new_b_id = graph.add_param(&b_name, &[channels], Some(new_b))?;

    let mut op = graph
        .op(producer)
        .cloned()
        .ok_or_else(|| crate::Error::Graph(format!("{NAME}: producer is not an op")))?;
    match &mut op {
        Op::Conv2d(c) => c.bias = true,
        Op::Linear(l) => l.bias = true,
        _ => {}
    }
    let input = graph
        .operands(producer)
        .first()
        .copied()
        .ok_or_else(|| crate::Error::Graph(format!("{NAME}: producer has no input")))?;
    fuse_into_producer(graph, producer, bn, op, &[input, new_w_id, new_b_id])?;
    let mut old = vec![w_id, g_id, b_id, m_id, v_id];
    old.extend(bias.map(|(b, _)| b));
    remove_unused_params(graph, &old)
}
