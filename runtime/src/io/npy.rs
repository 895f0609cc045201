//! `.npy` files: float32, C order (version 1.0–3.0 headers). Anything else is a clear error.

use crate::error::Result;
use crate::tensor::Tensor;
use std::path::Path;

/// Reads a float32 C-order `.npy` file.
pub fn read_npy(path: &Path) -> Result<Tensor> {
    let _ = path;
    todo!()
}

/// Parses the bytes of a `.npy` file; `path` is only used in errors.
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<Tensor> {
    let _ = (bytes, path);
    todo!()
}

/// The bytes of a version 1.0 `.npy` file holding `tensor`.
pub fn encode_npy(tensor: &Tensor) -> Vec<u8> {
    let _ = tensor;
    todo!()
}

/// Writes `tensor` as a `.npy` file, atomically: a temporary file in the same folder is renamed into
/// place, so a failure never leaves a partial file.
pub fn write_npy(path: &Path, tensor: &Tensor) -> Result<()> {
    let _ = (path, tensor);
    todo!()
}
