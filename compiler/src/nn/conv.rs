//! `nn.Conv2d`: a 2-d convolution layer with PyTorch's options and repr.

use crate::error::{Error, Result};
use crate::ir::graph::ValueId;
use crate::nn::init::default_uniform;
use crate::nn::module::{Module, ParamSpec, Size2};
use crate::nn::repr::display_as_repr;
use crate::nn::tracer::Tracer;
use kiln_runtime::ops::{self, Epilogue, Op, Padding2d};

/// `nn.Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
/// bias=True)`, with the options set builder-style:
///
/// ```
/// use kiln::nn::Conv2d;
/// let conv = Conv2d::new(3, 8, 3).stride(2).padding(1).dilation(2).bias(false);
/// assert_eq!(
///     conv.to_string(),
///     "Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(2, 2), bias=False)"
/// );
/// ```
///
/// Padding is symmetric, as in PyTorch: `padding=(ph, pw)` adds `ph` rows above and below.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2d {
    in_channels: usize,
    out_channels: usize,
    kernel_size: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
    bias: bool,
}

impl Conv2d {
    /// A convolution from `in_channels` to `out_channels` with a `kernel_size` window (an int or a
    /// `(rows, columns)` pair), stride 1, no padding, dilation 1, one group and a bias.
    pub fn new(in_channels: usize, out_channels: usize, kernel_size: impl Into<Size2>) -> Conv2d {
        Conv2d {
            in_channels,
            out_channels,
            kernel_size: kernel_size.into().pair(),
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
            bias: true,
        }
    }

    /// Sets the stride.
    pub fn stride(mut self, stride: impl Into<Size2>) -> Conv2d {
        self.stride = stride.into().pair();
        self
    }

    /// Sets the zero padding added on both sides of each spatial dimension.
    pub fn padding(mut self, padding: impl Into<Size2>) -> Conv2d {
        self.padding = padding.into().pair();
        self
    }

    /// Sets the dilation (spacing between kernel taps).
    pub fn dilation(mut self, dilation: impl Into<Size2>) -> Conv2d {
        self.dilation = dilation.into().pair();
        self
    }

    /// Sets the number of groups (both channel counts must be multiples of it).
    pub fn groups(mut self, groups: usize) -> Conv2d {
        self.groups = groups;
        self
    }

    /// Whether the layer has a bias (`bias=False` drops it).
    pub fn bias(mut self, bias: bool) -> Conv2d {
        self.bias = bias;
        self
    }

    /// Inputs feeding each output: `in_channels / groups · kH · kW`.
    fn fan_in(&self) -> usize {
        self.in_channels / self.groups.max(1) * self.kernel_size[0] * self.kernel_size[1]
    }
}

/// PyTorch prints every size of a Conv2d as a tuple.
fn tuple(v: [usize; 2]) -> String {
    format!("({}, {})", v[0], v[1])
}

impl Module for Conv2d {
    fn type_name(&self) -> &str {
        "Conv2d"
    }

    fn extra_repr(&self) -> String {
        // torch/nn/modules/conv.py `_ConvNd.extra_repr`: options print only when not the default.
        let mut s = format!(
            "{}, {}, kernel_size={}, stride={}",
            self.in_channels,
            self.out_channels,
            tuple(self.kernel_size),
            tuple(self.stride)
        );
        if self.padding != [0, 0] {
            s += &format!(", padding={}", tuple(self.padding));
        }
        if self.dilation != [1, 1] {
            s += &format!(", dilation={}", tuple(self.dilation));
        }
        if self.groups != 1 {
            s += &format!(", groups={}", self.groups);
        }
        if !self.bias {
            s += ", bias=False";
        }
        s
    }

    fn parameters(&self) -> Vec<ParamSpec> {
        let init = default_uniform(self.fan_in());
        let [kh, kw] = self.kernel_size;
        let per_group = self.in_channels / self.groups.max(1);
        let mut params = vec![ParamSpec::new(
            "weight",
            &[self.out_channels, per_group, kh, kw],
            init,
        )];
        if self.bias {
            params.push(ParamSpec::new("bias", &[self.out_channels], init));
        }
        params
    }

    fn forward(&self, t: &mut Tracer, x: ValueId) -> Result<ValueId> {
        // PyTorch rejects these when the layer is built; here they surface when it is traced.
        if self.groups == 0
            || !self.in_channels.is_multiple_of(self.groups)
            || !self.out_channels.is_multiple_of(self.groups)
        {
            return Err(Error::Graph(format!(
                "{}: in_channels and out_channels must be divisible by groups",
                crate::nn::repr(self)
            )));
        }
        let mut operands = vec![x, t.param("weight")?];
        if self.bias {
            operands.push(t.param("bias")?);
        }
        let op = ops::Conv2d {
            stride: self.stride,
            padding: Padding2d::symmetric(self.padding[0], self.padding[1]),
            dilation: self.dilation,
            groups: self.groups,
            bias: self.bias,
            epilogue: Epilogue::default(),
        };
        t.op(Op::Conv2d(op), &operands)
    }
}

display_as_repr!(Conv2d);
