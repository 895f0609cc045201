//! `.safetensors` files as PyTorch writes them (`safetensors.torch.save_file(model.state_dict(), …)`):
//! tensors by `state_dict` name (`conv1.weight`). Only F32 tensors can be used; a tensor of another
//! dtype (such as BatchNorm's int64 `num_batches_tracked`) is kept as a name and dtype, and asking for
//! it is an error naming the tensor — so a whole PyTorch `state_dict` loads.
//!
//! The format: an 8-byte little-endian header length `N`, `N` bytes of UTF-8 JSON (possibly padded
//! with trailing spaces), then the data. The JSON maps each tensor name to
//! `{"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}` (offsets into the data, end
//! exclusive) and may hold a `"__metadata__"` object of strings. As the reference implementation
//! requires, the tensors must cover the data exactly: no byte outside a tensor, no two tensors sharing
//! a byte. The JSON is read by the small strict parser at the end of this file.
//!
//! [`encode_safetensors`] writes the same bytes as `safetensors.torch.save_file` for F32 tensors:
//! tensors in name order, compact JSON, the header padded with spaces to a multiple of 8 bytes.

use crate::error::{Result, RuntimeError};
use crate::tensor::Tensor;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The reserved key of the optional string-to-string metadata.
const METADATA_KEY: &str = "__metadata__";
/// JSON nested deeper than this is rejected rather than risking the stack on a hostile header.
const MAX_DEPTH: usize = 32;

/// The tensors of one `.safetensors` file.
#[derive(Debug, Clone)]
pub struct SafeTensors {
    /// The file they came from (for errors).
    pub path: PathBuf,
    /// F32 tensors by name.
    pub tensors: BTreeMap<String, Tensor>,
    /// Names of tensors of other dtypes, with their dtype (`I64`, `F16`, …).
    pub unsupported: BTreeMap<String, String>,
}

impl SafeTensors {
    /// The F32 tensor called `name`: `Ok(None)` if the file has no such tensor, an error if it has one
    /// of another dtype.
    pub fn get(&self, name: &str) -> Result<Option<&Tensor>> {
        if let Some(dtype) = self.unsupported.get(name) {
            return Err(RuntimeError::Safetensors {
                path: self.path.clone(),
                msg: format!("tensor `{name}` has dtype {dtype}; only F32 is supported"),
            });
        }
        Ok(self.tensors.get(name))
    }
}

/// Reads a `.safetensors` file.
pub fn read_safetensors(path: &Path) -> Result<SafeTensors> {
    let bytes = std::fs::read(path).map_err(|source| RuntimeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_safetensors(&bytes, path)
}

/// Reads a `.safetensors` file whose size must fit in `limit` bytes (stage `weights`), checked
/// before any of it is read. Its tensors are decoded from the file's bytes, so the stage holds
/// at most twice the file: that is what is checked.
pub fn read_safetensors_within(path: &Path, limit: u64) -> Result<SafeTensors> {
    let size = std::fs::metadata(path)
        .map_err(|source| RuntimeError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    crate::budget::check(
        "weights",
        &format!("{} ({size} bytes, decoded)", path.display()),
        size.saturating_mul(2),
        limit,
    )?;
    read_safetensors(path)
}

/// Parses the bytes of a `.safetensors` file; `path` is recorded for errors.
pub fn parse_safetensors(bytes: &[u8], path: &Path) -> Result<SafeTensors> {
    let err = |msg: String| RuntimeError::Safetensors {
        path: path.to_path_buf(),
        msg,
    };
    let Some((len_bytes, rest)) = bytes.split_first_chunk::<8>() else {
        return Err(err(format!(
            "the file is {} bytes, too short for the 8-byte header length",
            bytes.len()
        )));
    };
    let header_len = u64::from_le_bytes(*len_bytes);
    let header_end = usize::try_from(header_len)
        .ok()
        .filter(|&n| n <= rest.len())
        .ok_or_else(|| {
            err(format!(
                "the header length {header_len} runs past the end of the file ({} bytes after \
                 the length)",
                rest.len()
            ))
        })?;
    let (header, data) = rest.split_at(header_end);
    let header = std::str::from_utf8(header).map_err(|e| {
        err(format!(
            "the header is not valid UTF-8 (at header byte {})",
            e.valid_up_to()
        ))
    })?;
    let json = parse_json(header).map_err(|e| err(format!("invalid JSON header: {e}")))?;
    let Json::Object(entries) = json else {
        return Err(err("the JSON header is not an object".to_string()));
    };

    let mut infos = Vec::new();
    let mut seen = BTreeMap::new();
    for (name, value) in &entries {
        if seen.insert(name.as_str(), ()).is_some() {
            return Err(err(format!("the header names `{name}` twice")));
        }
        if name == METADATA_KEY {
            check_metadata(value).map_err(err)?;
            continue;
        }
        infos.push(tensor_info(name, value, data.len()).map_err(err)?);
    }
    check_coverage(&mut infos, data.len()).map_err(err)?;

    let mut tensors = BTreeMap::new();
    let mut unsupported = BTreeMap::new();
    for info in infos {
        if info.dtype != "F32" {
            unsupported.insert(info.name, info.dtype);
            continue;
        }
        // `tensor_info` checked that the range lies in the data and holds numel × 4 bytes.
        let values: Vec<f32> = data[info.begin..info.end]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let tensor = Tensor::from_vec(values, &info.shape)?;
        tensors.insert(info.name, tensor);
    }
    Ok(SafeTensors {
        path: path.to_path_buf(),
        tensors,
        unsupported,
    })
}

/// The bytes of a `.safetensors` file holding `tensors` (F32, in name order).
///
/// They are the bytes `safetensors.torch.save_file` writes for the same tensors. The name
/// `__metadata__` is reserved by the format for metadata, so a tensor of that name is not written.
pub fn encode_safetensors(tensors: &BTreeMap<String, Tensor>) -> Vec<u8> {
    let mut header = String::from("{");
    let mut offset = 0usize;
    let mut first = true;
    for (name, tensor) in tensors {
        if name == METADATA_KEY {
            continue;
        }
        if !first {
            header.push(',');
        }
        first = false;
        let end = offset + 4 * tensor.numel();
        let dims: Vec<String> = tensor.shape().iter().map(|d| d.to_string()).collect();
        let _ = write!(
            header,
            "{}:{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{offset},{end}]}}",
            json_string(name),
            dims.join(",")
        );
        offset = end;
    }
    header.push('}');
    // The reference implementation pads the header with spaces so that the data starts 8-aligned.
    while header.len() % 8 != 0 {
        header.push(' ');
    }

    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for (name, tensor) in tensors {
        if name != METADATA_KEY {
            for v in tensor.data() {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    out
}

/// One tensor's entry in the header, checked against itself and the data length.
struct TensorInfo {
    name: String,
    dtype: String,
    shape: Vec<usize>,
    begin: usize,
    end: usize,
}

/// Bits per element of the dtypes the format defines (`None`: a dtype this reader does not know,
/// whose size it therefore cannot check).
fn dtype_bits(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "F4" => 4,
        "F6_E2M3" | "F6_E3M2" => 6,
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 8,
        "I16" | "U16" | "F16" | "BF16" => 16,
        "I32" | "U32" | "F32" => 32,
        "I64" | "U64" | "F64" | "C64" => 64,
        _ => return None,
    })
}

/// Reads and checks one tensor entry: its keys, its offsets against `data_len` and its byte size
/// against its shape.
fn tensor_info(name: &str, value: &Json, data_len: usize) -> Result<TensorInfo, String> {
    let Json::Object(fields) = value else {
        return Err(format!("tensor `{name}`: entry is not an object"));
    };
    let field = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("tensor `{name}`: missing \"{key}\""))
    };
    let Json::String(dtype) = field("dtype")? else {
        return Err(format!("tensor `{name}`: \"dtype\" is not a string"));
    };
    let shape = usize_array(field("shape")?).ok_or_else(|| {
        format!("tensor `{name}`: \"shape\" is not an array of non-negative integers")
    })?;
    let offsets = usize_array(field("data_offsets")?);
    let Some(&[begin, end]) = offsets.as_deref() else {
        return Err(format!(
            "tensor `{name}`: \"data_offsets\" is not a pair of non-negative integers"
        ));
    };
    if begin > end || end > data_len {
        return Err(format!(
            "tensor `{name}`: data_offsets [{begin}, {end}] are out of range of the {data_len} \
             data bytes"
        ));
    }
    if let Some(bits) = dtype_bits(dtype) {
        let needed = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .and_then(|n| n.checked_mul(bits))
            .map(|b| b.div_ceil(8));
        if needed != Some(end - begin) {
            let needed = needed.map_or_else(|| "more than fit in memory".into(), |n| n.to_string());
            return Err(format!(
                "tensor `{name}`: data_offsets [{begin}, {end}] hold {} bytes but shape {} of \
                 {dtype} needs {needed}",
                end - begin,
                crate::shape::fmt_shape(&shape)
            ));
        }
    }
    Ok(TensorInfo {
        name: name.to_string(),
        dtype: dtype.clone(),
        shape,
        begin,
        end,
    })
}

/// Checks that the tensors' byte ranges neither overlap nor leave a gap in the data.
fn check_coverage(infos: &mut [TensorInfo], data_len: usize) -> Result<(), String> {
    infos.sort_by_key(|t| (t.begin, t.end));
    let mut covered = 0;
    let mut previous: Option<&TensorInfo> = None;
    for info in infos.iter() {
        if info.begin < covered {
            let other = previous.map_or("", |p| p.name.as_str());
            return Err(format!(
                "tensors `{other}` and `{}` overlap (data_offsets end at {covered} and begin at {})",
                info.name, info.begin
            ));
        }
        if info.begin > covered {
            return Err(format!(
                "data bytes {covered}..{} belong to no tensor (before tensor `{}`)",
                info.begin, info.name
            ));
        }
        covered = info.end;
        previous = Some(info);
    }
    if covered != data_len {
        return Err(format!(
            "data bytes {covered}..{data_len} belong to no tensor (after the last tensor)"
        ));
    }
    Ok(())
}

/// `__metadata__` must be an object of strings (the format's `Dict[str, str]`).
fn check_metadata(value: &Json) -> Result<(), String> {
    match value {
        Json::Object(entries) => {
            match entries.iter().find(|(_, v)| !matches!(v, Json::String(_))) {
                Some((key, _)) => Err(format!("__metadata__ entry \"{key}\" is not a string")),
                None => Ok(()),
            }
        }
        _ => Err("__metadata__ is not an object".to_string()),
    }
}

/// An array of non-negative integers, or `None`.
fn usize_array(value: &Json) -> Option<Vec<usize>> {
    match value {
        Json::Array(items) => items
            .iter()
            .map(|item| match item {
                // JSON's integer grammar with no sign, fraction or exponent is exactly what `parse`
                // accepts, so `1.0`, `-1` and `1e3` are all rejected here.
                Json::Number(text) => text.parse::<usize>().ok(),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// `s` as a JSON string literal, escaped as `serde_json` (and so the reference writer) escapes it.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON value. Objects keep their entries in order (and any duplicates, which the caller rejects);
/// numbers keep their text so that large integers are not rounded through `f64`.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// Parses one JSON document (RFC 8259) with nothing but whitespace around it. Errors name the byte
/// position in `text`.
fn parse_json(text: &str) -> Result<Json, String> {
    let mut parser = JsonParser {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let value = parser.value(0)?;
    parser.skip_whitespace();
    if parser.pos < parser.bytes.len() {
        return Err(parser.error("unexpected text after the JSON value"));
    }
    Ok(value)
}

/// A recursive-descent JSON parser over bytes (the input is known to be UTF-8, and every token
/// boundary it stops at is an ASCII byte, so slicing between them stays on character boundaries).
struct JsonParser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl JsonParser<'_> {
    fn error(&self, what: &str) -> String {
        format!("at byte {}: {what}", self.pos)
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.bytes.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.bytes.get(self.pos).copied()
    }

    /// Consumes `byte` (after whitespace) or fails with `what`.
    fn expect(&mut self, byte: u8, what: &str) -> Result<(), String> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        match self.peek() {
            None => Err(self.error("unexpected end of the header")),
            Some(b'{') => {
                self.pos += 1;
                let mut entries = Vec::new();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(Json::Object(entries));
                }
                loop {
                    if self.peek() != Some(b'"') {
                        return Err(self.error("expected a string key"));
                    }
                    let key = self.string()?;
                    self.expect(b':', "expected ':' after an object key")?;
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Json::Object(entries));
                        }
                        _ => return Err(self.error("expected ',' or '}' in an object")),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Json::Array(items));
                        }
                        _ => return Err(self.error("expected ',' or ']' in an array")),
                    }
                }
            }
            Some(b'"') => self.string().map(Json::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.keyword("true", Json::Bool(true)),
            Some(b'f') => self.keyword("false", Json::Bool(false)),
            Some(b'n') => self.keyword("null", Json::Null),
            Some(_) => Err(self.error("expected a JSON value")),
        }
    }

    fn keyword(&mut self, word: &str, value: Json) -> Result<Json, String> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("expected a JSON value"))
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, kept as text.
    fn number(&mut self) -> Result<Json, String> {
        let start = self.pos;
        if self.bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match self.bytes.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("expected a digit")),
        }
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if !self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
                return Err(self.error("expected a digit after '.'"));
            }
            self.digits();
        }
        if matches!(self.bytes.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.bytes.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
                return Err(self.error("expected a digit in the exponent"));
            }
            self.digits();
        }
        let text = String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned();
        Ok(Json::Number(text))
    }

    fn digits(&mut self) {
        while self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
    }

    /// A string starting at the opening quote under `pos`.
    fn string(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            // Copy the run of plain characters up to the next quote, backslash or control byte.
            let start = self.pos;
            while self
                .bytes
                .get(self.pos)
                .is_some_and(|&b| b != b'"' && b != b'\\' && b >= 0x20)
            {
                self.pos += 1;
            }
            out.push_str(&String::from_utf8_lossy(&self.bytes[start..self.pos]));
            match self.bytes.get(self.pos) {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = match self.bytes.get(self.pos) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{08}',
                        Some(b'f') => '\u{0c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            out.push(self.unicode_escape()?);
                            continue;
                        }
                        _ => return Err(self.error("invalid escape in a string")),
                    };
                    self.pos += 1;
                    out.push(escaped);
                }
                Some(_) => return Err(self.error("control character in a string")),
            }
        }
    }

    /// The character of a `\uXXXX` escape (the `\u` already consumed), joining a UTF-16 surrogate
    /// pair written as two escapes.
    fn unicode_escape(&mut self) -> Result<char, String> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if !self.bytes[self.pos..].starts_with(b"\\u") {
                    return Err(self.error("unpaired surrogate in a \\u escape"));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("unpaired surrogate in a \\u escape"));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("unpaired surrogate in a \\u escape")),
            code => code,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid \\u escape"))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error("expected four hex digits after \\u"))?;
        let code = u32::from_str_radix(digits, 16).map_err(|_| self.error("bad hex digits"))?;
        self.pos += 4;
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> Json {
        Json::Number(s.to_string())
    }

    #[test]
    fn json_values() {
        assert_eq!(
            parse_json(r#" {"a": [1, -2.5e3, true, false, null], "b": {}} "#),
            Ok(Json::Object(vec![
                (
                    "a".into(),
                    Json::Array(vec![
                        num("1"),
                        num("-2.5e3"),
                        Json::Bool(true),
                        Json::Bool(false),
                        Json::Null
                    ])
                ),
                ("b".into(), Json::Object(vec![])),
            ]))
        );
    }

    #[test]
    fn json_string_escapes() {
        // "\u00e9" is é; "\ud83d\ude00" is the surrogate pair of U+1F600.
        assert_eq!(
            parse_json(r#""a\"b\\c\/\n\t\u00e9\ud83d\ude00ü""#),
            Ok(Json::String("a\"b\\c/\n\té\u{1F600}ü".into()))
        );
        for bad in [
            r#""\ud83d""#,
            r#""\ude00""#,
            r#""\x""#,
            "\"a\u{1}\"",
            r#""\u12""#,
        ] {
            assert!(parse_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_rejects_what_rfc_8259_rejects() {
        for (bad, pos) in [
            ("[1,]", 3),
            ("{\"a\":1,}", 7),
            ("01", 1),
            ("1.", 2),
            ("-", 1),
            ("[1 2]", 3),
            ("{'a': 1}", 1),
            ("tru", 0),
            ("[", 1),
            ("{} x", 3),
            ("\"abc", 4),
        ] {
            let e = parse_json(bad).unwrap_err();
            assert!(e.starts_with(&format!("at byte {pos}:")), "{bad}: {e}");
        }
    }

    #[test]
    fn json_depth_is_limited() {
        let e = parse_json(&"[".repeat(100_000)).unwrap_err();
        assert!(e.contains("nested too deeply"), "{e}");
    }

    #[test]
    fn json_string_escaping_round_trips() {
        let name = "a\"b\\c\n\u{1}é";
        assert_eq!(json_string(name), r#""a\"b\\c\n\u0001é""#);
        assert_eq!(
            parse_json(&json_string(name)),
            Ok(Json::String(name.into()))
        );
    }
}
