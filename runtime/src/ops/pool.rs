//! Pooling: `nn.MaxPool2d`, `nn.AvgPool2d` and global average pooling.
//!
//! The output size follows PyTorch's rule (see [`sliding_windows`]), including `ceil_mode`, and so do
//! the attribute checks: kernel, stride and dilation ≥ 1, and each side's padding at most half the
//! (undilated) kernel.

use super::conv2d::{check_allocatable, sliding_windows, taps_inside};
use super::{expect_rank, Padding2d, ShapeMismatch};
use crate::error::Result;
use crate::shape::fmt_shape;
use crate::tensor::Tensor;

/// Attributes of `nn.MaxPool2d`. Padding counts as −∞; a NaN in a window gives NaN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaxPool2d {
    /// Window size, (rows, columns).
    pub kernel: [usize; 2],
    /// Step between windows (PyTorch's default is the kernel size).
    pub stride: [usize; 2],
    /// Implicit −∞ padding.
    pub padding: Padding2d,
    /// Spacing between window taps.
    pub dilation: [usize; 2],
    /// Round the output size up; the last window must still start inside the input or left padding.
    pub ceil_mode: bool,
}

/// Attributes of `nn.AvgPool2d`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvgPool2d {
    /// Window size, (rows, columns).
    pub kernel: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Implicit zero padding.
    pub padding: Padding2d,
    /// Round the output size up, as for max-pool.
    pub ceil_mode: bool,
    /// Divide by the full window size including padding (PyTorch's default) rather than by the taps
    /// that fall inside the input.
    pub count_include_pad: bool,
}

/// Global average pooling: `[N, C, H, W]` → `[N, C, 1, 1]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalAvgPool2d;

/// The window geometry both pools share, for the shape rule and the kernels.
struct Windows {
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: Padding2d,
    dilation: [usize; 2],
    ceil_mode: bool,
}

impl Windows {
    /// Checks the attributes and the input `[N, C, H, W]`; returns the output shape `[N, C, H', W']`.
    fn output_shape(&self, input: &[usize]) -> Result<[usize; 4], ShapeMismatch> {
        for (name, values) in [
            ("kernel", self.kernel),
            ("stride", self.stride),
            ("dilation", self.dilation),
        ] {
            if values.contains(&0) {
                return Err(ShapeMismatch {
                    what: format!("attribute {name}"),
                    expected: "values ≥ 1".into(),
                    got: fmt_shape(&values),
                });
            }
        }
        // PyTorch checks both `pad ≤ (dilation·(k − 1) + 1) / 2` and `pad ≤ k / 2`; the second
        // implies the first, so it is the one that matters.
        let p = &self.padding;
        let [kh, kw] = self.kernel;
        if p.top.max(p.bottom) > kh / 2 || p.left.max(p.right) > kw / 2 {
            return Err(ShapeMismatch {
                what: "attribute padding".into(),
                expected: format!(
                    "at most half the kernel {kh}×{kw} on each side: top, bottom ≤ {}, left, right ≤ {}",
                    kh / 2,
                    kw / 2
                ),
                got: format!(
                    "top {}, left {}, bottom {}, right {}",
                    p.top, p.left, p.bottom, p.right
                ),
            });
        }
        expect_rank("operand 0 (input)", input, 4)?;
        // As in PyTorch, only the batch may be empty.
        if input[1..].contains(&0) {
            return Err(ShapeMismatch {
                what: "operand 0 (input)".into(),
                expected: "[N, C, H, W] with C, H, W ≥ 1".into(),
                got: fmt_shape(input),
            });
        }
        let [sh, sw] = self.stride;
        let [dh, dw] = self.dilation;
        let oh = sliding_windows(input[2], (p.top, p.bottom), kh, sh, dh, self.ceil_mode);
        let ow = sliding_windows(input[3], (p.left, p.right), kw, sw, dw, self.ceil_mode);
        match (oh, ow) {
            (Some(oh), Some(ow)) => {
                let out = [input[0], input[1], oh, ow];
                check_allocatable(input, &out)?;
                Ok(out)
            }
            _ => Err(ShapeMismatch {
                what: "operand 0 (input)".into(),
                expected: format!(
                    "room for at least one {kh}×{kw} window (dilation {dh}×{dw}) in the padded input"
                ),
                got: format!(
                    "{} with padding top {}, left {}, bottom {}, right {}",
                    fmt_shape(input),
                    p.top,
                    p.left,
                    p.bottom,
                    p.right
                ),
            }),
        }
    }

    /// The output shape for a kernel whose caller promised checked shapes.
    fn checked_output_shape(&self, op: &str, input: &[usize]) -> [usize; 4] {
        match self.output_shape(input) {
            Ok(shape) => shape,
            Err(e) => panic!("{op} called with unchecked shapes: {e}"),
        }
    }
}

impl MaxPool2d {
    fn windows(&self) -> Windows {
        Windows {
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            ceil_mode: self.ceil_mode,
        }
    }

    /// Output shape for an input of shape `[N, C, H, W]`.
    pub fn infer_shape(&self, input: &[usize]) -> Result<Vec<usize>, ShapeMismatch> {
        Ok(self.windows().output_shape(input)?.to_vec())
    }
}

impl AvgPool2d {
    fn windows(&self) -> Windows {
        Windows {
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            dilation: [1, 1],
            ceil_mode: self.ceil_mode,
        }
    }

    /// Output shape for an input of shape `[N, C, H, W]`.
    pub fn infer_shape(&self, input: &[usize]) -> Result<Vec<usize>, ShapeMismatch> {
        Ok(self.windows().output_shape(input)?.to_vec())
    }
}

impl GlobalAvgPool2d {
    /// Output shape for an input of shape `[N, C, H, W]`.
    pub fn infer_shape(&self, input: &[usize]) -> Result<Vec<usize>, ShapeMismatch> {
        expect_rank("operand 0 (input)", input, 4)?;
        Ok(vec![input[0], input[1], 1, 1])
    }
}

/// Reference max-pool: the largest tap of each window; taps in the padding are skipped (they are
/// −∞), and a NaN anywhere in the window makes the result NaN, as in PyTorch.
///
/// # Panics
/// If the input does not pass [`MaxPool2d::infer_shape`]; `Op::eval` checks it first.
pub fn max_pool2d(input: &Tensor, attrs: &MaxPool2d) -> Result<Tensor> {
    let [n, c, oh, ow] = attrs
        .windows()
        .checked_output_shape("max_pool2d", input.shape());
    let (h, w) = (input.shape()[2], input.shape()[3]);
    let [kh, kw] = attrs.kernel;
    let [dh, dw] = attrs.dilation;
    // Window origins in i128: padding and strides are arbitrary `usize`s (see `sliding_windows`).
    let [sh, sw] = attrs.stride.map(|s| s as i128);
    let (top, left) = (attrs.padding.top as i128, attrs.padding.left as i128);
    let mut out = Tensor::zeros(&[n, c, oh, ow])?;
    let y = out.data_mut();
    let mut yi = 0;
    for plane in input.data().chunks_exact(h * w).take(n * c) {
        for oy in 0..oh {
            let y0 = oy as i128 * sh - top;
            for ox in 0..ow {
                let x0 = ox as i128 * sw - left;
                let mut m = f32::NEG_INFINITY;
                for ky in taps_inside(y0, kh, dh, h) {
                    let iy = (y0 + (ky * dh) as i128) as usize;
                    for kx in taps_inside(x0, kw, dw, w) {
                        let ix = (x0 + (kx * dw) as i128) as usize;
                        let v = plane[iy * w + ix];
                        // Not `f32::max`, which would drop a NaN; once `m` is NaN no `v > m` holds,
                        // so the NaN sticks.
                        if v > m || v.is_nan() {
                            m = v;
                        }
                    }
                }
                y[yi] = m;
                yi += 1;
            }
        }
    }
    Ok(out)
}

/// Reference average pool, PyTorch's CPU kernel step by step: a window covers rows
/// `[start, min(start + k, H + pad_bottom))` — clipped to the *padded* input, which only matters with
/// `ceil_mode` — and the same for columns; with `count_include_pad` the divisor is that clipped
/// window's area, otherwise the number of its taps inside the input. The taps are summed in `f32`,
/// row by row, and the sum is divided once. A window with no tap inside the input gives 0.
///
/// # Panics
/// If the input does not pass [`AvgPool2d::infer_shape`]; `Op::eval` checks it first.
pub fn avg_pool2d(input: &Tensor, attrs: &AvgPool2d) -> Result<Tensor> {
    let [n, c, oh, ow] = attrs
        .windows()
        .checked_output_shape("avg_pool2d", input.shape());
    let (h, w) = (input.shape()[2], input.shape()[3]);
    // Window bounds in i128: padding, kernel and strides are arbitrary `usize`s.
    let (hi, wi) = (h as i128, w as i128);
    let [kh, kw] = attrs.kernel.map(|k| k as i128);
    let [sh, sw] = attrs.stride.map(|s| s as i128);
    let p = attrs.padding;
    let [top, left, bottom, right] = [p.top, p.left, p.bottom, p.right].map(|v| v as i128);
    let mut out = Tensor::zeros(&[n, c, oh, ow])?;
    let y = out.data_mut();
    let mut yi = 0;
    for plane in input.data().chunks_exact(h * w).take(n * c) {
        for oy in 0..oh {
            for ox in 0..ow {
                let (y0, x0) = (oy as i128 * sh - top, ox as i128 * sw - left);
                let (y1, x1) = ((y0 + kh).min(hi + bottom), (x0 + kw).min(wi + right));
                let padded_area = (y1 - y0).saturating_mul(x1 - x0);
                let (y0, x0, y1, x1) = (y0.max(0), x0.max(0), y1.min(hi), x1.min(wi));
                let divisor = if attrs.count_include_pad {
                    padded_area
                } else {
                    (y1 - y0) * (x1 - x0)
                };
                y[yi] = if y0 >= y1 || x0 >= x1 {
                    // Only reachable with ceil_mode: nothing to average (and no zero divisor).
                    0.0
                } else {
                    let mut sum = 0f32;
                    for iy in y0 as usize..y1 as usize {
                        for ix in x0 as usize..x1 as usize {
                            sum += plane[iy * w + ix];
                        }
                    }
                    sum / divisor as f32
                };
                yi += 1;
            }
        }
    }
    Ok(out)
}

/// Reference global average pool: the mean of each `H×W` plane. The sum is kept in `f64`, so the
/// reference is at least as accurate as PyTorch's (`adaptive_avg_pool2d(x, 1)` is `mean`, which sums
/// pairwise in `f32`); the two may differ in the last bit.
///
/// # Panics
/// If the input is not 4-d; `Op::eval` checks it first.
pub fn global_avg_pool2d(input: &Tensor) -> Result<Tensor> {
    let &[n, c, h, w] = input.shape() else {
        panic!(
            "global_avg_pool2d called with unchecked shape {}",
            fmt_shape(input.shape())
        );
    };
    let mut out = Tensor::zeros(&[n, c, 1, 1])?;
    let plane = h * w;
    for (i, y) in out.data_mut().iter_mut().enumerate() {
        let sum: f64 = input.data()[i * plane..(i + 1) * plane]
            .iter()
            .map(|&v| f64::from(v))
            .sum();
        // An empty plane gives 0/0 = NaN, as PyTorch's mean of nothing does.
        *y = (sum / plane as f64) as f32;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_util::{ints, t};

    fn max(k: usize, s: usize, p: usize, d: usize, ceil_mode: bool) -> MaxPool2d {
        MaxPool2d {
            kernel: [k; 2],
            stride: [s; 2],
            padding: Padding2d::symmetric(p, p),
            dilation: [d; 2],
            ceil_mode,
        }
    }

    fn avg(k: usize, s: usize, p: usize, ceil_mode: bool, count_include_pad: bool) -> AvgPool2d {
        AvgPool2d {
            kernel: [k; 2],
            stride: [s; 2],
            padding: Padding2d::symmetric(p, p),
            ceil_mode,
            count_include_pad,
        }
    }

    /// 1, 2, …, 16 as a 1×1×4×4 tensor.
    fn one_to_sixteen() -> Tensor {
        let data: Vec<f32> = (1..=16).map(|v| v as f32).collect();
        t(&data, &[1, 1, 4, 4])
    }

    #[test]
    fn max_two_by_two_stride_two() {
        // Rows 1–4, 5–8, 9–12, 13–16; each 2×2 block's maximum is its bottom-right: 6, 8, 14, 16.
        let y = max_pool2d(&one_to_sixteen(), &max(2, 2, 0, 1, false)).unwrap();
        assert_eq!(y, t(&[6., 8., 14., 16.], &[1, 1, 2, 2]));
    }

    #[test]
    fn avg_two_by_two_stride_two() {
        // (1+2+5+6)/4 = 3.5, (3+4+7+8)/4 = 5.5, (9+10+13+14)/4 = 11.5, (11+12+15+16)/4 = 13.5.
        let y = avg_pool2d(&one_to_sixteen(), &avg(2, 2, 0, false, true)).unwrap();
        assert_eq!(y, t(&[3.5, 5.5, 11.5, 13.5], &[1, 1, 2, 2]));
    }

    #[test]
    fn max_padding_is_minus_infinity() {
        // All-negative input, 3×3 windows with padding 1, stride 3: a zero padding would win; −∞
        // does not. 1×1×2×2 of [−1 −2 −3 −4] → one window → −1.
        let x = t(&[-1., -2., -3., -4.], &[1, 1, 2, 2]);
        let y = max_pool2d(&x, &max(3, 3, 1, 1, false)).unwrap();
        assert_eq!(y, t(&[-1.], &[1, 1, 1, 1]));
    }

    #[test]
    fn max_nan_propagates_in_either_order() {
        // x = torch.tensor([[[[1., float('nan'), 3.], [4., 5., 6.], [7., 8., float('-inf')]]]])
        // F.max_pool2d(x, 2, stride=1) → [[nan, nan], [8., 8.]]
        // (window (0,0) meets 1 before the NaN, window (0,1) the NaN before 3, 5 and 6).
        let x = t(
            &[1., f32::NAN, 3., 4., 5., 6., 7., 8., f32::NEG_INFINITY],
            &[1, 1, 3, 3],
        );
        let y = max_pool2d(&x, &max(2, 1, 0, 1, false)).unwrap();
        assert!(y.data()[0].is_nan() && y.data()[1].is_nan());
        assert_eq!(&y.data()[2..], &[8., 8.]);
    }

    #[test]
    fn max_dilation_with_ceil_mode_matches_pytorch() {
        // x = ints([1, 1, 6, 7], 7, 11)
        // F.max_pool2d(x, 3, stride=2, padding=1, dilation=2, ceil_mode=True)   # 3×3
        // F.max_pool2d(x, 3, stride=2, padding=1, dilation=2, ceil_mode=False)  # 2×3
        // Rows: the dilated window spans 5; ⌈(6 + 2 − 5)/2⌉ + 1 = 3 (last start 4 < 6 + 1: kept)
        // against ⌊3/2⌋ + 1 = 2 without ceil. Columns: (7 + 2 − 5)/2 + 1 = 3 either way.
        let x = ints(&[1, 1, 6, 7], 7, 11);
        let y = max_pool2d(&x, &max(3, 2, 1, 2, true)).unwrap();
        assert_eq!(y, t(&[2., 5., 5., 2., 5., 5., 1., 4., 4.], &[1, 1, 3, 3]));
        let y = max_pool2d(&x, &max(3, 2, 1, 2, false)).unwrap();
        assert_eq!(y, t(&[2., 5., 5., 2., 5., 5.], &[1, 1, 2, 3]));
    }

    #[test]
    fn ceil_mode_drops_a_window_that_starts_in_the_right_padding() {
        // x = ints([1, 1, 5, 5], 3, 7)
        // F.max_pool2d(x, 2, stride=2, padding=1, ceil_mode=True)  # 3×3, not 4×4
        // F.avg_pool2d(x, 2, stride=2, padding=1, ceil_mode=True)
        // ⌈(5 + 2 − 2)/2⌉ + 1 = 4, but the 4th window would start at 3·2 − 1 = 5, past the input
        // (3·2 ≥ 5 + 1): dropped, leaving 3.
        let x = ints(&[1, 1, 5, 5], 3, 7);
        let m = max(2, 2, 1, 1, true);
        assert_eq!(m.infer_shape(x.shape()), Ok(vec![1, 1, 3, 3]));
        let y = max_pool2d(&x, &m).unwrap();
        assert_eq!(y, t(&[0., 3., 2., 2., 1., 3., 3., 3., 2.], &[1, 1, 3, 3]));
        let y = avg_pool2d(&x, &avg(2, 2, 1, true, true)).unwrap();
        let expected = [0., 0.5, 0., 0.75, -1., -0.25, 0., 1., 0.];
        assert_eq!(y, t(&expected, &[1, 1, 3, 3]));
    }

    #[test]
    fn avg_count_include_pad_with_ceil_mode_matches_pytorch() {
        // x = ints([1, 2, 6, 5], 5, 13)
        // for cip in [True, False]: for ceil in [True, False]:
        //     F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=ceil, count_include_pad=cip)
        // With ceil_mode the 4th row of windows starts at row 5 and would end at 8, but is clipped
        // to the padded input (6 + 1 = 7): rows 5–6, of which only row 5 = [5 −3 2 −6 −1] is
        // input. Its last window (columns 3–5, column 5 is padding) sums −6 + −1 = −7, divided by
        // the 2×3 padded area (−7/6 = −1.1666666) or by the 2 input taps (−3.5).
        let x = ints(&[1, 2, 6, 5], 5, 13);
        #[rustfmt::skip]
        let cases: [(bool, bool, &[usize], &[f32]); 4] = [
            (true, true, &[1, 2, 4, 3], &[
                -0.44444445, 0.0, 0.44444445, -1.6666666, 0.6666667, -0.33333334, -0.11111111,
                -1.3333334, -1.6666666, 0.33333334, -1.1666666, -1.1666666,
                -0.22222222, 0.33333334, 0.6666667, 0.11111111, 0.44444445, 0.0, 1.6666666,
                1.3333334, 0.11111111, 0.5, 0.16666667, 1.1666666,
            ]),
            (true, false, &[1, 2, 3, 3], &[
                -0.44444445, 0.0, 0.44444445, -1.6666666, 0.6666667, -0.33333334, -0.11111111,
                -1.3333334, -1.6666666,
                -0.22222222, 0.33333334, 0.6666667, 0.11111111, 0.44444445, 0.0, 1.6666666,
                1.3333334, 0.11111111,
            ]),
            (false, true, &[1, 2, 4, 3], &[
                -1.0, 0.0, 1.0, -2.5, 0.6666667, -0.5, -0.16666667, -1.3333334, -2.5, 1.0,
                -2.3333333, -3.5,
                -0.5, 0.5, 1.5, 0.16666667, 0.44444445, 0.0, 2.5, 1.3333334, 0.16666667, 1.5,
                0.33333334, 3.5,
            ]),
            (false, false, &[1, 2, 3, 3], &[
                -1.0, 0.0, 1.0, -2.5, 0.6666667, -0.5, -0.16666667, -1.3333334, -2.5,
                -0.5, 0.5, 1.5, 0.16666667, 0.44444445, 0.0, 2.5, 1.3333334, 0.16666667,
            ]),
        ];
        for (count_include_pad, ceil_mode, shape, expected) in cases {
            let y = avg_pool2d(&x, &avg(3, 2, 1, ceil_mode, count_include_pad)).unwrap();
            assert_eq!(
                y,
                t(expected, shape),
                "count_include_pad={count_include_pad} ceil_mode={ceil_mode}"
            );
        }
    }

    #[test]
    fn asymmetric_padding_matches_explicit_padding_in_pytorch() {
        // x = ints([1, 1, 4, 5], 7, 11)
        // F.max_pool2d(F.pad(x, (0, 1, 1, 0), value=float('-inf')), 2, stride=2)
        // F.avg_pool2d(F.pad(x, (0, 1, 1, 0)), 2, stride=2)
        // (F.pad's (left, right, top, bottom) = (0, 1, 1, 0).)
        let x = ints(&[1, 1, 4, 5], 7, 11);
        let padding = Padding2d {
            top: 1,
            left: 0,
            bottom: 0,
            right: 1,
        };
        let m = MaxPool2d {
            padding,
            ..max(2, 2, 0, 1, false)
        };
        let y = max_pool2d(&x, &m).unwrap();
        assert_eq!(y, t(&[5., 1., 4., 2., 5., -3.], &[1, 1, 2, 3]));
        let a = AvgPool2d {
            padding,
            ..avg(2, 2, 0, false, true)
        };
        let y = avg_pool2d(&x, &a).unwrap();
        assert_eq!(y, t(&[0.75, -0.5, 1., -1., 2., -2.], &[1, 1, 2, 3]));
    }

    #[test]
    fn global_avg_pool_averages_each_plane() {
        // Channel 0: (1 + 2 + 3 + 4)/4 = 2.5; channel 1: (−1 + 1 + 0 + 8)/4 = 2.
        let x = t(&[1., 2., 3., 4., -1., 1., 0., 8.], &[1, 2, 2, 2]);
        let p = GlobalAvgPool2d;
        assert_eq!(p.infer_shape(x.shape()), Ok(vec![1, 2, 1, 1]));
        assert_eq!(global_avg_pool2d(&x).unwrap(), t(&[2.5, 2.], &[1, 2, 1, 1]));
    }

    #[test]
    fn padding_above_half_the_kernel_is_rejected() {
        // PyTorch: "pad should be at most half of effective kernel size" and, with dilation,
        // "pad should be smaller than or equal to half of kernel size" (k = 2, dilation 3, pad 2).
        let err = max(3, 1, 2, 1, false)
            .infer_shape(&[1, 1, 8, 8])
            .unwrap_err();
        assert_eq!(err.what, "attribute padding");
        assert!(err.expected.contains("≤ 1"), "{err}");
        assert!(err.got.contains("top 2"), "{err}");
        assert!(max(2, 1, 2, 3, false).infer_shape(&[1, 1, 8, 8]).is_err());
        assert!(max(2, 1, 1, 3, false).infer_shape(&[1, 1, 8, 8]).is_ok());
        assert!(avg(1, 1, 1, false, true)
            .infer_shape(&[1, 1, 8, 8])
            .is_err());
        assert!(avg(4, 1, 2, false, true).infer_shape(&[1, 1, 8, 8]).is_ok());
    }

    #[test]
    fn shape_errors_name_the_operand() {
        let err = max(2, 2, 0, 1, false).infer_shape(&[1, 8, 8]).unwrap_err();
        assert_eq!(
            (err.what.as_str(), err.expected.as_str(), err.got.as_str()),
            ("operand 0 (input)", "a 4-d tensor", "[1, 8, 8]")
        );
        // A 3×3 window does not fit a 2×2 input (PyTorch: "Output size is too small").
        let err = max(3, 1, 0, 1, false)
            .infer_shape(&[1, 1, 2, 2])
            .unwrap_err();
        assert_eq!(err.what, "operand 0 (input)");
        assert!(err.got.contains("[1, 1, 2, 2]"), "{err}");
        // … but with ceil_mode a 3×3 window with stride 3 over 1×1 is one output, as in PyTorch.
        assert_eq!(
            max(3, 3, 0, 1, true).infer_shape(&[1, 1, 1, 1]),
            Ok(vec![1, 1, 1, 1])
        );
        let err = avg(2, 2, 0, false, true)
            .infer_shape(&[1, 1, 0, 4])
            .unwrap_err();
        assert_eq!(err.got, "[1, 1, 0, 4]");
        for (pool, what) in [
            (max(0, 1, 0, 1, false), "attribute kernel"),
            (max(2, 0, 0, 1, false), "attribute stride"),
            (max(2, 1, 0, 0, false), "attribute dilation"),
        ] {
            assert_eq!(pool.infer_shape(&[1, 1, 4, 4]).unwrap_err().what, what);
        }
        assert!(GlobalAvgPool2d.infer_shape(&[2, 3]).is_err());
    }

    #[test]
    fn absurd_kernel_and_padding_do_not_overflow() {
        // kernel usize::MAX with padding ⌊MAX/2⌋ is legal; stride MAX leaves a single window over
        // the whole input.
        let big = usize::MAX;
        let x = one_to_sixteen();
        let m = MaxPool2d {
            kernel: [big; 2],
            stride: [big; 2],
            padding: Padding2d::symmetric(big / 2, big / 2),
            dilation: [1, 1],
            ceil_mode: false,
        };
        assert_eq!(max_pool2d(&x, &m).unwrap().data(), &[16.0]);
        let a = AvgPool2d {
            kernel: [big; 2],
            stride: [big; 2],
            padding: Padding2d::symmetric(big / 2, big / 2),
            ceil_mode: false,
            count_include_pad: false,
        };
        // 1 + 2 + … + 16 = 136 over the 16 input taps.
        assert_eq!(avg_pool2d(&x, &a).unwrap().data(), &[8.5]);
    }
}
