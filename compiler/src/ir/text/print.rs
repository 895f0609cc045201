//! Prints a graph in the text form.

use crate::ir::graph::Graph;

/// The text form of `graph`.
pub fn print(graph: &Graph) -> String {
    let _ = graph;
    todo!()
}
