//! Reading ONNX files: protobuf decoding, the opset check, and tensor data (raw bytes, typed
//! fields or an external data file) into [`ConstTensor`]s.
//!
//! Everything read from the file is untrusted: sizes are checked against the bytes actually
//! present (and against [`MAX_ELEMENTS`](super::MAX_ELEMENTS)) before anything is allocated.

use super::constant::{checked_numel, ConstTensor};
use super::error::OnnxError;
use super::proto::{tensor_proto::DataType, ModelProto, TensorProto};
use prost::Message;
use std::path::Path;

/// The opsets of the default domain Kiln imports.
pub(crate) const OPSETS: std::ops::RangeInclusive<i64> = 13..=21;

/// Reads a whole file.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, OnnxError> {
    std::fs::read(path).map_err(|e| OnnxError::Io {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })
}

/// Decodes a `ModelProto`; bytes that are not one are [`OnnxError::Malformed`].
pub(crate) fn decode_model(bytes: &[u8]) -> Result<ModelProto, OnnxError> {
    let model = ModelProto::decode(bytes)
        .map_err(|e| OnnxError::Malformed(format!("not an ONNX protobuf: {e}")))?;
    if model.graph.is_none() {
        return Err(OnnxError::Malformed("the model has no graph".into()));
    }
    Ok(model)
}

/// The version of the default-domain opset the model imports, if it is one Kiln supports.
pub(crate) fn check_opset(model: &ModelProto) -> Result<i64, OnnxError> {
    let default = model
        .opset_import
        .iter()
        .find(|o| matches!(o.domain.as_deref(), None | Some("") | Some("ai.onnx")));
    let version = default.and_then(|o| o.version).unwrap_or(0);
    if OPSETS.contains(&version) {
        Ok(version)
    } else {
        Err(OnnxError::Opset { version })
    }
}

/// The ONNX name of an element type code (`FLOAT`, `DOUBLE`, …).
pub(crate) fn dtype_name(code: i32) -> String {
    DataType::try_from(code).map_or_else(
        |_| format!("unknown type {code}"),
        |d| d.as_str_name().to_string(),
    )
}

/// The name of a tensor for messages (`<unnamed>` when it has none).
pub(crate) fn tensor_name(t: &TensorProto) -> String {
    match t.name.as_deref() {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => "<unnamed>".to_string(),
    }
}

/// Decodes a tensor's data. `name` is used in errors; `base_dir` resolves external data (it is
/// `None` for a model decoded from bytes, where external data is an error). Element types other
/// than `FLOAT` and `INT64` are [`OnnxError::DataType`].
pub(crate) fn read_tensor(
    t: &TensorProto,
    name: &str,
    base_dir: Option<&Path>,
) -> Result<ConstTensor, OnnxError> {
    let invalid = |msg: String| OnnxError::InvalidTensor {
        tensor: name.to_string(),
        msg,
    };
    let shape: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| invalid(format!("negative dimension {d}"))))
        .collect::<Result<_, _>>()?;
    let numel = checked_numel(&shape).ok_or_else(|| OnnxError::TooLarge {
        what: format!("tensor `{name}` of dims {:?}", t.dims),
        limit: super::MAX_ELEMENTS,
    })?;
    if t.segment.is_some() {
        return Err(invalid("segmented tensors are not supported".into()));
    }
    let code = t.data_type.unwrap_or(0);
    let width = match DataType::try_from(code) {
        Ok(DataType::Float) => 4,
        Ok(DataType::Int64) => 8,
        _ => {
            return Err(OnnxError::DataType {
                tensor: name.to_string(),
                dtype: dtype_name(code),
            })
        }
    };
    let external =
        t.data_location == Some(super::proto::tensor_proto::DataLocation::External as i32);
    let external_bytes;
    let bytes: Option<&[u8]> = if external {
        external_bytes = super::external::read_external(t, name, base_dir, numel * width)?;
        Some(&external_bytes)
    } else {
        t.raw_data
            .as_deref()
            .filter(|r| !r.is_empty() || numel == 0)
    };
    if let Some(bytes) = bytes {
        if bytes.len() != numel * width {
            return Err(invalid(format!(
                "raw data has {} bytes, but dims {:?} need {}",
                bytes.len(),
                t.dims,
                numel * width
            )));
        }
        return Ok(if width == 4 {
            let v = bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            ConstTensor::f32(shape, v)
        } else {
            let v = bytes
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect();
            ConstTensor::i64(shape, v)
        });
    }
    let (got, field) = if width == 4 {
        (t.float_data.len(), "float_data")
    } else {
        (t.int64_data.len(), "int64_data")
    };
    if got != numel {
        return Err(invalid(format!(
            "{field} has {got} values, but dims {:?} need {numel}",
            t.dims
        )));
    }
    Ok(if width == 4 {
        ConstTensor::f32(shape, t.float_data.clone())
    } else {
        ConstTensor::i64(shape, t.int64_data.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::onnx::proto::{OperatorSetIdProto, StringStringEntryProto};

    fn float_tensor(dims: Vec<i64>) -> TensorProto {
        TensorProto {
            name: Some("w".into()),
            dims,
            data_type: Some(DataType::Float as i32),
            ..Default::default()
        }
    }

    #[test]
    fn raw_and_float_data() {
        let mut t = float_tensor(vec![2]);
        t.raw_data = Some([1.5f32.to_le_bytes(), (-2.0f32).to_le_bytes()].concat());
        assert_eq!(
            read_tensor(&t, "w", None).unwrap().as_f32().unwrap(),
            &[1.5, -2.0]
        );
        let mut t = float_tensor(vec![2]);
        t.float_data = vec![3.0, 4.0];
        assert_eq!(
            read_tensor(&t, "w", None).unwrap().as_f32().unwrap(),
            &[3.0, 4.0]
        );
        t.float_data = vec![3.0];
        let e = read_tensor(&t, "w", None).unwrap_err().to_string();
        assert!(
            e.contains("float_data has 1 values") && e.contains("need 2"),
            "{e}"
        );
    }

    #[test]
    fn bad_dims_and_types() {
        let t = float_tensor(vec![-1]);
        assert!(matches!(
            read_tensor(&t, "w", None),
            Err(OnnxError::InvalidTensor { .. })
        ));
        let t = float_tensor(vec![1 << 40, 1 << 40]);
        assert!(matches!(
            read_tensor(&t, "w", None),
            Err(OnnxError::TooLarge { .. })
        ));
        let mut t = float_tensor(vec![1]);
        t.data_type = Some(DataType::Double as i32);
        let e = read_tensor(&t, "w", None).unwrap_err();
        assert_eq!(
            e,
            OnnxError::DataType {
                tensor: "w".into(),
                dtype: "DOUBLE".into()
            }
        );
    }

    #[test]
    fn external_data_offset_and_missing_file() {
        let dir = std::env::temp_dir().join(format!("kiln-onnx-reader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // 4 junk bytes, then 7.0 and 8.0.
        let bytes = [
            vec![0u8; 4],
            7f32.to_le_bytes().to_vec(),
            8f32.to_le_bytes().to_vec(),
        ]
        .concat();
        std::fs::write(dir.join("w.bin"), bytes).unwrap();
        let kv = |k: &str, v: &str| StringStringEntryProto {
            key: Some(k.into()),
            value: Some(v.into()),
        };
        let mut t = float_tensor(vec![2]);
        t.data_location = Some(1);
        t.external_data = vec![
            kv("location", "w.bin"),
            kv("offset", "4"),
            kv("length", "8"),
        ];
        let c = read_tensor(&t, "w", Some(&dir)).unwrap();
        assert_eq!(c.as_f32().unwrap(), &[7.0, 8.0]);
        // Past the end of the file.
        t.external_data = vec![kv("location", "w.bin"), kv("offset", "8")];
        let e = read_tensor(&t, "w", Some(&dir)).unwrap_err().to_string();
        assert!(e.contains("needs bytes 8..16 but the file has 12"), "{e}");
        t.external_data = vec![kv("location", "nope.bin")];
        let e = read_tensor(&t, "w", Some(&dir)).unwrap_err().to_string();
        assert!(
            e.contains("nope.bin") && e.contains("file not found"),
            "{e}"
        );
        assert!(read_tensor(&t, "w", None).is_err());
        // Paths leaving the model's directory are refused.
        for bad in ["/etc/passwd", "../w.bin", "sub/../../w.bin"] {
            t.external_data = vec![kv("location", bad)];
            let e = read_tensor(&t, "w", Some(&dir)).unwrap_err().to_string();
            assert!(e.contains("must be a relative path inside"), "{e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn opsets() {
        let mut m = ModelProto::default();
        let set = |v| OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(v),
        };
        assert_eq!(check_opset(&m), Err(OnnxError::Opset { version: 0 }));
        for v in [13, 17, 21] {
            m.opset_import = vec![set(v)];
            assert_eq!(check_opset(&m), Ok(v));
        }
        m.opset_import = vec![set(12)];
        let e = check_opset(&m).unwrap_err().to_string();
        assert!(e.contains("opset 12"), "{e}");
        m.opset_import = vec![set(22)];
        assert!(check_opset(&m).is_err());
    }
}
