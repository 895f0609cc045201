//! The import driver: walks the ONNX nodes in topological order and builds the [`Graph`], keeping
//! for every ONNX value what it became ([`Val`]).
//!
//! Not every ONNX value becomes a graph value. Constants stay constants until an op needs them as an
//! operand, and then become parameters named by their ONNX name (PyTorch's export keeps
//! `state_dict` keys such as `fc.weight` as initializer names). A zero `Pad` waits for the `Conv`
//! that reads it and becomes that conv's padding; a `MatMul` by a constant waits for an `Add` of a
//! bias and becomes one `linear`. The per-op converters live in the sibling modules.

use super::attrs::NodeRef;
use super::constant::{checked_numel, ConstTensor};
use super::error::OnnxError;
use super::gelu_pattern::{find_gelus, GeluMatch};
use super::proto::{type_proto, ModelProto, ValueInfoProto};
use super::reader::{check_opset, dtype_name, read_tensor};
use super::view::GraphView;
use super::{sanitize, Dim, InputInfo, MAX_ELEMENTS};
use crate::error::Result;
use crate::ir::graph::{Graph, ValueId};
use kiln_runtime::budget::Budget;
use kiln_runtime::ops::{Activation, Op, Padding2d};
use kiln_runtime::shape::fmt_shape;
use kiln_runtime::Tensor;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

/// What an ONNX value became.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    /// A value of the graph.
    Value(ValueId),
    /// A constant, not (yet) a parameter.
    Const(Rc<ConstTensor>),
    /// An initializer of an element type Kiln does not read (an error only if it is used).
    BadType(String),
    /// The result of a zero `Pad`, pending: a `Conv` reading it takes the padding.
    Padded(Rc<Padded>),
    /// The result of a `MatMul` by a constant, pending: an `Add` of a bias makes it one `linear`.
    MatMul(Rc<PendingMatMul>),
}

/// A zero padding of the spatial dims of a graph value, not yet applied.
#[derive(Debug)]
pub(crate) struct Padded {
    /// The padded value.
    pub input: ValueId,
    /// The padding.
    pub pad: Padding2d,
    /// The `Pad` node, for errors.
    pub node: String,
}

/// `input × b` with a constant `b` of shape `[K, N]`, not yet added to the graph.
#[derive(Debug)]
pub(crate) struct PendingMatMul {
    /// The `[M, K]` graph value.
    pub input: ValueId,
    /// The ONNX name of `b` (the weight parameter's name).
    pub weight_name: String,
    /// `b`.
    pub b: Rc<ConstTensor>,
    /// The ONNX name of the product (the `linear`'s name when no bias joins it).
    pub out: String,
}

/// The importer's state while it walks one graph.
pub(crate) struct Importer<'v, 'a> {
    /// The ONNX graph.
    pub view: &'v GraphView<'a>,
    /// The graph being built.
    pub graph: Graph,
    /// What each ONNX value became.
    env: HashMap<String, Val>,
    /// Parameters made from constants, by (ONNX name, transformation) so that a constant used
    /// twice in the same way is one parameter.
    params: HashMap<(String, &'static str), ValueId>,
    /// The ONNX value whose node created each graph value (aliases such as `Identity` results
    /// map to the same graph value but are not its origin).
    origin: HashMap<ValueId, String>,
    /// Resolves external data.
    base_dir: Option<&'v Path>,
    /// Every constant and parameter the import holds, against the memory limit.
    budget: Budget,
}

/// Imports `model`; see [`OnnxModel::import`](super::OnnxModel::import).
pub(crate) fn import_model(
    model: &ModelProto,
    base_dir: Option<&Path>,
    input_shapes: &BTreeMap<String, Vec<usize>>,
    budget: Budget,
) -> Result<Graph> {
    check_opset(model)?;
    let g = model
        .graph
        .as_ref()
        .ok_or_else(|| OnnxError::Malformed("the model has no graph".into()))?;
    if g.node.is_empty() {
        return Err(OnnxError::EmptyGraph.into());
    }
    if let Some(s) = g.sparse_initializer.first() {
        let name = s.values.as_ref().map(super::reader::tensor_name);
        return Err(OnnxError::InvalidTensor {
            tensor: name.unwrap_or_default(),
            msg: "sparse initializers are not supported".into(),
        }
        .into());
    }
    let view = GraphView::new(g)?;
    let order = view.topo_order()?;
    let graph_name = match g.name.as_deref() {
        Some(n) if !n.is_empty() => sanitize(n),
        _ => "onnx_model".to_string(),
    };
    let mut imp = Importer {
        view: &view,
        graph: Graph::new(&graph_name),
        env: HashMap::new(),
        params: HashMap::new(),
        origin: HashMap::new(),
        base_dir,
        budget,
    };
    imp.add_initializers()?;
    imp.add_inputs(input_shapes)?;

    let gelus = find_gelus(&view);
    let skip: HashSet<usize> = gelus.iter().flat_map(|m| m.internal.clone()).collect();
    let gelu_at: HashMap<usize, &GeluMatch> = gelus.iter().map(|m| (m.last, m)).collect();
    for i in order {
        if skip.contains(&i) {
            continue;
        }
        let node = view.node(i);
        let val = match gelu_at.get(&i) {
            Some(m) => imp.gelu_pattern(&node, m)?,
            None => imp.import_node(&node)?,
        };
        if let Val::Const(c) = &val {
            imp.charge(c.bytes(), || {
                format!(
                    "constant `{}` of shape {}",
                    node.output0().unwrap_or(""),
                    fmt_shape(&c.shape)
                )
            })?;
        }
        imp.env.insert(node.output0()?.to_string(), val);
    }
    imp.finish()
}

impl<'v, 'a> Importer<'v, 'a> {
    /// Every initializer as a constant.
    fn add_initializers(&mut self) -> Result<()> {
        for t in &self.view.graph.initializer {
            let name = t.name.clone().unwrap_or_default();
            // Charged from the declared dims before the data is decoded (or read from an
            // external file); dims that are invalid or too large are `read_tensor`'s to report.
            let dims: Option<Vec<usize>> =
                t.dims.iter().map(|&d| usize::try_from(d).ok()).collect();
            let width = match t.data_type {
                Some(1) => 4,
                Some(7) => 8,
                _ => 0,
            };
            if let Some(n) = dims.as_deref().and_then(checked_numel) {
                self.charge(width * n as u64, || {
                    format!("initializer `{name}` of dims {:?}", t.dims)
                })?;
            }
            let val = match read_tensor(t, &name, self.base_dir) {
                Ok(c) => Val::Const(Rc::new(c)),
                Err(OnnxError::DataType { dtype, .. }) => Val::BadType(dtype),
                Err(e) => return Err(e.into()),
            };
            self.env.insert(name, val);
        }
        Ok(())
    }

    /// The graph inputs (those that are not initializers), with shapes specialised.
    fn add_inputs(&mut self, input_shapes: &BTreeMap<String, Vec<usize>>) -> Result<()> {
        let inputs = graph_inputs(self.view)?;
        if let Some(unknown) = input_shapes
            .keys()
            .find(|k| !inputs.iter().any(|i| &i.name == *k))
        {
            return Err(OnnxError::UnknownInput {
                name: unknown.clone(),
                inputs: inputs
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
            .into());
        }
        for info in inputs {
            let shape = info.specialise(input_shapes.get(&info.name))?;
            let name = self.fresh(&info.name);
            let id = self.graph.add_input(&name, &shape)?;
            self.origin.insert(id, info.name.clone());
            self.env.insert(info.name, Val::Value(id));
        }
        Ok(())
    }

    /// The graph outputs, then the verifier.
    fn finish(mut self) -> Result<Graph> {
        let mut outputs = Vec::new();
        for o in &self.view.graph.output {
            let name = o.name.as_deref().unwrap_or("");
            if let Some(ty) = o.r#type.as_ref().and_then(|t| t.value.as_ref()) {
                let elem = match ty {
                    type_proto::Value::TensorType(t) => t.elem_type.unwrap_or(1),
                    _ => 0,
                };
                if elem != 1 {
                    return Err(OnnxError::DataType {
                        tensor: name.to_string(),
                        dtype: dtype_name(elem),
                    }
                    .into());
                }
            }
            if !self.env.contains_key(name) {
                return Err(OnnxError::DanglingOutput {
                    output: name.to_string(),
                }
                .into());
            }
            outputs.push(self.materialise(name, None)?);
        }
        if outputs.is_empty() {
            return Err(OnnxError::Malformed("the graph has no outputs".into()).into());
        }
        self.graph.set_outputs(outputs);
        crate::ir::verify::verify(&self.graph)?;
        Ok(self.graph)
    }

    /// Imports one node (not part of a recognised pattern): what its first result becomes.
    fn import_node(&mut self, n: &NodeRef<'_>) -> Result<Val> {
        if !n.in_default_domain() {
            return Err(OnnxError::UnsupportedOp {
                node: n.name.to_string(),
                op: format!("{}.{}", n.proto.domain.as_deref().unwrap_or(""), n.op),
            }
            .into());
        }
        if let Some(extra) = n.output(1) {
            let what = match n.op {
                "MaxPool" => "the second output `Indices`",
                "Dropout" => "the `mask` output",
                "BatchNormalization" => "the running-statistics outputs (training mode)",
                _ => "a second output",
            };
            return Err(n
                .unsupported(format!("{what} (`{extra}`) is not supported"))
                .into());
        }
        let act = |a: Activation| Some(a);
        let activation = match n.op {
            "Relu" => act(Activation::Relu),
            "Sigmoid" => act(Activation::Sigmoid),
            "Tanh" => act(Activation::Tanh),
            "LeakyRelu" => act(Activation::LeakyRelu {
                negative_slope: n.float("alpha", 0.01)?,
            }),
            "Elu" => act(Activation::Elu {
                alpha: n.float("alpha", 1.0)?,
            }),
            "Gelu" => act(self.gelu_attrs(n)?),
            _ => None,
        };
        if let Some(a) = activation {
            let x = self.value(n, n.required_input(0)?)?;
            return self.add_op(n, Op::Activation(a), &[x]);
        }
        match n.op {
            "Conv" => self.conv(n),
            "MaxPool" => self.max_pool(n),
            "AveragePool" => self.avg_pool(n),
            "GlobalAveragePool" => self.global_avg_pool(n),
            "BatchNormalization" => self.batch_norm(n),
            "Add" => self.add(n),
            "Gemm" => self.gemm(n),
            "MatMul" => self.matmul(n),
            "Flatten" => self.flatten(n),
            "Reshape" => self.reshape(n),
            "Pad" => self.pad(n),
            "Identity" | "Dropout" => self.get(n, n.required_input(0)?),
            op if super::const_ops::FOLDED.contains(&op) => self.const_op(n),
            _ => Err(OnnxError::UnsupportedOp {
                node: n.name.to_string(),
                op: n.op.to_string(),
            }
            .into()),
        }
    }

    /// A recognised GELU subgraph, as one `gelu` named by the pattern's last result.
    fn gelu_pattern(&mut self, last: &NodeRef<'_>, m: &GeluMatch) -> Result<Val> {
        let x = self.value(last, &m.input)?;
        let op = Op::Activation(Activation::Gelu {
            approximate: m.approximate,
        });
        self.add_op(last, op, &[x])
    }

    /// What ONNX value `name`, read by node `n`, became.
    pub(super) fn get(&self, n: &NodeRef<'_>, name: &str) -> Result<Val> {
        self.env.get(name).cloned().ok_or_else(|| {
            OnnxError::DanglingInput {
                node: n.name.to_string(),
                op: n.op.to_string(),
                input: name.to_string(),
            }
            .into()
        })
    }

    /// The constant `name` read by `n`, if it is one.
    pub(super) fn constant(&self, name: &str) -> Option<Rc<ConstTensor>> {
        match self.env.get(name) {
            Some(Val::Const(c)) => Some(c.clone()),
            _ => None,
        }
    }

    /// ONNX value `name`, read by node `n`, as a graph value: a constant becomes a parameter, a
    /// pending `MatMul` a `linear`.
    pub(super) fn value(&mut self, n: &NodeRef<'_>, name: &str) -> Result<ValueId> {
        self.get(n, name)?;
        self.materialise(name, Some(n))
    }

    /// `name` (known to be defined) as a graph value; `reader` is the node reading it (`None`: a
    /// graph output).
    fn materialise(&mut self, name: &str, reader: Option<&NodeRef<'_>>) -> Result<ValueId> {
        let val = self.env.get(name).cloned();
        let reader_name = reader.map_or_else(
            || "the graph outputs".to_string(),
            |r| format!("node `{}`", r.name),
        );
        match val {
            Some(Val::Value(v)) => Ok(v),
            Some(Val::Const(c)) => self.param(name, "", &c),
            Some(Val::BadType(dtype)) => Err(OnnxError::DataType {
                tensor: name.to_string(),
                dtype,
            }
            .into()),
            Some(Val::Padded(p)) => Err(OnnxError::Unsupported {
                node: p.node.clone(),
                op: "Pad".into(),
                msg: format!(
                    "a zero Pad is imported only in front of a Conv (as its padding), but {reader_name} reads it"
                ),
            }
            .into()),
            Some(Val::MatMul(m)) => {
                let v = self.linear_from_matmul(&m, None, &m.out)?;
                self.env.insert(name.to_string(), Val::Value(v));
                Ok(v)
            }
            None => Err(OnnxError::DanglingOutput {
                output: name.to_string(),
            }
            .into()),
        }
    }

    /// The shape of ONNX value `name` read by `n`, without adding anything to the graph.
    pub(super) fn shape_of(&self, n: &NodeRef<'_>, name: &str) -> Result<Vec<usize>> {
        Ok(match self.get(n, name)? {
            Val::Value(v) => self.graph.ty(v).shape.clone(),
            Val::Const(c) => c.shape.clone(),
            Val::BadType(dtype) => {
                return Err(OnnxError::DataType {
                    tensor: name.to_string(),
                    dtype,
                }
                .into())
            }
            Val::Padded(p) => {
                let mut s = self.graph.ty(p.input).shape.clone();
                if let [_, _, h, w] = s.as_mut_slice() {
                    *h += p.pad.top + p.pad.bottom;
                    *w += p.pad.left + p.pad.right;
                }
                s
            }
            Val::MatMul(m) => {
                let mut s = self.graph.ty(m.input).shape.clone();
                if let (Some(last), Some(&cols)) = (s.last_mut(), m.b.shape.get(1)) {
                    *last = cols;
                }
                s
            }
        })
    }

    /// The parameter for constant `c` (ONNX name `name`) after transformation `tag` (`""`: as
    /// is); made once per (name, tag). Only float32 constants can be parameters.
    pub(super) fn param(
        &mut self,
        name: &str,
        tag: &'static str,
        c: &ConstTensor,
    ) -> Result<ValueId> {
        let key = (name.to_string(), tag);
        if let Some(&v) = self.params.get(&key) {
            return Ok(v);
        }
        let data = c.as_f32().ok_or_else(|| OnnxError::DataType {
            tensor: name.to_string(),
            dtype: c.dtype_name().to_string(),
        })?;
        self.charge(c.bytes(), || {
            format!("parameter `{name}` of shape {}", fmt_shape(&c.shape))
        })?;
        let tensor = Tensor::from_slice(data, &c.shape)?;
        let value_name = self.fresh(name);
        let v = self.graph.add_param(&value_name, &c.shape, Some(tensor))?;
        self.params.insert(key, v);
        self.origin.insert(v, name.to_string());
        Ok(v)
    }

    /// Charges `bytes` (for what `what` names) to the import's memory budget.
    pub(super) fn charge(&mut self, bytes: u64, what: impl FnOnce() -> String) -> Result<()> {
        Ok(self
            .budget
            .charge(bytes, what)
            .map_err(kiln_runtime::RuntimeError::from)?)
    }

    /// Checks that `bytes` more fit in the import's budget, without charging them (they are
    /// charged when the constant they make is recorded).
    pub(super) fn ensure_room(&self, bytes: u64, what: impl FnOnce() -> String) -> Result<()> {
        Ok(self
            .budget
            .ensure_room(bytes, what)
            .map_err(kiln_runtime::RuntimeError::from)?)
    }

    /// Adds `op` on `operands` as node `n`'s result.
    pub(super) fn add_op(&mut self, n: &NodeRef<'_>, op: Op, operands: &[ValueId]) -> Result<Val> {
        let out = n.output0()?;
        let name = self.fresh(out);
        let v = self.add_op_named(n, &name, op, operands)?;
        self.origin.insert(v, out.to_string());
        Ok(Val::Value(v))
    }

    /// Adds `op` on `operands` under the value name `name` (already fresh); its result may not
    /// exceed [`MAX_ELEMENTS`].
    pub(super) fn add_op_named(
        &mut self,
        n: &NodeRef<'_>,
        name: &str,
        op: Op,
        operands: &[ValueId],
    ) -> Result<ValueId> {
        let v = self.graph.add_op(name, op, operands)?;
        let shape = &self.graph.ty(v).shape;
        if checked_numel(shape).is_none() {
            return Err(OnnxError::TooLarge {
                what: format!("the result of node `{}` ({})", n.name, n.op),
                limit: MAX_ELEMENTS,
            }
            .into());
        }
        Ok(v)
    }

    /// Whether graph value `v` was created by the node producing ONNX value `name`, and `name` is
    /// read exactly once (by the node being imported): then that node's op may be changed.
    pub(super) fn only_use(&self, v: ValueId, name: &str) -> bool {
        self.origin.get(&v).is_some_and(|o| o == name) && self.view.uses(name) == 1
    }

    /// The directory external data is resolved against.
    pub(super) fn base_dir(&self) -> Option<&'v Path> {
        self.base_dir
    }

    /// A fresh value name for ONNX name `onnx`.
    pub(super) fn fresh(&self, onnx: &str) -> String {
        self.graph.fresh_name(&sanitize(onnx))
    }
}

/// The graph inputs that are not initializers, with their declared dims.
pub(crate) fn graph_inputs(view: &GraphView<'_>) -> Result<Vec<InputInfo>, OnnxError> {
    view.graph
        .input
        .iter()
        .filter(|i| {
            !view
                .initializers
                .contains_key(i.name.as_deref().unwrap_or(""))
        })
        .map(input_info)
        .collect()
}

/// A graph input's name and declared dims; it must be a float32 tensor.
fn input_info(vi: &ValueInfoProto) -> Result<InputInfo, OnnxError> {
    let name = vi.name.clone().unwrap_or_default();
    if name.is_empty() {
        return Err(OnnxError::Malformed("a graph input has no name".into()));
    }
    let tensor = match vi.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => t,
        Some(_) => {
            return Err(OnnxError::DataType {
                tensor: name,
                dtype: "a non-tensor type (sequence, map, optional, …)".into(),
            })
        }
        None => {
            return Err(OnnxError::Malformed(format!(
                "graph input `{name}` has no type"
            )))
        }
    };
    let elem = tensor.elem_type.unwrap_or(0);
    if elem != 1 {
        return Err(OnnxError::DataType {
            tensor: name,
            dtype: dtype_name(elem),
        });
    }
    let dims = tensor.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| {
                use super::proto::tensor_shape_proto::dimension::Value;
                match &d.value {
                    Some(Value::DimValue(v)) if *v > 0 => usize::try_from(*v)
                        .map(Dim::Fixed)
                        .unwrap_or_else(|_| Dim::Symbolic("?".into())),
                    Some(Value::DimParam(p)) if !p.is_empty() => Dim::Symbolic(p.clone()),
                    _ => Dim::Symbolic("?".into()),
                }
            })
            .collect()
    });
    Ok(InputInfo { name, dims })
}

impl InputInfo {
    /// The shape to import this input with: `given` if it fits the declared dims, else the
    /// declared dims if they are all fixed.
    pub(crate) fn specialise(&self, given: Option<&Vec<usize>>) -> Result<Vec<usize>, OnnxError> {
        let declared = self.dims_string();
        let shape = match (given, &self.dims) {
            (Some(g), dims) => {
                let fits = g.iter().all(|&d| d > 0)
                    && dims.as_ref().is_none_or(|dims| {
                        dims.len() == g.len()
                            && dims.iter().zip(g).all(|(d, &x)| match d {
                                Dim::Fixed(f) => *f == x,
                                Dim::Symbolic(_) => true,
                            })
                    });
                if !fits {
                    return Err(OnnxError::InputShape {
                        input: self.name.clone(),
                        expected: declared,
                        got: fmt_shape(g),
                    });
                }
                g.clone()
            }
            (None, Some(dims)) if dims.iter().all(|d| matches!(d, Dim::Fixed(_))) => dims
                .iter()
                .map(|d| match d {
                    Dim::Fixed(f) => *f,
                    Dim::Symbolic(_) => 1,
                })
                .collect(),
            (None, dims) => {
                let example = dims.as_ref().map_or_else(
                    || "1x3x224x224".to_string(),
                    |dims| {
                        dims.iter()
                            .map(|d| match d {
                                Dim::Fixed(f) => f.to_string(),
                                Dim::Symbolic(_) => "1".into(),
                            })
                            .collect::<Vec<_>>()
                            .join("x")
                    },
                );
                return Err(OnnxError::SymbolicInput {
                    input: self.name.clone(),
                    dims: declared,
                    example,
                });
            }
        };
        if checked_numel(&shape).is_none() {
            return Err(OnnxError::TooLarge {
                what: format!("input `{}` of shape {}", self.name, fmt_shape(&shape)),
                limit: MAX_ELEMENTS,
            });
        }
        Ok(shape)
    }
}
