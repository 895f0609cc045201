//! `Display` for [`Tensor`] in PyTorch's format (`torch._tensor_str`): `tensor([[0., 2., 0.],` …

use super::Tensor;
use std::fmt;

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Placeholder until the PyTorch formatter lands.
        write!(f, "tensor({:?})", self.data())
    }
}
