//! ONNX golden tests against PyTorch: every ONNX file of every case under `tests/fixtures/golden/`
//! (`model.onnx` at opset 17, `model_opset20.onnx` for the GELU cases, `model_dynamic.onnx` with a
//! symbolic batch) is imported with `kiln::frontend::onnx`, run on the reference interpreter with
//! the case's `input.npy`, and compared with PyTorch's `expected.npy` within the tolerances of its
//! `case.json`. The weights come from the ONNX initializers alone (no safetensors).
//!
//! torchvision's ResNet-18 (45 MB, not committed) is tested when
//! `python scripts/gen_golden.py --resnet18` has written it to `target/fixtures/resnet18/`, and
//! reported as skipped otherwise.

use kiln::frontend::onnx::load_onnx;
use kiln::Graph;
use kiln_runtime::io::npy::read_npy;
use kiln_runtime::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One `#[test]` per case, and `CASES` listing them.
macro_rules! onnx_cases {
    ($($name:ident),* $(,)?) => {
        /// Every case this file tests.
        const CASES: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                run_case(stringify!($name));
            }
        )*
    };
}

onnx_cases! {
    conv2d_basic,
    conv2d_stride2,
    conv2d_dilation2,
    conv2d_groups,
    conv2d_depthwise,
    conv2d_nonsquare,
    conv2d_no_bias,
    conv2d_asym_padding,
    max_pool2d_k2s2,
    max_pool2d_k3s2p1,
    max_pool2d_dilation2,
    max_pool2d_ceil_mode,
    max_pool2d_nan,
    relu_nan,
    avg_pool2d_pad,
    avg_pool2d_pad_exclude,
    avg_pool2d_ceil,
    avg_pool2d_ceil_exclude,
    global_avg_pool2d,
    act_relu,
    act_leaky_relu,
    act_sigmoid,
    act_tanh,
    act_gelu,
    act_gelu_tanh,
    act_elu,
    act_elu_alpha05,
    batch_norm,
    linear,
    flatten_linear,
    simple_cnn_batch2,
    residual_block,
    simple_cnn_classifier,
    mini_resnet,
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

/// The number after `"key":` in the flat JSON object `gen_golden.py` writes.
fn json_number(json: &str, key: &str) -> f32 {
    let quoted = format!("\"{key}\"");
    let start = json
        .find(&quoted)
        .unwrap_or_else(|| panic!("case.json has no {quoted}"))
        + quoted.len();
    let rest = json[start..]
        .trim_start()
        .trim_start_matches(':')
        .trim_start();
    let end = rest.find([',', '}', '\n']).unwrap_or(rest.len());
    rest[..end]
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("case.json {quoted}: {e}"))
}

/// Imports `model` (specialising input `x` to `input`'s shape when `give_shape`), runs it and
/// compares with `expected`; returns the imported graph for further checks.
fn check_model(
    model: &Path,
    input: &Tensor,
    expected: &Tensor,
    rtol: f32,
    atol: f32,
    give_shape: bool,
) -> Graph {
    let mut shapes = BTreeMap::new();
    if give_shape {
        shapes.insert("x".to_string(), input.shape().to_vec());
    }
    let graph =
        load_onnx(model, &shapes).unwrap_or_else(|e| panic!("importing {}: {e}", model.display()));
    let outputs = kiln::run_interpreter(&graph, std::slice::from_ref(input))
        .unwrap_or_else(|e| panic!("running {}: {e}", model.display()));
    let [got] = outputs.as_slice() else {
        panic!("{}: {} outputs, expected 1", model.display(), outputs.len());
    };
    assert!(
        got.allclose(expected, rtol, atol),
        "{}: output differs from PyTorch's (shapes {:?} vs {:?}, max abs diff {:?}, rtol {rtol:?}, atol {atol:?})",
        model.display(),
        got.shape(),
        expected.shape(),
        got.max_abs_diff(expected)
    );
    graph
}

/// The names of the graph's op nodes, in index order.
fn op_names(graph: &Graph) -> Vec<&'static str> {
    graph
        .values()
        .filter_map(|v| graph.op(v).map(|op| op.name()))
        .collect()
}

/// Runs every ONNX file of case `name`.
fn run_case(name: &str) {
    let dir = golden_dir().join(name);
    let json = std::fs::read_to_string(dir.join("case.json")).expect("case.json");
    let (rtol, atol) = (json_number(&json, "rtol"), json_number(&json, "atol"));
    let input = read_npy(&dir.join("input.npy")).expect("input.npy");
    let expected = read_npy(&dir.join("expected.npy")).expect("expected.npy");
    let model = dir.join("model.onnx");
    assert!(model.is_file(), "{} is missing", model.display());
    let graph = check_model(&model, &input, &expected, rtol, atol, false);
    if name.starts_with("act_gelu") {
        // Opset 17 has no Gelu: the exporter wrote it out in Div/Erf/Add/Mul (or the tanh
        // form); the importer must recognise it as one gelu.
        assert_eq!(op_names(&graph), ["gelu"], "{name}: opset 17 pattern");
        let g20 = check_model(
            &dir.join("model_opset20.onnx"),
            &input,
            &expected,
            rtol,
            atol,
            false,
        );
        assert_eq!(op_names(&g20), ["gelu"], "{name}: opset 20 Gelu");
    }
    let dynamic = dir.join("model_dynamic.onnx");
    if dynamic.is_file() {
        check_model(&dynamic, &input, &expected, rtol, atol, true);
        // The same model specialised to batch 1: the first sample alone.
        let n = input.shape()[0];
        let first = |t: &Tensor| {
            let per = t.numel() / n;
            let mut shape = t.shape().to_vec();
            shape[0] = 1;
            Tensor::from_slice(&t.data()[..per], &shape).expect("first sample")
        };
        check_model(
            &dynamic,
            &first(&input),
            &first(&expected),
            rtol,
            atol,
            true,
        );
    }
}

#[test]
fn every_onnx_fixture_is_listed() {
    let dir = golden_dir();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("golden dir")
        .map(|e| e.expect("dir entry"))
        .filter(|e| e.path().join("model.onnx").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let unlisted: Vec<&String> = on_disk
        .iter()
        .filter(|n| !CASES.contains(&n.as_str()))
        .collect();
    assert!(
        unlisted.is_empty(),
        "cases with a model.onnx that onnx_cases! does not list: {unlisted:?}"
    );
}

#[test]
fn names_follow_the_export() {
    // simple_cnn_classifier keeps its state_dict names as initializer names; values are named by
    // the ONNX value names (sanitized), and the output keeps its name `y`.
    let dir = golden_dir().join("simple_cnn_classifier");
    let graph = load_onnx(&dir.join("model.onnx"), &BTreeMap::new()).expect("import");
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fixtures/resnet18");
    let model = dir.join("model.onnx");
    if !model.is_file() {
        println!(
            "skipped: {} is absent; run `python scripts/gen_golden.py --resnet18` to generate it",
            model.display()
        );
        return;
    }
    let input = read_npy(&dir.join("input.npy")).expect("input.npy");
    let expected = read_npy(&dir.join("expected.npy")).expect("expected.npy");
    check_model(&model, &input, &expected, 1e-3, 1e-4, false);
}

#[test]
fn imported_graphs_print_and_parse_back() {
    // The sanitized names are identifiers of the text IR: every imported model prints, and the
    // printed text parses back to the same text (`kiln compile model.onnx --emit ir`).
    for name in CASES {
        let dir = golden_dir().join(name);
        for file in ["model.onnx", "model_opset20.onnx"] {
            let path = dir.join(file);
            if !path.is_file() {
                continue;
            }
            let graph = load_onnx(&path, &BTreeMap::new()).expect("import");
            let text = kiln::ir::text::print(&graph);
            let parsed = kiln::ir::text::parse(&text).unwrap_or_else(|e| {
                panic!("{}: printed IR does not parse: {e}\n{text}", path.display())
            });
            assert_eq!(kiln::ir::text::print(&parsed), text, "{}", path.display());
        }
    }
}
