//! Lowering: [`Graph`] → [`Plan`]. Schedules the ops in a deterministic topological order, gives every
//! value a buffer (inputs and parameters their own; intermediates a place in the arena) and turns
//! each op node into a step.
//!
//! Lowering lays intermediates out one after the other (the naive layout). The decisions that
//! depend on the schedule — which steps run in place and where each buffer lives — are the plan
//! passes [`inplace`](crate::passes::inplace) and [`memory_plan`](crate::passes::memory_plan), run on
//! the plan this returns; the plan verifier ([`verify_plan`]) checks every plan built here or by them.

use crate::error::{Result, WeightError};
use crate::ir::graph::{Graph, NodeKind, ValueId};
use crate::passes::memory_plan::{layout_naive, verify_plan};
use kiln_runtime::plan::{Buffer, BufferId, BufferKind, Plan, Step};
use kiln_runtime::shape::fmt_shape;
use std::collections::HashMap;

/// Lowers a verified graph whose parameters are all bound, with the naive layout; the result has
/// passed the plan verifier.
pub fn lower(graph: &Graph) -> Result<Plan> {
    let order = graph.topo_order()?;
    let mut buffers = Vec::new();
    let mut buffer_of: HashMap<ValueId, BufferId> = HashMap::new();
    let mut steps = Vec::new();
    let inputs_index: HashMap<ValueId, usize> = graph
        .inputs()
        .iter()
        .enumerate()
        .map(|(i, &v)| (v, i))
        .collect();
    for v in order {
        let node = graph.node(v);
        let kind = match &node.kind {
            NodeKind::Input => BufferKind::Input {
                index: inputs_index[&v],
            },
            NodeKind::Param(Some(t)) => BufferKind::Param(t.clone()),
            NodeKind::Param(None) => {
                return Err(WeightError::Missing {
                    name: node.name.clone(),
                    shape: fmt_shape(&node.ty.shape),
                    source_file: None,
                }
                .into())
            }
            // Placed by `layout_naive` below, once every buffer exists.
            NodeKind::Op(_) => BufferKind::Intermediate { offset: 0 },
        };
        let id = BufferId(buffers.len());
        buffers.push(Buffer {
            name: node.name.clone(),
            shape: node.ty.shape.clone(),
            kind,
        });
        buffer_of.insert(v, id);
        if let NodeKind::Op(op) = &node.kind {
            steps.push(Step {
                op: op.clone(),
                inputs: graph.operands(v).iter().map(|o| buffer_of[o]).collect(),
                output: id,
                in_place: false,
            });
        }
    }
    let mut plan = Plan {
        buffers,
        steps,
        inputs: graph.inputs().iter().map(|v| buffer_of[v]).collect(),
        outputs: graph.outputs().iter().map(|v| buffer_of[v]).collect(),
        arena_bytes: 0,
    };
    let no_aliases = vec![None; plan.buffers.len()];
    layout_naive(&mut plan, &no_aliases);
    verify_plan(&plan)?;
    Ok(plan)
}
