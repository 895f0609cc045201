//! The op set: one file per family, each holding its attribute struct, its shape rule and its
//! reference kernel (the simplest correct loops, PyTorch semantics). [`Op`] ties them together; the
//! compiler's graph and the runtime's [`Plan`](crate::Plan) both carry it.
//!
//! Operand order (what `inputs[i]` means) per op:
//! - `conv2d`: input `[N, C, H, W]`, weight `[O, C/groups, kH, kW]`, bias `[O]` if `bias`, then the
//!   residual `[N, O, H', W']` if the epilogue has one;
//! - `linear`: input `[N, in]`, weight `[out, in]`, bias `[out]` if `bias`, then the residual;
//! - `batch_norm`: input, weight `[C]`, bias `[C]`, running_mean `[C]`, running_var `[C]`;
//! - `add`: two operands of the same shape;
//! - every other op: one operand.
//!
//! # Adding an op
//! 1. Its file here: the attribute struct, `infer_shape` returning a [`ShapeMismatch`] that names the
//!    operand and shows expected and got, and the reference kernel (plain loops, PyTorch's
//!    semantics); a variant of [`Op`] with its `name`, `operand_names`, `infer_shape` and `eval`
//!    arms.
//! 2. Its text form: one line in the op table of `compiler/src/ir/text/attrs.rs` (`OPS`) and one arm
//!    in its `visit` (the attributes in print order); the op table in `compiler/src/ir/text/mod.rs`.
//! 3. Its front ends: an `nn` module in `compiler/src/nn/` (with PyTorch's `extra_repr`), and the
//!    ONNX op in `compiler/src/frontend/onnx/` (plus `SUPPORTED_OPS`).
//! 4. Its native code: a kernel chosen in `compiler/src/codegen/mod.rs` (`choose_kernel`, the one
//!    place that maps a step to a kernel), emitted in the family's file.
//! 5. Tests: hand-computed and PyTorch-checked cases in the op's file; a golden case in
//!    `scripts/gen_golden.py` (regenerate, commit the fixture, list it in
//!    `compiler/tests/common/mod.rs`); the op in the random-graph generators
//!    (`compiler/tests/random_graphs.rs`, `jit_random.rs`); a round-trip line in
//!    `compiler/tests/text_roundtrip.rs`.

pub mod activation;
pub mod add;
pub mod batch_norm;
pub mod conv2d;
pub mod flatten;
pub mod linear;
pub mod pool;

#[cfg(test)]
pub(crate) mod test_util;

pub use activation::{Activation, GeluApproximate};
pub use add::Add;
pub use batch_norm::BatchNorm2d;
pub use conv2d::{Conv2d, Padding2d};
pub use flatten::Flatten;
pub use linear::Linear;
pub use pool::{AvgPool2d, GlobalAvgPool2d, MaxPool2d};

use crate::error::{Result, RuntimeError, ShapeMismatch};
use crate::limits;
use crate::shape::fmt_shape;
use crate::tensor::Tensor;

/// What a conv or linear does to its result while it is still in registers, in this order:
/// bias (an operand, see [`Conv2d::bias`]), residual add, activation, max-pool.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Epilogue {
    /// Adds one more operand (same shape as the result) after the bias.
    pub residual: bool,
    /// Applied after the residual add.
    pub activation: Option<Activation>,
    /// A max-pool over the activated result (conv only): the full-resolution result is never stored.
    pub pool: Option<MaxPool2d>,
}

impl Epilogue {
    /// Checks the operand count of a conv or linear op carrying this epilogue: input, weight, then
    /// the bias if `bias` and the residual if the epilogue adds one.
    pub fn check_arity(&self, bias: bool, operands: usize) -> Result<(), ShapeMismatch> {
        let arity = 2 + usize::from(bias) + usize::from(self.residual);
        if operands != arity {
            return Err(ShapeMismatch {
                what: "operands".into(),
                expected: format!("{arity} (input, weight, then bias and residual if enabled)"),
                got: operands.to_string(),
            });
        }
        Ok(())
    }

    /// Whether the epilogue does nothing beyond the bias.
    pub fn is_empty(&self) -> bool {
        !self.residual && self.activation.is_none() && self.pool.is_none()
    }
}

/// One operation of the op set, with its attributes.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `nn.Conv2d`, possibly with a fused epilogue.
    Conv2d(Conv2d),
    /// `nn.MaxPool2d`.
    MaxPool2d(MaxPool2d),
    /// `nn.AvgPool2d`.
    AvgPool2d(AvgPool2d),
    /// `nn.AdaptiveAvgPool2d(1)` / ONNX `GlobalAveragePool`.
    GlobalAvgPool2d(GlobalAvgPool2d),
    /// An element-wise activation (`nn.ReLU`, `nn.GELU`, …).
    Activation(Activation),
    /// `nn.BatchNorm2d` in inference mode.
    BatchNorm2d(BatchNorm2d),
    /// Element-wise `a + b`.
    Add(Add),
    /// `nn.Flatten(start_dim)` (to the last dimension).
    Flatten(Flatten),
    /// `nn.Linear`, possibly with a fused epilogue.
    Linear(Linear),
}

impl Op {
    /// The op's name in the text IR (`conv2d`, `relu`, `max_pool2d`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv2d(_) => "conv2d",
            Op::MaxPool2d(_) => "max_pool2d",
            Op::AvgPool2d(_) => "avg_pool2d",
            Op::GlobalAvgPool2d(_) => "global_avg_pool2d",
            Op::Activation(a) => a.name(),
            Op::BatchNorm2d(_) => "batch_norm",
            Op::Add(_) => "add",
            Op::Flatten(_) => "flatten",
            Op::Linear(_) => "linear",
        }
    }

    /// The names of the operands this op takes, in order (their count is the op's arity).
    pub fn operand_names(&self) -> Vec<&'static str> {
        fn with_extras(base: &[&'static str], bias: bool, epi: &Epilogue) -> Vec<&'static str> {
            let mut v = base.to_vec();
            if bias {
                v.push("bias");
            }
            if epi.residual {
                v.push("residual");
            }
            v
        }
        match self {
            Op::Conv2d(c) => with_extras(&["input", "weight"], c.bias, &c.epilogue),
            Op::Linear(l) => with_extras(&["input", "weight"], l.bias, &l.epilogue),
            Op::BatchNorm2d(_) => vec!["input", "weight", "bias", "running_mean", "running_var"],
            Op::Add(_) => vec!["a", "b"],
            _ => vec!["input"],
        }
    }

    /// The result's shape for operands of the given shapes, or what does not fit. Operands,
    /// attributes and the result are checked against Kiln's [`limits`] first and last.
    pub fn infer_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, ShapeMismatch> {
        let names = self.operand_names();
        if inputs.len() != names.len() {
            return Err(ShapeMismatch {
                what: "operands".into(),
                expected: format!("{} ({})", names.len(), names.join(", ")),
                got: inputs.len().to_string(),
            });
        }
        for (i, (shape, name)) in inputs.iter().zip(&names).enumerate() {
            limits::check_shape(&format!("operand {i} ({name})"), shape)?;
        }
        for (name, values) in self.integer_attributes() {
            limits::check_attribute(name, &values)?;
        }
        // Every operand dimension and attribute is now below 2³¹, so no rule below can overflow;
        // the result is checked like any other shape.
        let out = self.infer_shape_unchecked(inputs)?;
        limits::check_shape("result", &out)?;
        Ok(out)
    }

    /// The op's integer attributes by name, for the limits check (a fused pool's are named
    /// `pool_kernel` and so on, as in the text IR).
    pub fn integer_attributes(&self) -> Vec<(&'static str, Vec<usize>)> {
        fn pool_attrs(p: &MaxPool2d, prefix: bool) -> Vec<(&'static str, Vec<usize>)> {
            let n = |plain, fused| if prefix { fused } else { plain };
            vec![
                (n("kernel", "pool_kernel"), p.kernel.to_vec()),
                (n("stride", "pool_stride"), p.stride.to_vec()),
                (n("padding", "pool_padding"), padding_values(&p.padding)),
                (n("dilation", "pool_dilation"), p.dilation.to_vec()),
            ]
        }
        fn padding_values(p: &Padding2d) -> Vec<usize> {
            vec![p.top, p.left, p.bottom, p.right]
        }
        match self {
            Op::Conv2d(c) => {
                let mut v = vec![
                    ("stride", c.stride.to_vec()),
                    ("padding", padding_values(&c.padding)),
                    ("dilation", c.dilation.to_vec()),
                    ("groups", vec![c.groups]),
                ];
                if let Some(p) = &c.epilogue.pool {
                    v.extend(pool_attrs(p, true));
                }
                v
            }
            Op::Linear(l) => l
                .epilogue
                .pool
                .as_ref()
                .map_or_else(Vec::new, |p| pool_attrs(p, true)),
            Op::MaxPool2d(p) => pool_attrs(p, false),
            Op::AvgPool2d(p) => vec![
                ("kernel", p.kernel.to_vec()),
                ("stride", p.stride.to_vec()),
                ("padding", padding_values(&p.padding)),
            ],
            Op::Flatten(f) => vec![("start_dim", vec![f.start_dim])],
            Op::GlobalAvgPool2d(_) | Op::Activation(_) | Op::BatchNorm2d(_) | Op::Add(_) => {
                Vec::new()
            }
        }
    }

    /// The op's own shape rule, on operands already checked against the limits.
    fn infer_shape_unchecked(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, ShapeMismatch> {
        match self {
            Op::Conv2d(c) => c.infer_shape(inputs),
            Op::MaxPool2d(p) => p.infer_shape(inputs[0]),
            Op::AvgPool2d(p) => p.infer_shape(inputs[0]),
            Op::GlobalAvgPool2d(p) => p.infer_shape(inputs[0]),
            Op::Activation(_) => Ok(inputs[0].to_vec()),
            Op::BatchNorm2d(b) => b.infer_shape(inputs),
            Op::Add(a) => a.infer_shape(inputs),
            Op::Flatten(f) => f.infer_shape(inputs[0]),
            Op::Linear(l) => l.infer_shape(inputs),
        }
    }

    /// Runs the reference kernel (and the epilogue, if any) on `inputs`.
    pub fn eval(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape()).collect();
        self.infer_shape(&shapes)
            .map_err(|mismatch| RuntimeError::Shape {
                op: self.name().to_string(),
                mismatch,
            })?;
        match self {
            Op::Conv2d(c) => {
                let bias = c.bias.then(|| inputs[2]);
                let y = conv2d::conv2d(inputs[0], inputs[1], bias, c)?;
                apply_epilogue(y, &c.epilogue, inputs.last().copied())
            }
            Op::Linear(l) => {
                let bias = l.bias.then(|| inputs[2]);
                let y = linear::linear(inputs[0], inputs[1], bias)?;
                apply_epilogue(y, &l.epilogue, inputs.last().copied())
            }
            Op::MaxPool2d(p) => pool::max_pool2d(inputs[0], p),
            Op::AvgPool2d(p) => pool::avg_pool2d(inputs[0], p),
            Op::GlobalAvgPool2d(_) => pool::global_avg_pool2d(inputs[0]),
            Op::Activation(a) => Ok(a.apply(inputs[0])),
            Op::BatchNorm2d(b) => Ok(batch_norm::batch_norm(
                inputs[0], inputs[1], inputs[2], inputs[3], inputs[4], b,
            )),
            Op::Add(_) => Ok(add::add(inputs[0], inputs[1])),
            Op::Flatten(f) => f.apply(inputs[0]),
        }
    }
}

/// Applies an epilogue with the separate reference kernels: exactly what the unfused ops compute.
fn apply_epilogue(mut y: Tensor, epi: &Epilogue, residual: Option<&Tensor>) -> Result<Tensor> {
    if epi.residual {
        if let Some(r) = residual {
            y = add::add(&y, r);
        }
    }
    if let Some(a) = &epi.activation {
        y = a.apply(&y);
    }
    if let Some(p) = &epi.pool {
        y = pool::max_pool2d(&y, p)?;
    }
    Ok(y)
}

/// Checks that an operand has exactly the expected shape.
pub(crate) fn expect_shape(
    what: &str,
    got: &[usize],
    expected: &[usize],
) -> Result<(), ShapeMismatch> {
    if got == expected {
        Ok(())
    } else {
        Err(ShapeMismatch {
            what: what.to_string(),
            expected: fmt_shape(expected),
            got: fmt_shape(got),
        })
    }
}

/// Checks that an operand has `rank` dimensions.
pub(crate) fn expect_rank(what: &str, got: &[usize], rank: usize) -> Result<(), ShapeMismatch> {
    if got.len() == rank {
        Ok(())
    } else {
        Err(ShapeMismatch {
            what: what.to_string(),
            expected: format!("a {rank}-d tensor"),
            got: fmt_shape(got),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv_with(epilogue: Epilogue) -> Conv2d {
        Conv2d {
            stride: [1, 1],
            padding: Padding2d::symmetric(1, 1),
            dilation: [1, 1],
            groups: 1,
            bias: true,
            epilogue,
        }
    }

    fn pool() -> MaxPool2d {
        MaxPool2d {
            kernel: [2, 2],
            stride: [2, 2],
            padding: Padding2d::default(),
            dilation: [1, 1],
            ceil_mode: true,
        }
    }

    #[test]
    fn conv_epilogue_equals_the_separate_kernels_in_sequence() {
        let x = Tensor::randn(&[2, 3, 7, 7], 1).unwrap();
        let w = Tensor::randn(&[4, 3, 3, 3], 2).unwrap();
        let b = Tensor::randn(&[4], 3).unwrap();
        let r = Tensor::randn(&[2, 4, 7, 7], 4).unwrap();
        let relu = Activation::Relu;
        let fused = Op::Conv2d(conv_with(Epilogue {
            residual: true,
            activation: Some(relu),
            pool: Some(pool()),
        }));
        assert_eq!(
            fused.infer_shape(&[x.shape(), w.shape(), b.shape(), r.shape()]),
            Ok(vec![2, 4, 4, 4])
        );
        let got = fused.eval(&[&x, &w, &b, &r]).unwrap();

        let plain = conv_with(Epilogue::default());
        let y = Op::Conv2d(plain).eval(&[&x, &w, &b]).unwrap();
        let y = Op::Add(Add).eval(&[&y, &r]).unwrap();
        let y = Op::Activation(relu).eval(&[&y]).unwrap();
        let expected = Op::MaxPool2d(pool()).eval(&[&y]).unwrap();
        assert_eq!(got, expected);
        // The epilogue did something: the residual changed the result and relu clipped it.
        let no_residual = Op::Conv2d(conv_with(Epilogue {
            activation: Some(relu),
            pool: Some(pool()),
            ..Epilogue::default()
        }))
        .eval(&[&x, &w, &b])
        .unwrap();
        assert_ne!(got, no_residual);
        assert!(got.data().iter().all(|&v| v >= 0.0));
    }

    #[test]
    fn linear_epilogue_equals_the_separate_kernels_in_sequence() {
        let x = Tensor::randn(&[3, 5], 5).unwrap();
        let w = Tensor::randn(&[4, 5], 6).unwrap();
        let r = Tensor::randn(&[3, 4], 7).unwrap();
        let gelu = Activation::Gelu {
            approximate: GeluApproximate::None,
        };
        let fused = Op::Linear(Linear {
            bias: false,
            epilogue: Epilogue {
                residual: true,
                activation: Some(gelu),
                pool: None,
            },
        });
        let got = fused.eval(&[&x, &w, &r]).unwrap();
        let y = linear::linear(&x, &w, None).unwrap();
        let expected = gelu.apply(&add::add(&y, &r));
        assert_eq!(got, expected);
    }

    #[test]
    fn eval_reports_shape_errors_with_the_op_name() {
        let a = Tensor::zeros(&[2, 3]).unwrap();
        let b = Tensor::zeros(&[3, 2]).unwrap();
        let err = Op::Add(Add).eval(&[&a, &b]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "add: operand 1 (b): expected [2, 3], got [3, 2]"
        );
        // The operand count is checked before any op looks at its operands.
        let err = Op::Activation(Activation::Relu)
            .eval(&[&a, &b])
            .unwrap_err();
        assert_eq!(err.to_string(), "relu: operands: expected 1 (input), got 2");
    }

    #[test]
    fn every_op_infers_its_shape() {
        let x = &[1, 4, 6, 6][..];
        let check = |op: Op, inputs: &[&[usize]], expected: &[usize]| {
            assert_eq!(
                op.infer_shape(inputs),
                Ok(expected.to_vec()),
                "{}",
                op.name()
            );
        };
        // 6×6 in 2×2 windows, stride 2: 3×3.
        check(Op::MaxPool2d(pool()), &[x], &[1, 4, 3, 3]);
        let avg = AvgPool2d {
            kernel: [3, 3],
            stride: [3, 3],
            padding: Padding2d::default(),
            ceil_mode: false,
            count_include_pad: true,
        };
        check(Op::AvgPool2d(avg), &[x], &[1, 4, 2, 2]);
        check(Op::GlobalAvgPool2d(GlobalAvgPool2d), &[x], &[1, 4, 1, 1]);
        check(Op::Activation(Activation::Sigmoid), &[x], x);
        let c = &[4][..];
        check(
            Op::BatchNorm2d(BatchNorm2d { eps: 1e-5 }),
            &[x, c, c, c, c],
            x,
        );
        check(Op::Add(Add), &[x, x], x);
        // 4·6·6 = 144.
        check(Op::Flatten(Flatten { start_dim: 1 }), &[x], &[1, 144]);
    }
}
