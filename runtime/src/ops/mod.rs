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

pub mod activation;
pub mod add;
pub mod batch_norm;
pub mod conv2d;
pub mod flatten;
pub mod linear;
pub mod pool;

pub use activation::{Activation, GeluApproximate};
pub use add::Add;
pub use batch_norm::BatchNorm2d;
pub use conv2d::{Conv2d, Padding2d};
pub use flatten::Flatten;
pub use linear::Linear;
pub use pool::{AvgPool2d, GlobalAvgPool2d, MaxPool2d};

use crate::error::{Result, RuntimeError, ShapeMismatch};
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

    /// The result's shape for operands of the given shapes, or what does not fit.
    pub fn infer_shape(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, ShapeMismatch> {
        let names = self.operand_names();
        if inputs.len() != names.len() {
            return Err(ShapeMismatch {
                what: "operands".into(),
                expected: format!("{} ({})", names.len(), names.join(", ")),
                got: inputs.len().to_string(),
            });
        }
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
        Ok(match self {
            Op::Conv2d(c) => {
                let bias = c.bias.then(|| inputs[2]);
                let y = conv2d::conv2d(inputs[0], inputs[1], bias, c);
                apply_epilogue(y, &c.epilogue, inputs.last().copied())
            }
            Op::Linear(l) => {
                let bias = l.bias.then(|| inputs[2]);
                let y = linear::linear(inputs[0], inputs[1], bias);
                apply_epilogue(y, &l.epilogue, inputs.last().copied())
            }
            Op::MaxPool2d(p) => pool::max_pool2d(inputs[0], p),
            Op::AvgPool2d(p) => pool::avg_pool2d(inputs[0], p),
            Op::GlobalAvgPool2d(_) => pool::global_avg_pool2d(inputs[0]),
            Op::Activation(a) => a.apply(inputs[0]),
            Op::BatchNorm2d(b) => {
                batch_norm::batch_norm(inputs[0], inputs[1], inputs[2], inputs[3], inputs[4], b)
            }
            Op::Add(_) => add::add(inputs[0], inputs[1]),
            Op::Flatten(f) => f.apply(inputs[0]),
        })
    }
}

/// Applies an epilogue with the separate reference kernels: exactly what the unfused ops compute.
fn apply_epilogue(mut y: Tensor, epi: &Epilogue, residual: Option<&Tensor>) -> Tensor {
    if epi.residual {
        if let Some(r) = residual {
            y = add::add(&y, r);
        }
    }
    if let Some(a) = &epi.activation {
        y = a.apply(&y);
    }
    if let Some(p) = &epi.pool {
        y = pool::max_pool2d(&y, p);
    }
    y
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
