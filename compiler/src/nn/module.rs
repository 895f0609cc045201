//! The [`Module`] trait every layer and user model implements, its parameter declarations
//! ([`ParamSpec`]) and [`Size2`], PyTorch's "an int or a pair" argument.

use crate::error::Result;
use crate::ir::graph::ValueId;
use crate::nn::init::Init;
use crate::nn::tracer::Tracer;
use std::fmt;

/// A layer or a model, like `torch.nn.Module`.
///
/// A leaf layer (`Conv2d`, `ReLU`, …) declares its own parameters and emits one op in
/// [`forward`](Module::forward). A composite module (a user model, [`Sequential`](crate::nn::Sequential))
/// lists its children under the names PyTorch would give them and calls each through
/// [`Tracer::call`], which is what gives values and parameters their `state_dict` paths:
///
/// ```
/// use kiln::nn::{self, Module, Tracer};
/// use kiln::{Result, ValueId};
///
/// /// `nn.Sequential`-free equivalent of `Conv2d(3, 8, 3) → ReLU`.
/// struct Block {
///     conv: nn::Conv2d,
///     act: nn::ReLU,
/// }
///
/// impl Module for Block {
///     fn type_name(&self) -> &str {
///         "Block"
///     }
///     fn named_children(&self) -> Vec<(String, &dyn Module)> {
///         vec![("conv".into(), &self.conv), ("act".into(), &self.act)]
///     }
///     fn forward(&self, t: &mut Tracer, x: ValueId) -> Result<ValueId> {
///         let x = t.call("conv", &self.conv, x)?;
///         t.call("act", &self.act, x)
///     }
/// }
///
/// let block = Block { conv: nn::Conv2d::new(3, 8, 3), act: nn::ReLU::default() };
/// assert_eq!(
///     nn::repr(&block),
///     "Block(\n  (conv): Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1))\n  (act): ReLU()\n)"
/// );
/// ```
pub trait Module {
    /// The class name PyTorch prints: `Conv2d`, `ReLU`, `SimpleCNN`.
    fn type_name(&self) -> &str;

    /// The text inside the parentheses of a leaf's repr, exactly as PyTorch's `extra_repr()`
    /// (`3, 32, kernel_size=(3, 3), stride=(1, 1)`); empty by default.
    fn extra_repr(&self) -> String {
        String::new()
    }

    /// The direct submodules in declaration order, under their attribute names (`Sequential`: `0`,
    /// `1`, …). These names are the path segments of `state_dict` keys and op values.
    fn named_children(&self) -> Vec<(String, &dyn Module)> {
        Vec::new()
    }

    /// This module's own parameters (and buffers such as BatchNorm's running statistics), under
    /// their local names, in `state_dict` order. Children's parameters are not included.
    fn parameters(&self) -> Vec<ParamSpec> {
        Vec::new()
    }

    /// Emits this module's computation on `x` into the tracer's graph and returns the result.
    fn forward(&self, tracer: &mut Tracer, x: ValueId) -> Result<ValueId>;
}

/// A parameter a module declares: local name, shape and PyTorch's default initialisation.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// Local name (`weight`, `bias`, `running_mean`); the full name prefixes the module's path.
    pub name: String,
    /// The parameter's shape.
    pub shape: Vec<usize>,
    /// How `reset_parameters()` fills it.
    pub init: Init,
}

impl ParamSpec {
    /// A parameter `name` of `shape`, initialised by `init`.
    pub fn new(name: &str, shape: &[usize], init: Init) -> ParamSpec {
        ParamSpec {
            name: name.to_string(),
            shape: shape.to_vec(),
            init,
        }
    }
}

/// Every parameter of `module` and its descendants with its full `state_dict` name
/// (`conv1.weight`, `features.0.bias`) and shape, in `state_dict` order (a module's own parameters,
/// then each child's, depth first).
pub fn named_parameters(module: &dyn Module) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    collect_parameters(module, "", &mut out);
    out
}

fn collect_parameters(module: &dyn Module, prefix: &str, out: &mut Vec<(String, Vec<usize>)>) {
    for p in module.parameters() {
        out.push((join_path(prefix, &p.name), p.shape));
    }
    for (name, child) in module.named_children() {
        collect_parameters(child, &join_path(prefix, &name), out);
    }
}

/// `prefix.name`, or `name` at the root (whose path is empty).
pub(crate) fn join_path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// A size given either as one int for both spatial dimensions or as a `(rows, columns)` pair,
/// like PyTorch's `_size_2_t`. Pooling layers print it the way it was given (`kernel_size=2` vs
/// `kernel_size=(2, 3)`), so the distinction is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size2 {
    /// One value for both dimensions.
    Int(usize),
    /// `(rows, columns)`.
    Pair(usize, usize),
}

impl Size2 {
    /// The value per dimension, `[rows, columns]`.
    pub fn pair(self) -> [usize; 2] {
        match self {
            Size2::Int(v) => [v, v],
            Size2::Pair(h, w) => [h, w],
        }
    }
}

impl From<usize> for Size2 {
    fn from(v: usize) -> Size2 {
        Size2::Int(v)
    }
}

impl From<(usize, usize)> for Size2 {
    fn from((h, w): (usize, usize)) -> Size2 {
        Size2::Pair(h, w)
    }
}

impl From<[usize; 2]> for Size2 {
    fn from([h, w]: [usize; 2]) -> Size2 {
        Size2::Pair(h, w)
    }
}

impl fmt::Display for Size2 {
    /// As Python prints the int or the tuple: `2` or `(2, 3)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Size2::Int(v) => write!(f, "{v}"),
            Size2::Pair(h, w) => write!(f, "({h}, {w})"),
        }
    }
}
