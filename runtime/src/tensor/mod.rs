//! [`Tensor`]: an `f32` array with an NCHW-style shape and 64-byte-aligned storage.
//!
//! `Display` prints the way PyTorch's `print(tensor)` does (see `display.rs`).

mod display;
mod storage;

use crate::error::{Result, RuntimeError};
use crate::limits;
use crate::rng::Rng;
use crate::shape::{fmt_shape, numel};
use storage::AlignedStorage;

/// A dense, row-major (C order) `f32` tensor.
///
/// ```
/// use kiln_runtime::Tensor;
/// let t = Tensor::from_vec(vec![-1.0, 2.0, -3.0, 4.0, -5.0, 6.0], &[2, 3]).unwrap();
/// assert_eq!(t.shape(), &[2, 3]);
/// assert_eq!(t.to_string(), "tensor([[-1.,  2., -3.],\n        [ 4., -5.,  6.]])");
/// ```
#[derive(Clone)]
pub struct Tensor {
    shape: Vec<usize>,
    storage: AlignedStorage,
}

impl Tensor {
    /// A tensor of `shape` holding `data` in row-major order.
    pub fn from_vec(data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
        Self::from_slice(&data, shape)
    }

    /// A tensor of `shape` holding a copy of `data` in row-major order.
    pub fn from_slice(data: &[f32], shape: &[usize]) -> Result<Tensor> {
        let expected = limits::check_shape("shape", shape).map_err(RuntimeError::Limit)?;
        if data.len() != expected {
            return Err(RuntimeError::DataLength {
                shape: fmt_shape(shape),
                expected,
                got: data.len(),
            });
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            storage: AlignedStorage::from_slice(data).ok_or_else(|| out_of_memory(shape))?,
        })
    }

    /// A tensor of zeros; a shape beyond Kiln's [`limits`] or an allocation the system refuses is
    /// an error, never an abort (like `torch.zeros`, which raises).
    ///
    /// ```
    /// use kiln_runtime::Tensor;
    /// assert_eq!(Tensor::zeros(&[2, 3]).unwrap().data(), &[0.0; 6]);
    /// assert!(Tensor::zeros(&[1 << 32, 1 << 32]).is_err());
    /// ```
    pub fn zeros(shape: &[usize]) -> Result<Tensor> {
        let n = limits::check_shape("shape", shape).map_err(RuntimeError::Limit)?;
        Ok(Tensor {
            shape: shape.to_vec(),
            storage: AlignedStorage::zeros(n).ok_or_else(|| out_of_memory(shape))?,
        })
    }

    /// A tensor filled with `value` (errors as [`zeros`](Tensor::zeros)).
    pub fn full(shape: &[usize], value: f32) -> Result<Tensor> {
        let mut t = Tensor::zeros(shape)?;
        t.data_mut().fill(value);
        Ok(t)
    }

    /// Standard-normal samples from a seeded generator (like `torch.randn` after `torch.manual_seed`,
    /// though not the same numbers); errors as [`zeros`](Tensor::zeros).
    pub fn randn(shape: &[usize], seed: u64) -> Result<Tensor> {
        let mut rng = Rng::new(seed);
        let mut t = Tensor::zeros(shape)?;
        t.data_mut().iter_mut().for_each(|v| *v = rng.normal());
        Ok(t)
    }

    /// Uniform samples in `[low, high)` from a seeded generator (like `torch.empty(…).uniform_(low, high)`);
    /// errors as [`zeros`](Tensor::zeros).
    pub fn rand_uniform(shape: &[usize], low: f32, high: f32, seed: u64) -> Result<Tensor> {
        let mut rng = Rng::new(seed);
        let mut t = Tensor::zeros(shape)?;
        t.data_mut()
            .iter_mut()
            .for_each(|v| *v = rng.uniform(low, high));
        Ok(t)
    }

    /// The shape, outermost dimension first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[f32] {
        self.storage.as_slice()
    }

    /// The elements in row-major order, mutably (the storage does not move).
    pub fn data_mut(&mut self) -> &mut [f32] {
        self.storage.as_mut_slice()
    }

    /// The same elements under another shape with the same element count (like `torch.reshape`).
    pub fn reshape(mut self, shape: &[usize]) -> Result<Tensor> {
        let expected = limits::check_shape("shape", shape).map_err(RuntimeError::Limit)?;
        if expected != self.numel() {
            return Err(RuntimeError::DataLength {
                shape: fmt_shape(shape),
                expected,
                got: self.numel(),
            });
        }
        self.shape = shape.to_vec();
        Ok(self)
    }

    /// Whether two tensors have the same shape and `|a - b| <= atol + rtol * |b|` holds element-wise
    /// (`numpy.allclose`); NaNs must sit at the same places in both.
    pub fn allclose(&self, other: &Tensor, rtol: f32, atol: f32) -> bool {
        self.shape == other.shape
            && self.data().iter().zip(other.data()).all(|(&a, &b)| {
                if a.is_nan() || b.is_nan() {
                    a.is_nan() && b.is_nan()
                } else if a.is_infinite() || b.is_infinite() {
                    a == b
                } else {
                    (a - b).abs() <= atol + rtol * b.abs()
                }
            })
    }

    /// The largest absolute element-wise difference (NaN if the shapes differ or a NaN meets a number).
    pub fn max_abs_diff(&self, other: &Tensor) -> f32 {
        if self.shape != other.shape {
            return f32::NAN;
        }
        self.data()
            .iter()
            .zip(other.data())
            .map(|(&a, &b)| {
                if a.is_nan() && b.is_nan() {
                    0.0
                } else {
                    (a - b).abs()
                }
            })
            .fold(0.0, |m, d| {
                if d.is_nan() || m.is_nan() {
                    f32::NAN
                } else {
                    m.max(d)
                }
            })
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor(shape={}, {})", fmt_shape(&self.shape), self)
    }
}

impl PartialEq for Tensor {
    /// Exact equality of shape and every element (NaN equals nothing, as in IEEE 754).
    fn eq(&self, other: &Tensor) -> bool {
        self.shape == other.shape && self.data() == other.data()
    }
}

/// The error for a tensor of `shape` that the allocator refused.
fn out_of_memory(shape: &[usize]) -> RuntimeError {
    RuntimeError::OutOfMemory {
        bytes: limits::f32_bytes(shape),
    }
}
