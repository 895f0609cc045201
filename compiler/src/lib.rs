//! Kiln: a compact neural-network graph compiler with PyTorch semantics.
//!
//! A model (text IR, the [`nn`] builder, and later ONNX) becomes a [`Graph`]; the graph is verified,
//! optimized, lowered to a [`Plan`](kiln_runtime::Plan) and run by a back end.
//!
//! ```
//! use kiln::ir::text::parse;
//! use kiln_runtime::Tensor;
//!
//! let graph = parse(
//!     "graph tiny(%x: f32[2, 3]) {\n  %y = relu(%x) : f32[2, 3]\n  return %y\n}\n",
//! ).unwrap();
//! let x = Tensor::from_vec(vec![-1.0, 2.0, -3.0, 4.0, -5.0, 6.0], &[2, 3]).unwrap();
//! let outputs = kiln::run_interpreter(&graph, &[x]).unwrap();
//! assert_eq!(outputs[0].data(), &[0.0, 2.0, 0.0, 4.0, 0.0, 6.0]);
//! ```
#![warn(missing_docs)]

pub mod debug;
mod error;
pub mod frontend;
pub mod ir;
pub mod lower;
pub mod nn;
pub mod passes;
pub mod plan_text;
pub mod stats;
pub mod weights;

pub use error::{Error, ParseError, Result, ShapeError, VerifyError, WeightError};
pub use ir::{Graph, NodeKind, TensorType, ValueId};

use kiln_runtime::Tensor;

/// Verifies `graph`, lowers it and runs it on the reference interpreter.
pub fn run_interpreter(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
    ir::verify::verify(graph)?;
    let plan = lower::lower(graph)?;
    Ok(kiln_runtime::interpreter::run(&plan, inputs)?)
}
