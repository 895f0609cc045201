//! Kiln's documented limits on shapes and attributes, checked in this one place by every front
//! end (text IR, ONNX, the `nn` builder), the verifier and [`Tensor`](crate::Tensor)'s constructors.
//!
//! | what | limit |
//! |---|---|
//! | every dimension of a shape | < 2³¹ ([`MAX_DIM`]) |
//! | every integer attribute (kernel, stride, padding, dilation, groups, axes) | < 2³¹ ([`MAX_DIM`]) |
//! | elements of one tensor | ≤ 2⁴⁰ ([`MAX_ELEMENTS`], 4 TiB of `f32`) |
//! | rank | ≤ [`MAX_RANK`] |
//!
//! Why these numbers: with every dimension and attribute below 2³¹, any product of two of them and
//! any sum of a few such products fits in 64 bits, so the arithmetic of shape inference, lowering,
//! the memory plan and code generation cannot wrap once these checks passed; and with at most 2⁴⁰
//! elements, a tensor's byte size (and a few of them added up) fits too. Real CNNs are many orders
//! of magnitude below both. Memory is bounded separately, by the memory budget.
//!
//! ```
//! use kiln_runtime::limits::{check_shape, MAX_DIM};
//! assert_eq!(check_shape("input", &[2, 3, 224, 224]), Ok(301_056));
//! assert!(check_shape("input", &[MAX_DIM + 1]).is_err());
//! assert!(check_shape("input", &[1 << 30, 1 << 30]).is_err()); // 2⁶⁰ elements
//! ```

use crate::error::ShapeMismatch;
use crate::shape::fmt_shape;

/// The largest dimension or integer attribute: 2³¹ − 1.
pub const MAX_DIM: usize = (1 << 31) - 1;

/// The most elements one tensor may have: 2⁴⁰.
pub const MAX_ELEMENTS: usize = 1 << 40;

/// The largest rank of a tensor (NumPy's too).
pub const MAX_RANK: usize = 64;

/// Checks a shape against the limits and returns its element count; `what` names it in the error
/// (for example `operand 0 (input)`).
pub fn check_shape(what: &str, shape: &[usize]) -> Result<usize, ShapeMismatch> {
    let err = |expected: String| ShapeMismatch {
        what: what.to_string(),
        expected,
        got: fmt_shape(shape),
    };
    if shape.len() > MAX_RANK {
        return Err(err(format!("at most {MAX_RANK} dimensions")));
    }
    if let Some(d) = shape.iter().find(|&&d| d > MAX_DIM) {
        return Err(err(format!(
            "every dimension < 2^31 (Kiln's limit; {d} is not)"
        )));
    }
    // Every dimension is < 2³¹, so each partial product is checked before it could wrap.
    let mut n: usize = 1;
    for &d in shape {
        n = n.saturating_mul(d);
        if n > MAX_ELEMENTS && !shape.contains(&0) {
            return Err(err("at most 2^40 elements (Kiln's limit)".to_string()));
        }
    }
    Ok(if shape.contains(&0) { 0 } else { n })
}

/// Checks integer attribute values: each must be below 2³¹.
pub fn check_attribute(name: &str, values: &[usize]) -> Result<(), ShapeMismatch> {
    match values.iter().find(|&&v| v > MAX_DIM) {
        None => Ok(()),
        Some(_) => Err(ShapeMismatch {
            what: format!("attribute {name}"),
            expected: "values < 2^31 (Kiln's limit)".to_string(),
            got: fmt_shape(values),
        }),
    }
}

/// Bytes of an `f32` tensor of a shape that passed [`check_shape`] (at most 2⁴² bytes).
pub fn f32_bytes(shape: &[usize]) -> u64 {
    shape
        .iter()
        .fold(4u64, |acc, &d| acc.saturating_mul(d as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_at_and_past_each_limit() {
        assert_eq!(check_shape("x", &[]), Ok(1));
        assert_eq!(check_shape("x", &[MAX_DIM]), Ok(MAX_DIM));
        assert_eq!(check_shape("x", &[1 << 20, 1 << 20]), Ok(MAX_ELEMENTS));
        let e = check_shape("x", &[1 << 20, (1 << 20) + 1]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "x: expected at most 2^40 elements (Kiln's limit), got [1048576, 1048577]"
        );
        let e = check_shape("x", &[4294967296, 4294967296]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "x: expected every dimension < 2^31 (Kiln's limit; 4294967296 is not), got [4294967296, 4294967296]"
        );
        // Overflowing products are caught even when every dimension is in range.
        assert!(check_shape("x", &[MAX_DIM, MAX_DIM, MAX_DIM, MAX_DIM, 2]).is_err());
        // An empty tensor is fine whatever its other dimensions (and has no elements).
        assert_eq!(check_shape("x", &[0, 1 << 30, 1 << 30]), Ok(0));
        assert!(check_shape("x", &[1; MAX_RANK + 1]).is_err());
    }

    #[test]
    fn attributes_below_two_to_the_31() {
        assert_eq!(check_attribute("stride", &[1, MAX_DIM]), Ok(()));
        let e = check_attribute("stride", &[1, 1 << 62]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "attribute stride: expected values < 2^31 (Kiln's limit), got [1, 4611686018427387904]"
        );
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(f32_bytes(&[2, 3]), 24);
        assert_eq!(f32_bytes(&[]), 4);
        assert_eq!(f32_bytes(&[1 << 20, 1 << 20]), 1 << 42);
    }
}
