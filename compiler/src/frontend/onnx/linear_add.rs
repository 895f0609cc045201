//! `Gemm`, `MatMul` (+ `Add` of a bias) and `Add`, onto the op set's `linear` (with bias) and
//! same-shape `add`.
//!
//! The op set's `add` takes two operands of one shape, so an `Add` of a constant that broadcasts
//! (a scalar, or one value per channel) is imported in one of two ways:
//! - when it adds one value per channel to the result of a bias-less `Conv` that nothing else
//!   reads, it becomes that conv's bias (no extra op, no extra memory);
//! - otherwise the constant is expanded to the full shape of the other operand and stored as a
//!   parameter (named by the constant's ONNX name), then added.

use super::attrs::NodeRef;
use super::constant::{broadcast_shapes, BinaryOp, ConstTensor};
use super::import::{Importer, PendingMatMul, Val};
use crate::error::Result;
use crate::ir::graph::{NodeKind, ValueId};
use kiln_runtime::ops::{Add, Linear, Op};
use kiln_runtime::shape::fmt_shape;
use std::rc::Rc;

/// `c` as one value per column of an `[M, n]` result (`c` of shape `[]`, `[1]`, `[n]`, `[1, n]`,
/// …), scaled by `scale`.
fn row_bias(c: &ConstTensor, n: usize, scale: f32) -> Option<ConstTensor> {
    if broadcast_shapes(&c.shape, &[1, n]).as_deref() != Some(&[1, n]) {
        return None;
    }
    let row = c.broadcast_to(&[1, n]).ok()?;
    let data = row.as_f32()?.iter().map(|v| v * scale).collect();
    Some(ConstTensor::f32(vec![n], data))
}

impl<'v, 'a> Importer<'v, 'a> {
    /// A `linear` for a pending `MatMul` (weight `bᵀ`), with `bias` if given, named `out`.
    pub(super) fn linear_from_matmul(
        &mut self,
        m: &PendingMatMul,
        bias: Option<ValueId>,
        out: &str,
    ) -> Result<ValueId> {
        let n = self.view_node_for(out);
        let wt = m.b.transpose(&[1, 0]).map_err(|e| n.invalid(e))?;
        let w = self.param(&m.weight_name, "transposed", &wt)?;
        let mut operands = vec![m.input, w];
        operands.extend(bias);
        let op = Op::Linear(Linear {
            bias: bias.is_some(),
            epilogue: Default::default(),
        });
        let name = self.fresh(out);
        let v = self.add_op_named(&n, &name, op, &operands)?;
        Ok(v)
    }

    /// The node producing ONNX value `out` (for errors while materialising it).
    fn view_node_for(&self, out: &str) -> NodeRef<'v> {
        let view: &'v _ = self.view;
        view.producer(out)
            .map(|i| view.node(i))
            .unwrap_or_else(|| view.node(0))
    }

    /// The 2-d graph value operand `i` of `n`.
    fn matrix(&mut self, n: &NodeRef<'_>, i: usize) -> Result<(ValueId, [usize; 2])> {
        let name = n.required_input(i)?;
        let v = self.value(n, name)?;
        match self.graph.ty(v).shape[..] {
            [r, c] => Ok((v, [r, c])),
            ref s => Err(n
                .unsupported(format!(
                    "only 2-d operands are supported; `{name}` has shape {}",
                    fmt_shape(s)
                ))
                .into()),
        }
    }

    /// ONNX `Gemm`: `alpha·A'·B' + beta·C` as `linear(A, W, bias)` with `W = alpha·B'ᵀ` (as is
    /// when `transB=1, alpha=1`: PyTorch's `nn.Linear` export) and `bias = beta·C`.
    pub(super) fn gemm(&mut self, n: &NodeRef<'_>) -> Result<Val> {
        let alpha = n.float("alpha", 1.0)?;
        let beta = n.float("beta", 1.0)?;
        if n.flag("transA", false)? {
            return Err(n
                .attr_error(
                    "transA",
                    "transA=1 is not supported (the input would need a transpose)",
                )
                .into());
        }
        let trans_b = n.flag("transB", false)?;
        let (a, [rows, k]) = self.matrix(n, 0)?;
        let b_name = n.required_input(1)?;
        let (w, cols) = match self.get(n, b_name)? {
            Val::Const(b) => {
                let [b0, b1] = b.shape[..] else {
                    return Err(n
                        .invalid(format!(
                            "B `{b_name}` has shape {}, expected 2-d",
                            fmt_shape(&b.shape)
                        ))
                        .into());
                };
                let (bk, cols) = if trans_b { (b1, b0) } else { (b0, b1) };
                if bk != k {
                    return Err(n
                        .invalid(format!(
                            "A of shape [{rows}, {k}] and B of shape {} (transB={}) do not fit",
                            fmt_shape(&b.shape),
                            u8::from(trans_b)
                        ))
                        .into());
                }
                let w = if trans_b && alpha == 1.0 {
                    self.param(b_name, "", &b)?
                } else {
                    let wt = if trans_b {
                        (*b).clone()
                    } else {
                        b.transpose(&[1, 0]).map_err(|e| n.invalid(e))?
                    };
                    let scaled = ConstTensor::binary(
                        &wt,
                        &ConstTensor::f32(vec![], vec![alpha]),
                        BinaryOp::Mul,
                    )
                    .map_err(|e| n.invalid(e))?;
                    self.param(b_name, "gemm_weight", &scaled)?
                };
                (w, cols)
            }
            _ if trans_b && alpha == 1.0 => {
                let (w, [cols, bk]) = self.matrix(n, 1)?;
                if bk != k {
                    return Err(n.invalid("A and B do not fit").into());
                }
                (w, cols)
            }
            _ => {
                return Err(n
                    .unsupported("B must be a constant unless transB=1 and alpha=1")
                    .into())
            }
        };
        let c_name = n.input(2).filter(|_| beta != 0.0);
        let mut bias = None;
        let mut post_add = None;
        if let Some(c_name) = c_name {
            match self.get(n, c_name)? {
                Val::Const(c) => match row_bias(&c, cols, beta) {
                    Some(_) if beta == 1.0 && c.shape == [cols] => {
                        bias = Some(self.param(c_name, "", &c)?)
                    }
                    Some(row) => bias = Some(self.param(c_name, "gemm_bias", &row)?),
                    None => {
                        let scaled = ConstTensor::binary(
                            &c,
                            &ConstTensor::f32(vec![], vec![beta]),
                            BinaryOp::Mul,
                        )
                        .map_err(|e| n.invalid(e))?;
                        post_add = Some((c_name, scaled));
                    }
                },
                _ if beta == 1.0 => {
                    let cv = self.value(n, c_name)?;
                    let cs = self.graph.ty(cv).shape.clone();
                    if cs == [cols] {
                        bias = Some(cv);
                    } else if cs == [rows, cols] {
                        let op = Op::Linear(Linear {
                            bias: false,
                            epilogue: Default::default(),
                        });
                        let name = self.fresh(&format!("{}.gemm", n.output0()?));
                        let y = self.add_op_named(n, &name, op, &[a, w])?;
                        return self.add_op(n, Op::Add(Add), &[y, cv]);
                    } else {
                        return Err(n
                            .unsupported(format!(
                                "C of shape {} does not fit the [{rows}, {cols}] result",
                                fmt_shape(&cs)
                            ))
                            .into());
                    }
                }
                _ => {
                    return Err(n
                        .unsupported("a computed C is supported only with beta=1")
                        .into())
                }
            }
        }
        let mut operands = vec![a, w];
        operands.extend(bias);
        let op = Op::Linear(Linear {
            bias: bias.is_some(),
            epilogue: Default::default(),
        });
        let Some((c_name, c)) = post_add else {
            return self.add_op(n, op, &operands);
        };
        let name = self.fresh(&format!("{}.gemm", n.output0()?));
        let y = self.add_op_named(n, &name, op, &operands)?;
        self.add_const(n, y, c_name, &c)
    }

    /// ONNX `MatMul` of a 2-d graph value by a constant 2-d matrix: pending, so that an `Add` of a
    /// bias that follows can join it into one `linear`.
    pub(super) fn matmul(&mut self, n: &NodeRef<'_>) -> Result<Val> {
        let (a, [_, k]) = self.matrix(n, 0)?;
        let b_name = n.required_input(1)?;
        let Some(b) = self.constant(b_name) else {
            return Err(n
                .unsupported("only a product by a constant matrix (a linear layer) is supported")
                .into());
        };
        if b.shape.len() != 2 || b.shape[0] != k {
            return Err(n
                .invalid(format!(
                    "a [_, {k}] input cannot be multiplied by `{b_name}` of shape {}",
                    fmt_shape(&b.shape)
                ))
                .into());
        }
        Ok(Val::MatMul(Rc::new(PendingMatMul {
            input: a,
            weight_name: b_name.to_string(),
            b,
            out: n.output0()?.to_string(),
        })))
    }

    /// ONNX `Add`.
    pub(super) fn add(&mut self, n: &NodeRef<'_>) -> Result<Val> {
        let (a_name, b_name) = (n.required_input(0)?, n.required_input(1)?);
        let (a, b) = (self.get(n, a_name)?, self.get(n, b_name)?);
        match (&a, &b) {
            (Val::Const(x), Val::Const(y)) => {
                let sum = ConstTensor::binary(x, y, BinaryOp::Add).map_err(|e| n.invalid(e))?;
                return Ok(Val::Const(Rc::new(sum)));
            }
            (Val::MatMul(m), Val::Const(c)) | (Val::Const(c), Val::MatMul(m))
                if self.view.uses(&m.out) == 1 =>
            {
                let c_name = if matches!(a, Val::Const(_)) {
                    a_name
                } else {
                    b_name
                };
                let cols = m.b.shape[1];
                if let Some(row) = row_bias(c, cols, 1.0) {
                    let bias = if c.shape == [cols] {
                        self.param(c_name, "", c)?
                    } else {
                        self.param(c_name, "bias", &row)?
                    };
                    let v = self.linear_from_matmul(m, Some(bias), n.output0()?)?;
                    return Ok(Val::Value(v));
                }
            }
            _ => {}
        }
        match (a, b) {
            (Val::Const(c), _) => {
                let x = self.value(n, b_name)?;
                self.add_with_const(n, x, b_name, a_name, &c)
            }
            (_, Val::Const(c)) => {
                let x = self.value(n, a_name)?;
                self.add_with_const(n, x, a_name, b_name, &c)
            }
            _ => {
                let x = self.value(n, a_name)?;
                let y = self.value(n, b_name)?;
                let (xs, ys) = (&self.graph.ty(x).shape, &self.graph.ty(y).shape);
                if xs != ys {
                    return Err(n
                        .unsupported(format!(
                            "a broadcasting Add of computed tensors ({} + {}) is not supported",
                            fmt_shape(xs),
                            fmt_shape(ys)
                        ))
                        .into());
                }
                self.add_op(n, Op::Add(Add), &[x, y])
            }
        }
    }

    /// `x + c` for graph value `x` (ONNX name `x_name`) and constant `c` (ONNX name `c_name`): a
    /// conv bias when it can be, else a same-shape `add`.
    fn add_with_const(
        &mut self,
        n: &NodeRef<'_>,
        x: ValueId,
        x_name: &str,
        c_name: &str,
        c: &ConstTensor,
    ) -> Result<Val> {
        let xs = self.graph.ty(x).shape.clone();
        if broadcast_shapes(&c.shape, &xs).as_deref() != Some(&xs[..]) {
            return Err(n
                .unsupported(format!(
                    "the constant `{c_name}` of shape {} does not broadcast to {} (the result would change shape)",
                    fmt_shape(&c.shape),
                    fmt_shape(&xs)
                ))
                .into());
        }
        if let Some(v) = self.fold_conv_bias(n, x, x_name, c_name, c)? {
            return Ok(Val::Value(v));
        }
        self.add_const(n, x, c_name, c)
    }

    /// `x + c` as an `add` of `c` expanded to `x`'s shape.
    fn add_const(
        &mut self,
        n: &NodeRef<'_>,
        x: ValueId,
        c_name: &str,
        c: &ConstTensor,
    ) -> Result<Val> {
        let xs = self.graph.ty(x).shape.clone();
        let p = if c.shape == xs {
            self.param(c_name, "", c)?
        } else {
            let full = c.broadcast_to(&xs).map_err(|e| n.invalid(e))?;
            self.param(c_name, "broadcast", &full)?
        };
        self.add_op(n, Op::Add(Add), &[x, p])
    }

    /// When `x` is the result of a bias-less, unfused conv read only here and `c` holds one value
    /// per output channel (or one value), makes `c` that conv's bias and returns the conv.
    fn fold_conv_bias(
        &mut self,
        n: &NodeRef<'_>,
        x: ValueId,
        x_name: &str,
        c_name: &str,
        c: &ConstTensor,
    ) -> Result<Option<ValueId>> {
        let Some(Op::Conv2d(conv)) = self.graph.op(x).cloned() else {
            return Ok(None);
        };
        let xs = self.graph.ty(x).shape.clone();
        if conv.bias || !conv.epilogue.is_empty() || !self.only_use(x, x_name) || xs.len() != 4 {
            return Ok(None);
        }
        let channels = xs[1];
        // Per channel: broadcasting c to [1, C, 1, 1] already gives the full shape's values.
        if broadcast_shapes(&c.shape, &[1, channels, 1, 1]).as_deref() != Some(&[1, channels, 1, 1])
        {
            return Ok(None);
        }
        let per_channel = c
            .broadcast_to(&[1, channels, 1, 1])
            .and_then(|t| t.reshaped(vec![channels]))
            .map_err(|e| n.invalid(e))?;
        let bias = self.param(c_name, "bias", &per_channel)?;
        let mut operands = self.graph.operands(x);
        operands.push(bias);
        let mut conv = conv;
        conv.bias = true;
        self.graph.node_mut(x).kind = NodeKind::Op(Op::Conv2d(conv));
        self.graph.set_operands(x, &operands);
        Ok(Some(x))
    }
}
