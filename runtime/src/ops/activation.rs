//! Element-wise activations with PyTorch semantics, and the functional API (`relu`, `relu_`).

use crate::tensor::Tensor;

/// Which GELU formula to use (`nn.GELU(approximate=…)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeluApproximate {
    /// Exact: `0.5·x·(1 + erf(x/√2))`.
    None,
    /// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
    Tanh,
}

/// An element-wise activation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// `max(0, x)`; NaN stays NaN.
    Relu,
    /// `x` if `x > 0`, else `negative_slope·x`.
    LeakyRelu {
        /// Slope for negative inputs (PyTorch's default 0.01).
        negative_slope: f32,
    },
    /// `1 / (1 + e^−x)`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// Gaussian error linear unit.
    Gelu {
        /// Exact or tanh form.
        approximate: GeluApproximate,
    },
    /// `x` if `x > 0`, else `alpha·(e^x − 1)`.
    Elu {
        /// Scale of the negative part (PyTorch's default 1.0).
        alpha: f32,
    },
}

impl Activation {
    /// The op's name in the text IR.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Gelu { .. } => "gelu",
            Activation::Elu { .. } => "elu",
        }
    }

    /// The activation of one value, as PyTorch's CPU kernels compute it in `f32` (relu, leaky_relu,
    /// sigmoid, tanh, elu), or as the `f64` formula rounded once to `f32` (both GELUs: PyTorch's
    /// `f32` evaluation of `1 + erf(…)` and `1 + tanh(…)` cancels for negative inputs, so its values
    /// there are off by up to ~1.5e-6; the accurate value is the better oracle).
    ///
    /// Special values follow PyTorch: NaN stays NaN, `−0.0` stays `−0.0` (relu, leaky_relu, tanh,
    /// elu, gelu), `gelu(−∞)` is NaN (it is `−∞·0`), `sigmoid(−100)` is exactly 0.
    pub fn eval_scalar(&self, x: f32) -> f32 {
        match *self {
            // Not `x.max(0.0)`: that turns NaN into 0. `x < 0` is false for NaN and for −0.0, both
            // of which PyTorch passes through.
            Activation::Relu => {
                if x < 0.0 {
                    0.0
                } else {
                    x
                }
            }
            Activation::LeakyRelu { negative_slope } => {
                if x > 0.0 {
                    x
                } else {
                    x * negative_slope
                }
            }
            // PyTorch's formula in f32: `exp(−x)` overflows to ∞ below x ≈ −88.7, giving exactly 0.
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Tanh => x.tanh(),
            Activation::Gelu {
                approximate: GeluApproximate::None,
            } => gelu_erf(x),
            Activation::Gelu {
                approximate: GeluApproximate::Tanh,
            } => gelu_tanh(x),
            // `expm1`, as PyTorch uses, keeps small negative inputs accurate.
            Activation::Elu { alpha } => {
                if x > 0.0 {
                    x
                } else {
                    x.exp_m1() * alpha
                }
            }
        }
    }

    /// A new tensor with the activation applied to every element.
    pub fn apply(&self, input: &Tensor) -> Tensor {
        let mut out = input.clone();
        self.apply_inplace(&mut out);
        out
    }

    /// Applies the activation to every element in place.
    pub fn apply_inplace(&self, t: &mut Tensor) {
        t.data_mut()
            .iter_mut()
            .for_each(|v| *v = self.eval_scalar(*v));
    }
}

/// `F.relu(x)`: a new tensor.
pub fn relu(input: &Tensor) -> Tensor {
    Activation::Relu.apply(input)
}

/// `F.relu_(x)`: in place; the tensor keeps its storage.
pub fn relu_(t: &mut Tensor) {
    Activation::Relu.apply_inplace(t)
}

/// Exact GELU `0.5·x·(1 + erf(x/√2))`, evaluated in `f64` as `0.5·x·erfc(−x/√2)` (the same value
/// without the cancellation for negative `x`) and rounded once.
fn gelu_erf(x: f32) -> f32 {
    let x = f64::from(x);
    (0.5 * x * erfc(-x * std::f64::consts::FRAC_1_SQRT_2)) as f32
}

/// Tanh-form GELU `0.5·x·(1 + tanh(u))`, `u = √(2/π)·(x + 0.044715·x³)`, evaluated in `f64` as
/// `x / (1 + e^(−2u))` (an identity that avoids the cancellation for negative `x`) and rounded once.
fn gelu_tanh(x: f32) -> f32 {
    let x = f64::from(x);
    let sqrt_2_over_pi = std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2;
    let u = sqrt_2_over_pi * (x + 0.044715 * x * x * x);
    (x / (1.0 + (-2.0 * u).exp())) as f32
}

/// Below this, erf comes from its power series; above, erfc from its continued fraction. Both are
/// accurate to better than 1e-12 relative on their side (they converge fast there).
const ERF_SERIES_LIMIT: f64 = 2.0;

/// The error function `erf(x) = 2/√π ∫₀ˣ e^(−t²) dt`, to about 1e-13 relative error — far more than
/// an `f32` result needs. `erf(±∞) = ±1`, `erf(−0) = −0`, NaN gives NaN.
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    let r = if a < ERF_SERIES_LIMIT {
        erf_series(a)
    } else {
        1.0 - erfc_continued_fraction(a)
    };
    r.copysign(x)
}

/// The complementary error function `erfc(x) = 1 − erf(x)`, computed without forming `1 − erf(x)`
/// for large `x` (so it keeps its relative accuracy down to the smallest `f64`s).
/// `erfc(−∞) = 2`, `erfc(∞) = 0`, NaN gives NaN.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        x
    } else if x < 0.0 {
        2.0 - erfc(-x)
    } else if x < ERF_SERIES_LIMIT {
        1.0 - erf_series(x)
    } else {
        erfc_continued_fraction(x)
    }
}

/// `erf(a)` for `0 ≤ a < 2` from the series `2/√π · a·e^(−a²) · Σₙ (2a²)ⁿ / (1·3·5⋯(2n+1))`, whose
/// terms are all positive (no cancellation, unlike the alternating Taylor series). At `a < 2` the
/// ratio of successive terms falls below 1 from n = 4 on, so 60 terms are more than enough.
fn erf_series(a: f64) -> f64 {
    let two_a2 = 2.0 * a * a;
    let (mut term, mut sum) = (1.0, 1.0);
    for n in 1..=60 {
        term *= two_a2 / f64::from(2 * n + 1);
        sum += term;
        if term <= sum * 1e-17 {
            break;
        }
    }
    std::f64::consts::FRAC_2_SQRT_PI * a * (-a * a).exp() * sum
}

/// `erfc(a)` for `a ≥ 2` from Laplace's continued fraction
/// `e^(−a²)/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + 2/(a + …)))))`, evaluated from a fixed depth
/// upward; at `a ≥ 2`, 50 levels give about 1e-14 relative error (checked against mpmath).
fn erfc_continued_fraction(a: f64) -> f64 {
    let mut f = a;
    for k in (1..=50).rev() {
        f = a + f64::from(k) / 2.0 / f;
    }
    (-a * a).exp() / (std::f64::consts::PI.sqrt() * f)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite floats (0 for equal values, including
    /// +0 and −0).
    fn ulps(a: f32, b: f32) -> u32 {
        // Map the bit patterns to a monotonic integer line: negatives mirrored below zero.
        let key = |v: f32| {
            let bits = v.to_bits() as i64;
            if bits & 0x8000_0000 != 0 {
                -(bits & 0x7fff_ffff)
            } else {
                bits
            }
        };
        (key(a) - key(b)).unsigned_abs() as u32
    }

    /// Same value, same sign of zero, NaN matching NaN.
    fn same(a: f32, b: f32) -> bool {
        (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
    }

    const INF: f32 = f32::INFINITY;
    const NAN: f32 = f32::NAN;

    /// The inputs of the PyTorch tables below: nine special values, then ordinary ones.
    const XS: [f32; 23] = [
        -0.0, 0.0, NAN, INF, -INF, 100.0, -100.0, 1e30, -1e30, -6.0, -3.5, -2.0, -1.0, -0.5, -1e-3,
        1e-3, 0.5, 1.0, 2.0, 3.5, 6.0, 1e-20, -1e-20,
    ];
    const SPECIAL: usize = 9;

    // The PyTorch values (its vectorised CPU path, as a model's tensors take):
    //
    // xs = [-0.0, 0.0, float('nan'), float('inf'), float('-inf'), 100.0, -100.0, 1e30, -1e30,
    //       -6.0, -3.5, -2.0, -1.0, -0.5, -1e-3, 1e-3, 0.5, 1.0, 2.0, 3.5, 6.0, 1e-20, -1e-20]
    // x = torch.tensor(xs)
    // fns = {'relu': F.relu, 'leaky_relu(0.1)': lambda t: F.leaky_relu(t, 0.1),
    //        'sigmoid': torch.sigmoid, 'tanh': torch.tanh, 'gelu': F.gelu,
    //        'gelu_tanh': lambda t: F.gelu(t, approximate='tanh'), 'elu(1.5)': lambda t: F.elu(t, 1.5)}
    // for name, f in fns.items(): print(name, f(x).tolist())
    #[rustfmt::skip]
    fn pytorch_table() -> Vec<(Activation, [f32; 23])> {
        vec![
            (Activation::Relu, [
                -0.0, 0.0, NAN, INF, 0.0, 100.0, 0.0, 1e+30, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                0.001, 0.5, 1.0, 2.0, 3.5, 6.0, 1e-20, 0.0,
            ]),
            (Activation::LeakyRelu { negative_slope: 0.1 }, [
                -0.0, 0.0, NAN, INF, -INF, 100.0, -10.0, 1e+30, -1e+29, -0.6, -0.35, -0.2, -0.1,
                -0.05, -0.000100000005, 0.001, 0.5, 1.0, 2.0, 3.5, 6.0, 1e-20, -1e-21,
            ]),
            (Activation::Sigmoid, [
                0.5, 0.5, NAN, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.002472623, 0.02931223, 0.11920292,
                0.26894143, 0.37754068, 0.49975002, 0.50025, 0.62245935, 0.7310586, 0.880797,
                0.97068775, 0.9975274, 0.5, 0.5,
            ]),
            (Activation::Tanh, [
                -0.0, 0.0, NAN, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, -0.9999877, -0.9981779,
                -0.9640276, -0.7615942, -0.46211717, -0.0009999997, 0.0009999997, 0.46211717,
                0.7615942, 0.9640276, 0.9981779, 0.9999877, 1e-20, -1e-20,
            ]),
            // PyTorch's vectorised exact GELU gives NaN at +∞ (its erf polynomial computes 0·∞);
            // its scalar path, and this crate, give +∞ — the table holds +∞.
            (Activation::Gelu { approximate: GeluApproximate::None }, [
                -0.0, 0.0, NAN, INF, NAN, 100.0, -0.0, 1e+30, -0.0, -0.0, -0.00081433356,
                -0.04550028, -0.15865526, -0.15426877, -0.00049960107, 0.000500399, 0.34573123,
                0.8413447, 1.9544997, 3.4991856, 6.0, 5e-21, -5e-21,
            ]),
            (Activation::Gelu { approximate: GeluApproximate::Tanh }, [
                -0.0, 0.0, NAN, INF, NAN, 100.0, -0.0, 1e+30, -0.0, -0.0, -0.0006161481,
                -0.04540229, -0.158808, -0.154286, -0.00049960107, 0.000500399, 0.345714,
                0.841192, 1.9545977, 3.4993837, 6.0, 5e-21, -5e-21,
            ]),
            (Activation::Elu { alpha: 1.5 }, [
                -0.0, 0.0, NAN, INF, -1.5, 100.0, -1.5, 1e+30, -1.5, -1.4962819, -1.4547039,
                -1.2969971, -0.9481808, -0.590204, -0.0014992503, 0.001, 0.5, 1.0, 2.0, 3.5, 6.0,
                1e-20, -1.5e-20,
            ]),
        ]
    }

    #[test]
    fn relu_by_hand() {
        // max(0, x), but NaN stays NaN and −0 stays −0 (PyTorch's clamp_min(x, 0) does the same).
        let x = Tensor::from_vec(vec![-1.0, 0.0, 2.5, NAN, -0.0], &[5]).unwrap();
        let y = relu(&x);
        assert_eq!(&y.data()[..3], &[0.0, 0.0, 2.5]);
        assert!(y.data()[3].is_nan());
        assert!(y.data()[4] == 0.0 && y.data()[4].is_sign_negative());
    }

    #[test]
    fn relu_in_place_keeps_the_storage() {
        let mut x = Tensor::from_vec(vec![-1.0, 3.0], &[2]).unwrap();
        let before = x.data().as_ptr();
        relu_(&mut x);
        assert_eq!(x.data(), &[0.0, 3.0]);
        assert_eq!(x.data().as_ptr(), before);
    }

    #[test]
    fn special_values_match_pytorch_exactly() {
        for (act, expected) in pytorch_table() {
            for (&x, &e) in XS.iter().zip(&expected).take(SPECIAL) {
                let got = act.eval_scalar(x);
                assert!(same(got, e), "{act:?}({x}) = {got}, PyTorch {e}");
            }
        }
    }

    #[test]
    fn ordinary_values_match_pytorch() {
        for (act, expected) in pytorch_table() {
            let gelu = matches!(act, Activation::Gelu { .. });
            for (&x, &e) in XS.iter().zip(&expected).skip(SPECIAL) {
                let got = act.eval_scalar(x);
                // PyTorch evaluates GELU's `1 + erf(…)` / `1 + tanh(…)` in f32, which cancels for
                // negative x (off by up to ~1.5e-6 absolute); this crate's value is the accurate
                // one (see `gelu_is_correctly_rounded`), so only there an absolute tolerance.
                let close = ulps(got, e) <= 2 || (gelu && (got - e).abs() <= 2e-6);
                assert!(close, "{act:?}({x}) = {got}, PyTorch {e}");
            }
        }
    }

    #[test]
    fn gelu_is_correctly_rounded() {
        // mpmath.mp.dps = 50; for v in xs[9:]:
        //   exact: 0.5 * v * mpmath.erfc(-v / mpmath.sqrt(2))
        //   tanh:  u = mpmath.sqrt(2 / mpmath.pi) * (v + mpmath.mpf('0.044715') * v**3)
        //          0.5 * v * (1 + mpmath.tanh(u))
        // each rounded to float32.
        #[rustfmt::skip]
        let exact = [
            -5.9195258e-09, -0.0008142018, -0.045500264, -0.15865526, -0.15426877,
            -0.00049960107, 0.000500399, 0.34573123, 0.8413448, 1.9544997, 3.4991858, 6.0, 5e-21,
            -5e-21,
        ];
        #[rustfmt::skip]
        let tanh = [
            -8.439647e-11, -0.00061619765, -0.045402307, -0.15880801, -0.154286, -0.00049960107,
            0.000500399, 0.345714, 0.841192, 1.9545977, 3.4993837, 6.0, 5e-21, -5e-21,
        ];
        for (approximate, expected) in [
            (GeluApproximate::None, exact),
            (GeluApproximate::Tanh, tanh),
        ] {
            let act = Activation::Gelu { approximate };
            for (&x, &e) in XS[SPECIAL..].iter().zip(&expected) {
                assert_eq!(act.eval_scalar(x), e, "{act:?}({x})");
            }
        }
    }

    #[test]
    fn gelu_is_correctly_rounded_across_the_series_fraction_switch() {
        // erf switches from its series to the continued fraction at |x/√2| = 2, i.e. x = ±2.828427.
        // for v in [-2.8284268, -2.828427, -2.8284273, 2.8284268, 2.828427, 2.8284273]:
        //     m = mpmath.mpf(float(np.float32(v))); np.float32(float(0.5 * m * mpmath.erfc(-m / mpmath.sqrt(2))))
        let table = [
            (-2.8284268, -0.0066153216),
            (-2.828427, -0.006615317),
            (-2.8284273, -0.006615313),
            (2.8284268, 2.8218114),
            (2.828427, 2.8218117),
            (2.8284273, 2.821812),
        ];
        let gelu = Activation::Gelu {
            approximate: GeluApproximate::None,
        };
        for (x, e) in table {
            assert_eq!(gelu.eval_scalar(x), e, "gelu({x})");
        }
    }

    #[test]
    fn erf_and_erfc_match_mpmath() {
        // mpmath.mp.dps = 50; [(v, mpmath.erf(v), mpmath.erfc(v)) for v in [0.5, 1, 2, 2.5, 3, 10, 26]]
        // (each printed as float(...), the f64 nearest to the 50-digit value)
        let table = [
            (0.5, 0.5204998778130465, 0.4795001221869535),
            (1.0, 0.8427007929497149, 0.15729920705028513),
            (2.0, 0.9953222650189527, 0.004677734981047266),
            (2.5, 0.999593047982555, 0.0004069520174449589),
            (3.0, 0.9999779095030014, 2.209049699858544e-05),
            (10.0, 1.0, 2.088487583762545e-45),
            (26.0, 1.0, 5.663192408856143e-296),
        ];
        let rel = |a: f64, b: f64| ((a - b) / b).abs();
        for (x, e, c) in table {
            assert!(rel(erf(x), e) < 1e-12, "erf({x}) = {}", erf(x));
            assert!(rel(erf(-x), -e) < 1e-12, "erf(-{x})");
            assert!(rel(erfc(x), c) < 1e-12, "erfc({x}) = {}", erfc(x));
            assert!(rel(erfc(-x), 2.0 - c) < 1e-12, "erfc(-{x})");
        }
        assert_eq!(erf(0.0), 0.0);
        assert!(erf(-0.0).is_sign_negative());
        assert_eq!((erf(f64::INFINITY), erf(f64::NEG_INFINITY)), (1.0, -1.0));
        assert_eq!((erfc(f64::INFINITY), erfc(f64::NEG_INFINITY)), (0.0, 2.0));
        assert!(erf(f64::NAN).is_nan() && erfc(f64::NAN).is_nan());
    }

    #[test]
    fn apply_maps_every_element() {
        let x = Tensor::from_vec(vec![-2.0, 0.0, 3.0], &[1, 3]).unwrap();
        // leaky_relu(0.5): −2·0.5 = −1, 0, 3.
        let y = Activation::LeakyRelu {
            negative_slope: 0.5,
        }
        .apply(&x);
        assert_eq!(y.data(), &[-1.0, 0.0, 3.0]);
        assert_eq!(y.shape(), &[1, 3]);
    }
}
