//! `nn.Linear`: `y = x·Wᵀ + b`.

use super::{expect_rank, expect_shape, Epilogue, ShapeMismatch};
use crate::error::Result;
use crate::shape::fmt_shape;
use crate::tensor::Tensor;

/// Attributes of a fully connected layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    /// Whether a bias operand follows the weight.
    pub bias: bool,
    /// What is fused after the product.
    pub epilogue: Epilogue,
}

impl Linear {
    /// Output shape for `[input [N, in], weight [out, in], bias? [out], residual? [N, out]]`.
    pub fn infer_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, ShapeMismatch> {
        self.epilogue.check_arity(self.bias, inputs.len())?;
        if let Some(pool) = &self.epilogue.pool {
            return Err(ShapeMismatch {
                what: "attribute epilogue.pool".into(),
                expected: "none (only a conv2d can fuse a max-pool)".into(),
                got: format!("max_pool2d with kernel {}", fmt_shape(&pool.kernel)),
            });
        }
        let (input, weight) = (inputs[0], inputs[1]);
        expect_rank("operand 0 (input)", input, 2)?;
        expect_rank("operand 1 (weight)", weight, 2)?;
        let (n, features) = (input[0], input[1]);
        let out_features = weight[0];
        if weight[1] != features {
            return Err(ShapeMismatch {
                what: "operand 1 (weight)".into(),
                expected: format!(
                    "[{out_features}, {features}] (in_features = input's {features})"
                ),
                got: fmt_shape(weight),
            });
        }
        let mut next = 2;
        if self.bias {
            expect_shape(
                &format!("operand {next} (bias)"),
                inputs[next],
                &[out_features],
            )?;
            next += 1;
        }
        if self.epilogue.residual {
            expect_shape(
                &format!("operand {next} (residual)"),
                inputs[next],
                &[n, out_features],
            )?;
        }
        Ok(vec![n, out_features])
    }
}

/// Reference linear layer `y[n][o] = Σᵢ x[n][i]·w[o][i] + b[o]`, summed in `f32` in order of `i`
/// and then the bias (no epilogue: [`Op::eval`](super::Op::eval) applies that).
///
/// # Panics
/// If the shapes do not fit (see [`Linear::infer_shape`]); `Op::eval` checks them first.
pub fn linear(input: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let attrs = Linear {
        bias: bias.is_some(),
        epilogue: Epilogue::default(),
    };
    let mut shapes = vec![input.shape(), weight.shape()];
    shapes.extend(bias.map(Tensor::shape));
    if let Err(e) = attrs.infer_shape(&shapes) {
        panic!("linear called with unchecked shapes: {e}");
    }
    let (n, features, out_features) = (input.shape()[0], input.shape()[1], weight.shape()[0]);
    let mut out = Tensor::zeros(&[n, out_features])?;
    let y = out.data_mut();
    for row in 0..n {
        let x = &input.data()[row * features..(row + 1) * features];
        for o in 0..out_features {
            let w = &weight.data()[o * features..(o + 1) * features];
            let mut acc = 0f32;
            for (xv, wv) in x.iter().zip(w) {
                acc += xv * wv;
            }
            if let Some(b) = bias {
                acc += b.data()[o];
            }
            y[row * out_features + o] = acc;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_util::t;
    use crate::ops::{MaxPool2d, Padding2d};

    #[test]
    fn multiplies_by_the_transposed_weight_and_adds_the_bias() {
        // x = [[1 2 3] [4 5 6]], W = [[1 0 −1] [2 1 0]], b = [0.5 −1]:
        // row 0: 1 − 3 + 0.5 = −1.5, 2 + 2 − 1 = 3; row 1: 4 − 6 + 0.5 = −1.5, 8 + 5 − 1 = 12.
        let x = t(&[1., 2., 3., 4., 5., 6.], &[2, 3]);
        let w = t(&[1., 0., -1., 2., 1., 0.], &[2, 3]);
        let b = t(&[0.5, -1.], &[2]);
        assert_eq!(
            linear(&x, &w, Some(&b)).unwrap(),
            t(&[-1.5, 3., -1.5, 12.], &[2, 2])
        );
        // Without the bias: −2, 4, −2, 13.
        assert_eq!(
            linear(&x, &w, None).unwrap(),
            t(&[-2., 4., -2., 13.], &[2, 2])
        );
    }

    #[test]
    fn sums_in_f32_in_input_order() {
        // 1e8 + 1 − 1e8: in f32 order, 1e8 + 1 rounds back to 1e8, so the sum is 0 (an f64 or
        // reordered sum would give 1).
        let x = t(&[1e8, 1., -1e8], &[1, 3]);
        let w = t(&[1., 1., 1.], &[1, 3]);
        assert_eq!(linear(&x, &w, None).unwrap().data(), &[0.0]);
    }

    #[test]
    fn shape_errors_name_the_operand() {
        let l = Linear {
            bias: true,
            epilogue: Epilogue {
                residual: true,
                ..Epilogue::default()
            },
        };
        let (x, w, b) = (&[4, 8][..], &[16, 8][..], &[16][..]);
        assert_eq!(l.infer_shape(&[x, w, b, &[4, 16]]), Ok(vec![4, 16]));
        let err = l.infer_shape(&[x, &[16, 7], b, &[4, 16]]).unwrap_err();
        assert_eq!(
            (err.what.as_str(), err.expected.as_str(), err.got.as_str()),
            (
                "operand 1 (weight)",
                "[16, 8] (in_features = input's 8)",
                "[16, 7]"
            )
        );
        let err = l.infer_shape(&[x, w, &[8], &[4, 16]]).unwrap_err();
        assert_eq!(
            (err.what.as_str(), err.expected.as_str()),
            ("operand 2 (bias)", "[16]")
        );
        let err = l.infer_shape(&[x, w, b, &[16, 4]]).unwrap_err();
        assert_eq!(
            (err.what.as_str(), err.expected.as_str()),
            ("operand 3 (residual)", "[4, 16]")
        );
        let err = l.infer_shape(&[&[2, 4, 8], w, b, &[4, 16]]).unwrap_err();
        assert_eq!(err.what, "operand 0 (input)");
        assert_eq!(l.infer_shape(&[x, w, b]).unwrap_err().what, "operands");
    }

    #[test]
    fn a_fused_pool_is_rejected() {
        let l = Linear {
            bias: false,
            epilogue: Epilogue {
                pool: Some(MaxPool2d {
                    kernel: [2, 2],
                    stride: [2, 2],
                    padding: Padding2d::default(),
                    dilation: [1, 1],
                    ceil_mode: false,
                }),
                ..Epilogue::default()
            },
        };
        let err = l.infer_shape(&[&[4, 8], &[16, 8]]).unwrap_err();
        assert_eq!(err.what, "attribute epilogue.pool");
    }
}
