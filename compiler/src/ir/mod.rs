//! The graph IR: a dataflow graph of inputs, parameters and ops, with a type for every value.

pub mod graph;
pub mod text;
pub mod types;
pub mod verify;

pub use graph::{Graph, Node, NodeKind, ValueId};
pub use types::TensorType;
