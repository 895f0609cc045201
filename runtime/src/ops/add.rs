//! Element-wise addition of two tensors of the same shape.

use super::{expect_shape, ShapeMismatch};
use crate::tensor::Tensor;

/// Element-wise `a + b` (no attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add;

impl Add {
    /// Output shape for `[a, b]`: both must have the same shape (no broadcasting).
    pub fn infer_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, ShapeMismatch> {
        let &[a, b] = inputs else {
            return Err(ShapeMismatch {
                what: "operands".into(),
                expected: "2 (a, b)".into(),
                got: inputs.len().to_string(),
            });
        };
        expect_shape("operand 1 (b)", b, a)?;
        Ok(a.to_vec())
    }
}

/// Reference addition.
///
/// # Panics
/// If the shapes differ; `Op::eval` checks them first.
pub fn add(a: &Tensor, b: &Tensor) -> Tensor {
    if let Err(e) = Add.infer_shape(&[a.shape(), b.shape()]) {
        panic!("add called with unchecked shapes: {e}");
    }
    let mut out = a.clone();
    out.data_mut()
        .iter_mut()
        .zip(b.data())
        .for_each(|(x, &y)| *x += y);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_element_wise() {
        // [1 2 3] + [10 20 −3] = [11 22 0].
        let a = Tensor::from_vec(vec![1., 2., 3.], &[1, 3]).unwrap();
        let b = Tensor::from_vec(vec![10., 20., -3.], &[1, 3]).unwrap();
        assert_eq!(Add.infer_shape(&[a.shape(), b.shape()]), Ok(vec![1, 3]));
        assert_eq!(add(&a, &b).data(), &[11., 22., 0.]);
    }

    #[test]
    fn different_shapes_are_an_error_not_a_broadcast() {
        let err = Add.infer_shape(&[&[2, 3], &[1, 3]]).unwrap_err();
        assert_eq!(
            (err.what.as_str(), err.expected.as_str(), err.got.as_str()),
            ("operand 1 (b)", "[2, 3]", "[1, 3]")
        );
        assert_eq!(
            err.to_string(),
            "operand 1 (b): expected [2, 3], got [1, 3]"
        );
        assert_eq!(Add.infer_shape(&[&[2, 3]]).unwrap_err().what, "operands");
    }
}
