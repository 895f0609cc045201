//! ONNX external data from hostile files (F7): only regular files whose canonical path lies inside
//! the model's directory are read, with `offset` and `length` checked against the file; a symlink
//! out, `..`, an absolute path, a FIFO, a directory or a short file are refused with an error naming
//! the tensor, never read and never waited on.

mod common;

use common::onnx_build::*;
use common::{kiln, s, scratch};
use kiln::frontend::onnx::load_onnx;
use kiln::frontend::onnx::proto::{ModelProto, StringStringEntryProto};
use kiln_runtime::Tensor;
use prost::Message;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A 1×1 conv with four output channels whose weight `w` ([4,1,1,1]) is external data with these
/// entries; the model is written to `dir/model.onnx`, whose path is returned.
fn write_model(dir: &Path, entries: &[(&str, &str)]) -> PathBuf {
    let mut m: ModelProto = model(
        vec![input("x", &[1, 1, 1, 1])],
        vec![f32_tensor("w", &[4, 1, 1, 1], &[0.0; 4])],
        vec![node("Conv", &["x", "w"], &["y"], vec![])],
        &["y"],
    );
    let Some(graph) = m.graph.as_mut() else {
        panic!("model() builds a graph")
    };
    let w = &mut graph.initializer[0];
    w.raw_data = None;
    w.data_location = Some(1);
    w.external_data = entries
        .iter()
        .map(|(k, v)| StringStringEntryProto {
            key: Some(k.to_string()),
            value: Some(v.to_string()),
        })
        .collect();
    let path = dir.join("model.onnx");
    std::fs::write(&path, m.encode_to_vec()).expect("write model");
    path
}

const WEIGHTS: [f32; 4] = [1.5, -2.0, 3.25, 4.0];

fn weight_bytes() -> Vec<u8> {
    WEIGHTS.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Imports and runs the model on an input of 1.0: the output is the weights themselves.
fn run(model: &Path) -> Result<Vec<f32>, String> {
    let g = load_onnx(model, &BTreeMap::new()).map_err(|e| e.to_string())?;
    let x = Tensor::from_slice(&[1.0], &[1, 1, 1, 1]).map_err(|e| e.to_string())?;
    let y = kiln::run_interpreter(&g, &[x]).map_err(|e| e.to_string())?;
    Ok(y[0].data().to_vec())
}

/// Asserts the import fails with an error naming the tensor and containing `fragment`.
fn assert_refused(model: &Path, fragment: &str) {
    match run(model) {
        Ok(y) => panic!("expected a refusal ({fragment}), got {y:?}"),
        Err(msg) => {
            assert!(msg.contains("`w`") && msg.contains(fragment), "{msg}");
            assert!(!msg.contains('\n'), "one line: {msg}");
        }
    }
}

#[test]
fn a_regular_file_inside_is_read_and_matches_inline_data() {
    let dir = scratch("regular");
    std::fs::write(dir.join("w.bin"), weight_bytes()).expect("write");
    let m = write_model(&dir, &[("location", "w.bin"), ("length", "16")]);
    assert_eq!(run(&m), Ok(WEIGHTS.to_vec()));
    // In a subfolder, and through a symlink that stays inside the directory.
    std::fs::create_dir(dir.join("data")).expect("mkdir");
    std::fs::write(dir.join("data/w.bin"), weight_bytes()).expect("write");
    std::os::unix::fs::symlink("data/w.bin", dir.join("link.bin")).expect("symlink");
    let m = write_model(&dir, &[("location", "./data/w.bin")]);
    assert_eq!(run(&m), Ok(WEIGHTS.to_vec()));
    let m = write_model(&dir, &[("location", "link.bin")]);
    assert_eq!(run(&m), Ok(WEIGHTS.to_vec()));
}

#[test]
fn offset_and_length_select_the_bytes_and_must_fit() {
    let dir = scratch("offset");
    let mut bin = vec![0xAA; 5];
    bin.extend(weight_bytes());
    std::fs::write(dir.join("w.bin"), &bin).expect("write");
    let m = write_model(&dir, &[("location", "w.bin"), ("offset", "5")]);
    assert_eq!(run(&m), Ok(WEIGHTS.to_vec()));
    let m = write_model(&dir, &[("location", "w.bin"), ("offset", "6")]);
    assert_refused(&m, "needs bytes 6..22 but the file has 21");
    let m = write_model(
        &dir,
        &[("location", "w.bin"), ("offset", "18446744073709551615")],
    );
    assert_refused(&m, "overflow");
    let m = write_model(&dir, &[("location", "w.bin"), ("length", "12")]);
    assert_refused(&m, "`length` is 12 bytes");
    let m = write_model(&dir, &[("location", "w.bin"), ("offset", "-1")]);
    assert_refused(&m, "`offset` is not a number");
}

#[test]
fn a_symlink_out_of_the_directory_is_refused() {
    let dir = scratch("symlink_out");
    let outside = scratch("symlink_out_target");
    std::fs::write(outside.join("secret.bin"), weight_bytes()).expect("write");
    std::os::unix::fs::symlink(outside.join("secret.bin"), dir.join("w.bin")).expect("symlink");
    let m = write_model(&dir, &[("location", "w.bin")]);
    assert_refused(&m, "outside the model's directory");
    // A symlinked folder leads out just the same.
    std::os::unix::fs::symlink(&outside, dir.join("sub")).expect("symlink");
    let m = write_model(&dir, &[("location", "sub/secret.bin")]);
    assert_refused(&m, "outside the model's directory");
    // The reproducer's target.
    std::os::unix::fs::symlink("/etc/passwd", dir.join("passwd.bin")).expect("symlink");
    let m = write_model(&dir, &[("location", "passwd.bin")]);
    assert_refused(&m, "outside the model's directory");
}

#[test]
fn parent_and_absolute_locations_are_refused() {
    let dir = scratch("parent");
    std::fs::create_dir(dir.join("m")).expect("mkdir");
    std::fs::write(dir.join("w.bin"), weight_bytes()).expect("write");
    let m = write_model(&dir.join("m"), &[("location", "../w.bin")]);
    assert_refused(&m, "relative path inside the model's directory");
    let abs = dir.join("w.bin");
    let m = write_model(&dir.join("m"), &[("location", s(&abs))]);
    assert_refused(&m, "relative path inside the model's directory");
}

#[test]
fn a_fifo_or_a_directory_is_refused_without_waiting() {
    let dir = scratch("fifo");
    let fifo = dir.join("pipe.bin");
    let c = std::ffi::CString::new(s(&fifo)).expect("path");
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    // Opening a FIFO for reading blocks until a writer comes; none ever will, so a hang here
    // would show as a test that never ends.
    let m = write_model(&dir, &[("location", "pipe.bin")]);
    assert_refused(&m, "not a regular file");
    std::fs::create_dir(dir.join("folder.bin")).expect("mkdir");
    let m = write_model(&dir, &[("location", "folder.bin")]);
    assert_refused(&m, "not a regular file");
    let m = write_model(&dir, &[("location", "missing.bin")]);
    assert_refused(&m, "file not found");
}

#[test]
fn the_cli_prints_one_error_line_and_writes_nothing() {
    let dir = scratch("cli");
    std::os::unix::fs::symlink("/etc/passwd", dir.join("w.bin")).expect("symlink");
    let m = write_model(&dir, &[("location", "w.bin")]);
    let x = dir.join("x.npy");
    kiln_runtime::io::npy::write_npy(&x, &Tensor::from_slice(&[1.0], &[1, 1, 1, 1]).expect("x"))
        .expect("write x");
    let y = dir.join("leak.npy");
    let out = kiln(&["run", s(&m), "--input", s(&x), "--output", s(&y)]);
    common::assert_error(&out, &["`w`", "outside the model's directory"]);
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    assert!(!y.exists(), "no output may be written");
}
