//! Constant tensors (initializers, `Constant` nodes, and what shape computations on them give) and
//! the few ops the importer evaluates on them at import time.
//!
//! Exporters compute shapes with small int64 subgraphs (`Shape` → `Gather` → `Unsqueeze` → `Concat`
//! → `Reshape`, or the `Pad` amounts of `nn.ZeroPad2d`). Once input shapes are fixed these are
//! constants, so the importer folds them instead of adding ops to the graph. Every op here returns
//! `Err(message)` instead of panicking, and checks the element count of its result against
//! [`MAX_ELEMENTS`] before allocating.

use super::MAX_ELEMENTS;
use kiln_runtime::shape::fmt_shape;

/// The elements of a constant: float32, or int64 (shapes, axes, pads).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ConstData {
    /// `FLOAT`.
    F32(Vec<f32>),
    /// `INT64`.
    I64(Vec<i64>),
}

/// A constant tensor: its shape and data (row-major).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConstTensor {
    /// Dimensions, outermost first (empty for a scalar).
    pub shape: Vec<usize>,
    /// The elements; their count is the product of `shape`.
    pub data: ConstData,
}

/// The element count of `shape`, or `None` when it exceeds [`MAX_ELEMENTS`]. Zero dimensions
/// count as 1 for the limit, so that every partial product of an accepted shape (as shape code
/// computes them) is within the limit too, even for an empty tensor.
pub(crate) fn checked_numel(shape: &[usize]) -> Option<usize> {
    if shape.len() > kiln_runtime::limits::MAX_RANK {
        return None;
    }
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d.max(1)))
        .filter(|&n| n <= MAX_ELEMENTS)?;
    Some(shape.iter().product())
}

/// Row-major strides of `shape`; only called on shapes whose element count was checked.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * shape[k + 1];
    }
    s
}

/// The shape `a` and `b` broadcast to under numpy's rules, if they are compatible.
pub(crate) fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], k: usize| -> usize {
        // Dimension k of the right-aligned shape, 1 where `s` has fewer dimensions.
        (k + s.len()).checked_sub(rank).map_or(1, |i| s[i])
    };
    (0..rank)
        .map(|k| match (dim(a, k), dim(b, k)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// Which binary element-wise op to fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b` (integer division truncates, as in ONNX's reference implementation).
    Div,
}

impl ConstTensor {
    /// A float32 constant; `data.len()` must equal the product of `shape`.
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> ConstTensor {
        ConstTensor {
            shape,
            data: ConstData::F32(data),
        }
    }

    /// An int64 constant; `data.len()` must equal the product of `shape`.
    pub fn i64(shape: Vec<usize>, data: Vec<i64>) -> ConstTensor {
        ConstTensor {
            shape,
            data: ConstData::I64(data),
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        match &self.data {
            ConstData::F32(v) => v.len(),
            ConstData::I64(v) => v.len(),
        }
    }

    /// Bytes of the elements.
    pub fn bytes(&self) -> u64 {
        match &self.data {
            ConstData::F32(v) => 4 * v.len() as u64,
            ConstData::I64(v) => 8 * v.len() as u64,
        }
    }

    /// The element type's ONNX name.
    pub fn dtype_name(&self) -> &'static str {
        match self.data {
            ConstData::F32(_) => "FLOAT",
            ConstData::I64(_) => "INT64",
        }
    }

    /// The float32 elements, if this is a float32 constant.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            ConstData::F32(v) => Some(v),
            ConstData::I64(_) => None,
        }
    }

    /// The int64 elements, if this is an int64 constant.
    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            ConstData::I64(v) => Some(v),
            ConstData::F32(_) => None,
        }
    }

    /// The value of a one-element float32 constant.
    pub fn scalar_f32(&self) -> Option<f32> {
        match self.as_f32() {
            Some([v]) => Some(*v),
            _ => None,
        }
    }

    /// A new constant whose element `i` is element `src[i]` of this one.
    fn select(&self, shape: Vec<usize>, src: &[usize]) -> Result<ConstTensor, String> {
        let bad = || "index out of range (internal)".to_string();
        let data = match &self.data {
            ConstData::F32(v) => ConstData::F32(
                src.iter()
                    .map(|&i| v.get(i).copied().ok_or_else(bad))
                    .collect::<Result<_, _>>()?,
            ),
            ConstData::I64(v) => ConstData::I64(
                src.iter()
                    .map(|&i| v.get(i).copied().ok_or_else(bad))
                    .collect::<Result<_, _>>()?,
            ),
        };
        Ok(ConstTensor { shape, data })
    }

    /// For every element of a result of shape `out_shape` (row-major), the flat index it is read
    /// from, given by `f(multi_index)`.
    fn gather_indices(
        out_shape: &[usize],
        mut f: impl FnMut(&[usize]) -> Result<usize, String>,
    ) -> Result<Vec<usize>, String> {
        let n = checked_numel(out_shape).ok_or_else(|| too_large(out_shape))?;
        let mut idx = vec![0usize; out_shape.len()];
        let mut src = Vec::with_capacity(n);
        for _ in 0..n {
            src.push(f(&idx)?);
            // Advance the multi-index, last dimension fastest.
            for k in (0..idx.len()).rev() {
                idx[k] += 1;
                if idx[k] < out_shape[k] {
                    break;
                }
                idx[k] = 0;
            }
        }
        Ok(src)
    }

    /// The same data under another shape of the same element count.
    pub fn reshaped(&self, shape: Vec<usize>) -> Result<ConstTensor, String> {
        if checked_numel(&shape) != Some(self.numel()) {
            return Err(format!(
                "cannot reshape {} to {}",
                fmt_shape(&self.shape),
                fmt_shape(&shape)
            ));
        }
        Ok(ConstTensor {
            shape,
            data: self.data.clone(),
        })
    }

    /// ONNX `Transpose` with permutation `perm` (empty: reverse the dimensions).
    pub fn transpose(&self, perm: &[i64]) -> Result<ConstTensor, String> {
        let rank = self.shape.len();
        let perm: Vec<usize> = if perm.is_empty() {
            (0..rank).rev().collect()
        } else {
            perm.iter()
                .map(|&p| usize::try_from(p).ok().filter(|&p| p < rank))
                .collect::<Option<_>>()
                .ok_or_else(|| format!("perm {perm:?} is not a permutation of 0..{rank}"))?
        };
        let mut seen = vec![false; rank];
        for &p in &perm {
            if std::mem::replace(&mut seen[p], true) {
                return Err(format!("perm {perm:?} repeats axis {p}"));
            }
        }
        if perm.len() != rank {
            return Err(format!("perm {perm:?} has not {rank} entries"));
        }
        let in_strides = strides(&self.shape);
        let out_shape: Vec<usize> = perm.iter().map(|&p| self.shape[p]).collect();
        let src = Self::gather_indices(&out_shape, |idx| {
            Ok(idx
                .iter()
                .zip(&perm)
                .map(|(&i, &p)| i * in_strides[p])
                .sum())
        })?;
        self.select(out_shape, &src)
    }

    /// ONNX `Slice` (opset 13): `starts`, `ends`, optional `axes` and `steps`, with ONNX's clamping
    /// of out-of-range bounds.
    pub fn slice(
        &self,
        starts: &[i64],
        ends: &[i64],
        axes: Option<&[i64]>,
        steps: Option<&[i64]>,
    ) -> Result<ConstTensor, String> {
        let rank = self.shape.len();
        if starts.len() != ends.len()
            || axes.is_some_and(|a| a.len() != starts.len())
            || steps.is_some_and(|s| s.len() != starts.len())
        {
            return Err("starts, ends, axes and steps differ in length".into());
        }
        // Per axis: first index, step, count (all axes start as the whole dimension).
        let mut first = vec![0i128; rank];
        let mut step = vec![1i128; rank];
        let mut count: Vec<usize> = self.shape.clone();
        let mut done = vec![false; rank];
        for k in 0..starts.len() {
            let axis = axes.map_or(k as i64, |a| a[k]);
            let axis = normalize_axis(axis, rank)?;
            if std::mem::replace(&mut done[axis], true) {
                return Err(format!("axis {axis} is sliced twice"));
            }
            let d = self.shape[axis] as i128;
            let s = steps.map_or(1, |s| s[k]) as i128;
            if s == 0 {
                return Err("a step is 0".into());
            }
            let (mut b, mut e) = (starts[k] as i128, ends[k] as i128);
            if b < 0 {
                b += d;
            }
            if e < 0 {
                e += d;
            }
            let n = if d == 0 {
                0
            } else if s > 0 {
                b = b.clamp(0, d);
                e = e.clamp(0, d);
                (e - b + s - 1).div_euclid(s).max(0)
            } else {
                b = b.clamp(0, d - 1);
                e = e.clamp(-1, d - 1);
                (b - e + (-s) - 1).div_euclid(-s).max(0)
            };
            first[axis] = b;
            step[axis] = s;
            count[axis] = usize::try_from(n).map_err(|_| "slice too large".to_string())?;
        }
        let in_strides = strides(&self.shape);
        let src = Self::gather_indices(&count, |idx| {
            let mut flat = 0i128;
            for k in 0..rank {
                flat += (first[k] + idx[k] as i128 * step[k]) * in_strides[k] as i128;
            }
            usize::try_from(flat).map_err(|_| "slice index out of range".to_string())
        })?;
        self.select(count, &src)
    }

    /// ONNX `Gather` along `axis` with int64 `indices` of shape `indices_shape`.
    pub fn gather(
        &self,
        indices: &[i64],
        indices_shape: &[usize],
        axis: i64,
    ) -> Result<ConstTensor, String> {
        let rank = self.shape.len();
        let axis = normalize_axis(axis, rank)?;
        let d = self.shape[axis];
        let idx: Vec<usize> = indices
            .iter()
            .map(|&i| {
                let j = if i < 0 { i + d as i64 } else { i };
                usize::try_from(j)
                    .ok()
                    .filter(|&j| j < d)
                    .ok_or_else(|| format!("index {i} is out of range for a dimension of {d}"))
            })
            .collect::<Result<_, _>>()?;
        let mut out_shape = self.shape[..axis].to_vec();
        out_shape.extend_from_slice(indices_shape);
        out_shape.extend_from_slice(&self.shape[axis + 1..]);
        let in_strides = strides(&self.shape);
        let q = indices_shape.len();
        let ind_strides = strides(indices_shape);
        let src = Self::gather_indices(&out_shape, |o| {
            // o = [outer dims (axis), index dims (q), inner dims].
            let flat_ind: usize = o[axis..axis + q]
                .iter()
                .zip(&ind_strides)
                .map(|(a, b)| a * b)
                .sum();
            let picked = *idx.get(flat_ind).ok_or("index out of range (internal)")?;
            let mut flat = picked * in_strides[axis];
            for k in 0..axis {
                flat += o[k] * in_strides[k];
            }
            for k in axis + 1..rank {
                flat += o[k - 1 + q] * in_strides[k];
            }
            Ok(flat)
        })?;
        self.select(out_shape, &src)
    }

    /// ONNX `Concat` of `parts` along `axis`; all parts have one element type and rank.
    pub fn concat(parts: &[&ConstTensor], axis: i64) -> Result<ConstTensor, String> {
        let first = parts.first().ok_or("no operands")?;
        let rank = first.shape.len();
        let axis = normalize_axis(axis, rank)?;
        let mut out_shape = first.shape.clone();
        out_shape[axis] = 0;
        for p in parts {
            let same_rest = p.shape.len() == rank
                && (0..rank).all(|k| k == axis || p.shape[k] == first.shape[k]);
            if !same_rest || p.dtype_name() != first.dtype_name() {
                return Err(format!(
                    "cannot concatenate {} {} and {} {} along axis {axis}",
                    first.dtype_name(),
                    fmt_shape(&first.shape),
                    p.dtype_name(),
                    fmt_shape(&p.shape)
                ));
            }
            out_shape[axis] = out_shape[axis]
                .checked_add(p.shape[axis])
                .ok_or_else(|| too_large(&p.shape))?;
        }
        checked_numel(&out_shape).ok_or_else(|| too_large(&out_shape))?;
        // Row-major: the result is, for each outer index, each part's inner block in turn.
        let outer: usize = first.shape[..axis].iter().product();
        let block = |p: &ConstTensor| -> usize { p.shape[axis..].iter().product() };
        let data = match &first.data {
            ConstData::F32(_) => {
                let mut out = Vec::new();
                for o in 0..outer {
                    for p in parts {
                        let b = block(p);
                        let v = p.as_f32().ok_or("mixed types")?;
                        out.extend_from_slice(v.get(o * b..(o + 1) * b).ok_or("bad data")?);
                    }
                }
                ConstData::F32(out)
            }
            ConstData::I64(_) => {
                let mut out = Vec::new();
                for o in 0..outer {
                    for p in parts {
                        let b = block(p);
                        let v = p.as_i64().ok_or("mixed types")?;
                        out.extend_from_slice(v.get(o * b..(o + 1) * b).ok_or("bad data")?);
                    }
                }
                ConstData::I64(out)
            }
        };
        Ok(ConstTensor {
            shape: out_shape,
            data,
        })
    }

    /// This constant broadcast (numpy rules) to `shape`.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<ConstTensor, String> {
        if broadcast_shapes(&self.shape, shape).as_deref() != Some(shape) {
            return Err(format!(
                "{} does not broadcast to {}",
                fmt_shape(&self.shape),
                fmt_shape(shape)
            ));
        }
        let offset = shape.len() - self.shape.len();
        let in_strides = strides(&self.shape);
        let src = Self::gather_indices(shape, |idx| {
            Ok((0..self.shape.len())
                .filter(|&k| self.shape[k] != 1)
                .map(|k| idx[k + offset] * in_strides[k])
                .sum())
        })?;
        self.select(shape.to_vec(), &src)
    }

    /// An element-wise binary op with broadcasting; both operands have one element type.
    pub fn binary(a: &ConstTensor, b: &ConstTensor, op: BinaryOp) -> Result<ConstTensor, String> {
        let shape = broadcast_shapes(&a.shape, &b.shape).ok_or_else(|| {
            format!(
                "{} and {} do not broadcast",
                fmt_shape(&a.shape),
                fmt_shape(&b.shape)
            )
        })?;
        let (a, b) = (a.broadcast_to(&shape)?, b.broadcast_to(&shape)?);
        let data = match (&a.data, &b.data) {
            (ConstData::F32(x), ConstData::F32(y)) => ConstData::F32(
                x.iter()
                    .zip(y)
                    .map(|(&x, &y)| match op {
                        BinaryOp::Add => x + y,
                        BinaryOp::Sub => x - y,
                        BinaryOp::Mul => x * y,
                        BinaryOp::Div => x / y,
                    })
                    .collect(),
            ),
            (ConstData::I64(x), ConstData::I64(y)) => ConstData::I64(
                x.iter()
                    .zip(y)
                    .map(|(&x, &y)| match op {
                        BinaryOp::Add => Ok(x.wrapping_add(y)),
                        BinaryOp::Sub => Ok(x.wrapping_sub(y)),
                        BinaryOp::Mul => Ok(x.wrapping_mul(y)),
                        BinaryOp::Div => x.checked_div(y).ok_or("integer division by zero"),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            _ => {
                return Err(format!(
                    "operands of types {} and {}",
                    a.dtype_name(),
                    b.dtype_name()
                ))
            }
        };
        Ok(ConstTensor { shape, data })
    }

    /// ONNX `Cast` to `FLOAT` or `INT64` (float to int truncates toward zero; NaN gives 0).
    pub fn cast(&self, to_f32: bool) -> ConstTensor {
        let data = match (&self.data, to_f32) {
            (ConstData::F32(v), true) => ConstData::F32(v.clone()),
            (ConstData::I64(v), true) => ConstData::F32(v.iter().map(|&x| x as f32).collect()),
            (ConstData::F32(v), false) => ConstData::I64(v.iter().map(|&x| x as i64).collect()),
            (ConstData::I64(v), false) => ConstData::I64(v.clone()),
        };
        ConstTensor {
            shape: self.shape.clone(),
            data,
        }
    }
}

/// An ONNX axis (negative counts from the end) as an index into a shape of rank `rank`.
pub(crate) fn normalize_axis(axis: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    usize::try_from(a)
        .ok()
        .filter(|&a| a < rank)
        .ok_or_else(|| format!("axis {axis} is out of range for rank {rank}"))
}

/// The message for a result over the element limit.
fn too_large(shape: &[usize]) -> String {
    format!(
        "a result of shape {} exceeds Kiln's limit of {MAX_ELEMENTS} elements",
        fmt_shape(shape)
    )
}

/// The shape ONNX `Reshape` gives an input of shape `input` for the requested `spec`: `-1` is
/// inferred (at most one), `0` copies the input's dimension unless `allowzero`.
pub(crate) fn reshape_target(
    input: &[usize],
    spec: &[i64],
    allowzero: bool,
) -> Result<Vec<usize>, String> {
    let total = checked_numel(input).ok_or_else(|| too_large(input))?;
    if spec.len() > kiln_runtime::limits::MAX_RANK {
        return Err(format!(
            "a target shape of {} dimensions (Kiln's limit is {})",
            spec.len(),
            kiln_runtime::limits::MAX_RANK
        ));
    }
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (k, &d) in spec.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(k);
                out.push(1);
            }
            -1 => return Err("the shape has more than one -1".into()),
            0 if !allowzero => out.push(
                *input
                    .get(k)
                    .ok_or_else(|| format!("0 at position {k} has no input dimension to copy"))?,
            ),
            d => out.push(usize::try_from(d).map_err(|_| format!("invalid dimension {d}"))?),
        }
    }
    let known = out
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| too_large(&out))?;
    if let Some(k) = infer {
        if known == 0 || total % known != 0 {
            return Err(format!(
                "cannot infer -1 reshaping {} to {spec:?}",
                fmt_shape(input)
            ));
        }
        out[k] = total / known;
    } else if known != total {
        return Err(format!(
            "cannot reshape {} ({total} elements) to {}",
            fmt_shape(input),
            fmt_shape(&out)
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iota_f32(shape: &[usize]) -> ConstTensor {
        let n = shape.iter().product::<usize>();
        ConstTensor::f32(shape.to_vec(), (0..n).map(|i| i as f32).collect())
    }

    #[test]
    fn transpose_2x3() {
        // [[0, 1, 2], [3, 4, 5]]ᵀ = [[0, 3], [1, 4], [2, 5]].
        let t = iota_f32(&[2, 3]).transpose(&[1, 0]).unwrap();
        assert_eq!(t.shape, vec![3, 2]);
        assert_eq!(t.as_f32().unwrap(), &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        assert!(iota_f32(&[2, 3]).transpose(&[0, 0]).is_err());
        assert!(iota_f32(&[2, 3]).transpose(&[0, 5]).is_err());
    }

    #[test]
    fn slice_reverse_like_torch_pad_export() {
        // torch exports the pad reordering as Slice(starts=-1, ends=INT64_MIN+1, axes=0, steps=-1)
        // on a [4, 2] tensor: the rows reversed.
        let t = iota_f32(&[4, 2]);
        let r = t
            .slice(&[-1], &[i64::MIN + 1], Some(&[0]), Some(&[-1]))
            .unwrap();
        assert_eq!(r.shape, vec![4, 2]);
        assert_eq!(
            r.as_f32().unwrap(),
            &[6.0, 7.0, 4.0, 5.0, 2.0, 3.0, 0.0, 1.0]
        );
        // [0:10:2] on 5 elements (end clamped): 0, 2, 4.
        let v = iota_f32(&[5]).slice(&[0], &[10], None, Some(&[2])).unwrap();
        assert_eq!(v.as_f32().unwrap(), &[0.0, 2.0, 4.0]);
        assert!(iota_f32(&[5]).slice(&[0], &[1], None, Some(&[0])).is_err());
    }

    #[test]
    fn gather_scalar_index_and_concat() {
        // Shape [2, 64, 8, 8], Gather(index 0) → scalar 2; Concat([2], [-1]) → [2, -1].
        let shape = ConstTensor::i64(vec![4], vec![2, 64, 8, 8]);
        let n = shape.gather(&[0], &[], 0).unwrap();
        assert_eq!(n.shape, Vec::<usize>::new());
        assert_eq!(n.as_i64().unwrap(), &[2]);
        let n1 = n.reshaped(vec![1]).unwrap();
        let minus1 = ConstTensor::i64(vec![1], vec![-1]);
        let c = ConstTensor::concat(&[&n1, &minus1], 0).unwrap();
        assert_eq!(c.as_i64().unwrap(), &[2, -1]);
        assert!(shape.gather(&[4], &[], 0).is_err());
        // Gather rows [2, 0] of [[0, 1], [2, 3], [4, 5]] → [[4, 5], [0, 1]].
        let g = iota_f32(&[3, 2]).gather(&[2, 0], &[2], 0).unwrap();
        assert_eq!(g.as_f32().unwrap(), &[4.0, 5.0, 0.0, 1.0]);
    }

    #[test]
    fn broadcast_and_binary() {
        // [[0], [1]] + [10, 20, 30] = [[10, 20, 30], [11, 21, 31]].
        let a = iota_f32(&[2, 1]);
        let b = ConstTensor::f32(vec![3], vec![10.0, 20.0, 30.0]);
        let s = ConstTensor::binary(&a, &b, BinaryOp::Add).unwrap();
        assert_eq!(s.shape, vec![2, 3]);
        assert_eq!(s.as_f32().unwrap(), &[10.0, 20.0, 30.0, 11.0, 21.0, 31.0]);
        let z = ConstTensor::i64(vec![1], vec![0]);
        assert!(ConstTensor::binary(&z, &z, BinaryOp::Div).is_err());
        assert!(broadcast_shapes(&[2, 3], &[4]).is_none());
    }

    #[test]
    fn reshape_rules() {
        assert_eq!(
            reshape_target(&[2, 64, 8, 8], &[2, -1], false).unwrap(),
            vec![2, 4096]
        );
        assert_eq!(
            reshape_target(&[2, 64, 8, 8], &[0, -1], false).unwrap(),
            vec![2, 4096]
        );
        assert!(reshape_target(&[2, 3], &[-1, -1], false).is_err());
        assert!(reshape_target(&[2, 3], &[4, -1], false).is_err());
        assert!(reshape_target(&[2, 3], &[0, 0, 0], false).is_err());
        assert!(reshape_target(&[2, 3], &[i64::MAX, i64::MAX], false).is_err());
    }
}
