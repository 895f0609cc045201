//! `nn.Flatten(start_dim)`: merges dimensions `start_dim..` into one.

use super::ShapeMismatch;
use crate::error::Result;
use crate::shape::{fmt_shape, numel};
use crate::tensor::Tensor;

/// Attributes of flatten (the end dimension is always the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flatten {
    /// First dimension merged (PyTorch's `nn.Flatten` default is 1).
    pub start_dim: usize,
}

impl Flatten {
    /// Output shape: `input[..start_dim]` followed by the product of `input[start_dim..]`, e.g.
    /// `[N, C, H, W]` with `start_dim = 1` gives `[N, C·H·W]`. `start_dim` must be a dimension of the
    /// input.
    pub fn infer_shape(&self, input: &[usize]) -> Result<Vec<usize>, ShapeMismatch> {
        if self.start_dim >= input.len() {
            return Err(ShapeMismatch {
                what: "attribute start_dim".into(),
                expected: format!("a dimension of the input (< its rank {})", input.len()),
                got: format!("{} for input {}", self.start_dim, fmt_shape(input)),
            });
        }
        Ok(flattened(input, self.start_dim))
    }

    /// The same data under the flattened shape. (With `start_dim` beyond the last dimension, which
    /// `infer_shape` rejects, the result gets a trailing dimension of 1.)
    pub fn apply(&self, input: &Tensor) -> Result<Tensor> {
        let mut out = Tensor::zeros(&flattened(input.shape(), self.start_dim))?;
        // The two shapes hold the same number of elements by construction.
        out.data_mut().copy_from_slice(input.data());
        Ok(out)
    }
}

/// `shape[..start]` and then the product of `shape[start..]` (1 if that is empty).
fn flattened(shape: &[usize], start: usize) -> Vec<usize> {
    let start = start.min(shape.len());
    let mut out = shape[..start].to_vec();
    out.push(numel(&shape[start..]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_the_trailing_dimensions() {
        // [2, 3, 4, 5] from dim 1: [2, 3·4·5] = [2, 60]; from dim 0: [120]; from dim 3: unchanged.
        let s = &[2, 3, 4, 5][..];
        assert_eq!(Flatten { start_dim: 1 }.infer_shape(s), Ok(vec![2, 60]));
        assert_eq!(Flatten { start_dim: 0 }.infer_shape(s), Ok(vec![120]));
        assert_eq!(
            Flatten { start_dim: 3 }.infer_shape(s),
            Ok(vec![2, 3, 4, 5])
        );
        assert_eq!(Flatten { start_dim: 2 }.infer_shape(s), Ok(vec![2, 3, 20]));
    }

    #[test]
    fn keeps_the_data_in_order() {
        let data: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let x = Tensor::from_vec(data.clone(), &[2, 3, 2, 1]).unwrap();
        let y = Flatten { start_dim: 1 }.apply(&x).unwrap();
        assert_eq!(y.shape(), &[2, 6]);
        assert_eq!(y.data(), data.as_slice());
    }

    #[test]
    fn start_dim_must_be_a_dimension() {
        let err = Flatten { start_dim: 4 }
            .infer_shape(&[1, 2, 3, 4])
            .unwrap_err();
        assert_eq!(err.what, "attribute start_dim");
        assert_eq!(err.expected, "a dimension of the input (< its rank 4)");
        assert_eq!(err.got, "4 for input [1, 2, 3, 4]");
        assert!(Flatten { start_dim: 0 }.infer_shape(&[]).is_err());
    }
}
