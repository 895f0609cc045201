//! The runtime's error type: I/O, file formats, shapes at run time.

use std::path::PathBuf;

/// Result alias for the runtime.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// An operand whose shape does not fit an op: which operand, what was expected, what came.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: expected {expected}, got {got}")]
pub struct ShapeMismatch {
    /// The operand or attribute at fault, e.g. `operand 1 (weight)`.
    pub what: String,
    /// What the op needs, in words or as a shape such as `[32, 3, _, _]`.
    pub expected: String,
    /// What it was given.
    pub got: String,
}

/// Everything that can go wrong in the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A malformed or unsupported `.npy` file.
    #[error("{}: invalid .npy file: {msg}", path.display())]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// A malformed or unsupported `.safetensors` file.
    #[error("{}: invalid .safetensors file: {msg}", path.display())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (naming the tensor where there is one).
        msg: String,
    },
    /// An op was given operands of the wrong shape.
    #[error("{op}: {mismatch}")]
    Shape {
        /// The op (or step) at fault.
        op: String,
        /// What did not fit.
        mismatch: ShapeMismatch,
    },
    /// A model input of the wrong shape or count was passed at run time.
    #[error("input `{name}`: expected shape {expected}, got {got}")]
    InputShape {
        /// The input's name.
        name: String,
        /// Its declared shape.
        expected: String,
        /// The shape passed.
        got: String,
    },
    /// The number of inputs passed differs from the number the model declares.
    #[error("expected {expected} input(s), got {got}")]
    InputCount {
        /// Declared inputs.
        expected: usize,
        /// Inputs passed.
        got: usize,
    },
    /// A tensor was built from data whose length does not fit its shape.
    #[error("tensor of shape {shape} needs {expected} values, got {got}")]
    DataLength {
        /// The shape requested.
        shape: String,
        /// Elements the shape holds.
        expected: usize,
        /// Elements given.
        got: usize,
    },
    /// A plan that is internally inconsistent (a bug in whatever built it).
    #[error("invalid plan: {0}")]
    InvalidPlan(String),
    /// A shape beyond Kiln's [`limits`](crate::limits).
    #[error("tensor: {0}")]
    Limit(ShapeMismatch),
    /// More memory than the budget allows would be needed; nothing was allocated.
    #[error(transparent)]
    Budget(#[from] crate::budget::BudgetError),
    /// The operating system refused an allocation.
    #[error("out of memory: allocating {bytes} bytes failed")]
    OutOfMemory {
        /// Bytes requested.
        bytes: u64,
    },
}
