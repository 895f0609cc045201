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

    /// The activation of one value.
    pub fn eval_scalar(&self, x: f32) -> f32 {
        let _ = x;
        todo!()
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
