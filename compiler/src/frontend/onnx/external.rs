//! ONNX external data: a tensor whose bytes live in a file beside the model.
//!
//! The file named by a model is untrusted input, so it is held to four rules before a byte is read:
//! - `location` is a relative path of plain components (no `/etc/…`, no `..`), as the onnx library
//!   requires since CVE-2022-25882;
//! - its *canonical* path lies inside the model's canonical directory, so a symlink (or a symlinked
//!   folder) beside the model cannot lead to `/etc/passwd`;
//! - it is opened without blocking and must be a regular file, checked on the opened descriptor (not
//!   the path, which could be swapped in between), so a FIFO or a device cannot hang or feed Kiln;
//! - `offset` and `length` fit the file and the tensor before the buffer is allocated.

use super::error::OnnxError;
use super::proto::TensorProto;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// Reads `nbytes` of tensor `name`'s data from its external file (`location`, `offset`, `length`
/// entries), resolved relative to `base_dir`. `base_dir` is `None` for a model decoded from bytes,
/// where external data is an error.
pub(crate) fn read_external(
    t: &TensorProto,
    name: &str,
    base_dir: Option<&Path>,
    nbytes: usize,
) -> Result<Vec<u8>, OnnxError> {
    let entry = |key: &str| {
        t.external_data
            .iter()
            .find(|e| e.key.as_deref() == Some(key))
            .and_then(|e| e.value.as_deref())
    };
    let invalid = |msg: String| OnnxError::InvalidTensor {
        tensor: name.to_string(),
        msg,
    };
    let location = entry("location")
        .filter(|l| !l.is_empty())
        .ok_or_else(|| invalid("external data without a `location`".into()))?;
    let number = |key: &str| -> Result<Option<u64>, OnnxError> {
        entry(key)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| invalid(format!("external data `{key}` is not a number: {v:?}")))
            })
            .transpose()
    };
    let offset = number("offset")?.unwrap_or(0);
    let length = number("length")?;
    let err = |path: &Path, msg: String| OnnxError::ExternalData {
        tensor: name.to_string(),
        path: path.to_path_buf(),
        msg,
    };
    let Some(base_dir) = base_dir else {
        return Err(err(
            Path::new(location),
            "the model was not read from a file, so external data cannot be resolved".into(),
        ));
    };
    let path = resolve(base_dir, location).map_err(|msg| err(Path::new(location), msg))?;
    if length.is_some_and(|l| l != nbytes as u64) {
        return Err(err(
            &path,
            format!(
                "`length` is {} bytes, but dims {:?} need {nbytes}",
                length.unwrap_or(0),
                t.dims
            ),
        ));
    }
    let mut file = open_regular(&path).map_err(|msg| err(&path, msg))?;
    let file_len = file
        .metadata()
        .map_err(|e| err(&path, e.to_string()))?
        .len();
    let end = offset.checked_add(nbytes as u64);
    if end.is_none_or(|end| end > file_len) {
        return Err(err(
            &path,
            format!(
                "needs bytes {offset}..{} but the file has {file_len}",
                end.map_or_else(|| "overflow".to_string(), |e| e.to_string())
            ),
        ));
    }
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| err(&path, e.to_string()))?;
    let mut buf = Vec::new();
    buf.try_reserve_exact(nbytes)
        .map_err(|_| err(&path, format!("cannot allocate {nbytes} bytes")))?;
    buf.resize(nbytes, 0);
    file.read_exact(&mut buf)
        .map_err(|e| err(&path, e.to_string()))?;
    Ok(buf)
}

/// The canonical path of `location` under `base_dir`, or why it may not be read.
fn resolve(base_dir: &Path, location: &str) -> Result<PathBuf, String> {
    let plain = Path::new(location)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !plain {
        return Err("`location` must be a relative path inside the model's directory".into());
    }
    let dir = base_dir
        .canonicalize()
        .map_err(|e| format!("model directory {}: {e}", base_dir.display()))?;
    let path = dir.join(location).canonicalize().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "file not found".to_string()
        } else {
            e.to_string()
        }
    })?;
    if !path.starts_with(&dir) {
        return Err(format!(
            "resolves to {}, outside the model's directory {}",
            path.display(),
            dir.display()
        ));
    }
    Ok(path)
}

/// Opens `path` for reading without blocking (a FIFO would otherwise wait for a writer forever)
/// and checks, on the open file, that it is a regular file.
fn open_regular(path: &Path) -> Result<File, String> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| e.to_string())?;
    let kind = file.metadata().map_err(|e| e.to_string())?.file_type();
    if !kind.is_file() {
        return Err("not a regular file".into());
    }
    Ok(file)
}
