//! ONNX models through the `kiln` binary: PyTorch exports run and match PyTorch; symbolic batch
//! dimensions are specialised; bad files give one `error:` line and exit status 1.

mod common;

use common::{
    assert_error, assert_npy_matches, assert_success, golden, kiln, s, scratch, FIXTURES,
};
use std::path::Path;

/// Runs `model` on the case's input and compares with PyTorch's output.
fn run_matches(case: &str, model: &str, extra: &[&str]) {
    let dir = scratch(&format!("{case}-{model}"));
    let y = dir.join("y.npy");
    let mut args = vec![
        "run".to_string(),
        golden(case, model),
        "--input".to_string(),
        golden(case, "input.npy"),
        "--output".to_string(),
        s(&y).to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_success(&kiln(&args));
    let expected = golden(case, "expected.npy");
    assert_npy_matches(&y, Path::new(&expected), &format!("{case}/{model}"));
}

#[test]
fn pytorch_exports_run_and_match() {
    run_matches("simple_cnn_batch2", "model.onnx", &[]);
    run_matches("mini_resnet", "model.onnx", &["-O0"]);
    run_matches("mini_resnet", "model.onnx", &["-O2"]);
    run_matches("act_gelu", "model_opset20.onnx", &[]);
    // The batch dimension is symbolic: it takes the input file's.
    run_matches("simple_cnn_batch2", "model_dynamic.onnx", &[]);
}

#[test]
fn symbolic_dimensions_need_a_shape_to_compile() {
    let model = golden("simple_cnn_batch2", "model_dynamic.onnx");
    assert_error(
        &kiln(&["compile", &model, "--emit", "ir"]),
        &["input `x` has symbolic dimensions [N, 3, 32, 32]"],
    );
    let out = kiln(&["compile", &model, "--shape", "x=4x3x32x32", "--emit", "ir"]);
    let ir = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(ir.contains("(%x: f32[4, 3, 32, 32])"), "{ir}");
    // ONNX value names are kept where they are identifiers; parameters keep state_dict names.
    assert!(ir.contains("param %conv1.weight: f32[32, 3, 3, 3]"), "{ir}");
    assert_error(
        &kiln(&["compile", &model, "--shape", "x=4xthree"]),
        &["--shape x=4xthree"],
    );
}

#[test]
fn unsupported_op_names_node_op_and_the_supported_list() {
    let dir = scratch("unsupported");
    // A valid model with its one op renamed (same length, so the protobuf stays well formed); the
    // op type comes after the node name, which contains `Relu` too.
    let bytes = std::fs::read(golden("act_relu", "model.onnx")).unwrap();
    let at = bytes
        .windows(4)
        .rposition(|w| w == b"Relu")
        .expect("op type in file");
    let mut renamed = bytes.clone();
    renamed[at..at + 4].copy_from_slice(b"Relx");
    let model = dir.join("relx.onnx");
    std::fs::write(&model, renamed).unwrap();
    assert_error(
        &kiln(&["compile", s(&model)]),
        &["unsupported op `Relx`", "supported ops: Add,"],
    );
}

#[test]
fn malformed_onnx_files() {
    let truncated = format!("{FIXTURES}/onnx/truncated.onnx");
    assert_error(&kiln(&["compile", &truncated]), &["truncated.onnx"]);
    let no_nodes = format!("{FIXTURES}/onnx/no_nodes.onnx");
    assert_error(&kiln(&["compile", &no_nodes]), &["no_nodes.onnx"]);
    let dir = scratch("malformed");
    let y = dir.join("y.npy");
    let out = kiln(&[
        "run",
        &truncated,
        "--input",
        &golden("act_relu", "input.npy"),
        "--output",
        s(&y),
    ]);
    assert_error(&out, &["truncated.onnx"]);
    assert!(!y.exists());
}

#[test]
fn wrong_input_shape_for_a_fixed_onnx_input() {
    let dir = scratch("wrong_shape");
    let y = dir.join("y.npy");
    // simple_cnn's static export wants [2, 3, 32, 32]; give it act_relu's input.
    let out = kiln(&[
        "run",
        &golden("simple_cnn_batch2", "model.onnx"),
        "--input",
        &golden("act_relu", "input.npy"),
        "--output",
        s(&y),
    ]);
    assert_error(&out, &["x", "[2, 3, 32, 32]"]);
    assert!(!y.exists());
}
