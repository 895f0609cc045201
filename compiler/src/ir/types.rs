//! [`TensorType`]: the static type of every value (f32 with a fixed NCHW-style shape).

use kiln_runtime::shape::fmt_shape;
use std::fmt;

/// An `f32` tensor type of a static shape; prints as `f32[1, 3, 32, 32]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TensorType {
    /// The shape, outermost dimension first.
    pub shape: Vec<usize>,
}

impl TensorType {
    /// The type of an f32 tensor of `shape`.
    pub fn new(shape: &[usize]) -> TensorType {
        TensorType {
            shape: shape.to_vec(),
        }
    }

    /// Size of a value of this type, in bytes.
    pub fn bytes(&self) -> usize {
        kiln_runtime::shape::numel(&self.shape) * std::mem::size_of::<f32>()
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "f32{}", fmt_shape(&self.shape))
    }
}
