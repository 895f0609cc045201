//! Binding weights to a graph's parameters by their PyTorch `state_dict` names.

use crate::error::{Result, WeightError};
use crate::ir::graph::{Graph, NodeKind};
use kiln_runtime::io::safetensors::SafeTensors;
use kiln_runtime::shape::fmt_shape;

/// Gives every parameter of `graph` its tensor from `weights`. A parameter the file lacks is a
/// [`WeightError::Missing`]; one of the wrong shape a [`WeightError::WrongShape`]. Tensors the graph
/// does not use are ignored (a `state_dict` has buffers such as `num_batches_tracked`).
pub fn bind_weights(graph: &mut Graph, weights: &SafeTensors) -> Result<()> {
    for p in graph.params() {
        let node = graph.node(p);
        let name = node.name.clone();
        let Some(t) = weights.get(&name)? else {
            return Err(WeightError::Missing {
                name,
                shape: fmt_shape(&node.ty.shape),
                source_file: Some(weights.path.display().to_string()),
            }
            .into());
        };
        if t.shape() != node.ty.shape.as_slice() {
            return Err(WeightError::WrongShape {
                name,
                expected: fmt_shape(&node.ty.shape),
                got: fmt_shape(t.shape()),
            }
            .into());
        }
        graph.node_mut(p).kind = NodeKind::Param(Some(t.clone()));
    }
    Ok(())
}
