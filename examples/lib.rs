//! Shared helpers for the examples: printing the way the seed tutorial's Python `print` does.

use kiln_runtime::Tensor;

/// The seed every example draws its random tensors and weights from, so runs repeat exactly.
pub const SEED: u64 = 42;

/// Prints `label` on one line and the tensor, as PyTorch formats it, below.
pub fn print_tensor(label: &str, tensor: &Tensor) {
    println!("{label}:\n{tensor}");
}
