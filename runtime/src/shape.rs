//! Small helpers for shapes: element counts and PyTorch-style printing.

/// Number of elements of a tensor of this shape (1 for a scalar).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Formats a shape as `[1, 3, 32, 32]`, the way errors and PyTorch's lists print it.
pub fn fmt_shape(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", dims.join(", "))
}

/// Formats a shape as `torch.Size([1, 3, 32, 32])`, as `print(t.shape)` does in PyTorch.
pub fn fmt_torch_size(shape: &[usize]) -> String {
    format!("torch.Size({})", fmt_shape(shape))
}
