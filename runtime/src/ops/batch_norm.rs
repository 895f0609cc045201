//! `nn.BatchNorm2d` in inference mode: `(x − mean) / √(var + eps) · weight + bias` per channel.

use super::ShapeMismatch;
use crate::tensor::Tensor;

/// Attributes of inference batch normalisation.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNorm2d {
    /// Added to the variance (PyTorch's default 1e-5).
    pub eps: f32,
}

impl BatchNorm2d {
    /// Output shape for `[input, weight, bias, running_mean, running_var]`.
    pub fn infer_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, ShapeMismatch> {
        let _ = inputs;
        todo!()
    }
}

/// Reference batch norm (inference).
pub fn batch_norm(
    input: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    attrs: &BatchNorm2d,
) -> Tensor {
    let _ = (input, weight, bias, running_mean, running_var, attrs);
    todo!()
}
