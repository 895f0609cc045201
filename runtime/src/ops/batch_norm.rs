//! `nn.BatchNorm2d` in inference mode: `(x − mean) / √(var + eps) · weight + bias` per channel.

use super::{expect_rank, expect_shape, ShapeMismatch};
use crate::tensor::Tensor;

/// Attributes of inference batch normalisation.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNorm2d {
    /// Added to the variance (PyTorch's default 1e-5).
    pub eps: f32,
}

impl BatchNorm2d {
    /// Output shape for `[input [N, C, H, W], weight [C], bias [C], running_mean [C], running_var [C]]`.
    pub fn infer_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, ShapeMismatch> {
        const NAMES: [&str; 5] = ["input", "weight", "bias", "running_mean", "running_var"];
        if inputs.len() != NAMES.len() {
            return Err(ShapeMismatch {
                what: "operands".into(),
                expected: format!("5 ({})", NAMES.join(", ")),
                got: inputs.len().to_string(),
            });
        }
        let input = inputs[0];
        expect_rank("operand 0 (input)", input, 4)?;
        for (i, (name, shape)) in NAMES.iter().zip(inputs).enumerate().skip(1) {
            expect_shape(&format!("operand {i} ({name})"), shape, &input[1..2])?;
        }
        Ok(input.to_vec())
    }
}

/// Reference batch norm (inference), evaluated as PyTorch's CPU kernel does: per channel
/// `alpha = weight · (1 / √(var + eps))` and `beta = bias − mean·alpha`, then `x·alpha + beta`, both
/// multiply-adds fused (the compiler contracts them in PyTorch's AVX2/AVX-512 kernels). This is the
/// documented formula rearranged; it matches PyTorch bit for bit, where the literal
/// `(x − mean)/√(var + eps)·weight + bias` would differ by an ulp or so.
///
/// # Panics
/// If the shapes do not pass [`BatchNorm2d::infer_shape`]; `Op::eval` checks them first.
pub fn batch_norm(
    input: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    attrs: &BatchNorm2d,
) -> Tensor {
    let shapes = [input, weight, bias, running_mean, running_var].map(Tensor::shape);
    if let Err(e) = attrs.infer_shape(&shapes) {
        panic!("batch_norm called with unchecked shapes: {e}");
    }
    let (c, plane) = (input.shape()[1], input.shape()[2] * input.shape()[3]);
    let mut out = input.clone();
    // Row-major NCHW: consecutive planes of H·W values cycle through the channels.
    for (i, plane_values) in out.data_mut().chunks_mut(plane.max(1)).enumerate() {
        let ch = i % c;
        let inv_std = 1.0 / (running_var.data()[ch] + attrs.eps).sqrt();
        let alpha = weight.data()[ch] * inv_std;
        let beta = (-running_mean.data()[ch]).mul_add(alpha, bias.data()[ch]);
        plane_values
            .iter_mut()
            .for_each(|v| *v = v.mul_add(alpha, beta));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_util::t;

    #[test]
    fn normalises_each_channel_by_hand() {
        // eps = 1 so that √(var + eps) is round: channel 0 has mean 1, var 3 → √4 = 2, weight 2,
        // bias 0.5: (x − 1)/2·2 + 0.5 = x − 0.5. Channel 1 has mean −2, var 0 → √1 = 1, weight −1,
        // bias 0: −(x + 2).
        let x = t(&[1., 3., 5., 7., 0., 1., -2., 2.], &[1, 2, 2, 2]);
        let (w, b) = (t(&[2., -1.], &[2]), t(&[0.5, 0.], &[2]));
        let (mean, var) = (t(&[1., -2.], &[2]), t(&[3., 0.], &[2]));
        let y = batch_norm(&x, &w, &b, &mean, &var, &BatchNorm2d { eps: 1.0 });
        let expected = [0.5, 2.5, 4.5, 6.5, -2., -3., 0., -4.];
        assert_eq!(y, t(&expected, &[1, 2, 2, 2]));
    }

    #[test]
    fn matches_pytorch_bit_for_bit() {
        // x = ints([2, 3, 2, 3], 7, 11) * 0.37   # ints as in the conv2d tests
        // bn = torch.nn.BatchNorm2d(3, eps=1e-5).eval(); with the parameters below; y = bn(x)
        // (The literal formula (x − mean)/√(var + eps)·w + b differs from PyTorch in 14 of the 36.)
        let x: Vec<f32> = (0..36)
            .map(|i| (((i * 7 + 3) % 11) as f32 - 5.0) * 0.37)
            .collect();
        let x = t(&x, &[2, 3, 2, 3]);
        let (w, b) = (t(&[0.5, -1.25, 2.0], &[3]), t(&[0.1, 0.2, -0.3], &[3]));
        let (mean, var) = (t(&[0.3, -1.1, 2.5], &[3]), t(&[0.7, 1.9, 0.05], &[3]));
        #[rustfmt::skip]
        let expected = [
            -0.5215145, 1.0262955, 0.14183271, -0.7426302, 0.8051799, -0.07928302, 0.5446003,
            -1.8041228, -0.46199533, 0.8801322, -1.468591, -0.12646344, -6.113195, -19.349394,
            -32.585594, -9.422245, -22.658443, -35.89464, 0.5840641, -0.30039874, -1.1848617,
            0.36294842, -0.5215145, 1.0262955, -1.133059, 0.20906842, -2.1396546, -0.7975272,
            0.5446003, -1.8041228, -25.967493, -39.203693, -16.040344, -29.276543, -6.113195,
            -19.349394,
        ];
        let y = batch_norm(&x, &w, &b, &mean, &var, &BatchNorm2d { eps: 1e-5 });
        assert_eq!(y, t(&expected, &[2, 3, 2, 3]));
    }

    #[test]
    fn shape_errors_name_the_operand() {
        let bn = BatchNorm2d { eps: 1e-5 };
        let c = &[3][..];
        let err = bn.infer_shape(&[&[1, 3, 4, 4], c, c, &[4], c]).unwrap_err();
        assert_eq!(
            (err.what.as_str(), err.expected.as_str(), err.got.as_str()),
            ("operand 3 (running_mean)", "[3]", "[4]")
        );
        let err = bn.infer_shape(&[&[2, 3], c, c, c, c]).unwrap_err();
        assert_eq!(err.what, "operand 0 (input)");
        assert_eq!(err.expected, "a 4-d tensor");
        assert_eq!(
            bn.infer_shape(&[&[1, 3, 4, 4], c]).unwrap_err().what,
            "operands"
        );
        assert_eq!(
            bn.infer_shape(&[&[2, 3, 4, 5], c, c, c, c]),
            Ok(vec![2, 3, 4, 5])
        );
    }
}
