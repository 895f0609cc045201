//! `BatchNormalization`, `Gelu`'s attribute, and the reshaping ops on graph values: `Flatten` and
//! `Reshape`, imported when they are a flatten to `[N, C·H·W]` (or change nothing).

use super::attrs::NodeRef;
use super::constant::{normalize_axis, reshape_target};
use super::import::{Importer, Val};
use crate::error::Result;
use kiln_runtime::ops::{Activation, BatchNorm2d, Flatten, GeluApproximate, Op};
use kiln_runtime::shape::fmt_shape;
use std::rc::Rc;

impl<'v, 'a> Importer<'v, 'a> {
    /// `Gelu`'s `approximate` attribute (opset 20): `none` or `tanh`.
    pub(super) fn gelu_attrs(&self, n: &NodeRef<'_>) -> Result<Activation> {
        let approximate = match n.string("approximate")?.as_deref() {
            None | Some("none") => GeluApproximate::None,
            Some("tanh") => GeluApproximate::Tanh,
            Some(other) => {
                return Err(n
                    .attr_error(
                        "approximate",
                        format!("unsupported value {other:?} (expected \"none\" or \"tanh\")"),
                    )
                    .into())
            }
        };
        Ok(Activation::Gelu { approximate })
    }

    /// ONNX `BatchNormalization` in inference mode on a 4-d input.
    pub(super) fn batch_norm(&mut self, n: &NodeRef<'_>) -> Result<Val> {
        if n.flag("training_mode", false)? {
            return Err(n
                .attr_error(
                    "training_mode",
                    "training mode (1) is not supported: export the model in eval mode",
                )
                .into());
        }
        let x_name = n.required_input(0)?;
        let x = self.value(n, x_name)?;
        let xs = self.graph.ty(x).shape.clone();
        if xs.len() != 4 {
            return Err(n
                .unsupported(format!(
                    "only 4-d (NCHW) inputs are supported; `{x_name}` has shape {}",
                    fmt_shape(&xs)
                ))
                .into());
        }
        let mut operands = vec![x];
        for (k, what) in [(1, "scale"), (2, "B"), (3, "input_mean"), (4, "input_var")] {
            let name = n.required_input(k)?;
            let v = self.value(n, name)?;
            let shape = &self.graph.ty(v).shape;
            if shape != &[xs[1]] {
                return Err(n
                    .invalid(format!(
                        "{what} `{name}` has shape {}, expected [{}]",
                        fmt_shape(shape),
                        xs[1]
                    ))
                    .into());
            }
            operands.push(v);
        }
        let eps = n.float("epsilon", 1e-5)?;
        self.add_op(n, Op::BatchNorm2d(BatchNorm2d { eps }), &operands)
    }

    /// ONNX `Flatten(axis)`: `[d0 … d(axis-1), d(axis) …]` → `[d0·…·d(axis-1), d(axis)·…]`.
    pub(super) fn flatten(&mut self, n: &NodeRef<'_>) -> Result<Val> {
        let x_name = n.required_input(0)?;
        let shape = self.shape_of(n, x_name)?;
        let axis = n.int("axis", 1)?;
        // Flatten's axis may equal the rank (everything goes to the first dimension).
        let axis = normalize_axis(axis, shape.len() + 1).map_err(|m| n.attr_error("axis", m))?;
        let target = vec![
            shape[..axis].iter().product::<usize>(),
            shape[axis..].iter().product::<usize>(),
        ];
        self.reshape_to(n, x_name, target)
    }

    /// ONNX `Reshape` to a constant shape.
    pub(super) fn reshape(&mut self, n: &NodeRef<'_>) -> Result<Val> {
        let x_name = n.required_input(0)?;
        let spec = self.const_ints(n, 1)?;
        let allowzero = n.flag("allowzero", false)?;
        let shape = self.shape_of(n, x_name)?;
        let target = reshape_target(&shape, &spec, allowzero).map_err(|m| n.invalid(m))?;
        self.reshape_to(n, x_name, target)
    }

    /// Value `x_name` under shape `target` (same element count): a constant is reshaped; a graph
    /// value only when that is a flatten of all dims after the first, or nothing.
    fn reshape_to(&mut self, n: &NodeRef<'_>, x_name: &str, target: Vec<usize>) -> Result<Val> {
        if let Some(c) = self.constant(x_name) {
            return Ok(Val::Const(Rc::new(
                c.reshaped(target).map_err(|m| n.invalid(m))?,
            )));
        }
        let x = self.value(n, x_name)?;
        let xs = self.graph.ty(x).shape.clone();
        if target == xs {
            return Ok(Val::Value(x));
        }
        if xs.len() >= 2 && target == [xs[0], xs[1..].iter().product()] {
            return self.add_op(n, Op::Flatten(Flatten { start_dim: 1 }), &[x]);
        }
        Err(n
            .unsupported(format!(
                "reshaping {} to {} is not supported: only a flatten to [N, -1] is",
                fmt_shape(&xs),
                fmt_shape(&target)
            ))
            .into())
    }
}
