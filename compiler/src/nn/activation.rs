//! Activation layers: `nn.ReLU`, `nn.LeakyReLU`, `nn.Sigmoid`, `nn.Tanh`, `nn.GELU`, `nn.ELU`.
//!
//! The type names are PyTorch's class names (`ReLU`, `GELU`), so models read the same in both.
//! `inplace` is only a hint to the compiler (the in-place pass decides by liveness); a traced
//! `ReLU(inplace=True)` is an ordinary `relu` op and always computes the same result.

// `GELU` and `ELU` keep PyTorch's spelling on purpose.
#![allow(clippy::upper_case_acronyms)]

use crate::error::Result;
use crate::ir::graph::ValueId;
use crate::nn::module::Module;
use crate::nn::repr::{display_as_repr, py_float};
use crate::nn::tracer::Tracer;
use kiln_runtime::ops::{Activation, GeluApproximate, Op};

/// `, inplace=True` when set, as PyTorch appends it.
fn inplace_suffix(inplace: bool) -> &'static str {
    if inplace {
        ", inplace=True"
    } else {
        ""
    }
}

/// `nn.ReLU(inplace=False)`: `max(0, x)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReLU {
    /// Hint that the input may be overwritten (see the module docs).
    pub inplace: bool,
}

impl ReLU {
    /// `nn.ReLU()`.
    pub fn new() -> ReLU {
        ReLU::default()
    }
}

impl Module for ReLU {
    fn type_name(&self) -> &str {
        "ReLU"
    }
    fn extra_repr(&self) -> String {
        if self.inplace { "inplace=True" } else { "" }.to_string()
    }
    fn forward(&self, t: &mut Tracer, x: ValueId) -> Result<ValueId> {
        t.op(Op::Activation(Activation::Relu), &[x])
    }
}

/// `nn.LeakyReLU(negative_slope=0.01, inplace=False)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeakyReLU {
    /// Slope for negative inputs.
    pub negative_slope: f32,
    /// In-place hint.
    pub inplace: bool,
}

impl LeakyReLU {
    /// `nn.LeakyReLU(negative_slope)`.
    pub fn new(negative_slope: f32) -> LeakyReLU {
        LeakyReLU {
            negative_slope,
            inplace: false,
        }
    }
}

impl Default for LeakyReLU {
    /// PyTorch's default slope, 0.01.
    fn default() -> LeakyReLU {
        LeakyReLU::new(0.01)
    }
}

impl Module for LeakyReLU {
    fn type_name(&self) -> &str {
        "LeakyReLU"
    }
    fn extra_repr(&self) -> String {
        format!(
            "negative_slope={}{}",
            py_float(self.negative_slope),
            inplace_suffix(self.inplace)
        )
    }
    fn forward(&self, t: &mut Tracer, x: ValueId) -> Result<ValueId> {
        let act = Activation::LeakyRelu {
            negative_slope: self.negative_slope,
        };
        t.op(Op::Activation(act), &[x])
    }
}

/// `nn.Sigmoid()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sigmoid;

impl Module for Sigmoid {
    fn type_name(&self) -> &str {
        "Sigmoid"
    }
    fn forward(&self, t: &mut Tracer, x: ValueId) -> Result<ValueId> {
        t.op(Op::Activation(Activation::Sigmoid), &[x])
    }
}

/// `nn.Tanh()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tanh;

impl Module for Tanh {
    fn type_name(&self) -> &str {
        "Tanh"
    }
    fn forward(&self, t: &mut Tracer, x: ValueId) -> Result<ValueId> {
        t.op(Op::Activation(Activation::Tanh), &[x])
    }
}

/// `nn.GELU(approximate='none')`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GELU {
    /// The exact erf form or the tanh approximation.
    pub approximate: GeluApproximate,
}

impl GELU {
    /// `nn.GELU()`: the exact form.
    pub fn new() -> GELU {
        GELU {
            approximate: GeluApproximate::None,
        }
    }

    /// `nn.GELU(approximate='tanh')`.
    pub fn tanh() -> GELU {
        GELU {
            approximate: GeluApproximate::Tanh,
        }
    }
}

impl Default for GELU {
    fn default() -> GELU {
        GELU::new()
    }
}

impl Module for GELU {
    fn type_name(&self) -> &str {
        "GELU"
    }
    fn extra_repr(&self) -> String {
        let name = match self.approximate {
            GeluApproximate::None => "none",
            GeluApproximate::Tanh => "tanh",
        };
        format!("approximate='{name}'")
    }
    fn forward(&self, t: &mut Tracer, x: ValueId) -> Result<ValueId> {
        let act = Activation::Gelu {
            approximate: self.approximate,
        };
        t.op(Op::Activation(act), &[x])
    }
}

/// `nn.ELU(alpha=1.0, inplace=False)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ELU {
    /// Scale of the negative part.
    pub alpha: f32,
    /// In-place hint.
    pub inplace: bool,
}

impl ELU {
    /// `nn.ELU(alpha)`.
    pub fn new(alpha: f32) -> ELU {
        ELU {
            alpha,
            inplace: false,
        }
    }
}

impl Default for ELU {
    /// PyTorch's default alpha, 1.0.
    fn default() -> ELU {
        ELU::new(1.0)
    }
}

impl Module for ELU {
    fn type_name(&self) -> &str {
        "ELU"
    }
    fn extra_repr(&self) -> String {
        format!(
            "alpha={}{}",
            py_float(self.alpha),
            inplace_suffix(self.inplace)
        )
    }
    fn forward(&self, t: &mut Tracer, x: ValueId) -> Result<ValueId> {
        let act = Activation::Elu { alpha: self.alpha };
        t.op(Op::Activation(act), &[x])
    }
}

display_as_repr!(ReLU, LeakyReLU, Sigmoid, Tanh, GELU, ELU);
