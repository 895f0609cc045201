//! `nn.Conv2d`: stride, four-sided padding, dilation, groups, optional bias.
//!
//! Also home of [`sliding_windows`], the output-size rule shared with the pools.

use super::{expect_rank, expect_shape, Epilogue, ShapeMismatch};
use crate::error::Result;
use crate::shape::fmt_shape;
use crate::tensor::Tensor;
use std::ops::Range;

/// Zero padding on each side of the two spatial dimensions (ONNX pads may be asymmetric).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Padding2d {
    /// Rows added above.
    pub top: usize,
    /// Columns added on the left.
    pub left: usize,
    /// Rows added below.
    pub bottom: usize,
    /// Columns added on the right.
    pub right: usize,
}

impl Padding2d {
    /// PyTorch's symmetric `padding=(ph, pw)`.
    pub fn symmetric(ph: usize, pw: usize) -> Padding2d {
        Padding2d {
            top: ph,
            left: pw,
            bottom: ph,
            right: pw,
        }
    }

    /// Whether top == bottom and left == right.
    pub fn is_symmetric(&self) -> bool {
        self.top == self.bottom && self.left == self.right
    }
}

/// Attributes of a 2-d convolution. The kernel size comes from the weight's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2d {
    /// Step between windows, (rows, columns).
    pub stride: [usize; 2],
    /// Zero padding.
    pub padding: Padding2d,
    /// Spacing between kernel taps, (rows, columns).
    pub dilation: [usize; 2],
    /// Input and output channels are split into this many independent groups.
    pub groups: usize,
    /// Whether a bias operand follows the weight.
    pub bias: bool,
    /// What is fused after the convolution.
    pub epilogue: Epilogue,
}

impl Conv2d {
    /// Output shape for operands `[input, weight, bias?, residual?]`: the convolution's shape, or the
    /// epilogue pool's shape when the epilogue has a pool.
    pub fn infer_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, ShapeMismatch> {
        self.epilogue.check_arity(self.bias, inputs.len())?;
        let conv = self.conv_shape(inputs[0], inputs[1])?;
        let mut next = 2;
        if self.bias {
            expect_shape(&format!("operand {next} (bias)"), inputs[next], &conv[1..2])?;
            next += 1;
        }
        if self.epilogue.residual {
            expect_shape(&format!("operand {next} (residual)"), inputs[next], &conv)?;
        }
        match &self.epilogue.pool {
            None => Ok(conv.to_vec()),
            // The pool sees the conv's result, so its complaints are about that, not about operand 0.
            Some(pool) => pool.infer_shape(&conv).map_err(|e| ShapeMismatch {
                what: format!("epilogue max_pool2d on the conv result: {}", e.what),
                ..e
            }),
        }
    }

    /// The convolution's own result `[N, O, H', W']` for an input and a weight: what the bias and the
    /// residual are added to, before the epilogue's pool (if any).
    pub fn conv_shape(
        &self,
        input: &[usize],
        weight: &[usize],
    ) -> Result<[usize; 4], ShapeMismatch> {
        self.check_attributes()?;
        expect_rank("operand 0 (input)", input, 4)?;
        expect_rank("operand 1 (weight)", weight, 4)?;
        let (n, c, h, w) = (input[0], input[1], input[2], input[3]);
        let (o, cg, kh, kw) = (weight[0], weight[1], weight[2], weight[3]);
        if h == 0 || w == 0 {
            return Err(ShapeMismatch {
                what: "operand 0 (input)".into(),
                expected: "[N, C, H, W] with H, W ≥ 1".into(),
                got: fmt_shape(input),
            });
        }
        let groups = self.groups;
        if c % groups != 0 {
            return Err(ShapeMismatch {
                what: "operand 0 (input)".into(),
                expected: format!("[_, C, _, _] with C divisible by groups = {groups}"),
                got: fmt_shape(input),
            });
        }
        if cg != c / groups {
            return Err(ShapeMismatch {
                what: "operand 1 (weight)".into(),
                expected: format!(
                    "[{o}, {cg}, _, _] (in_channels / groups = {c} / {groups} = {cg})",
                    cg = c / groups
                ),
                got: fmt_shape(weight),
            });
        }
        if o % groups != 0 || kh == 0 || kw == 0 {
            return Err(ShapeMismatch {
                what: "operand 1 (weight)".into(),
                expected: format!(
                    "[O, {cg}, kH, kW] with O divisible by groups = {groups} and kH, kW ≥ 1"
                ),
                got: fmt_shape(weight),
            });
        }
        let p = &self.padding;
        let [sh, sw] = self.stride;
        let [dh, dw] = self.dilation;
        let oh = sliding_windows(h, (p.top, p.bottom), kh, sh, dh, false);
        let ow = sliding_windows(w, (p.left, p.right), kw, sw, dw, false);
        match (oh, ow) {
            (Some(oh), Some(ow)) => {
                check_allocatable(input, &[n, o, oh, ow])?;
                Ok([n, o, oh, ow])
            }
            _ => Err(ShapeMismatch {
                what: "operand 0 (input)".into(),
                expected: format!(
                    "padded height ≥ {} and padded width ≥ {} (the dilated {kh}×{kw} kernel)",
                    window_span(kh, dh),
                    window_span(kw, dw),
                ),
                got: format!(
                    "{} padded to {}×{} (padding top {}, left {}, bottom {}, right {})",
                    fmt_shape(input),
                    h as u128 + p.top as u128 + p.bottom as u128,
                    w as u128 + p.left as u128 + p.right as u128,
                    p.top,
                    p.left,
                    p.bottom,
                    p.right
                ),
            }),
        }
    }

    /// Strides, dilations and groups must be positive (PyTorch rejects zeros too).
    fn check_attributes(&self) -> Result<(), ShapeMismatch> {
        let positive = |what: &str, values: &[usize], got: String| {
            if values.contains(&0) {
                Err(ShapeMismatch {
                    what: format!("attribute {what}"),
                    expected: "values ≥ 1".into(),
                    got,
                })
            } else {
                Ok(())
            }
        };
        positive("stride", &self.stride, fmt_shape(&self.stride))?;
        positive("dilation", &self.dilation, fmt_shape(&self.dilation))?;
        positive("groups", &[self.groups], self.groups.to_string())
    }
}

/// Rows (or columns) one window covers: `dilation·(kernel − 1) + 1`, in `u128` so that absurd
/// attributes cannot overflow.
fn window_span(kernel: usize, dilation: usize) -> u128 {
    dilation as u128 * (kernel as u128).saturating_sub(1) + 1
}

/// How many windows fit along one dimension of `size` elements padded by `pad = (before, after)`:
/// PyTorch's `pooling_output_shape_pad_lr`. Convolutions use `ceil_mode = false`, i.e.
/// `⌊(size + before + after − dilation·(kernel − 1) − 1) / stride⌋ + 1`. With `ceil_mode` the division
/// rounds up, but a last window that would start at or beyond `size + before` (entirely in the right
/// padding) is dropped. `None` when not even one window fits (or `kernel`/`stride` is 0); a count
/// beyond `usize` (absurd padding) saturates at `usize::MAX`, which no tensor can hold.
///
/// ```
/// use kiln_runtime::ops::conv2d::sliding_windows;
/// // 5 rows, padding 1 on both sides, 2-row windows every 2 rows: ⌊(7 − 2) / 2⌋ + 1 = 3 …
/// assert_eq!(sliding_windows(5, (1, 1), 2, 2, 1, false), Some(3));
/// // … and ⌈5 / 2⌉ + 1 = 4 with ceil_mode, whose last window starts at 6 ≥ 5 + 1: dropped.
/// assert_eq!(sliding_windows(5, (1, 1), 2, 2, 1, true), Some(3));
/// ```
pub fn sliding_windows(
    size: usize,
    pad: (usize, usize),
    kernel: usize,
    stride: usize,
    dilation: usize,
    ceil_mode: bool,
) -> Option<usize> {
    if kernel == 0 || stride == 0 {
        return None;
    }
    // i128 holds every sum of `usize`s here; the one product of two attributes is checked (a window
    // that long fits no input). The numerator may be negative (a window larger than the padded
    // input), hence the floor division. `(out − 1)·stride` is at most `padded + stride`.
    let before = pad.0 as i128;
    let padded = size as i128 + before + pad.1 as i128;
    let span = (dilation as i128).checked_mul(kernel as i128 - 1)? + 1;
    let stride = stride as i128;
    let round_up = if ceil_mode { stride - 1 } else { 0 };
    let mut out = (padded - span + round_up).div_euclid(stride) + 1;
    if ceil_mode && (out - 1) * stride >= size as i128 + before {
        out -= 1;
    }
    if out >= 1 {
        Some(usize::try_from(out).unwrap_or(usize::MAX))
    } else {
        None
    }
}

/// Rejects a result too large to allocate (its byte size must fit an `isize`): absurd padding or
/// strides then give an error here rather than an overflow or an abort later.
pub(crate) fn check_allocatable(input: &[usize], output: &[usize]) -> Result<(), ShapeMismatch> {
    let bytes = output
        .iter()
        .try_fold(std::mem::size_of::<f32>(), |acc, &d| acc.checked_mul(d));
    match bytes {
        Some(b) if isize::try_from(b).is_ok() => Ok(()),
        _ => Err(ShapeMismatch {
            what: "operand 0 (input)".into(),
            expected: "a result that fits in memory (at most isize::MAX bytes)".into(),
            got: format!(
                "result {} for input {}",
                fmt_shape(output),
                fmt_shape(input)
            ),
        }),
    }
}

/// The taps `k` in `0..kernel` of a window starting at `start` (negative in the leading padding)
/// whose coordinate `start + k·dilation` lies inside `0..size`. Kernels loop over exactly these, so
/// padding costs nothing and absurd attributes cannot make a loop long. `dilation` must be ≥ 1.
pub(crate) fn taps_inside(
    start: i128,
    kernel: usize,
    dilation: usize,
    size: usize,
) -> Range<usize> {
    let d = dilation as i128;
    let first = if start >= 0 { 0 } else { (-start + d - 1) / d };
    let end = (size as i128 - start + d - 1).div_euclid(d);
    let clamp = |v: i128| v.clamp(0, kernel as i128) as usize;
    clamp(first)..clamp(end)
}

/// Reference convolution (no epilogue: [`Op::eval`](super::Op::eval) applies that).
///
/// Taps that fall in the padding are skipped (they would add `0·w`). Each output is the `f32` sum of
/// its taps in (input channel, kernel row, kernel column) order, then the bias.
///
/// # Panics
/// If the shapes do not pass [`Conv2d::conv_shape`] (or the bias is not `[O]`); `Op::eval` checks them
/// first and returns an error instead.
pub fn conv2d(
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    attrs: &Conv2d,
) -> Result<Tensor> {
    let [n, o, oh, ow] = match attrs.conv_shape(input.shape(), weight.shape()) {
        Ok(shape) => shape,
        Err(e) => panic!("conv2d called with unchecked shapes: {e}"),
    };
    let (c, h, w) = (input.shape()[1], input.shape()[2], input.shape()[3]);
    let (cg, kh, kw) = (weight.shape()[1], weight.shape()[2], weight.shape()[3]);
    let og = o / attrs.groups;
    let (x, wt) = (input.data(), weight.data());
    let mut out = Tensor::zeros(&[n, o, oh, ow])?;
    let y = out.data_mut();
    // Window origins in i128: padding and strides are arbitrary `usize`s (see `sliding_windows`).
    let (top, left) = (attrs.padding.top as i128, attrs.padding.left as i128);
    let [sh, sw] = attrs.stride.map(|s| s as i128);
    let [dh, dw] = attrs.dilation;
    let mut yi = 0;
    for b in 0..n {
        for oc in 0..o {
            let group = oc / og;
            for oy in 0..oh {
                let y0 = oy as i128 * sh - top;
                for ox in 0..ow {
                    let x0 = ox as i128 * sw - left;
                    let mut acc = 0f32;
                    for icg in 0..cg {
                        let ic = group * cg + icg;
                        for ky in taps_inside(y0, kh, dh, h) {
                            let iy = (y0 + (ky * dh) as i128) as usize;
                            for kx in taps_inside(x0, kw, dw, w) {
                                let ix = (x0 + (kx * dw) as i128) as usize;
                                let xv = x[((b * c + ic) * h + iy) * w + ix];
                                let wv = wt[((oc * cg + icg) * kh + ky) * kw + kx];
                                acc += xv * wv;
                            }
                        }
                    }
                    if let Some(bias) = bias {
                        acc += bias.data()[oc];
                    }
                    y[yi] = acc;
                    yi += 1;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_util::{ints, t};
    use crate::ops::MaxPool2d;

    fn attrs(stride: usize, padding: usize, dilation: usize, groups: usize) -> Conv2d {
        Conv2d {
            stride: [stride; 2],
            padding: Padding2d::symmetric(padding, padding),
            dilation: [dilation; 2],
            groups,
            bias: false,
            epilogue: Epilogue::default(),
        }
    }

    #[test]
    fn two_by_two_kernel_on_three_by_three() {
        // x = [[1 2 3] [4 5 6] [7 8 9]], w = [[1 0] [0 1]]: each output is x[i][j] + x[i+1][j+1],
        // plus the bias 0.5: [[1+5 2+6] [4+8 5+9]] + 0.5 = [[6.5 8.5] [12.5 14.5]].
        let x = t(&[1., 2., 3., 4., 5., 6., 7., 8., 9.], &[1, 1, 3, 3]);
        let w = t(&[1., 0., 0., 1.], &[1, 1, 2, 2]);
        let b = t(&[0.5], &[1]);
        let y = conv2d(&x, &w, Some(&b), &attrs(1, 0, 1, 1)).unwrap();
        assert_eq!(y, t(&[6.5, 8.5, 12.5, 14.5], &[1, 1, 2, 2]));
    }

    #[test]
    fn stride_two_with_zero_padding() {
        // The same x, an all-ones 3×3 kernel, padding 1, stride 2: ⌊(3 + 2 − 3)/2⌋ + 1 = 2 outputs
        // per side; each window holds one 2×2 corner of x (the rest is padding):
        // 1+2+4+5 = 12, 2+3+5+6 = 16, 4+5+7+8 = 24, 5+6+8+9 = 28.
        let x = t(&[1., 2., 3., 4., 5., 6., 7., 8., 9.], &[1, 1, 3, 3]);
        let w = Tensor::full(&[1, 1, 3, 3], 1.0).unwrap();
        let y = conv2d(&x, &w, None, &attrs(2, 1, 1, 1)).unwrap();
        assert_eq!(y, t(&[12., 16., 24., 28.], &[1, 1, 2, 2]));
    }

    #[test]
    fn groups_dilation_asymmetric_padding_match_pytorch() {
        // x = ints([1, 4, 5, 5], 7, 11); w = ints([4, 2, 3, 2], 5, 7); b = torch.tensor([0.5, -1.0, 2.0, 0.0])
        // y = F.conv2d(F.pad(x, (0, 1, 1, 2)), w, b, stride=(2, 1), dilation=(2, 1), groups=2)
        // (F.pad's (left, right, top, bottom) = (0, 1, 1, 2) is our top 1, left 0, bottom 2, right 1.)
        let attrs = Conv2d {
            stride: [2, 1],
            padding: Padding2d {
                top: 1,
                left: 0,
                bottom: 2,
                right: 1,
            },
            dilation: [2, 1],
            groups: 2,
            bias: true,
            epilogue: Epilogue::default(),
        };
        let (x, w) = (ints(&[1, 4, 5, 5], 7, 11), ints(&[4, 2, 3, 2], 5, 7));
        let b = t(&[0.5, -1.0, 2.0, 0.0], &[4]);
        let expected = [
            -16.5, 23.5, -13.5, 15.5, -25.5, 9.5, -32.5, 13.5, 4.5, 11.5, 8., -34., 12., 3., 10.,
            13., 22., -24., -15., 5., 15., -31., 11., 20., -21., -12., 25., -15., -11., 28., -14.,
            23., -17., -13., 26., 15., -19., 13., 12., -23.,
        ];
        assert_eq!(
            attrs.infer_shape(&[x.shape(), w.shape(), b.shape()]),
            Ok(vec![1, 4, 2, 5])
        );
        assert_eq!(
            conv2d(&x, &w, Some(&b), &attrs).unwrap(),
            t(&expected, &[1, 4, 2, 5])
        );
    }

    #[test]
    fn depthwise_stride_padding_match_pytorch() {
        // x = ints([2, 3, 4, 4], 5, 9); w = ints([3, 1, 3, 3], 3, 5)
        // y = F.conv2d(x, w, None, stride=2, padding=1, groups=3)
        let (x, w) = (ints(&[2, 3, 4, 4], 5, 9), ints(&[3, 1, 3, 3], 3, 5));
        let expected = [
            8., 3., -22., -24., -14., -13., 4., 16., -11., -10., 12., 9., 5., 3., 8., 15., 7., 8.,
            -20., -2., 1., 2., 9., 15.,
        ];
        let y = conv2d(&x, &w, None, &attrs(2, 1, 1, 3)).unwrap();
        assert_eq!(y, t(&expected, &[2, 3, 2, 2]));
    }

    #[test]
    fn nan_in_input_reaches_only_the_windows_that_cover_it() {
        // 1×1 kernel of weight 2 on [[1 NaN] [3 4]]: [[2 NaN] [6 8]].
        let x = t(&[1., f32::NAN, 3., 4.], &[1, 1, 2, 2]);
        let y = conv2d(&x, &t(&[2.], &[1, 1, 1, 1]), None, &attrs(1, 0, 1, 1)).unwrap();
        assert_eq!(y.data()[0], 2.0);
        assert!(y.data()[1].is_nan());
        assert_eq!(&y.data()[2..], &[6.0, 8.0]);
    }

    #[test]
    fn output_size_rule() {
        // 32×32, 3×3 kernel, padding 1, stride 2: ⌊(32 + 2 − 2 − 1)/2⌋ + 1 = 16.
        let a = attrs(2, 1, 1, 1);
        assert_eq!(
            a.infer_shape(&[&[1, 3, 32, 32], &[8, 3, 3, 3]]),
            Ok(vec![1, 8, 16, 16])
        );
        // Dilation 2 makes the 3×3 kernel span 5: ⌊(7 − 4 − 1)/1⌋ + 1 = 3.
        let a = attrs(1, 0, 2, 1);
        assert_eq!(
            a.infer_shape(&[&[2, 1, 7, 5], &[4, 1, 3, 3]]),
            Ok(vec![2, 4, 3, 1])
        );
        // The kernel exactly as large as the padded input: one output.
        let a = attrs(1, 1, 1, 1);
        assert_eq!(
            a.infer_shape(&[&[1, 1, 1, 1], &[1, 1, 3, 3]]),
            Ok(vec![1, 1, 1, 1])
        );
    }

    #[test]
    fn epilogue_pool_gives_the_pooled_shape_and_residual_the_conv_shape() {
        // conv: 8×8 → 8×8 (3×3, padding 1); pool 2×2 stride 2: 8×8 → 4×4.
        let mut a = attrs(1, 1, 1, 1);
        a.bias = true;
        a.epilogue.residual = true;
        a.epilogue.pool = Some(MaxPool2d {
            kernel: [2, 2],
            stride: [2, 2],
            padding: Padding2d::default(),
            dilation: [1, 1],
            ceil_mode: false,
        });
        let (x, w, b) = (&[1, 3, 8, 8][..], &[16, 3, 3, 3][..], &[16][..]);
        assert_eq!(
            a.infer_shape(&[x, w, b, &[1, 16, 8, 8]]),
            Ok(vec![1, 16, 4, 4])
        );
        let err = a.infer_shape(&[x, w, b, &[1, 16, 4, 4]]).unwrap_err();
        assert_eq!(err.what, "operand 3 (residual)");
        assert_eq!(err.expected, "[1, 16, 8, 8]");
        assert_eq!(err.got, "[1, 16, 4, 4]");
        // A 1×1 conv result is too small for the 2×2 pool: the error says it is the pool's.
        let err = a
            .infer_shape(&[&[1, 3, 1, 1], w, b, &[1, 16, 1, 1]])
            .unwrap_err();
        assert!(err.what.starts_with("epilogue max_pool2d"), "{err}");
    }

    #[test]
    fn weight_channel_mismatch_names_operand_and_shapes() {
        let err = attrs(1, 1, 1, 1)
            .infer_shape(&[&[1, 3, 8, 8], &[32, 4, 3, 3]])
            .unwrap_err();
        assert_eq!(err.what, "operand 1 (weight)");
        assert_eq!(
            err.expected,
            "[32, 3, _, _] (in_channels / groups = 3 / 1 = 3)"
        );
        assert_eq!(err.got, "[32, 4, 3, 3]");
        assert_eq!(
            err.to_string(),
            "operand 1 (weight): expected [32, 3, _, _] (in_channels / groups = 3 / 1 = 3), \
             got [32, 4, 3, 3]"
        );
    }

    #[test]
    fn group_and_attribute_errors() {
        let x = &[1, 6, 8, 8][..];
        // groups = 4 does not divide 6 input channels.
        let err = attrs(1, 0, 1, 4)
            .infer_shape(&[x, &[8, 1, 3, 3]])
            .unwrap_err();
        assert_eq!(err.what, "operand 0 (input)");
        assert!(err.expected.contains("groups = 4"), "{err}");
        // groups = 2 divides 6 but not 3 output channels.
        let err = attrs(1, 0, 1, 2)
            .infer_shape(&[x, &[3, 3, 3, 3]])
            .unwrap_err();
        assert_eq!(err.what, "operand 1 (weight)");
        assert_eq!(err.got, "[3, 3, 3, 3]");
        for (a, what) in [
            (attrs(0, 0, 1, 1), "attribute stride"),
            (attrs(1, 0, 0, 1), "attribute dilation"),
            (attrs(1, 0, 1, 0), "attribute groups"),
        ] {
            let err = a.infer_shape(&[x, &[8, 6, 3, 3]]).unwrap_err();
            assert_eq!(err.what, what);
            assert_eq!(err.expected, "values ≥ 1");
        }
    }

    #[test]
    fn operand_shape_errors() {
        let a = attrs(1, 0, 1, 1);
        let err = a.infer_shape(&[&[3, 8, 8], &[8, 3, 3, 3]]).unwrap_err();
        assert_eq!(
            (err.what.as_str(), err.expected.as_str(), err.got.as_str()),
            ("operand 0 (input)", "a 4-d tensor", "[3, 8, 8]")
        );
        // A 2×2 input is smaller than the 3×3 kernel.
        let err = a.infer_shape(&[&[1, 3, 2, 2], &[8, 3, 3, 3]]).unwrap_err();
        assert_eq!(err.what, "operand 0 (input)");
        assert!(err.expected.contains("≥ 3"), "{err}");
        assert!(err.got.contains("[1, 3, 2, 2]"), "{err}");
        let mut a = a;
        a.bias = true;
        let err = a
            .infer_shape(&[&[1, 3, 8, 8], &[8, 3, 3, 3], &[3]])
            .unwrap_err();
        assert_eq!(
            (err.what.as_str(), err.expected.as_str(), err.got.as_str()),
            ("operand 2 (bias)", "[8]", "[3]")
        );
        let err = a.infer_shape(&[&[1, 3, 8, 8], &[8, 3, 3, 3]]).unwrap_err();
        assert_eq!((err.what.as_str(), err.got.as_str()), ("operands", "2"));
    }

    #[test]
    fn absurd_attributes_give_errors_or_short_loops() {
        let x = Tensor::full(&[1, 1, 4, 4], 1.0).unwrap();
        let w = Tensor::full(&[1, 1, 3, 3], 1.0).unwrap();
        // A dilation of usize::MAX makes the window longer than any input.
        let a = attrs(1, 0, usize::MAX, 1);
        assert!(a.infer_shape(&[x.shape(), w.shape()]).is_err());
        // Padding usize::MAX with stride 1 would give ~2^65 outputs per side.
        let a = attrs(1, usize::MAX, 1, 1);
        let err = a.infer_shape(&[x.shape(), w.shape()]).unwrap_err();
        assert!(err.expected.contains("fits in memory"), "{err}");
        // With stride usize::MAX: ⌊(4 + 2·MAX − 3)/MAX⌋ + 1 = 3 windows per side, starting at −MAX,
        // 0 and MAX. Only the middle one (both ways) reaches the input: 9 ones. The loops skip the
        // other windows' taps at once instead of walking through the padding.
        let a = attrs(usize::MAX, usize::MAX, 1, 1);
        assert_eq!(a.infer_shape(&[x.shape(), w.shape()]), Ok(vec![1, 1, 3, 3]));
        let y = conv2d(&x, &w, None, &a).unwrap();
        assert_eq!(y.data(), &[0., 0., 0., 0., 9., 0., 0., 0., 0.]);
    }

    #[test]
    fn taps_inside_clips_to_the_input() {
        // Window at -3 with dilation 2 over 5 rows: taps at -3, -1, 1, 3, 5, 7 → k = 2, 3 inside.
        assert_eq!(taps_inside(-3, 6, 2, 5), 2..4);
        assert_eq!(taps_inside(0, 3, 1, 5), 0..3);
        // Entirely past the end, or entirely before the start.
        assert_eq!(taps_inside(5, 3, 1, 5).len(), 0);
        assert_eq!(taps_inside(-10, 3, 1, 5).len(), 0);
    }
}
