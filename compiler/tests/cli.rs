//! The `kiln` binary end to end: a real run against PyTorch's output, and every kind of bad input
//! giving one `error: …` line with exit status 1 and no output file.

mod common;

use common::{assert_error, assert_npy_matches, assert_success, golden, kiln, s, scratch};
use kiln_runtime::io::npy::{encode_npy, read_npy};
use kiln_runtime::io::safetensors::encode_safetensors;
use kiln_runtime::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const RELU_2X3: &str =
    "graph relu_2x3(%x: f32[2, 3]) {\n  %y = relu(%x) : f32[2, 3]\n  return %y\n}\n";

const CONV: &str = "graph conv(%x: f32[1, 2, 4, 4]) {
  param %conv.weight: f32[3, 2, 3, 3]
  param %conv.bias: f32[3]
  %conv = conv2d(%x, %conv.weight, %conv.bias) {stride=[1, 1], padding=[1, 1, 1, 1], dilation=[1, 1], groups=1} : f32[1, 3, 4, 4]
  return %conv
}
";

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write fixture");
    p
}

fn conv_weights(weight_shape: &[usize]) -> Vec<u8> {
    let mut m = BTreeMap::new();
    m.insert(
        "conv.weight".to_string(),
        Tensor::full(weight_shape, 0.5).unwrap(),
    );
    m.insert("conv.bias".to_string(), Tensor::full(&[3], 1.0).unwrap());
    encode_safetensors(&m)
}

#[test]
fn run_simple_cnn_matches_pytorch() {
    let case = "simple_cnn_batch2";
    let dir = scratch("simple_cnn");
    let out_path = dir.join("y.npy");
    let out = kiln(&[
        "run",
        &golden(case, "model.kiln"),
        "--weights",
        &golden(case, "weights.safetensors"),
        "--input",
        &golden(case, "input.npy"),
        "--output",
        s(&out_path),
    ]);
    assert_success(&out);
    assert_npy_matches(&out_path, Path::new(&golden(case, "expected.npy")), case);
}

#[test]
fn run_relu_by_input_name() {
    let dir = scratch("relu_named");
    let model = write(&dir, "m.kiln", RELU_2X3);
    let x = Tensor::from_vec(vec![-1.0, 2.0, -3.0, 4.0, -5.0, 6.0], &[2, 3]).unwrap();
    let xp = write(&dir, "x.npy", encode_npy(&x));
    let yp = dir.join("y.npy");
    let out = kiln(&[
        "run",
        s(&model),
        "--input",
        &format!("x={}", s(&xp)),
        "--output",
        s(&yp),
    ]);
    assert_success(&out);
    assert_eq!(
        read_npy(&yp).unwrap().data(),
        &[0.0, 2.0, 0.0, 4.0, 0.0, 6.0]
    );
}

#[test]
fn compile_emit_ir_prints_the_graph() {
    let dir = scratch("emit_ir");
    let model = write(&dir, "m.kiln", RELU_2X3);
    // At -O0 the printed graph is the input, character for character.
    let out = kiln(&["compile", s(&model), "--emit", "ir", "-O0"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), RELU_2X3);
    // At -O2 the relu may not write over the caller's input, and the IR says why.
    let out = kiln(&["compile", s(&model), "--emit", "ir"]);
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("%y = relu(%x) : f32[2, 3]  ; not in place: %x is a graph input"));
}

#[test]
fn malformed_text_ir_names_file_line_and_column() {
    let dir = scratch("malformed");
    let model = write(
        &dir,
        "bad.kiln",
        "graph g(%x: f32[2, 3]) {\n  %y = relu(%x : f32[2, 3]\n  return %y\n}\n",
    );
    let out = kiln(&["compile", s(&model)]);
    assert_error(&out, &["bad.kiln:2:"]);
}

#[test]
fn unknown_op_is_reported_with_its_place() {
    let dir = scratch("unknown_op");
    let model = write(
        &dir,
        "m.kiln",
        "graph g(%x: f32[2, 3]) {\n  %y = frobnicate(%x) : f32[2, 3]\n  return %y\n}\n",
    );
    assert_error(
        &kiln(&["compile", s(&model)]),
        &["m.kiln:2:8", "frobnicate"],
    );
}

#[test]
fn shape_mismatch_names_node_expected_and_got() {
    let dir = scratch("shape_mismatch");
    // The weight wants 2 input channels; the input has 5.
    let model = write(
        &dir,
        "m.kiln",
        CONV.replace("f32[1, 2, 4, 4]", "f32[1, 5, 4, 4]"),
    );
    assert_error(
        &kiln(&["compile", s(&model)]),
        &["m.kiln:4:", "%conv", "expected", "got"],
    );
}

#[test]
fn missing_weight_is_named() {
    let dir = scratch("missing_weight");
    let model = write(&dir, "m.kiln", CONV);
    let mut m = BTreeMap::new();
    m.insert(
        "conv.weight".to_string(),
        Tensor::full(&[3, 2, 3, 3], 0.5).unwrap(),
    );
    let w = write(&dir, "w.safetensors", encode_safetensors(&m));
    assert_error(
        &kiln(&["compile", s(&model), "--weights", s(&w)]),
        &["conv.bias", "w.safetensors"],
    );
    // No weights at all: running needs them.
    let x = write(
        &dir,
        "x.npy",
        encode_npy(&Tensor::zeros(&[1, 2, 4, 4]).unwrap()),
    );
    let y = dir.join("y.npy");
    assert_error(
        &kiln(&["run", s(&model), "--input", s(&x), "--output", s(&y)]),
        &["missing weight `conv.weight`"],
    );
    assert!(!y.exists(), "no output file after a failure");
}

#[test]
fn weight_of_the_wrong_shape_is_named() {
    let dir = scratch("wrong_weight");
    let model = write(&dir, "m.kiln", CONV);
    let w = write(&dir, "w.safetensors", conv_weights(&[3, 2, 5, 5]));
    assert_error(
        &kiln(&["compile", s(&model), "--weights", s(&w)]),
        &[
            "conv.weight",
            "expected shape [3, 2, 3, 3]",
            "got [3, 2, 5, 5]",
        ],
    );
}

#[test]
fn wrong_input_shape_at_run_time() {
    let dir = scratch("wrong_input");
    let model = write(&dir, "m.kiln", CONV);
    let w = write(&dir, "w.safetensors", conv_weights(&[3, 2, 3, 3]));
    let x = write(
        &dir,
        "x.npy",
        encode_npy(&Tensor::zeros(&[1, 2, 5, 5]).unwrap()),
    );
    let y = dir.join("y.npy");
    let out = kiln(&[
        "run",
        s(&model),
        "--weights",
        s(&w),
        "--input",
        s(&x),
        "--output",
        s(&y),
    ]);
    assert_error(
        &out,
        &[
            "input `x`",
            "expected shape [1, 2, 4, 4]",
            "got [1, 2, 5, 5]",
        ],
    );
    assert!(!y.exists());
}

#[test]
fn truncated_and_wrong_dtype_npy() {
    let dir = scratch("bad_npy");
    let model = write(&dir, "m.kiln", RELU_2X3);
    let good = encode_npy(&Tensor::zeros(&[2, 3]).unwrap());
    let truncated = write(&dir, "trunc.npy", &good[..good.len() - 5]);
    let y = dir.join("y.npy");
    assert_error(
        &kiln(&[
            "run",
            s(&model),
            "--input",
            s(&truncated),
            "--output",
            s(&y),
        ]),
        &["trunc.npy"],
    );
    // Same file with the header's dtype changed to float64 (same length, so only the dtype is off).
    let at = good
        .windows(3)
        .position(|w| w == b"<f4")
        .expect("dtype in header");
    let mut f8 = good.clone();
    f8[at..at + 3].copy_from_slice(b"<f8");
    let wrong = write(&dir, "f8.npy", &f8);
    assert_error(
        &kiln(&["run", s(&model), "--input", s(&wrong), "--output", s(&y)]),
        &["f8.npy", "<f8"],
    );
    assert!(!y.exists());
}

#[test]
fn corrupt_safetensors() {
    let dir = scratch("bad_safetensors");
    let model = write(&dir, "m.kiln", CONV);
    let mut bytes = conv_weights(&[3, 2, 3, 3]);
    bytes.truncate(bytes.len() / 2);
    let w = write(&dir, "w.safetensors", bytes);
    assert_error(
        &kiln(&["compile", s(&model), "--weights", s(&w)]),
        &["w.safetensors"],
    );
    let garbage = write(
        &dir,
        "g.safetensors",
        b"\xff\xff\xff\xff\xff\xff\xff\x7fgarbage",
    );
    assert_error(
        &kiln(&["compile", s(&model), "--weights", s(&garbage)]),
        &["g.safetensors"],
    );
}

#[test]
fn nonexistent_files() {
    let dir = scratch("missing_files");
    let model = write(&dir, "m.kiln", RELU_2X3);
    let nope = dir.join("nope");
    let y = dir.join("y.npy");
    let x = write(&dir, "x.npy", encode_npy(&Tensor::zeros(&[2, 3]).unwrap()));
    let missing_model = format!("{}.kiln", s(&nope));
    assert_error(&kiln(&["compile", &missing_model]), &["nope.kiln"]);
    let missing_input = format!("{}.npy", s(&nope));
    assert_error(
        &kiln(&[
            "run",
            s(&model),
            "--input",
            &missing_input,
            "--output",
            s(&y),
        ]),
        &["nope.npy"],
    );
    let missing_weights = format!("{}.safetensors", s(&nope));
    assert_error(
        &kiln(&["compile", s(&model), "--weights", &missing_weights]),
        &["nope.safetensors"],
    );
    // An output in a folder that does not exist: an error, and nothing written anywhere.
    let bad_out = dir.join("no_such_dir").join("y.npy");
    assert_error(
        &kiln(&["run", s(&model), "--input", s(&x), "--output", s(&bad_out)]),
        &["y.npy"],
    );
    assert!(!bad_out.exists());
}

#[test]
fn usage_errors_exit_1() {
    let dir = scratch("usage");
    let model = write(&dir, "m.kiln", RELU_2X3);
    assert_error(&kiln(&["frobnicate"]), &["frobnicate"]);
    assert_error(
        &kiln(&["compile", s(&write(&dir, "m.txt", RELU_2X3))]),
        &["unknown model format"],
    );
    let x = write(&dir, "x.npy", encode_npy(&Tensor::zeros(&[2, 3]).unwrap()));
    let y = dir.join("y.npy");
    let z = dir.join("z.npy");
    assert_error(
        &kiln(&[
            "run",
            s(&model),
            "--input",
            s(&x),
            "--output",
            s(&y),
            "--output",
            s(&z),
        ]),
        &["1 output(s), 2 --output given"],
    );
    assert!(!y.exists() && !z.exists());
    let help = kiln(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
}
