//! `nn.Linear` and `nn.Flatten`, the classifier head of a CNN.

use crate::error::{Error, Result};
use crate::ir::graph::ValueId;
use crate::nn::init::default_uniform;
use crate::nn::module::{Module, ParamSpec};
use crate::nn::repr::{display_as_repr, py_bool};
use crate::nn::tracer::Tracer;
use kiln_runtime::ops::{self, Epilogue, Op};

/// `nn.Linear(in_features, out_features, bias=True)`: `y = x·Wᵀ + b` on `[N, in_features]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    in_features: usize,
    out_features: usize,
    bias: bool,
}

impl Linear {
    /// A fully connected layer with a bias.
    pub fn new(in_features: usize, out_features: usize) -> Linear {
        Linear {
            in_features,
            out_features,
            bias: true,
        }
    }

    /// Whether the layer has a bias.
    pub fn bias(mut self, bias: bool) -> Linear {
        self.bias = bias;
        self
    }
}

impl Module for Linear {
    fn type_name(&self) -> &str {
        "Linear"
    }
    fn extra_repr(&self) -> String {
        format!(
            "in_features={}, out_features={}, bias={}",
            self.in_features,
            self.out_features,
            py_bool(self.bias)
        )
    }
    fn parameters(&self) -> Vec<ParamSpec> {
        let init = default_uniform(self.in_features);
        let mut params = vec![ParamSpec::new(
            "weight",
            &[self.out_features, self.in_features],
            init,
        )];
        if self.bias {
            params.push(ParamSpec::new("bias", &[self.out_features], init));
        }
        params
    }
    fn forward(&self, t: &mut Tracer, x: ValueId) -> Result<ValueId> {
        let mut operands = vec![x, t.param("weight")?];
        if self.bias {
            operands.push(t.param("bias")?);
        }
        let op = ops::Linear {
            bias: self.bias,
            epilogue: Epilogue::default(),
        };
        t.op(Op::Linear(op), &operands)
    }
}

/// `nn.Flatten(start_dim=1, end_dim=-1)`. Negative dims count from the end; the runtime op always
/// flattens to the last dimension, so `end_dim` must resolve to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flatten {
    start_dim: i64,
    end_dim: i64,
}

impl Flatten {
    /// `nn.Flatten()`: keeps the batch dimension, merges the rest.
    pub fn new() -> Flatten {
        Flatten {
            start_dim: 1,
            end_dim: -1,
        }
    }

    /// `nn.Flatten(start_dim, end_dim)`.
    pub fn with_dims(start_dim: i64, end_dim: i64) -> Flatten {
        Flatten { start_dim, end_dim }
    }
}

impl Default for Flatten {
    fn default() -> Flatten {
        Flatten::new()
    }
}

/// `dim` as an index into `rank` dimensions (negative counts from the end), if in range.
fn resolve_dim(dim: i64, rank: usize) -> Option<usize> {
    let rank = i64::try_from(rank).ok()?;
    let d = if dim < 0 { dim + rank } else { dim };
    (0..rank).contains(&d).then_some(d as usize)
}

impl Module for Flatten {
    fn type_name(&self) -> &str {
        "Flatten"
    }
    fn extra_repr(&self) -> String {
        format!("start_dim={}, end_dim={}", self.start_dim, self.end_dim)
    }
    fn forward(&self, t: &mut Tracer, x: ValueId) -> Result<ValueId> {
        let rank = t.graph().ty(x).shape.len();
        let start = resolve_dim(self.start_dim, rank);
        let end = resolve_dim(self.end_dim, rank);
        let (Some(start_dim), Some(end)) = (start, end) else {
            return Err(Error::Graph(format!(
                "{}: dimension out of range for a {rank}-d input",
                crate::nn::repr(self)
            )));
        };
        if end + 1 != rank || start_dim > end {
            return Err(Error::Graph(format!(
                "{}: only flattening from start_dim through the last dimension is supported",
                crate::nn::repr(self)
            )));
        }
        t.op(Op::Flatten(ops::Flatten { start_dim }), &[x])
    }
}

display_as_repr!(Linear, Flatten);
