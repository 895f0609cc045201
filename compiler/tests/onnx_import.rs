//! The ONNX importer on small models built here as `ModelProto`s: what each op imports as (structure
//! and numbers, computed by hand in the comments), and every kind of bad input giving its error
//! (never a panic).

mod common;

use common::onnx_build::*;
use kiln::frontend::onnx::proto::{
    tensor_proto::DataType, AttributeProto, ModelProto, StringStringEntryProto,
};
use kiln::frontend::onnx::{load_onnx, load_onnx_bytes, OnnxError, OnnxModel};
use kiln::{Error, Graph};
use kiln_runtime::ops::{Op, Padding2d};
use kiln_runtime::Tensor;
use prost::Message;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// Building models.

fn import(m: &ModelProto) -> kiln::Result<Graph> {
    import_with(m, &[])
}

fn import_with(m: &ModelProto, shapes: &[(&str, &[usize])]) -> kiln::Result<Graph> {
    let shapes: BTreeMap<String, Vec<usize>> = shapes
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_vec()))
        .collect();
    OnnxModel::from_proto(m.clone(), None).import(&shapes)
}

/// Runs a graph of one input on `data` of `shape`; returns the one output.
fn run(g: &Graph, data: &[f32], shape: &[usize]) -> Tensor {
    let x = Tensor::from_slice(data, shape).expect("input");
    let mut out = kiln::run_interpreter(g, &[x]).expect("run");
    assert_eq!(out.len(), 1);
    out.remove(0)
}

fn ops(g: &Graph) -> Vec<&'static str> {
    g.values().filter_map(|v| g.op(v).map(Op::name)).collect()
}

/// The ONNX error of `r`; an error of a model read from a file must name the file, and is
/// returned without that wrapper.
fn onnx_err(r: kiln::Result<Graph>) -> OnnxError {
    match r {
        Err(Error::Onnx(OnnxError::InFile { path, source })) => {
            assert!(path.extension().is_some_and(|e| e == "onnx"), "{path:?}");
            *source
        }
        Err(Error::Onnx(e)) => e,
        Err(other) => panic!("expected an ONNX error, got: {other}"),
        Ok(_) => panic!("expected an error, got a graph"),
    }
}

fn assert_close(got: &Tensor, want: &[f32]) {
    assert_eq!(got.numel(), want.len(), "got {:?}", got.data());
    for (i, (&g, &w)) in got.data().iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 + 1e-5 * w.abs(),
            "element {i}: got {g}, want {w} (all: {:?})",
            got.data()
        );
    }
}

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-onnx-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A 2x2 all-ones conv over `x` [1, 1, 3, 3] with extra attributes.
fn ones_conv(attrs: Vec<AttributeProto>) -> ModelProto {
    model(
        vec![input("x", &[1, 1, 3, 3])],
        vec![f32_tensor("w", &[1, 1, 2, 2], &[1.0; 4])],
        vec![node("Conv", &["x", "w"], &["y"], attrs)],
        &["y"],
    )
}

const X33: [f32; 9] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];

fn conv_padding(g: &Graph) -> Padding2d {
    let v = g.outputs()[0];
    match g.op(v) {
        Some(Op::Conv2d(c)) => c.padding,
        other => panic!("not a conv: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// What ops import as.

#[test]
fn conv_auto_pad_same_upper_lower_valid() {
    // 2x2 window, stride 1, on 3x3: SAME keeps 3x3, so the total padding is (3-1)·1 + 2 - 3 = 1.
    // SAME_UPPER puts it at the end: out[i][j] = x[i][j] + x[i][j+1] + x[i+1][j] + x[i+1][j+1],
    // zero past the edge: 1+2+4+5 = 12, 2+3+5+6 = 16, 3+6 = 9, 4+5+7+8 = 24, 28, 6+9 = 15, 7+8 = 15,
    // 8+9 = 17, 9.
    let g = import(&ones_conv(vec![a_str("auto_pad", "SAME_UPPER")])).unwrap();
    assert_eq!(
        conv_padding(&g),
        Padding2d {
            top: 0,
            left: 0,
            bottom: 1,
            right: 1
        }
    );
    let y = run(&g, &X33, &[1, 1, 3, 3]);
    assert_close(&y, &[12.0, 16.0, 9.0, 24.0, 28.0, 15.0, 15.0, 17.0, 9.0]);
    // SAME_LOWER at the beginning: out[i][j] sums x[i-1..=i][j-1..=j]: 1, 1+2, 2+3, 1+4, 12, 16,
    // 4+7, 24, 28.
    let g = import(&ones_conv(vec![a_str("auto_pad", "SAME_LOWER")])).unwrap();
    assert_eq!(
        conv_padding(&g),
        Padding2d {
            top: 1,
            left: 1,
            bottom: 0,
            right: 0
        }
    );
    let y = run(&g, &X33, &[1, 1, 3, 3]);
    assert_close(&y, &[1.0, 3.0, 5.0, 5.0, 12.0, 16.0, 11.0, 24.0, 28.0]);
    // VALID: no padding, 2x2 out.
    let g = import(&ones_conv(vec![a_str("auto_pad", "VALID")])).unwrap();
    assert_close(&run(&g, &X33, &[1, 1, 3, 3]), &[12.0, 16.0, 24.0, 28.0]);
}

#[test]
fn conv_asymmetric_pads_and_kernel_shape_check() {
    // pads [top 1, left 0, bottom 0, right 0]: a zero row above → out rows: [0+0+1+2, 0+0+2+3],
    // [12, 16], [24, 28].
    let g = import(&ones_conv(vec![
        a_ints("pads", &[1, 0, 0, 0]),
        a_ints("kernel_shape", &[2, 2]),
    ]))
    .unwrap();
    assert_close(
        &run(&g, &X33, &[1, 1, 3, 3]),
        &[3.0, 5.0, 12.0, 16.0, 24.0, 28.0],
    );
    let e = onnx_err(import(&ones_conv(vec![a_ints("kernel_shape", &[3, 3])])));
    let msg = e.to_string();
    assert!(matches!(e, OnnxError::Attribute { .. }), "{msg}");
    assert!(
        msg.contains("/y") && msg.contains("kernel_shape") && msg.contains("[2, 2]"),
        "{msg}"
    );
}

#[test]
fn zero_pad_folds_into_the_conv() {
    // Pad(x, [0, 0, 0, 1, 0, 0, 0, 0]): one zero column on the left, as ZeroPad2d exports; then
    // the VALID 2x2 conv sees [[0,1,2,3],[0,4,5,6],[0,7,8,9]]: 0+1+0+4 = 5, 3+9 = 12... row 0:
    // 5, 12, 16; row 1: 0+4+0+7 = 11, 24, 28.
    let m = model(
        vec![input("x", &[1, 1, 3, 3])],
        vec![
            f32_tensor("w", &[1, 1, 2, 2], &[1.0; 4]),
            i64_tensor("pads", &[8], &[0, 0, 0, 1, 0, 0, 0, 0]),
        ],
        vec![
            node(
                "Pad",
                &["x", "pads"],
                &["p"],
                vec![a_str("mode", "constant")],
            ),
            node("Conv", &["p", "w"], &["y"], vec![]),
        ],
        &["y"],
    );
    let g = import(&m).unwrap();
    assert_eq!(ops(&g), ["conv2d"]);
    assert_eq!(
        conv_padding(&g),
        Padding2d {
            top: 0,
            left: 1,
            bottom: 0,
            right: 0
        }
    );
    assert_close(
        &run(&g, &X33, &[1, 1, 3, 3]),
        &[5.0, 12.0, 16.0, 11.0, 24.0, 28.0],
    );
    // A pad read by something other than a conv cannot be imported.
    let mut m2 = m.clone();
    let graph = m2.graph.as_mut().unwrap();
    graph.node[1] = node("Relu", &["p"], &["y"], vec![]);
    let e = onnx_err(import(&m2)).to_string();
    assert!(
        e.contains("Pad") && e.contains("only in front of a Conv"),
        "{e}"
    );
}

#[test]
fn gemm_folds_alpha_beta_and_transposition() {
    // A = [1, 2]; B = [[1, 0, 2], [0, 1, 3]] (transB=0); C = [1, 1, 1]; alpha 2, beta 3:
    // A·B = [1, 2, 2 + 6] = [1, 2, 8]; ·2 = [2, 4, 16]; + 3·C = [5, 7, 19].
    let m = model(
        vec![input("a", &[1, 2])],
        vec![
            f32_tensor("b", &[2, 3], &[1.0, 0.0, 2.0, 0.0, 1.0, 3.0]),
            f32_tensor("c", &[3], &[1.0, 1.0, 1.0]),
        ],
        vec![node(
            "Gemm",
            &["a", "b", "c"],
            &["y"],
            vec![a_float("alpha", 2.0), a_float("beta", 3.0)],
        )],
        &["y"],
    );
    let g = import(&m).unwrap();
    assert_eq!(ops(&g), ["linear"]);
    let w = g.find("b").expect("weight named after B");
    assert_eq!(g.ty(w).shape, vec![3, 2], "weight is alpha·Bᵀ, [out, in]");
    assert_close(&run(&g, &[1.0, 2.0], &[1, 2]), &[5.0, 7.0, 19.0]);

    // PyTorch's nn.Linear export: transB=1, alpha = beta = 1, the weight kept as is.
    let m = model(
        vec![input("a", &[1, 2])],
        vec![
            f32_tensor("fc.weight", &[1, 2], &[3.0, -1.0]),
            f32_tensor("fc.bias", &[1], &[0.5]),
        ],
        vec![node(
            "Gemm",
            &["a", "fc.weight", "fc.bias"],
            &["y"],
            vec![a_int("transB", 1)],
        )],
        &["y"],
    );
    let g = import(&m).unwrap();
    let names: Vec<&str> = g.params().iter().map(|&p| g.name(p)).collect();
    assert_eq!(names, ["fc.weight", "fc.bias"]);
    // 3·1 − 1·2 + 0.5 = 1.5.
    assert_close(&run(&g, &[1.0, 2.0], &[1, 2]), &[1.5]);
}

#[test]
fn matmul_then_add_is_one_linear() {
    // [[1, 2], [3, 4]] · [[10], [1]] = [[12], [34]]; + 0.5 = [[12.5], [34.5]].
    let m = model(
        vec![input("a", &[2, 2])],
        vec![
            f32_tensor("w", &[2, 1], &[10.0, 1.0]),
            f32_tensor("bias", &[1], &[0.5]),
        ],
        vec![
            node("MatMul", &["a", "w"], &["mm"], vec![]),
            node("Add", &["bias", "mm"], &["y"], vec![]),
        ],
        &["y"],
    );
    let g = import(&m).unwrap();
    assert_eq!(ops(&g), ["linear"]);
    let y = g.outputs()[0];
    assert_eq!(g.operands(y).len(), 3, "input, weight, bias");
    assert_close(&run(&g, &[1.0, 2.0, 3.0, 4.0], &[2, 2]), &[12.5, 34.5]);
    // Without the Add: a linear without bias.
    let m = model(
        vec![input("a", &[2, 2])],
        vec![f32_tensor("w", &[2, 1], &[10.0, 1.0])],
        vec![node("MatMul", &["a", "w"], &["y"], vec![])],
        &["y"],
    );
    let g = import(&m).unwrap();
    assert_close(&run(&g, &[1.0, 2.0, 3.0, 4.0], &[2, 2]), &[12.0, 34.0]);
}

#[test]
fn per_channel_add_after_conv_becomes_its_bias() {
    // 1x1 conv, 2 output channels with weights 1 and 2, then + [10, 20] per channel:
    // x = [1, 2] (1x1 spatial, 1 channel, batch 1... here 1x1x1x2): ch0 = x + 10, ch1 = 2x + 20.
    let m = model(
        vec![input("x", &[1, 1, 1, 2])],
        vec![
            f32_tensor("w", &[2, 1, 1, 1], &[1.0, 2.0]),
            f32_tensor("c", &[1, 2, 1, 1], &[10.0, 20.0]),
        ],
        vec![
            node("Conv", &["x", "w"], &["conv"], vec![]),
            node("Add", &["conv", "c"], &["y"], vec![]),
        ],
        &["y"],
    );
    let g = import(&m).unwrap();
    assert_eq!(ops(&g), ["conv2d"], "the add became the conv's bias");
    assert_close(
        &run(&g, &[1.0, 2.0], &[1, 1, 1, 2]),
        &[11.0, 12.0, 22.0, 24.0],
    );
}

#[test]
fn broadcast_constant_add_is_expanded() {
    // relu([-1, 2, -3, 4]) + 0.5 = [0.5, 2.5, 0.5, 4.5]; the scalar becomes a [2, 2] parameter.
    let m = model(
        vec![input("x", &[2, 2])],
        vec![f32_tensor("half", &[], &[0.5])],
        vec![
            node("Relu", &["x"], &["r"], vec![]),
            node("Add", &["r", "half"], &["y"], vec![]),
        ],
        &["y"],
    );
    let g = import(&m).unwrap();
    assert_eq!(ops(&g), ["relu", "add"]);
    let p = g.find("half").expect("parameter named after the constant");
    assert_eq!(g.ty(p).shape, vec![2, 2]);
    assert_close(
        &run(&g, &[-1.0, 2.0, -3.0, 4.0], &[2, 2]),
        &[0.5, 2.5, 0.5, 4.5],
    );
    // Two computed tensors that broadcast: not supported.
    let m = model(
        vec![input("x", &[2, 2]), input("z", &[1, 2])],
        vec![],
        vec![node("Add", &["x", "z"], &["y"], vec![])],
        &["y"],
    );
    let e = onnx_err(import(&m)).to_string();
    assert!(e.contains("broadcasting Add"), "{e}");
}

#[test]
fn shape_computations_fold_and_reshape_flattens() {
    // x.view(x.size(0), -1) with a dynamic batch: Shape → Gather(0) → Unsqueeze → Concat([-1]) →
    // Reshape, specialised to batch 2: a flatten to [2, 12].
    let m = model(
        vec![value_info(
            "x",
            DataType::Float,
            &[D::S("N"), D::N(3), D::N(2), D::N(2)],
        )],
        vec![
            i64_tensor("zero", &[], &[0]),
            i64_tensor("axes", &[1], &[0]),
            i64_tensor("minus1", &[1], &[-1]),
        ],
        vec![
            node("Shape", &["x"], &["s"], vec![]),
            node("Gather", &["s", "zero"], &["n"], vec![a_int("axis", 0)]),
            node("Unsqueeze", &["n", "axes"], &["n1"], vec![]),
            node(
                "Concat",
                &["n1", "minus1"],
                &["spec"],
                vec![a_int("axis", 0)],
            ),
            node("Reshape", &["x", "spec"], &["flat"], vec![]),
            node("Identity", &["flat"], &["id"], vec![]),
            node("Dropout", &["id"], &["y"], vec![]),
        ],
        &["y"],
    );
    let g = import_with(&m, &[("x", &[2, 3, 2, 2])]).unwrap();
    assert_eq!(ops(&g), ["flatten"]);
    assert_eq!(g.ty(g.outputs()[0]).shape, vec![2, 12]);
    let data: Vec<f32> = (0..24).map(|i| i as f32).collect();
    assert_eq!(run(&g, &data, &[2, 3, 2, 2]).data(), &data[..]);
    // Flatten(axis=2) would give [6, 4]: not a flatten the op set has.
    let m = model(
        vec![input("x", &[2, 3, 2, 2])],
        vec![],
        vec![node("Flatten", &["x"], &["y"], vec![a_int("axis", 2)])],
        &["y"],
    );
    let e = onnx_err(import(&m)).to_string();
    assert!(
        e.contains("/y") && e.contains("[2, 3, 2, 2] to [6, 4]"),
        "{e}"
    );
}

/// GELU written out as `0.5·x·(1 + erf(x·(1/√2)))` with the halving first:
/// `Mul(Mul(x, 0.5), Add(Erf(Mul(x, 0.70710677)), 1))`, or with `half` instead of 0.5.
fn gelu_variant(half: f32) -> ModelProto {
    model(
        vec![input("x", &[1, 3])],
        vec![],
        vec![
            scalar("k", std::f32::consts::FRAC_1_SQRT_2),
            scalar("one", 1.0),
            scalar("half", half),
            node("Mul", &["k", "x"], &["d"], vec![]),
            node("Erf", &["d"], &["e"], vec![]),
            node("Add", &["one", "e"], &["a"], vec![]),
            node("Mul", &["x", "half"], &["h"], vec![]),
            node("Mul", &["a", "h"], &["y"], vec![]),
        ],
        &["y"],
    )
}

#[test]
fn gelu_decomposition_variant_is_one_gelu() {
    let g = import(&gelu_variant(0.5)).unwrap();
    assert_eq!(ops(&g), ["gelu"]);
    // gelu(1) = 0.5·(1 + erf(1/√2)) = 0.5·(1 + 0.6826895) = 0.8413447; gelu(−1) = 1 − gelu(1) − 1
    // = −0.1586553; gelu(0) = 0.
    assert_close(
        &run(&g, &[0.0, 1.0, -1.0], &[1, 3]),
        &[0.0, 0.841_344_7, -0.158_655_3],
    );
    // With 0.6 instead of 0.5 it is not GELU, and a Mul of computed tensors is not supported.
    let e = onnx_err(import(&gelu_variant(0.6))).to_string();
    assert!(e.contains("Mul") && e.contains("GELU"), "{e}");
}

#[test]
fn activation_attributes() {
    let act = |op: &str, attrs: Vec<AttributeProto>| {
        let m = model(
            vec![input("x", &[1, 2])],
            vec![],
            vec![node(op, &["x"], &["y"], attrs)],
            &["y"],
        );
        run(&import(&m).unwrap(), &[-2.0, 3.0], &[1, 2])
    };
    // LeakyRelu(alpha 0.2): −2·0.2 = −0.4. Default alpha 0.01: −0.02.
    assert_close(&act("LeakyRelu", vec![a_float("alpha", 0.2)]), &[-0.4, 3.0]);
    assert_close(&act("LeakyRelu", vec![]), &[-0.02, 3.0]);
    // Elu(alpha 0.5): 0.5·(e^−2 − 1) = 0.5·(0.13533528 − 1) = −0.43233236.
    assert_close(
        &act("Elu", vec![a_float("alpha", 0.5)]),
        &[-0.432_332_36, 3.0],
    );
    // Gelu (opset 20) tanh form at 3: 0.5·3·(1 + tanh(0.7978846·(3 + 0.044715·27))) =
    // 1.5·(1 + tanh(3.3594)) = 1.5·1.9975... ≈ 2.9963627; at −2: −0.04540231.
    assert_close(
        &act("Gelu", vec![a_str("approximate", "tanh")]),
        &[-0.045_402_31, 2.996_362_7],
    );
    let m = model(
        vec![input("x", &[1, 2])],
        vec![],
        vec![node(
            "Gelu",
            &["x"],
            &["y"],
            vec![a_str("approximate", "fast")],
        )],
        &["y"],
    );
    let e = onnx_err(import(&m));
    assert!(
        matches!(&e, OnnxError::Attribute { node, attribute, .. } if node == "/y" && attribute == "approximate"),
        "{e}"
    );
}

#[test]
fn onnx_defaults_for_pools() {
    // AveragePool's count_include_pad defaults to 0 (PyTorch's to True): a 3x3 window with pads 1
    // at the corner of a 2x2 input of ones averages 4 taps, all ones → 1.
    let m = model(
        vec![input("x", &[1, 1, 2, 2])],
        vec![],
        vec![node(
            "AveragePool",
            &["x"],
            &["y"],
            vec![
                a_ints("kernel_shape", &[3, 3]),
                a_ints("pads", &[1, 1, 1, 1]),
            ],
        )],
        &["y"],
    );
    let g = import(&m).unwrap();
    assert_close(&run(&g, &[1.0; 4], &[1, 1, 2, 2]), &[1.0; 4]);
    // MaxPool's strides default to 1 (not the kernel size): 2x2 windows over 3x3 → 2x2 out.
    let m = model(
        vec![input("x", &[1, 1, 3, 3])],
        vec![],
        vec![node(
            "MaxPool",
            &["x"],
            &["y"],
            vec![a_ints("kernel_shape", &[2, 2])],
        )],
        &["y"],
    );
    assert_close(
        &run(&import(&m).unwrap(), &X33, &[1, 1, 3, 3]),
        &[5.0, 6.0, 8.0, 9.0],
    );
}

#[test]
fn external_data_is_read_relative_to_the_model() {
    let dir = scratch("external");
    // Weight data at offset 8 of weights.bin (after 8 junk bytes): four ones.
    let mut bin = vec![0xAAu8; 8];
    bin.extend([1.0f32; 4].iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(dir.join("weights.bin"), &bin).unwrap();
    let kv = |k: &str, v: &str| StringStringEntryProto {
        key: Some(k.into()),
        value: Some(v.into()),
    };
    let mut m = ones_conv(vec![a_str("auto_pad", "VALID")]);
    let w = &mut m.graph.as_mut().unwrap().initializer[0];
    w.raw_data = None;
    w.data_location = Some(1);
    w.external_data = vec![
        kv("location", "weights.bin"),
        kv("offset", "8"),
        kv("length", "16"),
    ];
    std::fs::write(dir.join("model.onnx"), m.encode_to_vec()).unwrap();
    let g = load_onnx(&dir.join("model.onnx"), &BTreeMap::new()).unwrap();
    assert_close(&run(&g, &X33, &[1, 1, 3, 3]), &[12.0, 16.0, 24.0, 28.0]);
    // The data file gone: an error naming the tensor and the file.
    std::fs::remove_file(dir.join("weights.bin")).unwrap();
    let e = onnx_err(load_onnx(&dir.join("model.onnx"), &BTreeMap::new()));
    let msg = e.to_string();
    assert!(matches!(e, OnnxError::ExternalData { .. }), "{msg}");
    assert!(
        msg.contains("`w`") && msg.contains("weights.bin") && msg.contains("file not found"),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn external_data_written_by_the_onnx_library() {
    // conv2d_basic saved by onnx.save_model(..., save_as_external_data=True): same numbers.
    let golden = fixture("golden/conv2d_basic");
    let x = kiln_runtime::io::npy::read_npy(&golden.join("input.npy")).unwrap();
    let want = kiln_runtime::io::npy::read_npy(&golden.join("expected.npy")).unwrap();
    let g = load_onnx(&fixture("onnx/external_data/model.onnx"), &BTreeMap::new()).unwrap();
    let y = kiln::run_interpreter(&g, &[x]).unwrap();
    assert!(y[0].allclose(&want, 1e-4, 1e-5));
}

// ---------------------------------------------------------------------------------------------
// Input shapes.

fn dynamic_relu() -> ModelProto {
    model(
        vec![value_info("x", DataType::Float, &[D::S("N"), D::N(3)])],
        vec![],
        vec![node("Relu", &["x"], &["y"], vec![])],
        &["y"],
    )
}

#[test]
fn symbolic_dims_take_the_given_shape() {
    let g = import_with(&dynamic_relu(), &[("x", &[5, 3])]).unwrap();
    assert_eq!(g.ty(g.inputs()[0]).shape, vec![5, 3]);
    // Not given: an error naming the input and its dims.
    let e = onnx_err(import(&dynamic_relu()));
    assert_eq!(
        e.to_string(),
        "input `x` has symbolic dimensions [N, 3]: give its shape, e.g. x=1x3"
    );
    // A fixed dim given another size, or another rank.
    let e = onnx_err(import_with(&dynamic_relu(), &[("x", &[5, 4])]));
    assert_eq!(
        e.to_string(),
        "input `x`: expected shape [N, 3], got [5, 4]"
    );
    assert!(matches!(
        onnx_err(import_with(&dynamic_relu(), &[("x", &[3])])),
        OnnxError::InputShape { .. }
    ));
    // A name that is no input.
    let e = onnx_err(import_with(&dynamic_relu(), &[("z", &[1, 3])]));
    assert!(matches!(e, OnnxError::UnknownInput { .. }), "{e}");
    // dim_value 0 counts as symbolic.
    let m = model(
        vec![value_info("x", DataType::Float, &[D::N(0), D::N(3)])],
        vec![],
        vec![node("Relu", &["x"], &["y"], vec![])],
        &["y"],
    );
    assert!(matches!(
        onnx_err(import(&m)),
        OnnxError::SymbolicInput { .. }
    ));
    let g = import_with(&m, &[("x", &[2, 3])]).unwrap();
    assert_eq!(g.ty(g.inputs()[0]).shape, vec![2, 3]);
}

// ---------------------------------------------------------------------------------------------
// Bad input: every kind gives its error.

#[test]
fn unsupported_op_names_node_op_and_the_supported_list() {
    let m = model(
        vec![input("x", &[1, 4])],
        vec![],
        vec![node("Softmax", &["x"], &["y"], vec![])],
        &["y"],
    );
    let e = onnx_err(import(&m));
    let msg = e.to_string();
    assert!(matches!(e, OnnxError::UnsupportedOp { .. }));
    assert!(
        msg.starts_with("node `/y`: unsupported op `Softmax`; supported ops: Add,"),
        "{msg}"
    );
    assert!(
        msg.contains("Conv") && msg.contains("Gemm") && msg.contains("MaxPool"),
        "{msg}"
    );
}

#[test]
fn unsupported_attribute_values_name_node_and_attribute() {
    let e = onnx_err(import(&ones_conv(vec![a_str("auto_pad", "SAME_MIDDLE")])));
    assert_eq!(
        e.to_string(),
        "node `/y` (Conv): attribute `auto_pad`: unsupported value \"SAME_MIDDLE\" (expected NOTSET, SAME_UPPER, SAME_LOWER or VALID)"
    );
    // An attribute of the wrong type.
    let e = onnx_err(import(&ones_conv(vec![a_float("group", 1.0)])));
    assert!(
        e.to_string()
            .contains("attribute `group`: expected INT, got FLOAT"),
        "{e}"
    );
    // BatchNormalization in training mode.
    let m = model(
        vec![input("x", &[1, 1, 1, 1])],
        vec![f32_tensor("s", &[1], &[1.0]), f32_tensor("b", &[1], &[0.0])],
        vec![node(
            "BatchNormalization",
            &["x", "s", "b", "b", "s"],
            &["y"],
            vec![a_int("training_mode", 1)],
        )],
        &["y"],
    );
    let e = onnx_err(import(&m));
    assert!(
        matches!(&e, OnnxError::Attribute { attribute, .. } if attribute == "training_mode"),
        "{e}"
    );
}

#[test]
fn max_pool_indices_output_is_an_error() {
    let m = model(
        vec![input("x", &[1, 1, 2, 2])],
        vec![],
        vec![node(
            "MaxPool",
            &["x"],
            &["y", "idx"],
            vec![a_ints("kernel_shape", &[2, 2])],
        )],
        &["y"],
    );
    let e = onnx_err(import(&m)).to_string();
    assert!(
        e.contains("/y") && e.contains("`Indices`") && e.contains("idx"),
        "{e}"
    );
}

#[test]
fn malformed_protobuf_is_an_error() {
    for bytes in [
        &b"not a model at all"[..],
        &[0xff, 0xff, 0xff, 0xff, 0xff][..],
        &[0x0a, 0x50, 0x01][..],
    ] {
        let e = load_onnx_bytes(bytes, None, &BTreeMap::new()).unwrap_err();
        assert!(matches!(e, Error::Onnx(OnnxError::Malformed(_))), "{e}");
    }
    // Every truncation of a real model is an error (most are malformed protobuf), never a panic.
    let bytes = std::fs::read(fixture("golden/conv2d_basic/model.onnx")).unwrap();
    for cut in (0..bytes.len()).step_by(7) {
        assert!(
            load_onnx_bytes(&bytes[..cut], None, &BTreeMap::new()).is_err(),
            "cut at {cut}"
        );
    }
    // The committed truncated file.
    let e = onnx_err(load_onnx(&fixture("onnx/truncated.onnx"), &BTreeMap::new()));
    assert!(matches!(e, OnnxError::Malformed(_)), "{e}");
    // A missing file.
    let e = onnx_err(load_onnx(
        Path::new("/nonexistent/model.onnx"),
        &BTreeMap::new(),
    ));
    assert!(matches!(e, OnnxError::Io { .. }), "{e}");
}

#[test]
fn graph_without_nodes_is_an_error() {
    let m = model(vec![input("x", &[1])], vec![], vec![], &["x"]);
    assert_eq!(onnx_err(import(&m)), OnnxError::EmptyGraph);
    let e = onnx_err(load_onnx(&fixture("onnx/no_nodes.onnx"), &BTreeMap::new()));
    assert_eq!(e, OnnxError::EmptyGraph);
}

#[test]
fn dangling_input_names_node_and_input() {
    let m = model(
        vec![input("x", &[1, 2])],
        vec![],
        vec![node("Add", &["x", "ghost"], &["y"], vec![])],
        &["y"],
    );
    assert_eq!(
        onnx_err(import(&m)).to_string(),
        "node `/y` (Add) reads `ghost`, which no node, graph input or initializer defines"
    );
    let m = model(
        vec![input("x", &[1, 2])],
        vec![],
        vec![node("Relu", &["x"], &["y"], vec![])],
        &["z"],
    );
    assert!(matches!(
        onnx_err(import(&m)),
        OnnxError::DanglingOutput { .. }
    ));
    // A cycle: a reads b, b reads a.
    let m = model(
        vec![input("x", &[1, 2])],
        vec![],
        vec![
            node("Add", &["x", "b"], &["a"], vec![]),
            node("Relu", &["a"], &["b"], vec![]),
        ],
        &["b"],
    );
    assert!(matches!(onnx_err(import(&m)), OnnxError::Cycle { .. }));
}

#[test]
fn non_float32_tensors_are_named() {
    // A double input.
    let m = model(
        vec![value_info("x", DataType::Double, &[D::N(1), D::N(2)])],
        vec![],
        vec![node("Relu", &["x"], &["y"], vec![])],
        &["y"],
    );
    assert_eq!(
        onnx_err(import(&m)).to_string(),
        "tensor `x` has element type DOUBLE; Kiln computes in float32 only"
    );
    // A float16 initializer used as a weight.
    let mut m = ones_conv(vec![]);
    let w = &mut m.graph.as_mut().unwrap().initializer[0];
    w.data_type = Some(DataType::Float16 as i32);
    w.raw_data = Some(vec![0; 8]);
    let e = onnx_err(import(&m));
    assert_eq!(
        e,
        OnnxError::DataType {
            tensor: "w".into(),
            dtype: "FLOAT16".into()
        }
    );
    // An int64 constant where a float is needed.
    let m = model(
        vec![input("x", &[1, 1, 1, 1])],
        vec![i64_tensor("w", &[1, 1, 1, 1], &[1])],
        vec![node("Conv", &["x", "w"], &["y"], vec![])],
        &["y"],
    );
    assert_eq!(
        onnx_err(import(&m)),
        OnnxError::DataType {
            tensor: "w".into(),
            dtype: "INT64".into()
        }
    );
}

#[test]
fn unsupported_opsets_are_named() {
    let mut m = dynamic_relu();
    m.opset_import[0].version = Some(12);
    let e = onnx_err(import_with(&m, &[("x", &[1, 3])]));
    assert_eq!(
        e.to_string(),
        "unsupported ONNX opset 12 (Kiln supports opsets 13 to 21 of the default domain)"
    );
    let e = onnx_err(load_onnx(&fixture("onnx/opset11.onnx"), &BTreeMap::new()));
    assert_eq!(e, OnnxError::Opset { version: 11 });
}

#[test]
fn bad_tensor_data_is_an_error() {
    // Raw data of 3 bytes for a [1] float tensor.
    let mut m = ones_conv(vec![]);
    m.graph.as_mut().unwrap().initializer[0].raw_data = Some(vec![1, 2, 3]);
    let e = onnx_err(import(&m)).to_string();
    assert!(
        e.contains("tensor `w`: raw data has 3 bytes, but dims [1, 1, 2, 2] need 16"),
        "{e}"
    );
    // Dims whose product is absurd: refused before allocating.
    let mut m = ones_conv(vec![]);
    m.graph.as_mut().unwrap().initializer[0].dims = vec![1 << 20, 1 << 20, 1 << 20];
    assert!(matches!(onnx_err(import(&m)), OnnxError::TooLarge { .. }));
    // A huge fixed input.
    let m = model(
        vec![input("x", &[1 << 20, 1 << 20])],
        vec![],
        vec![node("Relu", &["x"], &["y"], vec![])],
        &["y"],
    );
    assert!(matches!(onnx_err(import(&m)), OnnxError::TooLarge { .. }));
}
