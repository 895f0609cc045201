//! Pooling: `nn.MaxPool2d`, `nn.AvgPool2d` and global average pooling.

use super::{Padding2d, ShapeMismatch};
use crate::tensor::Tensor;

/// Attributes of `nn.MaxPool2d`. Padding counts as −∞; a NaN in a window gives NaN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaxPool2d {
    /// Window size, (rows, columns).
    pub kernel: [usize; 2],
    /// Step between windows (PyTorch's default is the kernel size).
    pub stride: [usize; 2],
    /// Implicit −∞ padding.
    pub padding: Padding2d,
    /// Spacing between window taps.
    pub dilation: [usize; 2],
    /// Round the output size up; the last window must still start inside the input or left padding.
    pub ceil_mode: bool,
}

/// Attributes of `nn.AvgPool2d`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvgPool2d {
    /// Window size, (rows, columns).
    pub kernel: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Implicit zero padding.
    pub padding: Padding2d,
    /// Round the output size up, as for max-pool.
    pub ceil_mode: bool,
    /// Divide by the full window size including padding (PyTorch's default) rather than by the taps
    /// that fall inside the input.
    pub count_include_pad: bool,
}

/// Global average pooling: `[N, C, H, W]` → `[N, C, 1, 1]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalAvgPool2d;

impl MaxPool2d {
    /// Output shape for an input of shape `[N, C, H, W]`.
    pub fn infer_shape(&self, input: &[usize]) -> Result<Vec<usize>, ShapeMismatch> {
        let _ = input;
        todo!()
    }
}

impl AvgPool2d {
    /// Output shape for an input of shape `[N, C, H, W]`.
    pub fn infer_shape(&self, input: &[usize]) -> Result<Vec<usize>, ShapeMismatch> {
        let _ = input;
        todo!()
    }
}

impl GlobalAvgPool2d {
    /// Output shape for an input of shape `[N, C, H, W]`.
    pub fn infer_shape(&self, input: &[usize]) -> Result<Vec<usize>, ShapeMismatch> {
        let _ = input;
        todo!()
    }
}

/// Reference max-pool.
pub fn max_pool2d(input: &Tensor, attrs: &MaxPool2d) -> Tensor {
    let _ = (input, attrs);
    todo!()
}

/// Reference average pool.
pub fn avg_pool2d(input: &Tensor, attrs: &AvgPool2d) -> Tensor {
    let _ = (input, attrs);
    todo!()
}

/// Reference global average pool.
pub fn global_avg_pool2d(input: &Tensor) -> Tensor {
    let _ = input;
    todo!()
}
