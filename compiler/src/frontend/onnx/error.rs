//! [`OnnxError`]: what can be wrong with an ONNX model, naming the node, tensor or input at fault.

use std::path::PathBuf;

/// An ONNX model that cannot be read or imported. Every variant names what it concerns: the node
/// (by its name, or its first output when it has none) and op type, the tensor, or the graph input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OnnxError {
    /// The model file could not be read.
    #[error("{}: {msg}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        msg: String,
    },
    /// An error in a model read from a file, naming the file.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The model file.
        path: PathBuf,
        /// What is wrong with it.
        source: Box<OnnxError>,
    },
    /// The bytes are not an ONNX `ModelProto`, or one missing a required part.
    #[error("malformed ONNX model: {0}")]
    Malformed(String),
    /// The model imports an opset of the default domain outside 13..=21 (or none).
    #[error(
        "unsupported ONNX opset {version} (Kiln supports opsets 13 to 21 of the default domain)"
    )]
    Opset {
        /// The opset version imported (0 when the model imports none).
        version: i64,
    },
    /// The graph has no nodes.
    #[error("the ONNX graph has no nodes")]
    EmptyGraph,
    /// A node whose op Kiln does not import.
    #[error("node `{node}`: unsupported op `{op}`; supported ops: {}", super::SUPPORTED_OPS.join(", "))]
    UnsupportedOp {
        /// The node.
        node: String,
        /// Its op type (with its domain when that is not the default one).
        op: String,
    },
    /// A required attribute is missing, or its value is one Kiln does not import.
    #[error("node `{node}` ({op}): attribute `{attribute}`: {msg}")]
    Attribute {
        /// The node.
        node: String,
        /// Its op type.
        op: String,
        /// The attribute.
        attribute: String,
        /// What is wrong with it.
        msg: String,
    },
    /// A valid node that Kiln cannot import in this form (e.g. a broadcast between two computed
    /// tensors, a `Reshape` that is not a flatten).
    #[error("node `{node}` ({op}): {msg}")]
    Unsupported {
        /// The node.
        node: String,
        /// Its op type.
        op: String,
        /// What is not supported.
        msg: String,
    },
    /// A node that is not valid ONNX: missing operands, shapes that cannot fit, bad constant data.
    #[error("node `{node}` ({op}): {msg}")]
    InvalidNode {
        /// The node.
        node: String,
        /// Its op type.
        op: String,
        /// What is wrong.
        msg: String,
    },
    /// A node reads a value that nothing defines.
    #[error(
        "node `{node}` ({op}) reads `{input}`, which no node, graph input or initializer defines"
    )]
    DanglingInput {
        /// The node.
        node: String,
        /// Its op type.
        op: String,
        /// The undefined value.
        input: String,
    },
    /// A graph output that nothing defines.
    #[error("graph output `{output}` is not defined by any node, graph input or initializer")]
    DanglingOutput {
        /// The output's name.
        output: String,
    },
    /// The nodes' dataflow has a cycle.
    #[error("the ONNX graph has a cycle through node `{node}`")]
    Cycle {
        /// A node on the cycle.
        node: String,
    },
    /// A tensor (initializer, constant, graph input or output) of an element type other than
    /// float32 where a float32 tensor is needed.
    #[error("tensor `{tensor}` has element type {dtype}; Kiln computes in float32 only")]
    DataType {
        /// The tensor's name.
        tensor: String,
        /// Its ONNX element type (`DOUBLE`, `FLOAT16`, …).
        dtype: String,
    },
    /// A tensor whose data does not fit its declared shape and type.
    #[error("tensor `{tensor}`: {msg}")]
    InvalidTensor {
        /// The tensor's name.
        tensor: String,
        /// What is wrong.
        msg: String,
    },
    /// A tensor stored in an external data file that cannot be read.
    #[error("tensor `{tensor}`: external data {}: {msg}", path.display())]
    ExternalData {
        /// The tensor's name.
        tensor: String,
        /// The data file, resolved relative to the model file.
        path: PathBuf,
        /// What went wrong.
        msg: String,
    },
    /// A graph input with symbolic (or unknown) dimensions whose shape the caller did not give.
    #[error(
        "input `{input}` has symbolic dimensions {dims}: give its shape, e.g. {input}={example}"
    )]
    SymbolicInput {
        /// The input's name.
        input: String,
        /// Its declared dimensions, symbolic ones by name (`?` when unnamed).
        dims: String,
        /// The declared shape with every symbolic dimension set to 1, as `1x3x224x224`.
        example: String,
    },
    /// A shape given for an input that does not fit its declared fixed dimensions.
    #[error("input `{input}`: expected shape {expected}, got {got}")]
    InputShape {
        /// The input's name.
        input: String,
        /// The declared dimensions (symbolic ones by name).
        expected: String,
        /// The shape given.
        got: String,
    },
    /// A shape was given for a name that is not a graph input.
    #[error("no graph input is named `{name}` (the inputs are: {inputs})")]
    UnknownInput {
        /// The name given.
        name: String,
        /// The graph's inputs, comma-separated.
        inputs: String,
    },
    /// A tensor or value with more elements than Kiln accepts (guards against absurd sizes read
    /// from a file before anything is allocated).
    #[error("{what} would have more than {limit} elements, Kiln's limit")]
    TooLarge {
        /// The tensor or value, and its shape when it fits in words.
        what: String,
        /// The limit ([`MAX_ELEMENTS`](super::MAX_ELEMENTS)).
        limit: usize,
    },
}
