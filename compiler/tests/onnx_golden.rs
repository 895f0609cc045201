//! ONNX golden tests against PyTorch: every ONNX file of every case under `tests/fixtures/golden/`
//! (`model.onnx` at opset 17, `model_opset20.onnx` for the GELU cases, `model_dynamic.onnx` with a
//! symbolic batch) is imported with `kiln::frontend::onnx`, run on the reference interpreter with
//! the case's `input.npy`, and compared with PyTorch's `expected.npy` within the tolerances of its
//! `case.json`. The weights come from the ONNX initializers alone (no safetensors).
//!
//! torchvision's ResNet-18 (45 MB, not committed) is tested when
//! `python scripts/gen_golden.py --resnet18` has written it to `target/fixtures/resnet18/`, and
//! reported as skipped otherwise.

mod common;

use common::{
    check_outputs, golden_dir, import_onnx, load_case, read_tensor, unlisted_cases, Tolerance,
    GOLDEN_CASES,
};
use kiln::Graph;
use kiln_runtime::Tensor;
use std::collections::BTreeMap;
use std::path::Path;

common::golden_cases!(run_case);

/// Imports `model` (specialising input `x` to `input`'s shape when `give_shape`), runs it and
/// compares with `expected`; returns the imported graph for further checks.
fn check_model(
    model: &Path,
    input: &Tensor,
    expected: &Tensor,
    tol: Tolerance,
    give_shape: bool,
) -> Result<Graph, String> {
    let mut shapes = BTreeMap::new();
    if give_shape {
        shapes.insert("x".to_string(), input.shape().to_vec());
    }
    let graph = import_onnx(model, &shapes)?;
    let outputs = kiln::run_interpreter(&graph, std::slice::from_ref(input))
        .map_err(|e| format!("running {}: {e}", model.display()))?;
    check_outputs(&outputs, expected, tol).map_err(|e| format!("{}: {e}", model.display()))?;
    Ok(graph)
}

/// The names of the graph's op nodes, in index order.
fn op_names(graph: &Graph) -> Vec<&'static str> {
    graph
        .values()
        .filter_map(|v| graph.op(v).map(|op| op.name()))
        .collect()
}

/// Checks that `graph` is the one op `gelu`; `what` names the model in the error.
fn check_one_gelu(graph: &Graph, what: &str) -> Result<(), String> {
    let ops = op_names(graph);
    if ops == ["gelu"] {
        Ok(())
    } else {
        Err(format!("{what}: ops {ops:?}, expected [\"gelu\"]"))
    }
}

/// The first sample of a batch: `t`'s first row along dimension 0, as a batch of 1.
fn first_sample(t: &Tensor) -> Result<Tensor, String> {
    let (&n, rest) = t
        .shape()
        .split_first()
        .ok_or("a scalar has no batch dimension")?;
    let per = t.numel().checked_div(n).ok_or("an empty batch")?;
    let shape: Vec<usize> = std::iter::once(1).chain(rest.iter().copied()).collect();
    Tensor::from_slice(&t.data()[..per], &shape).map_err(|e| format!("first sample: {e}"))
}

/// Runs every ONNX file of case `name`.
fn run_case(name: &str) -> Result<(), String> {
    let dir = golden_dir().join(name);
    let case = load_case(&dir)?;
    let (input, expected, tol) = (&case.input, &case.expected, case.json.tol);
    let model = dir.join("model.onnx");
    if !model.is_file() {
        return Err(format!("{} is missing", model.display()));
    }
    let graph = check_model(&model, input, expected, tol, false)?;
    if name.starts_with("act_gelu") {
        // Opset 17 has no Gelu: the exporter wrote it out in Div/Erf/Add/Mul (or the tanh
        // form); the importer must recognise it as one gelu.
        check_one_gelu(&graph, "opset 17 pattern")?;
        let model20 = dir.join("model_opset20.onnx");
        let g20 = check_model(&model20, input, expected, tol, false)?;
        check_one_gelu(&g20, "opset 20 Gelu")?;
    }
    let dynamic = dir.join("model_dynamic.onnx");
    if dynamic.is_file() {
        check_model(&dynamic, input, expected, tol, true)?;
        // The same model specialised to batch 1: the first sample alone.
        let (input1, expected1) = (first_sample(input)?, first_sample(expected)?);
        check_model(&dynamic, &input1, &expected1, tol, true)?;
    }
    Ok(())
}

#[test]
fn every_onnx_fixture_is_listed() {
    let unlisted = unlisted_cases("model.onnx").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        unlisted.is_empty(),
        "cases with a model.onnx that golden_cases! (tests/common/mod.rs) does not list: \
         {unlisted:?}"
    );
}

#[test]
fn names_follow_the_export() {
    // simple_cnn_classifier keeps its state_dict names as initializer names; values are named by
    // the ONNX value names (sanitized), and the output keeps its name `y`.
    let dir = golden_dir().join("simple_cnn_classifier");
    let graph =
        import_onnx(&dir.join("model.onnx"), &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}"));
    let params: Vec<&str> = graph.params().iter().map(|&p| graph.name(p)).collect();
    for want in [
        "conv1.weight",
        "conv1.bias",
        "conv2.weight",
        "conv2.bias",
        "fc.weight",
        "fc.bias",
    ] {
        assert!(params.contains(&want), "{want} not in {params:?}");
    }
    assert!(graph.find("conv1.Conv_output_0").is_some());
    let [out] = graph.outputs() else {
        panic!("one output expected")
    };
    assert_eq!(graph.name(*out), "y");
    assert_eq!(graph.name(graph.inputs()[0]), "x");
}

#[test]
fn resnet18() {
    let dir = common::resnet18_dir();
    let model = dir.join("model.onnx");
    if !model.is_file() {
        println!(
            "skipped: {} is absent; run `python scripts/gen_golden.py --resnet18` to generate it",
            model.display()
        );
        return;
    }
    let input = read_tensor(&dir.join("input.npy")).unwrap_or_else(|e| panic!("{e}"));
    let expected = read_tensor(&dir.join("expected.npy")).unwrap_or_else(|e| panic!("{e}"));
    let tol = Tolerance {
        rtol: 1e-3,
        atol: 1e-4,
    };
    if let Err(e) = check_model(&model, &input, &expected, tol, false) {
        panic!("{e}");
    }
}

#[test]
fn imported_graphs_print_and_parse_back() {
    // The sanitized names are identifiers of the text IR: every imported model prints, and the
    // printed text parses back to the same text (`kiln compile model.onnx --emit ir`).
    for name in GOLDEN_CASES {
        let dir = golden_dir().join(name);
        for file in ["model.onnx", "model_opset20.onnx"] {
            let path = dir.join(file);
            if !path.is_file() {
                continue;
            }
            let graph = import_onnx(&path, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}"));
            let text = kiln::ir::text::print(&graph);
            let parsed = kiln::ir::text::parse(&text).unwrap_or_else(|e| {
                panic!("{}: printed IR does not parse: {e}\n{text}", path.display())
            });
            assert_eq!(kiln::ir::text::print(&parsed), text, "{}", path.display());
        }
    }
}
