//! Tracing: running a module's `forward` against a [`Tracer`] records its ops into a [`Graph`].
//!
//! Names follow PyTorch so that weights bind by `state_dict` key and the IR reads like the model:
//! a parameter is `path.local` (`conv1.weight`, `features.0.bias`); the op a module emits is named by
//! the module's path (`conv1`, `features.0`), with `_1`, `_2`, … appended when the same module runs
//! again (`pool`, `pool_1`); a functional op called from a `forward` is `path.base` (`add`,
//! `layer1.add`). A module called twice reuses its parameter nodes: one weight, two uses.

use crate::error::{Error, Result};
use crate::ir::graph::{Graph, ValueId};
use crate::nn::module::{join_path, Module, ParamSpec};
use kiln_runtime::ops::{Activation, Add, Op};
use kiln_runtime::rng::Rng;
use std::collections::HashMap;

/// Traces `module` on a graph input `%x` of `input_shape` into a graph named `graph_name`. The
/// parameters are left unbound, to be filled by [`bind_weights`](crate::weights::bind_weights).
pub fn trace(module: &dyn Module, input_shape: &[usize], graph_name: &str) -> Result<Graph> {
    Tracer::new(graph_name).trace(module, input_shape)
}

/// Like [`trace`], with every parameter filled by PyTorch's default initialisation, drawn from one
/// generator seeded with `seed` in parameter creation order (so a seed always gives the same
/// weights; they are not the numbers PyTorch would draw).
pub fn trace_with_init(
    module: &dyn Module,
    input_shape: &[usize],
    graph_name: &str,
    seed: u64,
) -> Result<Graph> {
    Tracer::with_init(graph_name, seed).trace(module, input_shape)
}

/// One module being traced: its path, its children (to check [`Tracer::call`]) and its parameters.
struct Frame {
    path: String,
    /// Child names with the child's address, so a call can check it was given that child.
    children: Vec<(String, usize)>,
    params: Vec<ParamSpec>,
}

/// Records ops and parameters into a graph while modules run their `forward`.
pub struct Tracer {
    graph: Graph,
    frames: Vec<Frame>,
    /// Full parameter name → its node, so a module called twice shares its parameters.
    params: HashMap<String, ValueId>,
    /// Present when parameters get default-initialised data.
    rng: Option<Rng>,
}

/// The address of a module, for identity checks (only the data pointer; vtables may be duplicated).
fn address(module: &dyn Module) -> usize {
    (module as *const dyn Module).cast::<()>() as usize
}

impl Tracer {
    /// A tracer building graph `graph_name` whose parameters stay unbound.
    pub fn new(graph_name: &str) -> Tracer {
        Tracer {
            graph: Graph::new(graph_name),
            frames: Vec::new(),
            params: HashMap::new(),
            rng: None,
        }
    }

    /// A tracer that fills each parameter with its default initialisation, drawn from a generator
    /// seeded with `seed`.
    pub fn with_init(graph_name: &str, seed: u64) -> Tracer {
        Tracer {
            rng: Some(Rng::new(seed)),
            ..Tracer::new(graph_name)
        }
    }

    /// Adds input `%x` of `input_shape`, runs `module` on it as the root and returns the finished
    /// graph with the result as its output.
    pub fn trace(mut self, module: &dyn Module, input_shape: &[usize]) -> Result<Graph> {
        let x = self.input("x", input_shape)?;
        let y = self.run(module, x)?;
        Ok(self.finish(vec![y]))
    }

    /// Adds a graph input (for models with several inputs, built by hand).
    pub fn input(&mut self, name: &str, shape: &[usize]) -> Result<ValueId> {
        self.graph.add_input(name, shape)
    }

    /// Runs `module` as the root of the model (its path is empty, so its children's names are the
    /// top-level `state_dict` prefixes).
    pub fn run(&mut self, module: &dyn Module, x: ValueId) -> Result<ValueId> {
        self.enter(String::new(), module, x)
    }

    /// Sets the graph's outputs and returns it.
    pub fn finish(mut self, outputs: Vec<ValueId>) -> Graph {
        self.graph.set_outputs(outputs);
        self.graph
    }

    /// The graph built so far (e.g. to read an operand's type inside `forward`).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Calls the current module's child `name` on `x`, as `self.name(x)` does in PyTorch. `module`
    /// must be the child [`Module::named_children`] lists under `name`.
    pub fn call(&mut self, name: &str, module: &dyn Module, x: ValueId) -> Result<ValueId> {
        let frame = self.current()?;
        let Some((_, addr)) = frame.children.iter().find(|(n, _)| n == name) else {
            let known: Vec<&str> = frame.children.iter().map(|(n, _)| n.as_str()).collect();
            return Err(Error::Graph(format!(
                "module `{}` has no child `{name}` (children: {})",
                display_path(&frame.path),
                known.join(", ")
            )));
        };
        // Zero-sized modules may share an address with a sibling, so equal addresses do not prove
        // it is the right child; different ones do prove a mix-up.
        if *addr != address(module) {
            return Err(Error::Graph(format!(
                "module `{}`: the module passed as child `{name}` is not the one named_children lists",
                display_path(&frame.path)
            )));
        }
        let path = join_path(&frame.path, name);
        self.enter(path, module, x)
    }

    fn enter(&mut self, path: String, module: &dyn Module, x: ValueId) -> Result<ValueId> {
        let children = module
            .named_children()
            .into_iter()
            .map(|(n, c)| (n, address(c)))
            .collect();
        self.frames.push(Frame {
            path,
            children,
            params: module.parameters(),
        });
        let result = module.forward(self, x);
        self.frames.pop();
        result
    }

    fn current(&self) -> Result<&Frame> {
        self.frames.last().ok_or_else(|| {
            Error::Graph("no module is being traced: start with Tracer::run or trace".into())
        })
    }

    /// The current module's parameter `local` (declared by its [`Module::parameters`]), created on
    /// first use as `path.local`, with data if the tracer initialises.
    pub fn param(&mut self, local: &str) -> Result<ValueId> {
        let frame = self.current()?;
        let full = join_path(&frame.path, local);
        if let Some(&v) = self.params.get(&full) {
            return Ok(v);
        }
        let Some(spec) = frame.params.iter().find(|p| p.name == local).cloned() else {
            return Err(Error::Graph(format!(
                "module `{}` declares no parameter `{local}`",
                display_path(&frame.path)
            )));
        };
        let data = self
            .rng
            .as_mut()
            .map(|rng| spec.init.sample(&spec.shape, rng))
            .transpose()?;
        let v = self.graph.add_param(&full, &spec.shape, data)?;
        self.params.insert(full, v);
        Ok(v)
    }

    /// Emits the current module's op, named by the module's path (or by the op's name for a root
    /// leaf, whose path is empty), with `_1`, `_2`, … on later calls.
    pub fn op(&mut self, op: Op, operands: &[ValueId]) -> Result<ValueId> {
        let path = self.current()?.path.clone();
        let base = if path.is_empty() {
            op.name().to_string()
        } else {
            path
        };
        let name = self.graph.fresh_name(&base);
        self.graph.add_op(&name, op, operands)
    }

    /// Emits a functional op (`x + y`, `F.relu(x)`) from inside a `forward`, named `path.base`
    /// (`add`, `layer1.0.add_1`).
    pub fn functional(&mut self, base: &str, op: Op, operands: &[ValueId]) -> Result<ValueId> {
        let path = self.frames.last().map(|f| f.path.as_str()).unwrap_or("");
        let name = self.graph.fresh_name(&join_path(path, base));
        self.graph.add_op(&name, op, operands)
    }

    /// `a + b` (a residual connection), as a functional op named `add`.
    pub fn add(&mut self, a: ValueId, b: ValueId) -> Result<ValueId> {
        self.functional("add", Op::Add(Add), &[a, b])
    }

    /// `F.relu(x)`, as a functional op named `relu`.
    pub fn relu(&mut self, x: ValueId) -> Result<ValueId> {
        self.functional("relu", Op::Activation(Activation::Relu), &[x])
    }
}

/// A module path for messages: the root has an empty path.
fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "<root>"
    } else {
        path
    }
}
