//! `print(model)`: a module's repr exactly as PyTorch's `Module.__repr__` builds it, and the
//! Python formatting of the values inside (`1e-05`, `True`, `'tanh'`).

use crate::nn::module::Module;
use std::fmt;

/// The module's repr, character for character what PyTorch's `print(model)` shows:
/// `Name(extra_repr)` for a leaf, and for a module with children one `(name): repr` line per child,
/// indented by two spaces (nested reprs indent again).
pub fn repr(module: &dyn Module) -> String {
    // Mirrors torch/nn/modules/module.py `Module.__repr__`.
    let extra = module.extra_repr();
    let extra_lines: Vec<&str> = if extra.is_empty() {
        Vec::new()
    } else {
        extra.split('\n').collect()
    };
    let child_lines: Vec<String> = module
        .named_children()
        .into_iter()
        .map(|(name, child)| format!("({name}): {}", add_indent(&repr(child), 2)))
        .collect();
    let mut s = format!("{}(", module.type_name());
    if extra_lines.len() == 1 && child_lines.is_empty() {
        s.push_str(extra_lines[0]);
    } else if !extra_lines.is_empty() || !child_lines.is_empty() {
        let lines: Vec<&str> = extra_lines
            .iter()
            .copied()
            .chain(child_lines.iter().map(String::as_str))
            .collect();
        s.push_str("\n  ");
        s.push_str(&lines.join("\n  "));
        s.push('\n');
    }
    s.push(')');
    s
}

/// PyTorch's `_addindent`: indents every line but the first.
fn add_indent(s: &str, spaces: usize) -> String {
    let pad = " ".repeat(spaces);
    let mut lines = s.split('\n');
    let mut out = lines.next().unwrap_or_default().to_string();
    for line in lines {
        out.push('\n');
        out.push_str(&pad);
        out.push_str(line);
    }
    out
}

impl fmt::Display for dyn Module + '_ {
    /// The PyTorch repr ([`repr`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&repr(self))
    }
}

/// Implements `Display` (the PyTorch repr) for concrete module types.
macro_rules! display_as_repr {
    ($($t:ty),* $(,)?) => {$(
        impl std::fmt::Display for $t {
            /// The PyTorch repr, as `print(module)` shows it.
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&$crate::nn::repr(self))
            }
        }
    )*};
}
pub(crate) use display_as_repr;

/// Python's `str(bool)`: `True` or `False`.
pub fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// Python's `repr(float)` of the shortest decimal that round-trips the `f32`: `0.01`, `1.0`,
/// `1e-05`, `1e+16`. Fixed notation when the decimal exponent is in `-4..16`, else scientific with a
/// signed exponent of at least two digits (Python's `float_repr_style = 'short'` rules).
///
/// The shortest form is taken for `f32`, not `f64`, so a module built with `0.1` prints `0.1` as it
/// does in PyTorch (where the value is a Python double).
pub fn py_float(v: f32) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    // `{:e}` gives the shortest round-trip digits: "-1.5e-5", "1e0", "0e0".
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        // The decimal point sits after `point` digits (counting leading zeros when negative).
        let point = exp + 1;
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{int}.{frac}")
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{frac}e{exp_sign}{:02}", exp.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_python_repr() {
        // Expected strings from `python3 -c 'print(repr(v))'` for each value.
        let cases: [(f32, &str); 14] = [
            (1e-5, "1e-05"),
            (1e-4, "0.0001"),
            (0.001, "0.001"),
            (0.01, "0.01"),
            (0.1, "0.1"),
            (0.3, "0.3"),
            (1.0, "1.0"),
            (2.0, "2.0"),
            (-0.5, "-0.5"),
            (0.0, "0.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (12.25, "12.25"),
            (1.5e-7, "1.5e-07"),
        ];
        for (v, expected) in cases {
            assert_eq!(py_float(v), expected, "value {v}");
        }
        assert_eq!(py_float(f32::NEG_INFINITY), "-inf");
        assert_eq!(py_float(f32::NAN), "nan");
    }

    #[test]
    fn add_indent_skips_the_first_line() {
        assert_eq!(add_indent("A(\n  x\n)", 2), "A(\n    x\n  )");
        assert_eq!(add_indent("B()", 2), "B()");
    }
}
