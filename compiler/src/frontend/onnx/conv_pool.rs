//! `Conv`, `MaxPool`, `AveragePool`, `GlobalAveragePool`, and `Pad` (a zero pad folded into the
//! padding of the `Conv` that reads it): attributes, `auto_pad`, and window checks.

use super::attrs::{NodeRef, MAX_ATTR};
use super::import::{Importer, Padded, Val};
use crate::error::Result;
use crate::ir::graph::ValueId;
use kiln_runtime::ops::{AvgPool2d, Conv2d, Epilogue, GlobalAvgPool2d, MaxPool2d, Op, Padding2d};
use kiln_runtime::shape::fmt_shape;
use std::rc::Rc;

/// Padding `a` plus padding `b`, side by side.
fn add_pads(a: Padding2d, b: Padding2d) -> Padding2d {
    Padding2d {
        top: a.top + b.top,
        left: a.left + b.left,
        bottom: a.bottom + b.bottom,
        right: a.right + b.right,
    }
}

/// A sliding window's geometry along both spatial axes.
struct Window {
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
}

impl<'v, 'a> Importer<'v, 'a> {
    /// The input of a conv or pool: a graph value of shape `[N, C, H, W]`, and any pending zero
    /// padding in front of it.
    fn nchw_input(&mut self, n: &NodeRef<'_>, allow_pad: bool) -> Result<(ValueId, Padding2d)> {
        let name = n.required_input(0)?;
        let (x, pad) = match self.get(n, name)? {
            Val::Padded(p) if allow_pad => (p.input, p.pad),
            _ => (self.value(n, name)?, Padding2d::default()),
        };
        let shape = &self.graph.ty(x).shape;
        if shape.len() != 4 {
            return Err(n
                .unsupported(format!(
                    "only 2-d (NCHW) inputs are supported; `{name}` has shape {}",
                    fmt_shape(shape)
                ))
                .into());
        }
        Ok((x, pad))
    }

    /// The padding from `pads` or `auto_pad` for a window over an input of spatial size `hw`.
    fn padding(&self, n: &NodeRef<'_>, hw: [usize; 2], w: &Window) -> Result<Padding2d> {
        let auto = n.string("auto_pad")?.unwrap_or_else(|| "NOTSET".into());
        let pads = n.ints("pads")?;
        if auto == "NOTSET" {
            let Some(p) = pads else {
                return Ok(Padding2d::default());
            };
            let side = |v: i64| usize::try_from(v).ok().filter(|&v| v <= MAX_ATTR);
            return match p {
                [t, l, b, r] => match (side(*t), side(*l), side(*b), side(*r)) {
                    (Some(top), Some(left), Some(bottom), Some(right)) => Ok(Padding2d {
                        top,
                        left,
                        bottom,
                        right,
                    }),
                    _ => Err(n
                        .attr_error(
                            "pads",
                            format!("values must be in 0..={MAX_ATTR}, got {p:?}"),
                        )
                        .into()),
                },
                _ => Err(n
                    .attr_error(
                        "pads",
                        format!("expected 4 values [top, left, bottom, right], got {p:?}"),
                    )
                    .into()),
            };
        }
        if !matches!(auto.as_str(), "VALID" | "SAME_UPPER" | "SAME_LOWER") {
            return Err(n
                .attr_error(
                    "auto_pad",
                    format!("unsupported value {auto:?} (expected NOTSET, SAME_UPPER, SAME_LOWER or VALID)"),
                )
                .into());
        }
        if pads.is_some_and(|p| p.iter().any(|&v| v != 0)) {
            return Err(n
                .attr_error("pads", format!("cannot be combined with auto_pad={auto}"))
                .into());
        }
        if auto == "VALID" {
            return Ok(Padding2d::default());
        }
        // SAME: the output has ceil(in / stride) positions; the total padding that needs is split
        // evenly, the odd one at the end (SAME_UPPER) or the beginning (SAME_LOWER).
        let mut sides = [(0usize, 0usize); 2];
        for k in 0..2 {
            let out = hw[k].div_ceil(w.stride[k]);
            let extent = (w.kernel[k] - 1) * w.dilation[k] + 1;
            let total = ((out.max(1) - 1) * w.stride[k] + extent).saturating_sub(hw[k]);
            let (small, big) = (total / 2, total - total / 2);
            sides[k] = if auto == "SAME_UPPER" {
                (small, big)
            } else {
                (big, small)
            };
        }
        Ok(Padding2d {
            top: sides[0].0,
            left: sides[1].0,
            bottom: sides[0].1,
            right: sides[1].1,
        })
    }

    /// Checks that at least one window fits in the padded input, so that shape inference has a
    /// positive output size to compute.
    fn check_window(
        &self,
        n: &NodeRef<'_>,
        hw: [usize; 2],
        pad: Padding2d,
        w: &Window,
    ) -> Result<()> {
        let padded = [hw[0] + pad.top + pad.bottom, hw[1] + pad.left + pad.right];
        for k in 0..2 {
            let extent = (w.kernel[k] - 1) * w.dilation[k] + 1;
            if padded[k] < extent {
                return Err(n
                    .invalid(format!(
                        "the {}x{} window (dilation {:?}) does not fit in the padded input of {}x{}",
                        w.kernel[0], w.kernel[1], w.dilation, padded[0], padded[1]
                    ))
                    .into());
            }
        }
        Ok(())
    }

    /// The `kernel_shape`, `strides` and `dilations` of a pool (`kernel_shape` is required).
    fn pool_window(&self, n: &NodeRef<'_>) -> Result<Window> {
        if n.ints("kernel_shape")?.is_none() {
            return Err(n
                .attr_error("kernel_shape", "missing (it is required)")
                .into());
        }
        Ok(Window {
            kernel: n.pair("kernel_shape", [1, 1], 1)?,
            stride: n.pair("strides", [1, 1], 1)?,
            dilation: n.pair("dilations", [1, 1], 1)?,
        })
    }

    /// ONNX `Conv` (2-d): a pending zero `Pad` in front of it adds to its padding.
    pub(super) fn conv(&mut self, n: &NodeRef<'_>) -> Result<Val> {
        let (x, pre_pad) = self.nchw_input(n, true)?;
        let w_name = n.required_input(1)?;
        let w = self.value(n, w_name)?;
        let xs = self.graph.ty(x).shape.clone();
        let ws = self.graph.ty(w).shape.clone();
        let [m, cg, kh, kw] = ws[..] else {
            return Err(n
                .invalid(format!(
                    "the weight `{w_name}` has shape {}, expected [M, C/group, kH, kW]",
                    fmt_shape(&ws)
                ))
                .into());
        };
        if !(1..=MAX_ATTR).contains(&kh) || !(1..=MAX_ATTR).contains(&kw) {
            return Err(n
                .invalid(format!("unsupported kernel size {kh}x{kw}"))
                .into());
        }
        if let Some(k) = n.ints("kernel_shape")? {
            if k != [kh as i64, kw as i64] {
                return Err(n
                    .attr_error(
                        "kernel_shape",
                        format!("{k:?} does not match the weight's kernel [{kh}, {kw}]"),
                    )
                    .into());
            }
        }
        let group = n.int("group", 1)?;
        let groups = usize::try_from(group)
            .ok()
            .filter(|g| (1..=MAX_ATTR).contains(g))
            .ok_or_else(|| {
                n.attr_error("group", format!("must be in 1..={MAX_ATTR}, got {group}"))
            })?;
        if cg * groups != xs[1] || m % groups != 0 {
            return Err(n
                .invalid(format!(
                    "input of shape {} does not fit weight {} with group={groups}",
                    fmt_shape(&xs),
                    fmt_shape(&ws)
                ))
                .into());
        }
        let window = Window {
            kernel: [kh, kw],
            stride: n.pair("strides", [1, 1], 1)?,
            dilation: n.pair("dilations", [1, 1], 1)?,
        };
        let own_pad = self.padding(n, [xs[2], xs[3]], &window)?;
        let padding = add_pads(pre_pad, own_pad);
        self.check_window(n, [xs[2], xs[3]], padding, &window)?;
        let mut operands = vec![x, w];
        if let Some(b_name) = n.input(2) {
            let b = self.value(n, b_name)?;
            let bs = &self.graph.ty(b).shape;
            if bs != &[m] {
                return Err(n
                    .invalid(format!(
                        "the bias `{b_name}` has shape {}, expected [{m}]",
                        fmt_shape(bs)
                    ))
                    .into());
            }
            operands.push(b);
        }
        let op = Op::Conv2d(Conv2d {
            stride: window.stride,
            padding,
            dilation: window.dilation,
            groups,
            bias: operands.len() == 3,
            epilogue: Epilogue::default(),
        });
        self.add_op(n, op, &operands)
    }

    /// ONNX `MaxPool` (its second output was rejected by the driver).
    pub(super) fn max_pool(&mut self, n: &NodeRef<'_>) -> Result<Val> {
        let (x, _) = self.nchw_input(n, false)?;
        let xs = self.graph.ty(x).shape.clone();
        let window = self.pool_window(n)?;
        let ceil_mode = n.flag("ceil_mode", false)?;
        let padding = self.padding(n, [xs[2], xs[3]], &window)?;
        self.check_window(n, [xs[2], xs[3]], padding, &window)?;
        let op = Op::MaxPool2d(MaxPool2d {
            kernel: window.kernel,
            stride: window.stride,
            padding,
            dilation: window.dilation,
            ceil_mode,
        });
        self.add_op(n, op, &[x])
    }

    /// ONNX `AveragePool` (no dilation: PyTorch's `AvgPool2d` has none).
    pub(super) fn avg_pool(&mut self, n: &NodeRef<'_>) -> Result<Val> {
        let (x, _) = self.nchw_input(n, false)?;
        let xs = self.graph.ty(x).shape.clone();
        let window = self.pool_window(n)?;
        if window.dilation != [1, 1] {
            return Err(n
                .attr_error(
                    "dilations",
                    format!("only [1, 1] is supported, got {:?}", window.dilation),
                )
                .into());
        }
        let ceil_mode = n.flag("ceil_mode", false)?;
        let count_include_pad = n.flag("count_include_pad", false)?;
        let padding = self.padding(n, [xs[2], xs[3]], &window)?;
        self.check_window(n, [xs[2], xs[3]], padding, &window)?;
        let op = Op::AvgPool2d(AvgPool2d {
            kernel: window.kernel,
            stride: window.stride,
            padding,
            ceil_mode,
            count_include_pad,
        });
        self.add_op(n, op, &[x])
    }

    /// ONNX `GlobalAveragePool` on a 4-d input.
    pub(super) fn global_avg_pool(&mut self, n: &NodeRef<'_>) -> Result<Val> {
        let (x, _) = self.nchw_input(n, false)?;
        self.add_op(n, Op::GlobalAvgPool2d(GlobalAvgPool2d), &[x])
    }

    /// ONNX `Pad` with zeros on the spatial dims of a 4-d tensor: pending, for the `Conv` that
    /// reads it (an all-zero pad is the identity).
    pub(super) fn pad(&mut self, n: &NodeRef<'_>) -> Result<Val> {
        let mode = n.string("mode")?.unwrap_or_else(|| "constant".into());
        if mode != "constant" {
            return Err(n
                .attr_error(
                    "mode",
                    format!("only \"constant\" padding is supported, got {mode:?}"),
                )
                .into());
        }
        let x_name = n.required_input(0)?;
        let pads = self.const_ints(n, 1)?;
        if let Some(v) = n.input(2) {
            let zero = self.constant(v).and_then(|c| match c.as_f32() {
                Some([z]) => Some(*z == 0.0),
                _ => c.as_i64().map(|v| v == [0]),
            });
            if zero != Some(true) {
                return Err(n
                    .unsupported(
                        "only zero padding is supported (it becomes the next Conv's padding)",
                    )
                    .into());
            }
        }
        let rank = self.shape_of(n, x_name)?.len();
        let axes: Vec<usize> = match n.input(3) {
            Some(_) => self
                .const_ints(n, 3)?
                .iter()
                .map(|&a| super::constant::normalize_axis(a, rank).map_err(|m| n.invalid(m)))
                .collect::<Result<_, _>>()?,
            None => (0..rank).collect(),
        };
        if pads.len() != 2 * axes.len() {
            return Err(n
                .invalid(format!(
                    "pads has {} values for {} axes",
                    pads.len(),
                    axes.len()
                ))
                .into());
        }
        // Begin and end padding per axis of the input.
        let mut begin = vec![0i64; rank];
        let mut end = vec![0i64; rank];
        for (k, &axis) in axes.iter().enumerate() {
            begin[axis] = pads[k];
            end[axis] = pads[k + axes.len()];
        }
        if begin.iter().chain(&end).all(|&p| p == 0) {
            return self.get(n, x_name);
        }
        let side = |v: i64| usize::try_from(v).ok().filter(|&v| v <= MAX_ATTR);
        let spatial_only = rank == 4 && begin[..2].iter().chain(&end[..2]).all(|&p| p == 0);
        let (Some(top), Some(left), Some(bottom), Some(right), true) = (
            side(begin.get(2).copied().unwrap_or(-1)),
            side(begin.get(3).copied().unwrap_or(-1)),
            side(end.get(2).copied().unwrap_or(-1)),
            side(end.get(3).copied().unwrap_or(-1)),
            spatial_only,
        ) else {
            return Err(n
                .unsupported(format!(
                    "only non-negative padding of the two spatial dims of a 4-d tensor is supported, got pads {pads:?}"
                ))
                .into());
        };
        let (input, pre) = match self.get(n, x_name)? {
            Val::Padded(p) => (p.input, p.pad),
            _ => (self.value(n, x_name)?, Padding2d::default()),
        };
        let pad = add_pads(
            pre,
            Padding2d {
                top,
                left,
                bottom,
                right,
            },
        );
        if [pad.top, pad.left, pad.bottom, pad.right]
            .iter()
            .any(|&p| p > MAX_ATTR)
        {
            return Err(n
                .unsupported(format!("padding of more than {MAX_ATTR} in total"))
                .into());
        }
        Ok(Val::Padded(Rc::new(Padded {
            input,
            pad,
            node: n.name.to_string(),
        })))
    }
}
