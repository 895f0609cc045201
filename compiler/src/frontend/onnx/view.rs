//! [`GraphView`]: the ONNX graph's dataflow as maps (who produces and who reads each value), its
//! nodes in a checked topological order, and the constant scalars that pattern matching needs.

use super::attrs::NodeRef;
use super::error::OnnxError;
use super::proto::{GraphProto, TensorProto};
use super::reader::read_tensor;
use std::collections::{BTreeSet, HashMap, HashSet};

/// Indexes over one ONNX graph.
pub(crate) struct GraphView<'a> {
    /// The graph.
    pub graph: &'a GraphProto,
    /// Fallback names (`#index`) for nodes with neither a name nor an output.
    fallback: Vec<String>,
    /// The node producing each value.
    producer: HashMap<&'a str, usize>,
    /// The nodes reading each value, once per operand slot.
    consumers: HashMap<&'a str, Vec<usize>>,
    /// Names of the graph outputs.
    outputs: HashSet<&'a str>,
    /// Initializers by name.
    pub initializers: HashMap<&'a str, &'a TensorProto>,
}

impl<'a> GraphView<'a> {
    /// Indexes `graph`. A value produced twice, or produced by a node and also a graph input or
    /// initializer, is [`OnnxError::Malformed`].
    pub fn new(graph: &'a GraphProto) -> Result<GraphView<'a>, OnnxError> {
        let mut initializers = HashMap::new();
        for t in &graph.initializer {
            let name = t.name.as_deref().unwrap_or("");
            if name.is_empty() {
                return Err(OnnxError::Malformed("an initializer has no name".into()));
            }
            initializers.insert(name, t);
        }
        let inputs: HashSet<&str> = graph
            .input
            .iter()
            .filter_map(|i| i.name.as_deref())
            .collect();
        let mut producer = HashMap::new();
        let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, node) in graph.node.iter().enumerate() {
            for out in node.output.iter().filter(|o| !o.is_empty()) {
                let out = out.as_str();
                if producer.insert(out, i).is_some()
                    || inputs.contains(out)
                    || initializers.contains_key(out)
                {
                    return Err(OnnxError::Malformed(format!(
                        "value `{out}` is defined more than once"
                    )));
                }
            }
            for inp in node.input.iter().filter(|i| !i.is_empty()) {
                consumers.entry(inp.as_str()).or_default().push(i);
            }
        }
        let outputs = graph
            .output
            .iter()
            .filter_map(|o| o.name.as_deref())
            .collect();
        let fallback = (0..graph.node.len()).map(|i| format!("#{i}")).collect();
        Ok(GraphView {
            graph,
            fallback,
            producer,
            consumers,
            outputs,
            initializers,
        })
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> NodeRef<'_> {
        NodeRef::new(&self.graph.node[i], &self.fallback[i])
    }

    /// The node producing `value`, if a node does.
    pub fn producer(&self, value: &str) -> Option<usize> {
        self.producer.get(value).copied()
    }

    /// How many times `value` is read: once per operand slot of every node, plus once if it is a
    /// graph output.
    pub fn uses(&self, value: &str) -> usize {
        self.consumers.get(value).map_or(0, Vec::len) + usize::from(self.outputs.contains(value))
    }

    /// The one node reading `value`, when it is read exactly once (and is not a graph output).
    pub fn single_consumer(&self, value: &str) -> Option<usize> {
        match self.consumers.get(value).map(Vec::as_slice) {
            Some([c]) if !self.outputs.contains(value) => Some(*c),
            _ => None,
        }
    }

    /// The nodes in a topological order (ties broken by file order), checking that every operand
    /// is defined: by a node, a graph input or an initializer.
    pub fn topo_order(&self) -> Result<Vec<usize>, OnnxError> {
        let defined: HashSet<&str> = self
            .graph
            .input
            .iter()
            .filter_map(|i| i.name.as_deref())
            .chain(self.initializers.keys().copied())
            .collect();
        let n = self.graph.node.len();
        let mut waiting = vec![0usize; n];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, node) in self.graph.node.iter().enumerate() {
            for inp in node.input.iter().filter(|s| !s.is_empty()) {
                if let Some(&p) = self.producer.get(inp.as_str()) {
                    waiting[i] += 1;
                    dependents[p].push(i);
                } else if !defined.contains(inp.as_str()) {
                    let r = self.node(i);
                    return Err(OnnxError::DanglingInput {
                        node: r.name.to_string(),
                        op: r.op.to_string(),
                        input: inp.clone(),
                    });
                }
            }
        }
        let mut ready: BTreeSet<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for &d in &dependents[i] {
                waiting[d] -= 1;
                if waiting[d] == 0 {
                    ready.insert(d);
                }
            }
        }
        if order.len() != n {
            let stuck = (0..n).find(|&i| waiting[i] > 0).unwrap_or(0);
            return Err(OnnxError::Cycle {
                node: self.node(stuck).name.to_string(),
            });
        }
        Ok(order)
    }

    /// The value of `name` when it is a one-element float32 constant: an initializer or the result
    /// of a `Constant` node. Used to recognise patterns before import; anything unreadable is
    /// simply "not a constant" here (the import reports it properly).
    pub fn scalar(&self, name: &str) -> Option<f32> {
        if let Some(t) = self.initializers.get(name) {
            return read_tensor(t, name, None).ok()?.scalar_f32();
        }
        let node = self.node(self.producer(name)?);
        if node.op != "Constant" || !node.in_default_domain() {
            return None;
        }
        if node.has_attr("value_float") {
            return node.float("value_float", 0.0).ok();
        }
        let t = node.tensor("value").ok()??;
        read_tensor(t, name, None).ok()?.scalar_f32()
    }
}
