//! Prints a graph in the text form.

use super::attrs::print_attrs;
use crate::ir::graph::{Graph, ValueId};

/// The text form of `graph`: the header with the inputs, the parameters in creation order, the ops
/// in [`Graph::topo_order`], then `return`. Deterministic, and the parser's input.
///
/// A graph with a cycle (which the verifier rejects) still prints, for debugging: a comment says
/// so and the ops follow in creation order.
pub fn print(graph: &Graph) -> String {
    let mut out = String::new();
    let inputs: Vec<String> = graph
        .inputs()
        .iter()
        .map(|&v| format!("{}: {}", value(graph, v), graph.ty(v)))
        .collect();
    out.push_str(&format!("graph {}({}) {{\n", graph.name, inputs.join(", ")));
    for p in graph.params() {
        out.push_str(&format!("  param {}: {}\n", value(graph, p), graph.ty(p)));
    }
    let order = match graph.topo_order() {
        Ok(order) => order,
        Err(e) => {
            out.push_str(&format!("  ; {e}; the ops follow in creation order\n"));
            graph.values().collect()
        }
    };
    for v in order {
        let Some(op) = graph.op(v) else { continue };
        let operands: Vec<String> = graph
            .operands(v)
            .into_iter()
            .map(|o| value(graph, o))
            .collect();
        let attrs: Vec<String> = print_attrs(op)
            .into_iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" {{{}}}", attrs.join(", "))
        };
        out.push_str(&format!(
            "  {} = {}({}){attrs} : {}\n",
            value(graph, v),
            op.name(),
            operands.join(", "),
            graph.ty(v)
        ));
    }
    let outputs: Vec<String> = graph.outputs().iter().map(|&v| value(graph, v)).collect();
    out.push_str(&format!("  return {}\n}}\n", outputs.join(", ")));
    out
}

/// `%name`; an output list may hold a removed node (the verifier reports it), which must not
/// make printing panic.
fn value(graph: &Graph, v: ValueId) -> String {
    if graph.contains(v) {
        format!("%{}", graph.name(v))
    } else {
        format!("%<removed node {}>", v.index())
    }
}
