//! `nn.Conv2d`: stride, four-sided padding, dilation, groups, optional bias.

use super::{Epilogue, ShapeMismatch};
use crate::tensor::Tensor;

/// Zero padding on each side of the two spatial dimensions (ONNX pads may be asymmetric).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Padding2d {
    /// Rows added above.
    pub top: usize,
    /// Columns added on the left.
    pub left: usize,
    /// Rows added below.
    pub bottom: usize,
    /// Columns added on the right.
    pub right: usize,
}

impl Padding2d {
    /// PyTorch's symmetric `padding=(ph, pw)`.
    pub fn symmetric(ph: usize, pw: usize) -> Padding2d {
        Padding2d {
            top: ph,
            left: pw,
            bottom: ph,
            right: pw,
        }
    }

    /// Whether top == bottom and left == right.
    pub fn is_symmetric(&self) -> bool {
        self.top == self.bottom && self.left == self.right
    }
}

/// Attributes of a 2-d convolution. The kernel size comes from the weight's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2d {
    /// Step between windows, (rows, columns).
    pub stride: [usize; 2],
    /// Zero padding.
    pub padding: Padding2d,
    /// Spacing between kernel taps, (rows, columns).
    pub dilation: [usize; 2],
    /// Input and output channels are split into this many independent groups.
    pub groups: usize,
    /// Whether a bias operand follows the weight.
    pub bias: bool,
    /// What is fused after the convolution.
    pub epilogue: Epilogue,
}

impl Conv2d {
    /// Output shape for operands `[input, weight, bias?, residual?]`.
    pub fn infer_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, ShapeMismatch> {
        let _ = inputs;
        todo!("conv2d shape rule")
    }
}

/// Reference convolution; shapes are already checked by [`Conv2d::infer_shape`].
pub fn conv2d(input: &Tensor, weight: &Tensor, bias: Option<&Tensor>, attrs: &Conv2d) -> Tensor {
    let _ = (input, weight, bias, attrs);
    todo!("conv2d kernel")
}
