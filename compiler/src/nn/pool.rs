//! Pooling layers: `nn.MaxPool2d`, `nn.AvgPool2d` and `nn.AdaptiveAvgPool2d(1)`.
//!
//! Unlike Conv2d, pooling layers print their sizes the way they were given (`kernel_size=2` vs
//! `kernel_size=(2, 3)`), so they keep [`Size2`] values.

use crate::error::{Error, Result};
use crate::ir::graph::ValueId;
use crate::nn::module::{Module, Size2};
use crate::nn::repr::{display_as_repr, py_bool};
use crate::nn::tracer::Tracer;
use kiln_runtime::ops::{self, GlobalAvgPool2d, Op, Padding2d};

/// `nn.MaxPool2d(kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False)`; the stride
/// defaults to the kernel size.
///
/// ```
/// use kiln::nn::MaxPool2d;
/// assert_eq!(
///     MaxPool2d::new(2).stride(2).to_string(),
///     "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MaxPool2d {
    kernel_size: Size2,
    stride: Size2,
    padding: Size2,
    dilation: Size2,
    ceil_mode: bool,
}

impl MaxPool2d {
    /// A max-pool over `kernel_size` windows with stride = kernel size.
    pub fn new(kernel_size: impl Into<Size2>) -> MaxPool2d {
        let kernel_size = kernel_size.into();
        MaxPool2d {
            kernel_size,
            stride: kernel_size,
            padding: Size2::Int(0),
            dilation: Size2::Int(1),
            ceil_mode: false,
        }
    }

    /// Sets the stride.
    pub fn stride(mut self, stride: impl Into<Size2>) -> MaxPool2d {
        self.stride = stride.into();
        self
    }

    /// Sets the implicit −∞ padding on both sides of each spatial dimension.
    pub fn padding(mut self, padding: impl Into<Size2>) -> MaxPool2d {
        self.padding = padding.into();
        self
    }

    /// Sets the spacing between window taps.
    pub fn dilation(mut self, dilation: impl Into<Size2>) -> MaxPool2d {
        self.dilation = dilation.into();
        self
    }

    /// Rounds the output size up instead of down.
    pub fn ceil_mode(mut self, ceil_mode: bool) -> MaxPool2d {
        self.ceil_mode = ceil_mode;
        self
    }

    /// The runtime op's attributes.
    pub fn attrs(&self) -> ops::MaxPool2d {
        let [ph, pw] = self.padding.pair();
        ops::MaxPool2d {
            kernel: self.kernel_size.pair(),
            stride: self.stride.pair(),
            padding: Padding2d::symmetric(ph, pw),
            dilation: self.dilation.pair(),
            ceil_mode: self.ceil_mode,
        }
    }
}

impl Module for MaxPool2d {
    fn type_name(&self) -> &str {
        "MaxPool2d"
    }
    fn extra_repr(&self) -> String {
        format!(
            "kernel_size={}, stride={}, padding={}, dilation={}, ceil_mode={}",
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            py_bool(self.ceil_mode)
        )
    }
    fn forward(&self, t: &mut Tracer, x: ValueId) -> Result<ValueId> {
        t.op(Op::MaxPool2d(self.attrs()), &[x])
    }
}

/// `nn.AvgPool2d(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True)`.
#[derive(Debug, Clone, PartialEq)]
pub struct AvgPool2d {
    kernel_size: Size2,
    stride: Size2,
    padding: Size2,
    ceil_mode: bool,
    count_include_pad: bool,
}

impl AvgPool2d {
    /// An average pool over `kernel_size` windows with stride = kernel size.
    pub fn new(kernel_size: impl Into<Size2>) -> AvgPool2d {
        let kernel_size = kernel_size.into();
        AvgPool2d {
            kernel_size,
            stride: kernel_size,
            padding: Size2::Int(0),
            ceil_mode: false,
            count_include_pad: true,
        }
    }

    /// Sets the stride.
    pub fn stride(mut self, stride: impl Into<Size2>) -> AvgPool2d {
        self.stride = stride.into();
        self
    }

    /// Sets the implicit zero padding on both sides of each spatial dimension.
    pub fn padding(mut self, padding: impl Into<Size2>) -> AvgPool2d {
        self.padding = padding.into();
        self
    }

    /// Rounds the output size up instead of down.
    pub fn ceil_mode(mut self, ceil_mode: bool) -> AvgPool2d {
        self.ceil_mode = ceil_mode;
        self
    }

    /// Whether padded taps count in the divisor (PyTorch's default: yes).
    pub fn count_include_pad(mut self, count_include_pad: bool) -> AvgPool2d {
        self.count_include_pad = count_include_pad;
        self
    }
}

impl Module for AvgPool2d {
    fn type_name(&self) -> &str {
        "AvgPool2d"
    }
    fn extra_repr(&self) -> String {
        // PyTorch prints neither ceil_mode nor count_include_pad here.
        format!(
            "kernel_size={}, stride={}, padding={}",
            self.kernel_size, self.stride, self.padding
        )
    }
    fn forward(&self, t: &mut Tracer, x: ValueId) -> Result<ValueId> {
        let [ph, pw] = self.padding.pair();
        let attrs = ops::AvgPool2d {
            kernel: self.kernel_size.pair(),
            stride: self.stride.pair(),
            padding: Padding2d::symmetric(ph, pw),
            ceil_mode: self.ceil_mode,
            count_include_pad: self.count_include_pad,
        };
        t.op(Op::AvgPool2d(attrs), &[x])
    }
}

/// `nn.AdaptiveAvgPool2d(output_size)`; only an output size of 1 (global average pooling) is
/// supported.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptiveAvgPool2d {
    output_size: Size2,
}

impl AdaptiveAvgPool2d {
    /// `nn.AdaptiveAvgPool2d(output_size)`; tracing fails unless it is 1 or `(1, 1)`.
    pub fn new(output_size: impl Into<Size2>) -> AdaptiveAvgPool2d {
        AdaptiveAvgPool2d {
            output_size: output_size.into(),
        }
    }
}

impl Module for AdaptiveAvgPool2d {
    fn type_name(&self) -> &str {
        "AdaptiveAvgPool2d"
    }
    fn extra_repr(&self) -> String {
        format!("output_size={}", self.output_size)
    }
    fn forward(&self, t: &mut Tracer, x: ValueId) -> Result<ValueId> {
        if self.output_size.pair() != [1, 1] {
            return Err(Error::Graph(format!(
                "{}: only output_size=1 (global average pooling) is supported",
                crate::nn::repr(self)
            )));
        }
        t.op(Op::GlobalAvgPool2d(GlobalAvgPool2d), &[x])
    }
}

display_as_repr!(MaxPool2d, AvgPool2d, AdaptiveAvgPool2d);
