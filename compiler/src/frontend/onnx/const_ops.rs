//! Ops folded at import time on constant operands: `Constant`, `ConstantOfShape`, `Shape` (of any
//! value: shapes are static once the inputs are specialised), and the small int64 computations
//! exporters emit around it (`Gather`, `Unsqueeze`, `Squeeze`, `Concat`, `Slice`, `Transpose`,
//! `Cast`, and `Sub`/`Mul`/`Div` of constants).

use super::attrs::NodeRef;
use super::constant::{broadcast_shapes, checked_numel, normalize_axis, BinaryOp, ConstTensor};
use super::error::OnnxError;
use super::import::{Importer, Val};
use super::reader::{dtype_name, read_tensor};
use super::MAX_ELEMENTS;
use crate::error::Result;
use std::rc::Rc;

/// The ops this module folds (`Add` of constants is folded by the `Add` converter).
pub(crate) const FOLDED: &[&str] = &[
    "Constant",
    "ConstantOfShape",
    "Shape",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Concat",
    "Slice",
    "Transpose",
    "Cast",
    "Sub",
    "Mul",
    "Div",
    "Erf",
    "Pow",
];

impl<'v, 'a> Importer<'v, 'a> {
    /// Constant operand `i` of `n`; a computed one is not supported by a folded op.
    fn const_input(&self, n: &NodeRef<'_>, i: usize) -> Result<Rc<ConstTensor>> {
        let name = n.required_input(i)?;
        match self.get(n, name)? {
            Val::Const(c) => Ok(c),
            Val::BadType(dtype) => Err(OnnxError::DataType {
                tensor: name.to_string(),
                dtype,
            }
            .into()),
            _ => {
                let why = match n.op {
                    "Mul" | "Div" | "Erf" | "Pow" => {
                        " (outside the GELU decomposition, which is recognised as one gelu)"
                    }
                    _ => " (shape computations)",
                };
                Err(n
                    .unsupported(format!(
                        "{} is imported only on constants{why}; `{name}` is computed by the model",
                        n.op
                    ))
                    .into())
            }
        }
    }

    /// Constant int64 operand `i` of `n` (axes, pads, shapes).
    pub(super) fn const_ints(&self, n: &NodeRef<'_>, i: usize) -> Result<Vec<i64>> {
        let c = self.const_input(n, i)?;
        match c.as_i64() {
            Some(v) => Ok(v.to_vec()),
            None => Err(n
                .invalid(format!(
                    "operand {i} must be an int64 tensor, got {}",
                    c.dtype_name()
                ))
                .into()),
        }
    }

    /// Folds node `n`, one of [`FOLDED`].
    pub(super) fn const_op(&mut self, n: &NodeRef<'_>) -> Result<Val> {
        let inv = |m: String| n.invalid(m);
        let c = match n.op {
            "Constant" => self.constant_attr(n)?,
            "ConstantOfShape" => {
                let dims = self.const_ints(n, 0)?;
                let shape: Vec<usize> = dims
                    .iter()
                    .map(|&d| {
                        usize::try_from(d).map_err(|_| inv(format!("negative dimension {d}")))
                    })
                    .collect::<Result<_, _>>()?;
                let numel = checked_numel(&shape).ok_or_else(|| OnnxError::TooLarge {
                    what: format!("the result of node `{}` (shape {dims:?})", n.name),
                    limit: MAX_ELEMENTS,
                })?;
                // Checked before the fill is allocated: this is where a tiny model asks for a
                // huge constant.
                let width = if n.tensor("value")?.and_then(|t| t.data_type) == Some(7) {
                    8
                } else {
                    4
                };
                self.ensure_room(width * numel as u64, || {
                    format!(
                        "the result of node `{}` (ConstantOfShape of {dims:?})",
                        n.name
                    )
                })?;
                let fill = match n.tensor("value")? {
                    Some(t) => read_tensor(t, n.name, self.base_dir())?,
                    None => ConstTensor::f32(vec![1], vec![0.0]),
                };
                match (fill.as_f32(), fill.as_i64()) {
                    (Some([v]), _) => ConstTensor::f32(shape, vec![*v; numel]),
                    (_, Some([v])) => ConstTensor::i64(shape, vec![*v; numel]),
                    _ => return Err(n.attr_error("value", "must hold one element").into()),
                }
            }
            "Shape" => {
                let shape = self.shape_of(n, n.required_input(0)?)?;
                let r = shape.len() as i64;
                let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
                let start = clamp(n.int("start", 0)?);
                let end = clamp(n.int("end", r)?).max(start);
                let dims: Vec<i64> = shape[start..end].iter().map(|&d| d as i64).collect();
                ConstTensor::i64(vec![dims.len()], dims)
            }
            "Gather" => {
                let data = self.const_input(n, 0)?;
                let idx = self.const_input(n, 1)?;
                // A gather can make more than it reads: bound its result (with its index
                // table) by every index taking all of the data, before it is made.
                let bound = (idx.numel() as u64).saturating_mul(data.numel() as u64);
                self.ensure_room(bound.saturating_mul(16), || {
                    format!("the result of node `{}` (Gather)", n.name)
                })?;
                let Some(ind) = idx.as_i64() else {
                    return Err(inv("indices must be int64".into()).into());
                };
                data.gather(ind, &idx.shape, n.int("axis", 0)?)
                    .map_err(inv)?
            }
            "Unsqueeze" => {
                let data = self.const_input(n, 0)?;
                let axes = self.const_ints(n, 1)?;
                let rank = data.shape.len() + axes.len();
                let mut axes: Vec<usize> = axes
                    .iter()
                    .map(|&a| normalize_axis(a, rank).map_err(inv))
                    .collect::<Result<_, _>>()?;
                axes.sort_unstable();
                axes.dedup();
                if axes.len() + data.shape.len() != rank {
                    return Err(inv("repeated axes".into()).into());
                }
                let mut dims = data.shape.iter();
                let shape = (0..rank)
                    .map(|k| {
                        if axes.binary_search(&k).is_ok() {
                            1
                        } else {
                            dims.next().copied().unwrap_or(1)
                        }
                    })
                    .collect();
                data.reshaped(shape).map_err(inv)?
            }
            "Squeeze" => {
                let data = self.const_input(n, 0)?;
                let rank = data.shape.len();
                let axes: Vec<usize> = match n.input(1) {
                    Some(_) => self
                        .const_ints(n, 1)?
                        .iter()
                        .map(|&a| normalize_axis(a, rank).map_err(inv))
                        .collect::<Result<_, _>>()?,
                    None => (0..rank).filter(|&k| data.shape[k] == 1).collect(),
                };
                if let Some(&k) = axes.iter().find(|&&k| data.shape[k] != 1) {
                    return Err(
                        inv(format!("cannot squeeze axis {k} of size {}", data.shape[k])).into(),
                    );
                }
                let shape = (0..rank)
                    .filter(|k| !axes.contains(k))
                    .map(|k| data.shape[k])
                    .collect();
                data.reshaped(shape).map_err(inv)?
            }
            "Concat" => {
                let parts = (0..n.proto.input.len())
                    .map(|i| self.const_input(n, i))
                    .collect::<Result<Vec<_>>>()?;
                let refs: Vec<&ConstTensor> = parts.iter().map(|p| p.as_ref()).collect();
                ConstTensor::concat(&refs, n.int("axis", 0)?).map_err(inv)?
            }
            "Slice" => {
                let data = self.const_input(n, 0)?;
                let starts = self.const_ints(n, 1)?;
                let ends = self.const_ints(n, 2)?;
                let axes = n.input(3).map(|_| self.const_ints(n, 3)).transpose()?;
                let steps = n.input(4).map(|_| self.const_ints(n, 4)).transpose()?;
                data.slice(&starts, &ends, axes.as_deref(), steps.as_deref())
                    .map_err(inv)?
            }
            "Transpose" => {
                let data = self.const_input(n, 0)?;
                let perm = n.ints("perm")?.unwrap_or(&[]);
                data.transpose(perm).map_err(inv)?
            }
            "Cast" => {
                let data = self.const_input(n, 0)?;
                match n.int("to", 0)? {
                    1 => data.cast(true),
                    7 => data.cast(false),
                    to => {
                        return Err(n
                            .attr_error(
                                "to",
                                format!(
                                    "casting to {} is not supported (only FLOAT and INT64)",
                                    dtype_name(i32::try_from(to).unwrap_or(-1))
                                ),
                            )
                            .into())
                    }
                }
            }
            "Sub" | "Mul" | "Div" => {
                let op = match n.op {
                    "Sub" => BinaryOp::Sub,
                    "Mul" => BinaryOp::Mul,
                    _ => BinaryOp::Div,
                };
                let a = self.const_input(n, 0)?;
                let b = self.const_input(n, 1)?;
                // Both operands are broadcast (through index tables) before the result is made:
                // at most 40 bytes per result element, checked before any of it is allocated.
                if let Some(shape) = broadcast_shapes(&a.shape, &b.shape) {
                    let elements = checked_numel(&shape).unwrap_or(usize::MAX) as u64;
                    self.ensure_room(elements.saturating_mul(40), || {
                        format!(
                            "the result of node `{}` ({} broadcast to {shape:?})",
                            n.name, n.op
                        )
                    })?;
                }
                ConstTensor::binary(&a, &b, op).map_err(inv)?
            }
            _ => {
                // Erf, Pow: only inside the GELU patterns; this reports the computed operand.
                self.const_input(n, 0)?;
                return Err(n
                    .unsupported(format!("{} of a constant is not supported", n.op))
                    .into());
            }
        };
        Ok(Val::Const(Rc::new(c)))
    }

    /// The value of a `Constant` node (`value`, `value_float(s)` or `value_int(s)`).
    fn constant_attr(&self, n: &NodeRef<'_>) -> Result<ConstTensor> {
        if let Some(t) = n.tensor("value")? {
            return Ok(read_tensor(t, n.output0()?, self.base_dir())?);
        }
        if n.has_attr("value_float") {
            return Ok(ConstTensor::f32(vec![], vec![n.float("value_float", 0.0)?]));
        }
        if let Some(v) = n.floats("value_floats")? {
            return Ok(ConstTensor::f32(vec![v.len()], v.to_vec()));
        }
        if n.has_attr("value_int") {
            return Ok(ConstTensor::i64(vec![], vec![n.int("value_int", 0)?]));
        }
        if let Some(v) = n.ints("value_ints")? {
            return Ok(ConstTensor::i64(vec![v.len()], v.to_vec()));
        }
        for other in ["sparse_value", "value_string", "value_strings"] {
            if n.has_attr(other) {
                return Err(n.attr_error(other, "is not supported").into());
            }
        }
        Err(n.invalid("the Constant has no value attribute").into())
    }
}
