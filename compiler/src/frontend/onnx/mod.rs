//! The ONNX front end: reads an ONNX model (protobuf, opsets 13 to 21) and imports it as a
//! [`Graph`], with the initializers as parameters carrying their data.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use std::path::Path;
//!
//! // A model exported with a symbolic batch dimension, specialised to batch 2.
//! let shapes = BTreeMap::from([("x".to_string(), vec![2, 3, 32, 32])]);
//! let graph = kiln::frontend::onnx::load_onnx(Path::new("model.onnx"), &shapes)?;
//! # Ok::<(), kiln::Error>(())
//! ```
//!
//! # What is imported
//!
//! | ONNX | Kiln |
//! |---|---|
//! | `Conv` (2-d; pads, strides, dilations, group, `auto_pad`, optional bias) | `conv2d` |
//! | `MaxPool` (pads, strides, dilations, `ceil_mode`, `auto_pad`; no `Indices` output) | `max_pool2d` |
//! | `AveragePool` (`count_include_pad`, `ceil_mode`, `auto_pad`) | `avg_pool2d` |
//! | `GlobalAveragePool` | `global_avg_pool2d` |
//! | `Relu`, `LeakyRelu`, `Sigmoid`, `Tanh`, `Elu`, `Gelu` (opset 20, both `approximate`) | the activation |
//! | GELU written out with `Div`/`Mul`/`Erf`/`Add` (or the tanh form), as exporters do below opset 20 | one `gelu` (see `gelu_pattern.rs`) |
//! | `BatchNormalization` (inference) | `batch_norm` |
//! | `Add` of same shapes; of a broadcast constant | `add` (the constant expanded), or a conv's bias |
//! | `Gemm` (alpha, beta, transA=0, transB) | `linear` with `alpha`, `beta`, `transB` folded into the weight and bias |
//! | `MatMul` by a constant, optionally followed by `Add` of a bias | `linear` |
//! | `Flatten`, `Reshape` to a constant shape, when they flatten to `[N, -1]` | `flatten` |
//! | `Pad` with zeros, read by a `Conv` | that conv's padding |
//! | `Identity`, `Dropout` | nothing (aliases) |
//! | `Constant`, `ConstantOfShape`, `Shape`, `Gather`, `Unsqueeze`, `Squeeze`, `Concat`, `Slice`, `Transpose`, `Cast`, `Sub`/`Mul`/`Div` on constants | folded at import (see `const_ops.rs`) |
//!
//! # Names
//!
//! Parameters are named by their ONNX initializer names (PyTorch's export keeps `state_dict` keys
//! such as `conv1.weight`; constants it folded get names like `onnx::Conv_31`). Values are named by
//! the ONNX value names. Names that are not identifiers of the text IR (`[A-Za-z0-9_.]+`) are
//! sanitized: leading `/` dropped, `/` → `.`, any other character → `_` (so
//! `/conv1/Conv_output_0` → `conv1.Conv_output_0`, `onnx::Conv_31` → `onnx__Conv_31`), then made
//! unique with [`Graph::fresh_name`].
//!
//! # Shapes
//!
//! Kiln's values have static shapes. A graph input's symbolic dimensions (`dim_param`, or a
//! missing or zero `dim_value`) take the shape the caller gives for that input; a fixed input
//! given a different shape, or a symbolic one given none, is an error. Shape computations in
//! the model (`Shape` → `Gather` → `Concat` → `Reshape`) then fold to constants.
//!
//! # Robustness
//!
//! Any byte string gives a graph or an [`OnnxError`], never a panic: sizes read from the file are
//! checked against the data present, and no tensor or value may exceed [`MAX_ELEMENTS`] elements,
//! so a forged shape cannot make the importer allocate terabytes. `compiler/tests/onnx_fuzz.rs`
//! mutates real models to check this.

mod attrs;
mod const_ops;
mod constant;
mod conv_pool;
mod error;
mod external;
mod gelu_pattern;
mod import;
mod layers;
mod linear_add;
pub mod proto;
mod reader;
mod view;

pub use error::OnnxError;

use crate::error::Result;
use crate::ir::Graph;
use kiln_runtime::budget::{Budget, DEFAULT_MEMORY_LIMIT};
use proto::ModelProto;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The most elements any tensor or value of an imported model may have (2²⁸: 1 GiB of f32).
pub const MAX_ELEMENTS: usize = 1 << 28;

/// The ONNX op types the importer accepts (some only in the forms described in the module docs).
pub const SUPPORTED_OPS: &[&str] = &[
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "Div",
    "Dropout",
    "Elu",
    "Erf",
    "Flatten",
    "Gather",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "Identity",
    "LeakyRelu",
    "MatMul",
    "MaxPool",
    "Mul",
    "Pad",
    "Pow",
    "Relu",
    "Reshape",
    "Shape",
    "Sigmoid",
    "Slice",
    "Squeeze",
    "Sub",
    "Tanh",
    "Transpose",
    "Unsqueeze",
];

/// One dimension of a graph input as declared in the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A symbolic dimension: its `dim_param` name, or `?` when it has none.
    Symbolic(String),
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(d) => write!(f, "{d}"),
            Dim::Symbolic(s) => f.write_str(s),
        }
    }
}

/// A graph input (one that is not an initializer) as declared in the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputInfo {
    /// The input's ONNX name.
    pub name: String,
    /// Its declared dimensions; `None` when the model declares no shape (any rank).
    pub dims: Option<Vec<Dim>>,
}

impl InputInfo {
    /// Whether every dimension is fixed, so that the input needs no shape from the caller.
    pub fn is_static(&self) -> bool {
        self.dims
            .as_ref()
            .is_some_and(|d| d.iter().all(|d| matches!(d, Dim::Fixed(_))))
    }

    /// The declared dims as `[N, 3, 32, 32]` (or `[?…]` when no shape is declared).
    pub fn dims_string(&self) -> String {
        match &self.dims {
            Some(d) => format!(
                "[{}]",
                d.iter().map(Dim::to_string).collect::<Vec<_>>().join(", ")
            ),
            None => "[?…] (no shape declared)".to_string(),
        }
    }
}

/// A decoded ONNX model, ready to import.
#[derive(Debug, Clone)]
pub struct OnnxModel {
    proto: ModelProto,
    base_dir: Option<PathBuf>,
    /// The file it was read from, named in errors.
    path: Option<PathBuf>,
    /// The memory budget of the import (stage `onnx import`).
    memory_limit: u64,
    /// Bytes of the encoded model, which the decoded protobuf holds about as many of.
    encoded_bytes: u64,
}

impl OnnxModel {
    /// Reads and decodes the model file at `path`; its external data files are resolved
    /// relative to the file's directory.
    pub fn open(path: &Path) -> Result<OnnxModel> {
        Self::open_within(path, DEFAULT_MEMORY_LIMIT)
    }

    /// [`open`](Self::open) with a memory limit for the import: the file must fit in it (checked
    /// before it is read), and so must everything the import then holds.
    pub fn open_within(path: &Path, memory_limit: u64) -> Result<OnnxModel> {
        if let Ok(meta) = std::fs::metadata(path) {
            let size = meta.len();
            kiln_runtime::budget::check(
                "onnx import",
                &format!("the model file {} ({size} bytes, decoded)", path.display()),
                size.saturating_mul(2),
                memory_limit,
            )
            .map_err(kiln_runtime::RuntimeError::from)?;
        }
        let bytes = reader::read_file(path)?;
        let dir = path.parent().map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        });
        let mut model = OnnxModel::from_bytes(&bytes, dir).map_err(|e| in_file(path, e))?;
        model.path = Some(path.to_path_buf());
        model.memory_limit = memory_limit;
        Ok(model)
    }

    /// Decodes a model from its bytes; `base_dir` resolves external data (without it, a model
    /// with external data is an error when imported).
    pub fn from_bytes(bytes: &[u8], base_dir: Option<&Path>) -> Result<OnnxModel> {
        Ok(OnnxModel {
            proto: reader::decode_model(bytes)?,
            base_dir: base_dir.map(Path::to_path_buf),
            path: None,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            encoded_bytes: bytes.len() as u64,
        })
    }

    /// Wraps an already decoded (or built) `ModelProto`.
    pub fn from_proto(proto: ModelProto, base_dir: Option<&Path>) -> OnnxModel {
        OnnxModel {
            proto,
            base_dir: base_dir.map(Path::to_path_buf),
            path: None,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            encoded_bytes: 0,
        }
    }

    /// Sets the memory limit of [`import`](Self::import) (default 4 GiB).
    pub fn with_memory_limit(mut self, memory_limit: u64) -> OnnxModel {
        self.memory_limit = memory_limit;
        self
    }

    /// The protobuf message.
    pub fn proto(&self) -> &ModelProto {
        &self.proto
    }

    /// The default-domain opset the model imports, if Kiln supports it.
    pub fn opset(&self) -> Result<i64> {
        Ok(reader::check_opset(&self.proto)?)
    }

    /// The graph inputs the caller supplies (initializers listed as inputs excluded), in order.
    pub fn inputs(&self) -> Result<Vec<InputInfo>> {
        let graph = self
            .proto
            .graph
            .as_ref()
            .ok_or_else(|| OnnxError::Malformed("the model has no graph".into()))?;
        let view = view::GraphView::new(graph)?;
        Ok(import::graph_inputs(&view)?)
    }

    /// Imports the model as a verified [`Graph`]. `input_shapes` gives the shape of inputs by
    /// ONNX name: required for inputs with symbolic dimensions, optional (and checked) for the
    /// others.
    pub fn import(&self, input_shapes: &BTreeMap<String, Vec<usize>>) -> Result<Graph> {
        let mut budget = Budget::new("onnx import", self.memory_limit);
        budget
            .charge(self.encoded_bytes, || "the decoded model".into())
            .map_err(kiln_runtime::RuntimeError::from)?;
        import::import_model(&self.proto, self.base_dir.as_deref(), input_shapes, budget).map_err(
            |e| match (&self.path, e) {
                (Some(path), crate::Error::Onnx(e)) => in_file(path, e),
                (_, e) => e,
            },
        )
    }
}

/// `e`, naming the model file it concerns.
fn in_file(path: &Path, e: impl Into<crate::Error>) -> crate::Error {
    match e.into() {
        crate::Error::Onnx(e @ OnnxError::Io { .. }) => e.into(),
        crate::Error::Onnx(e) => OnnxError::InFile {
            path: path.to_path_buf(),
            source: Box::new(e),
        }
        .into(),
        e => e,
    }
}

/// Reads the ONNX model at `path` and imports it (see [`OnnxModel::import`]).
pub fn load_onnx(path: &Path, input_shapes: &BTreeMap<String, Vec<usize>>) -> Result<Graph> {
    OnnxModel::open(path)?.import(input_shapes)
}

/// Decodes and imports an ONNX model from bytes; `base_dir` resolves external data.
pub fn load_onnx_bytes(
    bytes: &[u8],
    base_dir: Option<&Path>,
    input_shapes: &BTreeMap<String, Vec<usize>>,
) -> Result<Graph> {
    OnnxModel::from_bytes(bytes, base_dir)?.import(input_shapes)
}

/// An ONNX name as a text-IR identifier (`[A-Za-z0-9_.]+`): leading `/` dropped, `/` → `.`, other
/// characters → `_`.
pub(crate) fn sanitize(name: &str) -> String {
    let s: String = name
        .trim_start_matches('/')
        .chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '_' | '.' => c,
            '/' => '.',
            _ => '_',
        })
        .collect();
    if s.is_empty() {
        "v".to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn names_become_identifiers() {
        assert_eq!(sanitize("/conv1/Conv_output_0"), "conv1.Conv_output_0");
        assert_eq!(sanitize("onnx::Conv_31"), "onnx__Conv_31");
        assert_eq!(sanitize("layer1.0.conv1.weight"), "layer1.0.conv1.weight");
        assert_eq!(sanitize("a b-c"), "a_b_c");
        assert_eq!(sanitize("/"), "v");
        assert_eq!(sanitize(""), "v");
    }
}
