//! `Display` for [`Tensor`] in PyTorch's format (`torch._tensor_str`): `tensor([[0., 2., 0.],` …
//!
//! This is a port of the float32 path of `torch/_tensor_str.py` with the default print options
//! (precision 4, linewidth 80, threshold 1000, edge items 3, scientific mode chosen automatically):
//!
//! - one [`ElementFormat`] is chosen for the whole tensor from the elements that will be shown:
//!   *integer mode* (`2.`) when every finite nonzero value is a whole number, *scientific mode*
//!   (`1.0000e-05`) when the finite nonzero magnitudes span more than a factor 1000, exceed 1e8 or go
//!   below 1e-4, and fixed mode (`1.2345`) otherwise; every element is right-aligned to the widest;
//! - a 1-d row wraps so that a line holds `(80 - indent) / (width + 2)` elements;
//! - a tensor of more than 1000 elements shows only the first and last three entries of every
//!   dimension longer than six, with `...` between them;
//! - sub-tensors of a k-d tensor are separated by `,` followed by k-1 newlines and indented one
//!   column per nesting level.
//!
//! PyTorch formats each float32 value by widening it to a Python float (an `f64`) and applying
//! `'{:.4f}'` or `'{:.4e}'`; both round the exact binary value half-to-even, as Rust's `{:.4}` and
//! `{:.4e}` do, so formatting the widened `f64` reproduces its digits exactly. Python writes the
//! exponent with a sign and at least two digits (`e-05`), which [`py_sci`] mimics.

use super::Tensor;
use crate::shape::numel;
use std::fmt;

/// Digits after the decimal point (`torch.set_printoptions(precision=4)`).
const PRECISION: usize = 4;
/// Characters per line that rows are wrapped to.
const LINEWIDTH: usize = 80;
/// Tensors with more elements than this are summarized with `...`.
const THRESHOLD: usize = 1000;
/// Entries shown at each end of a summarized dimension.
const EDGEITEMS: usize = 3;
/// `tensor(` — its length is the indentation of continuation lines.
const PREFIX: &str = "tensor(";

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&tensor_repr(self.data(), self.shape()))
    }
}

/// The whole `tensor(…)` string, as `str(t)` gives it in PyTorch.
fn tensor_repr(data: &[f32], shape: &[usize]) -> String {
    let indent = PREFIX.len();
    if numel(shape) == 0 {
        // PyTorch names the shape of an empty tensor unless it is 1-d (NumPy does the same).
        let mut suffixes = Vec::new();
        if shape.len() != 1 {
            suffixes.push(format!("size={}", py_tuple(shape)));
        }
        return add_suffixes(format!("{PREFIX}[]"), &suffixes, indent);
    }
    let summarize = numel(shape) > THRESHOLD;
    // The format is chosen from the shown elements only, as `get_summarized_data` does.
    let mut shown = Vec::new();
    collect_shown(data, shape, summarize, &mut shown);
    let format = ElementFormat::new(&shown);
    let body = tensor_str(data, shape, indent, summarize, &format);
    add_suffixes(format!("{PREFIX}{body}"), &[], indent)
}

/// How every element of one tensor is printed (`torch._tensor_str._Formatter` for floats).
#[derive(Debug, Clone, Copy, PartialEq)]
struct ElementFormat {
    /// All finite nonzero values are whole numbers: print `2.` rather than `2.0000`.
    int_mode: bool,
    /// Print `1.0000e-05`.
    sci_mode: bool,
    /// Every element is right-aligned to this many characters.
    max_width: usize,
}

impl ElementFormat {
    /// The format for a tensor whose shown elements are `values`.
    fn new(values: &[f32]) -> ElementFormat {
        let mut format = ElementFormat {
            int_mode: true,
            sci_mode: false,
            max_width: 1,
        };
        let nonzero_finite: Vec<f32> = values
            .iter()
            .copied()
            .filter(|v| v.is_finite() && *v != 0.0)
            .collect();
        if nonzero_finite.is_empty() {
            // Only zeros, NaNs and infinities: integer mode with width 1 (each pads to itself).
            return format;
        }
        // PyTorch compares the magnitudes in double precision.
        let (min, max) = nonzero_finite
            .iter()
            .map(|&v| f64::from(v.abs()))
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), a| {
                (lo.min(a), hi.max(a))
            });
        // `value != torch.ceil(value)` is evaluated in float32.
        format.int_mode = nonzero_finite.iter().all(|v| *v == v.ceil());
        format.sci_mode = max / min > 1000.0 || max > 1.0e8 || min < 1.0e-4;
        format.max_width = nonzero_finite
            .iter()
            .map(|&v| {
                let v = f64::from(v);
                if format.sci_mode {
                    py_sci(v).len()
                } else if format.int_mode {
                    // One more for the `.` that marks the value as a float.
                    py_fixed(v, 0).len() + 1
                } else {
                    py_fixed(v, PRECISION).len()
                }
            })
            .fold(1, usize::max);
        format
    }

    /// One element, right-aligned to `max_width`.
    fn format(&self, value: f32) -> String {
        let v = f64::from(value);
        let s = if self.sci_mode {
            py_sci(v)
        } else if self.int_mode {
            let mut s = py_fixed(v, 0);
            if v.is_finite() {
                s.push('.');
            }
            s
        } else {
            py_fixed(v, PRECISION)
        };
        format!("{s:>width$}", width = self.max_width)
    }
}

/// Python's `'{:.Nf}'.format(v)`: `nan` (whatever its sign), `inf`, `-inf`, or fixed-point digits.
fn py_fixed(v: f64, precision: usize) -> String {
    match py_non_finite(v) {
        Some(s) => s.to_string(),
        None => format!("{v:.precision$}"),
    }
}

/// Python's `'{:.4e}'.format(v)`: like Rust's `{:.4e}` but with a signed exponent of at least two
/// digits (`1.0000e-05`, `2.5000e+00`, `1.0000e+100`).
fn py_sci(v: f64) -> String {
    if let Some(s) = py_non_finite(v) {
        return s.to_string();
    }
    let rust = format!("{v:.PRECISION$e}");
    // Rust always writes `<mantissa>e<exponent>` with an integer exponent for finite values.
    match rust.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(digits) => ('-', digits),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => rust,
    }
}

/// Python's spelling of a non-finite float, or `None` for a finite one.
fn py_non_finite(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("nan")
    } else if v == f64::INFINITY {
        Some("inf")
    } else if v == f64::NEG_INFINITY {
        Some("-inf")
    } else {
        None
    }
}

/// The indices of dimension of length `len` that are shown: all, or the three at each end.
fn shown_indices(len: usize, summarize: bool) -> Vec<usize> {
    if summarize && len > 2 * EDGEITEMS {
        (0..EDGEITEMS).chain(len - EDGEITEMS..len).collect()
    } else {
        (0..len).collect()
    }
}

/// The sub-tensor at `index` of the outermost dimension (`t[index]`), as its data and shape.
fn sub_tensor<'a>(data: &'a [f32], shape: &'a [usize], index: usize) -> (&'a [f32], &'a [usize]) {
    let inner = shape.get(1..).unwrap_or_default();
    let stride = numel(inner);
    let start = (index * stride).min(data.len());
    let end = (start + stride).min(data.len());
    (&data[start..end], inner)
}

/// Appends the elements that will be printed, in order (`get_summarized_data`).
fn collect_shown(data: &[f32], shape: &[usize], summarize: bool, out: &mut Vec<f32>) {
    match shape.first() {
        None => out.extend(data.first()),
        Some(&len) if shape.len() == 1 => {
            out.extend(
                shown_indices(len, summarize)
                    .iter()
                    .filter_map(|&i| data.get(i)),
            );
        }
        Some(&len) => {
            for i in shown_indices(len, summarize) {
                let (sub, inner) = sub_tensor(data, shape, i);
                collect_shown(sub, inner, summarize, out);
            }
        }
    }
}

/// The bracketed body of a non-empty tensor (`_tensor_str_with_formatter`); `indent` is the column
/// where its opening bracket sits.
fn tensor_str(
    data: &[f32],
    shape: &[usize],
    indent: usize,
    summarize: bool,
    format: &ElementFormat,
) -> String {
    let Some(&len) = shape.first() else {
        return data.first().map_or_else(String::new, |&v| format.format(v));
    };
    if shape.len() == 1 {
        return vector_str(data, indent, summarize, format);
    }
    let mut slices = Vec::new();
    let indices = shown_indices(len, summarize);
    for (k, &i) in indices.iter().enumerate() {
        // A gap in the shown indices is where the summarized middle goes.
        if k > 0 && indices[k - 1] + 1 != i {
            slices.push("...".to_string());
        }
        let (sub, inner) = sub_tensor(data, shape, i);
        slices.push(tensor_str(sub, inner, indent + 1, summarize, format));
    }
    // Rows of a matrix are one newline apart, matrices of a 3-d tensor two, and so on.
    let separator = format!(
        ",{}{}",
        "\n".repeat(shape.len() - 1),
        " ".repeat(indent + 1)
    );
    format!("[{}]", slices.join(&separator))
}

/// A 1-d tensor, wrapped so that each line fits in the line width (`_vector_str`).
fn vector_str(data: &[f32], indent: usize, summarize: bool, format: &ElementFormat) -> String {
    // Each element takes its width plus the `, ` after it; at least one element per line.
    let element_length = format.max_width + 2;
    let elements_per_line = (LINEWIDTH.saturating_sub(indent) / element_length).max(1);
    let indices = shown_indices(data.len(), summarize);
    let mut elements = Vec::new();
    for (k, &i) in indices.iter().enumerate() {
        if k > 0 && indices[k - 1] + 1 != i {
            elements.push(" ...".to_string());
        }
        elements.extend(data.get(i).map(|&v| format.format(v)));
    }
    let lines: Vec<String> = elements
        .chunks(elements_per_line)
        .map(|line| line.join(", "))
        .collect();
    let separator = format!(",\n{}", " ".repeat(indent + 1));
    format!("[{}]", lines.join(&separator))
}

/// Appends `, size=…`-style suffixes and the closing parenthesis, starting a new line for a suffix
/// that would overflow the line width (`_add_suffixes`).
fn add_suffixes(tensor_str: String, suffixes: &[String], indent: usize) -> String {
    // Python's `len(s) - s.rfind("\n") + 1`, where `rfind` gives -1 when there is no newline.
    let mut last_line_len = match tensor_str.rfind('\n') {
        Some(pos) => tensor_str.len() - pos + 1,
        None => tensor_str.len() + 2,
    };
    let mut out = tensor_str;
    for suffix in suffixes {
        if last_line_len + suffix.len() + 2 > LINEWIDTH {
            out.push_str(",\n");
            out.push_str(&" ".repeat(indent));
            out.push_str(suffix);
            last_line_len = indent + suffix.len();
        } else {
            out.push_str(", ");
            out.push_str(suffix);
            last_line_len += suffix.len() + 2;
        }
    }
    out.push(')');
    out
}

/// A shape as a Python tuple: `(0, 3)`, `(0,)`, `()`.
fn py_tuple(shape: &[usize]) -> String {
    match shape {
        [d] => format!("({d},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", dims.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_spellings() {
        // Expected strings from Python: '{:.4e}'.format(x) and '{:.4f}'.format(x).
        assert_eq!(py_sci(1e-5), "1.0000e-05");
        assert_eq!(py_sci(2.5), "2.5000e+00");
        assert_eq!(py_sci(-1e100), "-1.0000e+100");
        assert_eq!(py_sci(f64::NAN), "nan");
        assert_eq!(py_fixed(-f64::NAN, 4), "nan");
        assert_eq!(py_fixed(f64::NEG_INFINITY, 0), "-inf");
        // 1/32 = 0.03125 exactly: a tie, which Python rounds to even.
        assert_eq!(py_fixed(0.03125, 4), "0.0312");
        assert_eq!(py_fixed(-0.0, 4), "-0.0000");
    }

    #[test]
    fn shown_indices_keep_three_at_each_end() {
        assert_eq!(shown_indices(7, true), vec![0, 1, 2, 4, 5, 6]);
        assert_eq!(shown_indices(6, true), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(shown_indices(7, false), (0..7).collect::<Vec<_>>());
    }

    #[test]
    fn python_tuples() {
        assert_eq!(py_tuple(&[0, 3]), "(0, 3)");
        assert_eq!(py_tuple(&[0]), "(0,)");
    }
}
