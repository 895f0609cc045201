//! `nn.BatchNorm2d` in inference mode (running statistics).

use crate::error::Result;
use crate::ir::graph::ValueId;
use crate::nn::init::Init;
use crate::nn::module::{Module, ParamSpec};
use crate::nn::repr::{display_as_repr, py_float};
use crate::nn::tracer::Tracer;
use kiln_runtime::ops::{self, Op};

/// `nn.BatchNorm2d(num_features, eps=1e-5, momentum=0.1)` with `affine=True`,
/// `track_running_stats=True` (the inference kernel needs all four tensors: `weight`, `bias`,
/// `running_mean`, `running_var`). `momentum` only matters for training; it is kept for the repr.
///
/// ```
/// use kiln::nn::BatchNorm2d;
/// assert_eq!(
///     BatchNorm2d::new(16).to_string(),
///     "BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNorm2d {
    num_features: usize,
    eps: f32,
    momentum: Option<f32>,
}

impl BatchNorm2d {
    /// A batch norm over `num_features` channels with PyTorch's defaults.
    pub fn new(num_features: usize) -> BatchNorm2d {
        BatchNorm2d {
            num_features,
            eps: 1e-5,
            momentum: Some(0.1),
        }
    }

    /// Sets the value added to the variance.
    pub fn eps(mut self, eps: f32) -> BatchNorm2d {
        self.eps = eps;
        self
    }

    /// Sets the running-average momentum (`None`: a cumulative average), shown in the repr only.
    pub fn momentum(mut self, momentum: Option<f32>) -> BatchNorm2d {
        self.momentum = momentum;
        self
    }
}

impl Module for BatchNorm2d {
    fn type_name(&self) -> &str {
        "BatchNorm2d"
    }

    fn extra_repr(&self) -> String {
        // torch/nn/modules/batchnorm.py `_NormBase.extra_repr` (torch 2.15 added `bias=`).
        let momentum = self.momentum.map_or_else(|| "None".to_string(), py_float);
        format!(
            "{}, eps={}, momentum={momentum}, affine=True, bias=True, track_running_stats=True",
            self.num_features,
            py_float(self.eps)
        )
    }

    fn parameters(&self) -> Vec<ParamSpec> {
        // `reset_parameters()`: weight ones, bias zeros; `reset_running_stats()`: mean 0, var 1.
        let c = [self.num_features];
        vec![
            ParamSpec::new("weight", &c, Init::Constant(1.0)),
            ParamSpec::new("bias", &c, Init::Constant(0.0)),
            ParamSpec::new("running_mean", &c, Init::Constant(0.0)),
            ParamSpec::new("running_var", &c, Init::Constant(1.0)),
        ]
    }

    fn forward(&self, t: &mut Tracer, x: ValueId) -> Result<ValueId> {
        let operands = [
            x,
            t.param("weight")?,
            t.param("bias")?,
            t.param("running_mean")?,
            t.param("running_var")?,
        ];
        let op = Op::BatchNorm2d(ops::BatchNorm2d { eps: self.eps });
        t.op(op, &operands)
    }
}

display_as_repr!(BatchNorm2d);
