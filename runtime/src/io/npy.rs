//! `.npy` files: float32, C order (version 1.0–3.0 headers). Anything else is a clear error.
//!
//! The format (NumPy's `numpy.lib.format`): the magic `\x93NUMPY`, a major and a minor version byte,
//! the header length (`u16` little-endian in version 1.0, `u32` in 2.0 and 3.0), then the header — the
//! text of a Python dict literal such as `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`
//! padded with spaces and a final `\n` (Latin-1 in versions 1.0 and 2.0, UTF-8 in 3.0) — and then the
//! raw little-endian data. The header is read with the small literal parser at the end of this file
//! rather than a general evaluator: it accepts exactly the literals a header can hold.
//!
//! [`encode_npy`] writes what `numpy.save` writes for a float32 array, byte for byte: version 1.0, the
//! keys in sorted order, NumPy's spare spaces for growing the first axis, and padding so that the data
//! starts at a multiple of 64 bytes.

use crate::budget::Budget;
use crate::error::{Result, RuntimeError};
use crate::tensor::Tensor;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The first six bytes of every `.npy` file.
const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// NumPy aligns the start of the data to this many bytes (`ARRAY_ALIGN`).
const ARRAY_ALIGN: usize = 64;
/// NumPy leaves room for the first axis to grow to this many digits (`GROWTH_AXIS_MAX_DIGITS`).
const GROWTH_AXIS_MAX_DIGITS: usize = 21;
/// The only dtype read or written: little-endian float32.
const F32_DESCR: &str = "<f4";
/// Literals nested deeper than this are rejected rather than risking the stack on a hostile header.
const MAX_DEPTH: usize = 16;

/// Reads a float32 C-order `.npy` file.
pub fn read_npy(path: &Path) -> Result<Tensor> {
    let bytes = fs::read(path).map_err(|source| RuntimeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_npy(&bytes, path)
}

/// Reads a `.npy` file after charging its size to `budget` (stage `input`): a file larger than
/// what is left is refused before any of it is read. The file holds exactly the header and the
/// data its header declares (anything else is an error), so its size is the data's.
pub fn read_npy_within(path: &Path, budget: &mut Budget) -> Result<Tensor> {
    let io = |source| RuntimeError::Io {
        path: path.to_path_buf(),
        source,
    };
    let size = fs::metadata(path).map_err(io)?.len();
    budget.charge(size, || format!("{} ({size} bytes)", path.display()))?;
    read_npy(path)
}

/// Parses the bytes of a `.npy` file; `path` is only used in errors.
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<Tensor> {
    let err = |msg: String| RuntimeError::Npy {
        path: path.to_path_buf(),
        msg,
    };
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        let start = &bytes[..bytes.len().min(MAGIC.len())];
        return Err(err(format!(
            "bad magic: expected b\"\\x93NUMPY\", found b\"{}\"",
            start.escape_ascii()
        )));
    }
    let (major, minor) = match bytes.get(6..8) {
        Some(&[major, minor]) => (major, minor),
        _ => {
            return Err(err(format!(
                "truncated header: the file is {} bytes, too short for the version bytes",
                bytes.len()
            )))
        }
    };
    // Version 1.0 stores the header length in two bytes; 2.0 and 3.0 (which only differs by allowing
    // UTF-8 in the header) in four.
    let len_bytes = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => {
            return Err(err(format!(
                "unsupported format version {major}.{minor} (supported: 1.0, 2.0, 3.0)"
            )))
        }
    };
    let header_start = 8 + len_bytes;
    let header_len = match bytes.get(8..header_start) {
        Some(&[a, b]) => usize::from(u16::from_le_bytes([a, b])),
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]) as usize,
        _ => {
            return Err(err(format!(
                "truncated header: the file is {} bytes, too short for the header length",
                bytes.len()
            )))
        }
    };
    let data_start = header_start.saturating_add(header_len);
    let Some(header_bytes) = bytes.get(header_start..data_start) else {
        return Err(err(format!(
            "truncated header: the header needs {data_start} bytes but the file is only {} bytes",
            bytes.len()
        )));
    };
    let header = if major == 3 {
        std::str::from_utf8(header_bytes)
            .map_err(|e| {
                err(format!(
                    "header is not valid UTF-8 (at header byte {})",
                    e.valid_up_to()
                ))
            })?
            .to_string()
    } else {
        // Latin-1: every byte is the code point of the same value.
        header_bytes.iter().map(|&b| char::from(b)).collect()
    };
    let header = parse_header(&header).map_err(err)?;
    let data = &bytes[data_start..];

    let numel = header
        .shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|n| n.checked_mul(4).is_some())
        .ok_or_else(|| err(format!("shape {} is too large", py_tuple(&header.shape))))?;
    let expected = numel * 4;
    if data.len() < expected {
        return Err(err(format!(
            "data is too short: shape {} of float32 needs {expected} bytes, got {}",
            py_tuple(&header.shape),
            data.len()
        )));
    }
    if data.len() > expected {
        return Err(err(format!(
            "{} trailing bytes after the {expected} bytes of data for shape {}",
            data.len() - expected,
            py_tuple(&header.shape)
        )));
    }
    // Decoded straight into the tensor: one allocation of the data's size, reserved fallibly.
    let mut tensor = Tensor::zeros(&header.shape)?;
    for (v, c) in tensor.data_mut().iter_mut().zip(data.chunks_exact(4)) {
        *v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    Ok(tensor)
}

/// The bytes of a version 1.0 `.npy` file holding `tensor`.
///
/// They are the bytes `numpy.save` writes for the same float32 array (including its switch to version
/// 2.0 for a header longer than 65535 bytes, which only a tensor of thousands of dimensions needs).
pub fn encode_npy(tensor: &Tensor) -> Vec<u8> {
    let shape = tensor.shape();
    let mut header = format!(
        "{{'descr': '{F32_DESCR}', 'fortran_order': False, 'shape': {}, }}",
        py_tuple(shape)
    );
    // NumPy's spare room so that appending along the first axis can rewrite the header in place.
    if let Some(first) = shape.first() {
        let digits = first.to_string().len();
        header.push_str(&" ".repeat(GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits)));
    }
    // Pad with spaces so that magic (6) + version (2) + length + header + '\n' is a multiple of 64.
    // Like NumPy, fall back to version 2.0 (a 4-byte length) if the header does not fit in 65535
    // bytes, which takes a tensor of thousands of dimensions.
    let padded_len = |len_bytes: usize| {
        let unpadded = MAGIC.len() + 2 + len_bytes + header.len() + 1;
        header.len() + (ARRAY_ALIGN - unpadded % ARRAY_ALIGN) + 1
    };
    let (version, len_field) = match u16::try_from(padded_len(2)) {
        Ok(len) => (1, len.to_le_bytes().to_vec()),
        Err(_) => {
            let len = u32::try_from(padded_len(4)).unwrap_or(u32::MAX);
            (2, len.to_le_bytes().to_vec())
        }
    };
    let padding = padded_len(len_field.len()) - header.len() - 1;
    header.push_str(&" ".repeat(padding));
    header.push('\n');

    let mut out = Vec::with_capacity(8 + len_field.len() + header.len() + 4 * tensor.numel());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    out.extend_from_slice(&len_field);
    out.extend_from_slice(header.as_bytes());
    for v in tensor.data() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes `tensor` as a `.npy` file, atomically: a temporary file in the same folder is renamed into
/// place, so a failure never leaves a partial file.
pub fn write_npy(path: &Path, tensor: &Tensor) -> Result<()> {
    write_atomically(path, &encode_npy(tensor)).map_err(|source| RuntimeError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `bytes` to a fresh temporary file next to `path`, then renames it over `path`; the
/// temporary file is removed if anything fails. A rename within one folder (one file system) is
/// atomic, so readers see either the old file or the complete new one.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = temp_path(path);
    let result = (|| {
        // `create_new` so that two writers (or a stale file) never share a temporary file.
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        // Best effort: the temporary file may not even have been created.
        let _ = fs::remove_file(&temp);
    }
    result
}

/// A temporary file name in `path`'s folder: `.name.tmp-<pid>-<n>`.
fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map_or_else(|| "npy".into(), |name| name.to_string_lossy());
    let temp_name = format!(".{name}.tmp-{}-{n}", std::process::id());
    match path.parent() {
        Some(parent) => parent.join(temp_name),
        None => PathBuf::from(temp_name),
    }
}

/// A shape as a Python tuple, as NumPy prints it in the header: `()`, `(5,)`, `(2, 3)`.
fn py_tuple(shape: &[usize]) -> String {
    match shape {
        [d] => format!("({d},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", dims.join(", "))
        }
    }
}

/// What a header says about the array, once checked.
struct Header {
    shape: Vec<usize>,
}

/// Parses and checks the header dict: exactly the keys `descr` (`'<f4'`), `fortran_order` (`False`)
/// and `shape` (a tuple of non-negative integers).
fn parse_header(text: &str) -> Result<Header, String> {
    let mut parser = LiteralParser {
        chars: text.chars().collect(),
        pos: 0,
    };
    let value = parser.value(0)?;
    parser.skip_whitespace();
    if parser.pos < parser.chars.len() {
        return Err(parser.error("unexpected text after the header dict"));
    }
    let Literal::Dict(entries) = value else {
        return Err(format!("header is not a dict: {}", value.repr()));
    };

    let mut descr = None;
    let mut fortran_order = None;
    let mut shape = None;
    for (key, value) in entries {
        let slot = match &key {
            Literal::Str(k) if k == "descr" => &mut descr,
            Literal::Str(k) if k == "fortran_order" => &mut fortran_order,
            Literal::Str(k) if k == "shape" => &mut shape,
            other => return Err(format!("header has an unexpected key {}", other.repr())),
        };
        if slot.replace(value).is_some() {
            return Err(format!("header has the key {} twice", key.repr()));
        }
    }
    let missing = |key: &str| format!("header has no '{key}' key");
    let descr = descr.ok_or_else(|| missing("descr"))?;
    let fortran_order = fortran_order.ok_or_else(|| missing("fortran_order"))?;
    let shape = shape.ok_or_else(|| missing("shape"))?;

    match &descr {
        Literal::Str(d) if d == F32_DESCR => {}
        other => {
            return Err(format!(
                "dtype {} is not supported; only float32 ('{F32_DESCR}')",
                other.repr()
            ))
        }
    }
    match fortran_order {
        Literal::Bool(false) => {}
        Literal::Bool(true) => {
            return Err(
                "Fortran-order (column-major) arrays are not supported; save a C-order \
                        array (numpy.ascontiguousarray)"
                    .to_string(),
            )
        }
        other => {
            return Err(format!(
                "'fortran_order' must be True or False, got {}",
                other.repr()
            ))
        }
    }
    let bad_shape = |shape: &Literal| {
        format!(
            "'shape' must be a tuple of non-negative integers, got {}",
            shape.repr()
        )
    };
    let Literal::Tuple(dims) = &shape else {
        return Err(bad_shape(&shape));
    };
    let shape = dims
        .iter()
        .map(|d| match d {
            Literal::Int(text) => text.parse::<usize>().ok(),
            _ => None,
        })
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| bad_shape(&shape))?;
    Ok(Header { shape })
}

/// The Python literals a `.npy` header can contain.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    /// `'<f4'` or `"<f4"` (no escapes are needed in headers; `\` is taken literally).
    Str(String),
    /// An integer, as written (digits with an optional `-`).
    Int(String),
    /// `True` / `False`.
    Bool(bool),
    /// `None`.
    None,
    /// `(2, 3)`, `(5,)`, `()`.
    Tuple(Vec<Literal>),
    /// `[…]` (structured dtypes' `descr` is a list).
    List(Vec<Literal>),
    /// `{key: value, …}`.
    Dict(Vec<(Literal, Literal)>),
}

impl Literal {
    /// The literal as Python would print it, for messages.
    fn repr(&self) -> String {
        let join = |items: &[Literal]| -> String {
            items
                .iter()
                .map(Literal::repr)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Literal::Str(s) => format!("'{s}'"),
            Literal::Int(s) => s.clone(),
            Literal::Bool(true) => "True".into(),
            Literal::Bool(false) => "False".into(),
            Literal::None => "None".into(),
            Literal::Tuple(items) if items.len() == 1 => format!("({},)", join(items)),
            Literal::Tuple(items) => format!("({})", join(items)),
            Literal::List(items) => format!("[{}]", join(items)),
            Literal::Dict(entries) => {
                let entries: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", k.repr(), v.repr()))
                    .collect();
                format!("{{{}}}", entries.join(", "))
            }
        }
    }
}

/// A recursive-descent parser for the subset of Python literal syntax above.
struct LiteralParser {
    chars: Vec<char>,
    pos: usize,
}

impl LiteralParser {
    fn error(&self, what: &str) -> String {
        format!("cannot parse the header at character {}: {what}", self.pos)
    }

    fn skip_whitespace(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_whitespace();
        self.chars.get(self.pos).copied()
    }

    fn value(&mut self, depth: usize) -> Result<Literal, String> {
        if depth > MAX_DEPTH {
            return Err(self.error("literals nested too deeply"));
        }
        match self.peek() {
            None => Err(self.error("unexpected end of the header")),
            Some('{') => {
                self.pos += 1;
                let mut entries = Vec::new();
                while self.peek() != Some('}') {
                    let key = self.value(depth + 1)?;
                    if self.peek() != Some(':') {
                        return Err(self.error("expected ':' after a dict key"));
                    }
                    self.pos += 1;
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                    if !self.separator('}')? {
                        break;
                    }
                }
                self.pos += 1;
                Ok(Literal::Dict(entries))
            }
            Some(open @ ('(' | '[')) => {
                self.pos += 1;
                let close = if open == '(' { ')' } else { ']' };
                let mut items = Vec::new();
                let mut trailing_comma = false;
                while self.peek() != Some(close) {
                    items.push(self.value(depth + 1)?);
                    trailing_comma = self.separator(close)?;
                    if !trailing_comma {
                        break;
                    }
                }
                self.pos += 1;
                if open == '[' {
                    Ok(Literal::List(items))
                } else if items.len() == 1 && !trailing_comma {
                    // `(x)` is just `x` in Python; only `(x,)` is a tuple.
                    Ok(items.pop().unwrap_or(Literal::None))
                } else {
                    Ok(Literal::Tuple(items))
                }
            }
            Some(quote @ ('\'' | '"')) => {
                self.pos += 1;
                let start = self.pos;
                while self.chars.get(self.pos).is_some_and(|&c| c != quote) {
                    self.pos += 1;
                }
                if self.pos >= self.chars.len() {
                    return Err(self.error("unterminated string"));
                }
                let s: String = self.chars[start..self.pos].iter().collect();
                self.pos += 1;
                Ok(Literal::Str(s))
            }
            Some(c) if c == '-' || c.is_ascii_digit() => {
                let start = self.pos;
                self.pos += 1;
                while self.chars.get(self.pos).is_some_and(char::is_ascii_digit) {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                if text == "-" {
                    return Err(self.error("expected a digit after '-'"));
                }
                // Python 2 wrote long integers with an `L` suffix.
                if self.chars.get(self.pos) == Some(&'L') {
                    self.pos += 1;
                }
                Ok(Literal::Int(text))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self
                    .chars
                    .get(self.pos)
                    .is_some_and(char::is_ascii_alphanumeric)
                {
                    self.pos += 1;
                }
                let word: String = self.chars[start..self.pos].iter().collect();
                match word.as_str() {
                    "True" => Ok(Literal::Bool(true)),
                    "False" => Ok(Literal::Bool(false)),
                    "None" => Ok(Literal::None),
                    _ => {
                        self.pos = start;
                        Err(self.error(&format!("unexpected name `{word}`")))
                    }
                }
            }
            Some(c) => Err(self.error(&format!("unexpected character {c:?}"))),
        }
    }

    /// After an item: consumes a `,` and returns whether another item may follow, or sees `close`
    /// (left for the caller) and returns `false`.
    fn separator(&mut self, close: char) -> Result<bool, String> {
        match self.peek() {
            Some(',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(c) if c == close => Ok(false),
            _ => Err(self.error(&format!("expected ',' or '{close}'"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Literal, String> {
        let mut p = LiteralParser {
            chars: text.chars().collect(),
            pos: 0,
        };
        p.value(0)
    }

    #[test]
    fn literal_parser_reads_python_tuples() {
        assert_eq!(parse("()"), Ok(Literal::Tuple(vec![])));
        assert_eq!(
            parse("(5,)"),
            Ok(Literal::Tuple(vec![Literal::Int("5".into())]))
        );
        // A parenthesised expression, not a tuple.
        assert_eq!(parse("(5)"), Ok(Literal::Int("5".into())));
        assert_eq!(
            parse(" ( 2 , 3 ) "),
            Ok(Literal::Tuple(vec![
                Literal::Int("2".into()),
                Literal::Int("3".into())
            ]))
        );
        assert_eq!(parse("3L"), Ok(Literal::Int("3".into())));
    }

    #[test]
    fn literal_parser_limits_nesting() {
        let deep = "(".repeat(100_000);
        let e = parse(&deep).unwrap_err();
        assert!(e.contains("nested too deeply"), "{e}");
    }

    #[test]
    fn header_checks() {
        let ok = parse_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
        assert_eq!(ok.map(|h| h.shape), Ok(vec![2, 3]));
        let neg = parse_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}");
        assert_eq!(
            neg.map(|h| h.shape),
            Err("'shape' must be a tuple of non-negative integers, got (-1,)".to_string())
        );
        let list = parse_header("{'descr': '<f4', 'fortran_order': False, 'shape': [2]}");
        assert!(list.is_err());
    }
}
