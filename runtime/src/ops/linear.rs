//! `nn.Linear`: `y = x·Wᵀ + b`.

use super::{Epilogue, ShapeMismatch};
use crate::tensor::Tensor;

/// Attributes of a fully connected layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    /// Whether a bias operand follows the weight.
    pub bias: bool,
    /// What is fused after the product.
    pub epilogue: Epilogue,
}

impl Linear {
    /// Output shape for `[input [N, in], weight [out, in], bias? [out], residual?]`.
    pub fn infer_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, ShapeMismatch> {
        let _ = inputs;
        todo!()
    }
}

/// Reference linear layer.
pub fn linear(input: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
    let _ = (input, weight, bias);
    todo!()
}
