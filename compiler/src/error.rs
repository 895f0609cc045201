//! The compiler's errors: one enum per concern, wrapped by [`Error`] at the API.

use kiln_runtime::{RuntimeError, ShapeMismatch};

/// Result alias for the compiler.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A syntax or reference error in the text IR, with its place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{line}:{col}: {msg}", file.as_ref().map(|f| format!("{f}:")).unwrap_or_default())]
pub struct ParseError {
    /// The file, when parsing one.
    pub file: Option<String>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
    /// What was expected and what was found.
    pub msg: String,
}

/// Operands whose shapes do not fit an op, naming the node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node %{node} ({op}): {mismatch}")]
pub struct ShapeError {
    /// The node's value name.
    pub node: String,
    /// Its op.
    pub op: String,
    /// What did not fit.
    pub mismatch: ShapeMismatch,
}

/// Every invariant the verifier found broken, each with the node it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid graph:{}", errors.iter().map(|(n, m)| format!("\n  %{n}: {m}")).collect::<String>())]
pub struct VerifyError {
    /// `(node name, message)` pairs, in graph order.
    pub errors: Vec<(String, String)>,
}

/// A problem binding weights to a graph's parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeightError {
    /// A parameter has no data: not in the weights file, or no weights were given.
    #[error("missing weight `{name}` (shape {shape}){}", source_file.as_ref().map(|f| format!(" in {f}")).unwrap_or_else(|| ": no weights file given".into()))]
    Missing {
        /// The parameter's `state_dict` name.
        name: String,
        /// Its declared shape.
        shape: String,
        /// The weights file searched, if any.
        source_file: Option<String>,
    },
    /// A weight's shape differs from the parameter's.
    #[error("weight `{name}`: expected shape {expected}, got {got}")]
    WrongShape {
        /// The parameter's name.
        name: String,
        /// Declared shape.
        expected: String,
        /// The weight's shape.
        got: String,
    },
}

/// Any error of the compiler or the runtime beneath it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Text IR syntax.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// Shape inference.
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// Graph invariants.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// Weight binding.
    #[error(transparent)]
    Weight(#[from] WeightError),
    /// Files, formats and execution.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Reading or importing an ONNX model.
    #[error(transparent)]
    Onnx(#[from] crate::frontend::onnx::OnnxError),
    /// A graph built or edited inconsistently (unknown value, duplicate name, …).
    #[error("{0}")]
    Graph(String),
    /// Native code generation (the JIT back end).
    #[error("jit: {0}")]
    Codegen(#[from] crate::codegen::CodegenError),
    /// A request the API or the CLI cannot serve (unknown model format, wrong number of outputs, …).
    #[error("{0}")]
    Usage(String),
}
