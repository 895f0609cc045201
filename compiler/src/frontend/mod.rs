//! Front ends that import models from other formats into a [`Graph`](crate::Graph).
//!
//! - [`onnx`]: ONNX files as PyTorch's `torch.onnx.export` writes them.

pub mod onnx;

pub use onnx::{load_onnx, OnnxError};
