//! The verifier: checks every invariant of a [`Graph`] and reports *all* violations at once.
//!
//! Invariants checked:
//! 1. the graph is acyclic;
//! 2. inputs and parameters have no operands; inputs are exactly the graph's input list;
//! 3. an op's operand slots are exactly `0..arity`, its arity is what the op takes;
//! 4. an op's recorded type equals the type inferred from its operands' types;
//! 5. a parameter's data, when bound, has the parameter's shape;
//! 6. there is at least one output, and every output is a node of the graph;
//! 7. names are non-empty;
//! 8. every value's shape is within Kiln's [`limits`](kiln_runtime::limits) (an op's attributes
//!    are checked with its shape rule, in invariant 4).

use crate::error::VerifyError;
use crate::ir::graph::{Graph, NodeKind, ValueId};
use kiln_runtime::shape::fmt_shape;

/// Checks `graph`; on failure, lists every broken invariant with its node.
pub fn verify(graph: &Graph) -> Result<(), VerifyError> {
    let mut errors: Vec<(String, String)> = Vec::new();
    if let Err(e) = graph.topo_order() {
        errors.push((graph.name.clone(), e.to_string()));
    }
    for v in graph.values() {
        check_node(graph, v, &mut errors);
    }
    for (i, &input) in graph.inputs().iter().enumerate() {
        if !graph.contains(input) || !matches!(graph.node(input).kind, NodeKind::Input) {
            errors.push((
                graph.name.clone(),
                format!("input {i} is not an input node"),
            ));
        }
    }
    if graph.outputs().is_empty() {
        errors.push((graph.name.clone(), "the graph has no outputs".into()));
    }
    for (i, &o) in graph.outputs().iter().enumerate() {
        if !graph.contains(o) {
            errors.push((graph.name.clone(), format!("output {i} does not exist")));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(VerifyError { errors })
    }
}

fn check_node(graph: &Graph, v: ValueId, errors: &mut Vec<(String, String)>) {
    let node = graph.node(v);
    let mut err = |msg: String| errors.push((node.name.clone(), msg));
    if node.name.is_empty() {
        err("empty name".into());
    }
    if let Err(e) = kiln_runtime::limits::check_shape("type", &node.ty.shape) {
        err(e.to_string());
    }
    let slots = graph.operand_slots(v);
    match &node.kind {
        NodeKind::Input => {
            if !slots.is_empty() {
                err("an input has operands".into());
            }
            if !graph.inputs().contains(&v) {
                err("input node missing from the graph's input list".into());
            }
        }
        NodeKind::Param(data) => {
            if !slots.is_empty() {
                err("a parameter has operands".into());
            }
            if let Some(t) = data {
                if t.shape() != node.ty.shape.as_slice() {
                    err(format!(
                        "parameter data has shape {}, declared {}",
                        fmt_shape(t.shape()),
                        node.ty
                    ));
                }
            }
        }
        NodeKind::Op(op) => {
            let arity = op.operand_names().len();
            if slots != (0..arity).collect::<Vec<_>>() {
                err(format!(
                    "{} takes {arity} operand(s), has slots {slots:?}",
                    op.name()
                ));
                return;
            }
            match graph.infer_type(&node.name, op, &graph.operands(v)) {
                Ok(ty) if ty != node.ty => {
                    err(format!("recorded type {} but operands give {ty}", node.ty))
                }
                Ok(_) => {}
                Err(e) => err(e.to_string()),
            }
        }
    }
}
