//! Kiln's runtime: tensors, the reference kernels (PyTorch semantics), the lowered [`Plan`] and the
//! reference [`interpreter`] that executes it.
//!
//! This crate is the lower layer: it knows nothing of graphs or compiling. The compiler lowers its graph
//! into a [`Plan`]; both back ends (this crate's interpreter and the compiler's JIT) consume that Plan.
//!
//! ```
//! use kiln_runtime::{ops::activation::relu, Tensor};
//! let x = Tensor::from_vec(vec![-1.0, 2.0, -3.0, 4.0, -5.0, 6.0], &[2, 3]).unwrap();
//! assert_eq!(relu(&x).data(), &[0.0, 2.0, 0.0, 4.0, 0.0, 6.0]);
//! ```
#![warn(missing_docs)]

pub mod budget;
mod error;
pub mod interpreter;
pub mod io;
pub mod limits;
pub mod ops;
pub mod parallel;
pub mod plan;
pub mod rng;
pub mod shape;
pub mod tensor;

pub use error::{Result, RuntimeError, ShapeMismatch};
pub use ops::Op;
pub use plan::{BufferId, Plan};
pub use tensor::Tensor;
