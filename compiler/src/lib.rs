//! Kiln: a compact neural-network graph compiler with PyTorch semantics.
//!
//! A model (the [`nn`] builder, the text IR, or ONNX through [`frontend`]) becomes a [`Graph`]; the
//! graph is verified, optimized ([`passes`]), lowered to a [`Plan`](kiln_runtime::Plan) and run by a
//! back end: the reference interpreter or native code from Cranelift ([`codegen`]). Embedders use
//! [`engine`]: compile once, run from as many threads as you like.
//!
//! ```
//! use kiln::engine::{Engine, Options};
//! use kiln_runtime::Tensor;
//!
//! let graph = kiln::ir::text::parse(
//!     "graph tiny(%x: f32[2, 3]) {\n  %y = relu(%x) : f32[2, 3]\n  return %y\n}\n",
//! ).unwrap();
//! let engine = Engine::new(Options::default()).unwrap(); // JIT, -O2, all cores
//! let model = engine.compile(graph).unwrap();           // CompiledModel: Send + Sync
//! let x = Tensor::from_vec(vec![-1.0, 2.0, -3.0, 4.0, -5.0, 6.0], &[2, 3]).unwrap();
//! let y = model.run(&[x]).unwrap();
//! assert_eq!(y[0].data(), &[0.0, 2.0, 0.0, 4.0, 0.0, 6.0]);
//! ```
#![warn(missing_docs)]

pub mod codegen;
pub mod debug;
pub mod engine;
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

/// Verifies `graph`, lowers it and runs it on the reference interpreter (within the default
/// memory budget, 4 GiB).
pub fn run_interpreter(graph: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
    ir::verify::verify(graph)?;
    let plan = lower::lower(graph)?;
    kiln_runtime::interpreter::check_memory(&plan, kiln_runtime::budget::DEFAULT_MEMORY_LIMIT)?;
    Ok(kiln_runtime::interpreter::run(&plan, inputs)?)
}
