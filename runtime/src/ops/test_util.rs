//! Tensors for the kernels' unit tests, built the same way in Rust and in the PyTorch snippets
//! pasted above the tests.

use crate::tensor::Tensor;

/// Small integers `((i·a + 3) mod m) − ⌊m/2⌋` in row-major order. The PyTorch snippets build the
/// same tensors with
/// `def ints(shape, a, m): return ((torch.arange(prod(shape)) * a + 3) % m - m // 2).float().reshape(shape)`.
/// Sums of products of such integers are exact in `f32`, so results compare exactly whatever order
/// PyTorch sums in.
pub(crate) fn ints(shape: &[usize], a: usize, m: usize) -> Tensor {
    let n: usize = shape.iter().product();
    let data = (0..n)
        .map(|i| ((i * a + 3) % m) as f32 - (m / 2) as f32)
        .collect();
    Tensor::from_vec(data, shape).unwrap()
}

/// A tensor from literal values.
pub(crate) fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(data, shape).unwrap()
}
