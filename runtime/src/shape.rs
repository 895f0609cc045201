//! Small helpers for shapes: element counts and PyTorch-style printing.

/// Number of elements of a tensor of this shape (1 for a scalar), saturating at `usize::MAX` for
/// shapes beyond [`limits`](crate::limits) (which every front end rejects), so that no caller can
/// see a wrapped count.
pub fn numel(shape: &[usize]) -> usize {
    if shape.contains(&0) {
        return 0;
    }
    shape.iter().fold(1usize, |n, &d| n.saturating_mul(d))
}

/// Formats a shape as `[1, 3, 32, 32]`, the way errors and PyTorch's lists print it. A shape
/// of more than 64 dimensions (hostile input: no valid tensor has one) prints its first 64 and
/// the count, so that an error message stays small.
pub fn fmt_shape(shape: &[usize]) -> String {
    const SHOWN: usize = 64;
    let dims: Vec<String> = shape.iter().take(SHOWN).map(|d| d.to_string()).collect();
    if shape.len() > SHOWN {
        format!("[{}, … ({} dimensions)]", dims.join(", "), shape.len())
    } else {
        format!("[{}]", dims.join(", "))
    }
}

/// Formats a shape as `torch.Size([1, 3, 32, 32])`, as `print(t.shape)` does in PyTorch.
pub fn fmt_torch_size(shape: &[usize]) -> String {
    format!("torch.Size({})", fmt_shape(shape))
}
