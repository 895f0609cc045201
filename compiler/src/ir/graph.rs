//! [`Graph`]: the compiler's dataflow graph on a petgraph `StableDiGraph`.
//!
//! Every node produces exactly one value, so a node id is also a value id ([`ValueId`]). Nodes are graph
//! inputs, parameters (weights, biases, BatchNorm statistics; with data once bound) and ops. There is
//! one edge per operand, from the operand's node to the user, carrying the operand's position. Every
//! value has a name, unique in the graph, that the text form prints as `%name`.

use crate::error::{Error, Result, ShapeError};
use crate::ir::types::TensorType;
use kiln_runtime::ops::Op;
use kiln_runtime::Tensor;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use std::collections::{BTreeSet, HashMap};

/// The id of a node, and so of the one value it produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(NodeIndex);

impl ValueId {
    /// The node's index in the underlying graph (stable across removals of other nodes).
    pub fn index(self) -> usize {
        self.0.index()
    }
}

/// What a node is.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A graph input, supplied by the caller at run time.
    Input,
    /// A parameter (weight, bias, statistics), named by its PyTorch `state_dict` key; `None` until
    /// weights are bound.
    Param(Option<Tensor>),
    /// An operation on its operands.
    Op(Op),
}

/// A node: its value's name, what it is and the value's type.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value's name (unique in the graph).
    pub name: String,
    /// Input, parameter or op.
    pub kind: NodeKind,
    /// The value's type.
    pub ty: TensorType,
}

/// A dataflow graph with named inputs, parameters, ops and an ordered list of outputs.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// The graph's name (`graph NAME(…)` in the text form).
    pub name: String,
    g: StableDiGraph<Node, usize>,
    by_name: HashMap<String, ValueId>,
    inputs: Vec<ValueId>,
    outputs: Vec<ValueId>,
}

impl Graph {
    /// An empty graph.
    pub fn new(name: &str) -> Graph {
        Graph {
            name: name.to_string(),
            ..Graph::default()
        }
    }

    fn add_node(&mut self, node: Node) -> Result<ValueId> {
        if self.by_name.contains_key(&node.name) {
            return Err(Error::Graph(format!(
                "value %{} is defined twice",
                node.name
            )));
        }
        let name = node.name.clone();
        let id = ValueId(self.g.add_node(node));
        self.by_name.insert(name, id);
        Ok(id)
    }

    /// Adds a graph input (inputs are passed in the order they are added).
    pub fn add_input(&mut self, name: &str, shape: &[usize]) -> Result<ValueId> {
        check_declared(name, "input", shape)?;
        let id = self.add_node(Node {
            name: name.to_string(),
            kind: NodeKind::Input,
            ty: TensorType::new(shape),
        })?;
        self.inputs.push(id);
        Ok(id)
    }

    /// Adds a parameter, with its data if known (its shape must then match).
    pub fn add_param(
        &mut self,
        name: &str,
        shape: &[usize],
        data: Option<Tensor>,
    ) -> Result<ValueId> {
        check_declared(name, "param", shape)?;
        if let Some(t) = &data {
            if t.shape() != shape {
                return Err(crate::WeightError::WrongShape {
                    name: name.to_string(),
                    expected: kiln_runtime::shape::fmt_shape(shape),
                    got: kiln_runtime::shape::fmt_shape(t.shape()),
                }
                .into());
            }
        }
        self.add_node(Node {
            name: name.to_string(),
            kind: NodeKind::Param(data),
            ty: TensorType::new(shape),
        })
    }

    /// Adds an op on `operands`; its result type is inferred, and operands that do not fit are a
    /// [`ShapeError`] naming the node.
    pub fn add_op(&mut self, name: &str, op: Op, operands: &[ValueId]) -> Result<ValueId> {
        let ty = self.infer_type(name, &op, operands)?;
        let id = self.add_node(Node {
            name: name.to_string(),
            kind: NodeKind::Op(op),
            ty,
        })?;
        for (slot, &operand) in operands.iter().enumerate() {
            self.g.add_edge(operand.0, id.0, slot);
        }
        Ok(id)
    }

    /// The type `op` gives on `operands`, or a [`ShapeError`] for node `name`.
    pub fn infer_type(&self, name: &str, op: &Op, operands: &[ValueId]) -> Result<TensorType> {
        if let Some(bad) = operands.iter().find(|v| !self.contains(**v)) {
            return Err(Error::Graph(format!(
                "node %{name}: operand {bad:?} does not exist"
            )));
        }
        let shapes: Vec<&[usize]> = operands
            .iter()
            .map(|&v| self.ty(v).shape.as_slice())
            .collect();
        let shape = op.infer_shape(&shapes).map_err(|mismatch| ShapeError {
            node: name.to_string(),
            op: op.name().to_string(),
            mismatch,
        })?;
        Ok(TensorType { shape })
    }

    /// Gives graph inputs new shapes and re-infers every op's type in topological order, so that a
    /// new batch size (or image size) flows through the graph. An op that cannot take its new
    /// operand shapes is a [`ShapeError`] naming the node; the graph is then left partly updated
    /// and should be dropped.
    pub fn respecialize(&mut self, shapes: &[(ValueId, Vec<usize>)]) -> Result<()> {
        for (v, shape) in shapes {
            if !self.inputs.contains(v) {
                return Err(Error::Graph(format!("{v:?} is not a graph input")));
            }
            check_declared(self.name(*v), "input", shape)?;
            self.node_mut(*v).ty = TensorType::new(shape);
        }
        for v in self.topo_order()? {
            if let NodeKind::Op(op) = &self.node(v).kind {
                let ty = self.infer_type(self.name(v), op, &self.operands(v))?;
                self.node_mut(v).ty = ty;
            }
        }
        Ok(())
    }

    /// Sets the graph's outputs, in return order.
    pub fn set_outputs(&mut self, outputs: Vec<ValueId>) {
        self.outputs = outputs;
    }

    /// The graph inputs, in call order.
    pub fn inputs(&self) -> &[ValueId] {
        &self.inputs
    }

    /// The graph outputs, in return order.
    pub fn outputs(&self) -> &[ValueId] {
        &self.outputs
    }

    /// Whether `v` is a node of this graph.
    pub fn contains(&self, v: ValueId) -> bool {
        self.g.contains_node(v.0)
    }

    /// The node of a value. Panics on an id from another graph or a removed node (a compiler bug).
    pub fn node(&self, v: ValueId) -> &Node {
        &self.g[v.0]
    }

    /// The node of a value, mutably.
    pub fn node_mut(&mut self, v: ValueId) -> &mut Node {
        &mut self.g[v.0]
    }

    /// The value's type.
    pub fn ty(&self, v: ValueId) -> &TensorType {
        &self.g[v.0].ty
    }

    /// The value's name.
    pub fn name(&self, v: ValueId) -> &str {
        &self.g[v.0].name
    }

    /// The op of a node, if it is one.
    pub fn op(&self, v: ValueId) -> Option<&Op> {
        match &self.g[v.0].kind {
            NodeKind::Op(op) => Some(op),
            _ => None,
        }
    }

    /// The value called `name`.
    pub fn find(&self, name: &str) -> Option<ValueId> {
        self.by_name.get(name).copied()
    }

    /// Every node, in index (creation) order.
    pub fn values(&self) -> impl Iterator<Item = ValueId> + '_ {
        self.g.node_indices().map(ValueId)
    }

    /// The parameters, in creation order.
    pub fn params(&self) -> Vec<ValueId> {
        self.values()
            .filter(|&v| matches!(self.node(v).kind, NodeKind::Param(_)))
            .collect()
    }

    /// The operands of `v`, in operand order.
    pub fn operands(&self, v: ValueId) -> Vec<ValueId> {
        let mut edges: Vec<(usize, ValueId)> = self
            .g
            .edges_directed(v.0, Direction::Incoming)
            .map(|e| (*e.weight(), ValueId(e.source())))
            .collect();
        edges.sort();
        edges.into_iter().map(|(_, v)| v).collect()
    }

    /// The operand slots of `v` as stored on its edges, sorted (the verifier checks they are 0..n).
    pub fn operand_slots(&self, v: ValueId) -> Vec<usize> {
        let mut slots: Vec<usize> = self
            .g
            .edges_directed(v.0, Direction::Incoming)
            .map(|e| *e.weight())
            .collect();
        slots.sort();
        slots
    }

    /// The nodes that read `v`, each once, in index order.
    pub fn users(&self, v: ValueId) -> Vec<ValueId> {
        let set: BTreeSet<ValueId> = self
            .g
            .edges_directed(v.0, Direction::Outgoing)
            .map(|e| ValueId(e.target()))
            .collect();
        set.into_iter().collect()
    }

    /// Whether `v` is one of the graph's outputs.
    pub fn is_output(&self, v: ValueId) -> bool {
        self.outputs.contains(&v)
    }

    /// A name not yet used in the graph: `base`, else `base_1`, `base_2`, …
    pub fn fresh_name(&self, base: &str) -> String {
        if !self.by_name.contains_key(base) {
            return base.to_string();
        }
        (1..)
            .map(|i| format!("{base}_{i}"))
            .find(|n| !self.by_name.contains_key(n))
            .unwrap_or_default()
    }

    /// The nodes in a topological order, ties broken by creation order so the order is deterministic.
    /// A cycle is an error naming one node on it.
    pub fn topo_order(&self) -> Result<Vec<ValueId>> {
        let mut indegree: HashMap<NodeIndex, usize> = self
            .g
            .node_indices()
            .map(|n| (n, self.g.edges_directed(n, Direction::Incoming).count()))
            .collect();
        let mut ready: BTreeSet<NodeIndex> = indegree
            .iter()
            .filter(|(_, &d)| d == 0)
            .map(|(&n, _)| n)
            .collect();
        let mut order = Vec::with_capacity(indegree.len());
        while let Some(n) = ready.pop_first() {
            order.push(ValueId(n));
            for e in self.g.edges_directed(n, Direction::Outgoing) {
                if let Some(d) = indegree.get_mut(&e.target()) {
                    *d -= 1;
                    if *d == 0 {
                        ready.insert(e.target());
                    }
                }
            }
        }
        if order.len() != self.g.node_count() {
            let stuck = self
                .g
                .node_indices()
                .find(|n| indegree.get(n).is_some_and(|&d| d > 0))
                .map(|n| self.g[n].name.clone())
                .unwrap_or_default();
            return Err(Error::Graph(format!(
                "the graph has a cycle through %{stuck}"
            )));
        }
        Ok(order)
    }

    /// Replaces the operands of op node `v` (its op may change arity at the same time via
    /// [`Graph::node_mut`]); the caller re-verifies.
    pub fn set_operands(&mut self, v: ValueId, operands: &[ValueId]) {
        let old: Vec<_> = self
            .g
            .edges_directed(v.0, Direction::Incoming)
            .map(|e| e.id())
            .collect();
        for e in old {
            self.g.remove_edge(e);
        }
        for (slot, &operand) in operands.iter().enumerate() {
            self.g.add_edge(operand.0, v.0, slot);
        }
    }

    /// Makes every user of `old` (and the output list) read `new` instead.
    pub fn replace_all_uses(&mut self, old: ValueId, new: ValueId) {
        let uses: Vec<_> = self
            .g
            .edges_directed(old.0, Direction::Outgoing)
            .map(|e| (e.id(), e.target(), *e.weight()))
            .collect();
        for (e, target, slot) in uses {
            self.g.remove_edge(e);
            self.g.add_edge(new.0, target, slot);
        }
        for o in &mut self.outputs {
            if *o == old {
                *o = new;
            }
        }
    }

    /// Removes a node and its edges. Inputs cannot be removed (they are the caller's signature).
    pub fn remove(&mut self, v: ValueId) -> Result<Node> {
        if self.inputs.contains(&v) {
            return Err(Error::Graph(format!(
                "cannot remove graph input %{}",
                self.name(v)
            )));
        }
        let node = self
            .g
            .remove_node(v.0)
            .ok_or_else(|| Error::Graph(format!("node {v:?} does not exist")))?;
        self.by_name.remove(&node.name);
        self.outputs.retain(|&o| o != v);
        Ok(node)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.g.node_count()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.g.node_count() == 0
    }
}

/// Checks a declared input or parameter shape against Kiln's [`limits`](kiln_runtime::limits).
fn check_declared(name: &str, kind: &str, shape: &[usize]) -> Result<()> {
    kiln_runtime::limits::check_shape("declared shape", shape).map_err(|mismatch| ShapeError {
        node: name.to_string(),
        op: kind.to_string(),
        mismatch,
    })?;
    Ok(())
}
