//! `nn.Flatten(start_dim)`: merges dimensions `start_dim..` into one.

use super::ShapeMismatch;
use crate::tensor::Tensor;

/// Attributes of flatten (the end dimension is always the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flatten {
    /// First dimension merged (PyTorch's `nn.Flatten` default is 1).
    pub start_dim: usize,
}

impl Flatten {
    /// Output shape.
    pub fn infer_shape(&self, input: &[usize]) -> Result<Vec<usize>, ShapeMismatch> {
        let _ = input;
        todo!()
    }

    /// The same data under the flattened shape.
    pub fn apply(&self, input: &Tensor) -> Tensor {
        let _ = input;
        todo!()
    }
}
