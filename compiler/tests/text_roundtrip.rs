//! The graph text form: golden printing, round trips (fixed and property-based), and parse errors —
//! both the Cranelift-style files in `tests/text/` and the cases a file cannot express.

mod common;

use kiln::ir::text::{parse, parse_file, print};
use kiln::{Error, Graph, NodeKind, ParseError, ValueId};
use kiln_runtime::ops::{
    Activation, Add, AvgPool2d, BatchNorm2d, Conv2d, Epilogue, Flatten, GeluApproximate,
    GlobalAvgPool2d, Linear, MaxPool2d, Op, Padding2d,
};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn conv(padding: usize, groups: usize, bias: bool, epilogue: Epilogue) -> Op {
    Op::Conv2d(Conv2d {
        stride: [1, 1],
        padding: Padding2d::symmetric(padding, padding),
        dilation: [1, 1],
        groups,
        bias,
        epilogue,
    })
}

fn max_pool(k: usize, s: usize, p: usize, ceil_mode: bool) -> MaxPool2d {
    MaxPool2d {
        kernel: [k, k],
        stride: [s, s],
        padding: Padding2d::symmetric(p, p),
        dilation: [1, 1],
        ceil_mode,
    }
}

/// A graph with every op of the text form, epilogues included; parameters are created between the
/// ops, to check that they still print first.
fn every_op_graph() -> kiln::Result<Graph> {
    let mut g = Graph::new("every_op");
    let x = g.add_input("x", &[1, 4, 8, 8])?;
    let cw = g.add_param("conv.weight", &[4, 2, 3, 3], None)?;
    let cb = g.add_param("conv.bias", &[4], None)?;
    let c = g.add_op("conv", conv(1, 2, true, Epilogue::default()), &[x, cw, cb])?;
    let mut bn_operands = vec![c];
    for stat in ["weight", "bias", "running_mean", "running_var"] {
        bn_operands.push(g.add_param(&format!("bn.{stat}"), &[4], None)?);
    }
    let bn = g.add_op(
        "bn",
        Op::BatchNorm2d(BatchNorm2d { eps: 1e-5 }),
        &bn_operands,
    )?;
    let mut y = g.add_op("relu", Op::Activation(Activation::Relu), &[bn])?;
    let chain = [
        (
            "leaky",
            Activation::LeakyRelu {
                negative_slope: 0.01,
            },
        ),
        ("sigmoid", Activation::Sigmoid),
        ("tanh", Activation::Tanh),
        (
            "gelu",
            Activation::Gelu {
                approximate: GeluApproximate::Tanh,
            },
        ),
        ("elu", Activation::Elu { alpha: 1.0 }),
    ];
    for (name, a) in chain {
        y = g.add_op(name, Op::Activation(a), &[y])?;
    }
    let sum = g.add_op("sum", Op::Add(Add), &[y, c])?;
    let mp = g.add_op("maxpool", Op::MaxPool2d(max_pool(3, 2, 1, true)), &[sum])?;
    let avg = Op::AvgPool2d(AvgPool2d {
        kernel: [2, 2],
        stride: [2, 2],
        padding: Padding2d::default(),
        ceil_mode: false,
        count_include_pad: true,
    });
    let ap = g.add_op("avgpool", avg, &[mp])?;
    let gap = g.add_op("gap", Op::GlobalAvgPool2d(GlobalAvgPool2d), &[ap])?;
    let flat = g.add_op("flat", Op::Flatten(Flatten { start_dim: 1 }), &[gap])?;
    let fw = g.add_param("fc.weight", &[10, 4], None)?;
    let fb = g.add_param("fc.bias", &[10], None)?;
    let plain = Op::Linear(Linear {
        bias: true,
        epilogue: Epilogue::default(),
    });
    let fc = g.add_op("fc", plain, &[flat, fw, fb])?;
    let f2w = g.add_param("fc2.weight", &[10, 4], None)?;
    let fused_linear = Op::Linear(Linear {
        bias: false,
        epilogue: Epilogue {
            residual: true,
            activation: Some(Activation::LeakyRelu {
                negative_slope: 0.2,
            }),
            pool: None,
        },
    });
    let fc2 = g.add_op("fc2", fused_linear, &[flat, f2w, fc])?;
    let epilogue = Epilogue {
        residual: true,
        activation: Some(Activation::Gelu {
            approximate: GeluApproximate::None,
        }),
        pool: Some(max_pool(2, 2, 0, false)),
    };
    let fused = g.add_op("fused", conv(1, 2, true, epilogue), &[x, cw, cb, c])?;
    g.set_outputs(vec![fc2, fused]);
    Ok(g)
}

/// Written by hand from the mod.rs format. Shapes: the 3×3 conv with padding 1 keeps 8×8; the
/// 3×3/2 max-pool with padding 1 and ceil_mode gives ceil((8 + 2 − 3) / 2) + 1 = 5 (the last window
/// starts at 4·2 = 8 < 8 + 1, inside the input and left padding, so it stays); the 2×2/2 avg-pool
/// gives floor((5 − 2) / 2) + 1 = 2; global pooling 1×1; flatten 4·1·1 = 4; linear 4 → 10; the
/// fused conv's 2×2/2 pool halves 8×8 to 4×4 (PyTorch agrees on each).
const EVERY_OP_TEXT: &str = "\
graph every_op(%x: f32[1, 4, 8, 8]) {
  param %conv.weight: f32[4, 2, 3, 3]
  param %conv.bias: f32[4]
  param %bn.weight: f32[4]
  param %bn.bias: f32[4]
  param %bn.running_mean: f32[4]
  param %bn.running_var: f32[4]
  param %fc.weight: f32[10, 4]
  param %fc.bias: f32[10]
  param %fc2.weight: f32[10, 4]
  %conv = conv2d(%x, %conv.weight, %conv.bias) {stride=[1, 1], padding=[1, 1, 1, 1], dilation=[1, 1], groups=2} : f32[1, 4, 8, 8]
  %bn = batch_norm(%conv, %bn.weight, %bn.bias, %bn.running_mean, %bn.running_var) {eps=1e-5} : f32[1, 4, 8, 8]
  %relu = relu(%bn) : f32[1, 4, 8, 8]
  %leaky = leaky_relu(%relu) {negative_slope=0.01} : f32[1, 4, 8, 8]
  %sigmoid = sigmoid(%leaky) : f32[1, 4, 8, 8]
  %tanh = tanh(%sigmoid) : f32[1, 4, 8, 8]
  %gelu = gelu(%tanh) {approximate=tanh} : f32[1, 4, 8, 8]
  %elu = elu(%gelu) {alpha=1.0} : f32[1, 4, 8, 8]
  %sum = add(%elu, %conv) : f32[1, 4, 8, 8]
  %maxpool = max_pool2d(%sum) {kernel=[3, 3], stride=[2, 2], padding=[1, 1, 1, 1], dilation=[1, 1], ceil_mode=true} : f32[1, 4, 5, 5]
  %avgpool = avg_pool2d(%maxpool) {kernel=[2, 2], stride=[2, 2], padding=[0, 0, 0, 0], ceil_mode=false, count_include_pad=true} : f32[1, 4, 2, 2]
  %gap = global_avg_pool2d(%avgpool) : f32[1, 4, 1, 1]
  %flat = flatten(%gap) {start_dim=1} : f32[1, 4]
  %fc = linear(%flat, %fc.weight, %fc.bias) : f32[1, 10]
  %fc2 = linear(%flat, %fc2.weight, %fc) {residual=true, activation=leaky_relu(0.2)} : f32[1, 10]
  %fused = conv2d(%x, %conv.weight, %conv.bias, %conv) {stride=[1, 1], padding=[1, 1, 1, 1], dilation=[1, 1], groups=2, residual=true, activation=gelu(none), pool_kernel=[2, 2], pool_stride=[2, 2], pool_padding=[0, 0, 0, 0], pool_dilation=[1, 1], pool_ceil_mode=false} : f32[1, 4, 4, 4]
  return %fc2, %fused
}
";

/// Asserts that two graphs hold the same inputs, parameters, ops (op, operands by name, type) and
/// outputs, in the same orders.
fn assert_same_graph(a: &Graph, b: &Graph) {
    let names = |g: &Graph, vs: &[ValueId]| -> Vec<String> {
        vs.iter().map(|&v| g.name(v).to_string()).collect()
    };
    let describe = |g: &Graph| -> Vec<(String, String, Option<Op>, Vec<String>)> {
        let mut out: Vec<_> = g
            .params()
            .into_iter()
            .map(|p| (g.name(p).to_string(), g.ty(p).to_string(), None, vec![]))
            .collect();
        for v in g.topo_order().unwrap() {
            if let NodeKind::Op(op) = &g.node(v).kind {
                out.push((
                    g.name(v).to_string(),
                    g.ty(v).to_string(),
                    Some(op.clone()),
                    names(g, &g.operands(v)),
                ));
            }
        }
        out
    };
    assert_eq!(a.name, b.name);
    assert_eq!(names(a, a.inputs()), names(b, b.inputs()));
    for (&i, &j) in a.inputs().iter().zip(b.inputs()) {
        assert_eq!(a.ty(i), b.ty(j));
    }
    assert_eq!(describe(a), describe(b));
    assert_eq!(names(a, a.outputs()), names(b, b.outputs()));
}

#[test]
fn every_op_prints_as_written_by_hand() {
    let g = every_op_graph().unwrap();
    assert_eq!(print(&g), EVERY_OP_TEXT);
}

#[test]
fn every_op_round_trips() {
    let g = every_op_graph().unwrap();
    let text = print(&g);
    let parsed = parse(&text).unwrap();
    assert_same_graph(&g, &parsed);
    assert_eq!(print(&parsed), text);
    // The parser also recovers the bias flags, which no attribute spells out.
    let fused = parsed.op(parsed.find("fused").unwrap()).unwrap();
    assert!(matches!(fused, Op::Conv2d(c) if c.bias && c.epilogue.residual));
    let fc2 = parsed.op(parsed.find("fc2").unwrap()).unwrap();
    assert!(matches!(fc2, Op::Linear(l) if !l.bias && l.epilogue.residual));
}

#[test]
fn traced_simple_cnn_round_trips() {
    let g = kiln::nn::trace(
        &kiln::nn::models::SimpleCnn::new(),
        &[1, 3, 32, 32],
        "simple_cnn",
    )
    .unwrap();
    let text = print(&g);
    let parsed = parse(&text).unwrap();
    assert_same_graph(&g, &parsed);
    assert_eq!(print(&parsed), text);
}

/// The seed tutorial's SimpleCNN, written by hand with comments in every kind of place.
const SIMPLE_CNN: &str = "\
; SimpleCNN from the seed tutorial.
graph simple_cnn(%x: f32[1, 3, 32, 32]) { ; the header
  param %conv1.weight: f32[32, 3, 3, 3]
  param %conv1.bias: f32[32]
  param %conv2.weight: f32[64, 32, 3, 3]
  param %conv2.bias: f32[64]
  %conv1 = conv2d(%x, %conv1.weight, %conv1.bias) {stride=[1, 1], padding=[1, 1, 1, 1], ; split
     dilation=[1, 1], groups=1} : f32[1, 32, 32, 32]
  %relu1 = relu(%conv1) : f32[1, 32, 32, 32]
  %pool = max_pool2d(%relu1) {kernel=[2, 2], stride=[2, 2], padding=[0, 0, 0, 0], dilation=[1, 1], ceil_mode=false} : f32[1, 32, 16, 16]
  %conv2 = conv2d(%pool, %conv2.weight, %conv2.bias) {stride=[1, 1], padding=[1, 1, 1, 1], dilation=[1, 1], groups=1} : f32[1, 64, 16, 16]
  %relu2 = relu(%conv2) : f32[1, 64, 16, 16]
  %pool_1 = max_pool2d(%relu2) {kernel=[2, 2], stride=[2, 2], padding=[0, 0, 0, 0], dilation=[1, 1], ceil_mode=false} : f32[1, 64, 8, 8]
  return %pool_1 ; done
}
; trailing comment";

#[test]
fn simple_cnn_text_parses_to_the_right_types() {
    let g = parse(SIMPLE_CNN).unwrap();
    assert_eq!(g.name, "simple_cnn");
    // 3×3 convs with padding 1 keep the size; each 2×2/2 pool halves it: 32 → 16 → 8.
    let expected: [(&str, &[usize]); 11] = [
        ("x", &[1, 3, 32, 32]),
        ("conv1.weight", &[32, 3, 3, 3]),
        ("conv1.bias", &[32]),
        ("conv2.weight", &[64, 32, 3, 3]),
        ("conv2.bias", &[64]),
        ("conv1", &[1, 32, 32, 32]),
        ("relu1", &[1, 32, 32, 32]),
        ("pool", &[1, 32, 16, 16]),
        ("conv2", &[1, 64, 16, 16]),
        ("relu2", &[1, 64, 16, 16]),
        ("pool_1", &[1, 64, 8, 8]),
    ];
    for (name, shape) in expected {
        let v = g.find(name).unwrap_or_else(|| panic!("no %{name}"));
        assert_eq!(g.ty(v).shape, shape, "%{name}");
    }
    assert_eq!(g.len(), expected.len());
    assert_eq!(g.inputs(), &[g.find("x").unwrap()]);
    assert_eq!(g.outputs(), &[g.find("pool_1").unwrap()]);
    let conv1 = g.find("conv1").unwrap();
    let operands: Vec<&str> = g.operands(conv1).iter().map(|&v| g.name(v)).collect();
    assert_eq!(operands, ["x", "conv1.weight", "conv1.bias"]);
    assert_eq!(
        g.op(conv1),
        Some(&conv(1, 1, true, Epilogue::default())),
        "bias from the third operand, padding from the split attribute list"
    );
    assert!(matches!(
        g.node(g.find("conv1.bias").unwrap()).kind,
        NodeKind::Param(None)
    ));
    kiln::ir::verify::verify(&g).unwrap();
}

/// What the parser accepts beyond the printer's output, and the canonical text it prints back.
#[test]
fn lenient_input_prints_canonically() {
    let text = "graph g(%x: f32[1, 4]) {
  %y = relu(%x) {} : f32[1, 4]
  param %w: f32[2, 4]
  %z = linear(%y, %w) {activation=relu()} : f32[1, 2]
  %n = elu(%z) {alpha=2} : f32[1, 2]
  return %n
}";
    let g = parse(text).unwrap();
    assert_eq!(
        print(&g),
        "graph g(%x: f32[1, 4]) {
  param %w: f32[2, 4]
  %y = relu(%x) : f32[1, 4]
  %z = linear(%y, %w) {activation=relu} : f32[1, 2]
  %n = elu(%z) {alpha=2.0} : f32[1, 2]
  return %n
}
"
    );
}

#[test]
fn numbers_out_of_range() {
    let e = parse_error("graph g(%x: f32[99999999999999999999]) {\n  return %x\n}\n");
    assert_eq!((e.line, e.col), (1, 17));
    assert_eq!(e.msg, "dimension '99999999999999999999' is too large");
    let e = parse_error(
        "graph g(%x: f32[1, 4]) {\n  %y = flatten(%x) {start_dim=99999999999999999999} : f32[1, 4]\n  return %y\n}\n",
    );
    assert_eq!((e.line, e.col), (2, 31));
    assert_eq!(
        e.msg,
        "attribute 'start_dim' of flatten: integer '99999999999999999999' is too large"
    );
}

/// The parse error of `text`, which must fail to parse.
fn parse_error(text: &str) -> ParseError {
    match parse(text) {
        Err(Error::Parse(e)) => e,
        Err(e) => panic!("expected a parse error, got: {e}"),
        Ok(g) => panic!("expected a parse error, got a graph:\n{}", print(&g)),
    }
}

#[test]
fn errors_at_end_of_file() {
    let e = parse_error("graph g(%x: f32[2]) {\n  %y = relu(%x) : f32[2]\n  return %y\n");
    assert_eq!((e.line, e.col), (4, 1));
    assert_eq!(
        e.msg,
        "expected ',' or '}' after return value, found end of file"
    );
    let e = parse_error("graph g(%x: f32[2]) {\n  %y = relu(%x");
    assert_eq!((e.line, e.col), (2, 15));
    assert_eq!(
        e.msg,
        "expected ',' or ')' after operand, found end of file"
    );
    let e = parse_error("");
    assert_eq!((e.line, e.col), (1, 1));
    assert_eq!(e.msg, "expected 'graph', found end of file");
}

#[test]
fn a_shape_error_points_at_the_op() {
    // The weight has 4 input channels where the input has 3.
    let text = "graph g(%x: f32[1, 3, 8, 8]) {\n  param %w: f32[8, 4, 3, 3]\n  \
                %y = conv2d(%x, %w) {stride=[1, 1], padding=[0, 0, 0, 0], dilation=[1, 1], \
                groups=1} : f32[1, 8, 6, 6]\n  return %y\n}\n";
    let e = parse_error(text);
    assert_eq!((e.line, e.col), (3, 8));
    assert!(
        e.msg
            .starts_with("node %y (conv2d): operand 1 (weight): expected [8, 3, "),
        "{}",
        e.msg
    );
}

#[test]
fn parse_file_names_the_file() {
    let dir = std::env::temp_dir().join(format!("kiln-text-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.kiln");
    std::fs::write(&path, "graph g(%x: f32[2]) {\n  return %nope\n}\n").unwrap();
    let err = parse_file(&path).unwrap_err();
    let file = path.display().to_string();
    match &err {
        Error::Parse(e) => {
            assert_eq!(e.file.as_deref(), Some(file.as_str()));
            assert_eq!((e.line, e.col), (2, 10));
        }
        e => panic!("expected a parse error, got {e}"),
    }
    assert_eq!(
        err.to_string(),
        format!("{file}:2:10: unknown value '%nope' (values must be defined before they are used)")
    );
    std::fs::write(&path, "graph g(%x: f32[2]) {\n  return %x\n}\n").unwrap();
    assert_eq!(parse_file(&path).unwrap().len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();

    let missing = dir.join("missing.kiln");
    match parse_file(&missing) {
        Err(Error::Runtime(kiln_runtime::RuntimeError::Io { path, source })) => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

/// Where a negative test file expects its error: the line carrying `; error: COL: MESSAGE`.
fn expected_error(text: &str) -> Option<(usize, usize, String)> {
    text.lines().enumerate().find_map(|(i, line)| {
        let (_, rest) = line.split_once("; error: ")?;
        let (col, msg) = rest.split_once(": ")?;
        Some((i + 1, col.parse().ok()?, msg.to_string()))
    })
}

/// Every `tests/text/*.kiln` file fails to parse with the error its `; error:` comment states, at
/// that comment's line (the comment is skipped by the parser like any other).
#[test]
fn negative_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/text");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "kiln"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 15,
        "only {} files in {}",
        files.len(),
        dir.display()
    );
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let (line, col, msg) = expected_error(&text)
            .unwrap_or_else(|| panic!("{}: no '; error: COL: MSG' line", path.display()));
        let expected = ParseError {
            file: Some(path.display().to_string()),
            line,
            col,
            msg,
        };
        match parse_file(path) {
            Err(Error::Parse(e)) if e == expected => {}
            Err(e) => failures.push(format!("expected {expected}\n     got {e}")),
            Ok(_) => failures.push(format!("expected {expected}\n     got a graph")),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

// Property: random attribute values on every op round-trip. Values are drawn so that the shapes
// work (paddings at most half the kernel, windows no larger than the input), since the graph API
// rejects anything else; floats are any f32, NaN and infinities included.

fn pair(lo: usize, hi: usize) -> impl Strategy<Value = [usize; 2]> {
    (lo..=hi, lo..=hi).prop_map(|(a, b)| [a, b])
}

/// Kernel, then a padding of at most half of it on each side.
fn kernel_and_padding(max: usize) -> impl Strategy<Value = ([usize; 2], Padding2d)> {
    pair(1, max).prop_flat_map(|[kh, kw]| {
        (0..=kh / 2, 0..=kw / 2, 0..=kh / 2, 0..=kw / 2).prop_map(
            move |(top, left, bottom, right)| {
                (
                    [kh, kw],
                    Padding2d {
                        top,
                        left,
                        bottom,
                        right,
                    },
                )
            },
        )
    })
}

fn max_pool_attrs(max_kernel: usize) -> impl Strategy<Value = MaxPool2d> {
    (
        kernel_and_padding(max_kernel),
        pair(1, 3),
        pair(1, 2),
        any::<bool>(),
    )
        .prop_map(
            |((kernel, padding), stride, dilation, ceil_mode)| MaxPool2d {
                kernel,
                stride,
                padding,
                dilation,
                ceil_mode,
            },
        )
}

fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::Relu),
        Just(Activation::Sigmoid),
        Just(Activation::Tanh),
        any::<f32>().prop_map(|negative_slope| Activation::LeakyRelu { negative_slope }),
        prop_oneof![Just(GeluApproximate::None), Just(GeluApproximate::Tanh)]
            .prop_map(|approximate| Activation::Gelu { approximate }),
        any::<f32>().prop_map(|alpha| Activation::Elu { alpha }),
    ]
}

#[derive(Debug, Clone)]
struct Attrs {
    conv: Conv2d,
    kernel: [usize; 2],
    max_pool: MaxPool2d,
    avg_pool: AvgPool2d,
    activation: Activation,
    eps: f32,
    start_dim: usize,
    linear: Linear,
}

fn attrs() -> impl Strategy<Value = Attrs> {
    let conv = (
        pair(1, 2),
        (0..=2usize, 0..=2usize, 0..=2usize, 0..=2usize),
        pair(1, 2),
        prop_oneof![Just(1usize), Just(2), Just(4)],
        any::<bool>(),
        (
            any::<bool>(),
            proptest::option::of(activation()),
            proptest::option::of(max_pool_attrs(3)),
        ),
    )
        .prop_map(
            |(
                stride,
                (top, left, bottom, right),
                dilation,
                groups,
                bias,
                (residual, activation, pool),
            )| {
                Conv2d {
                    stride,
                    padding: Padding2d {
                        top,
                        left,
                        bottom,
                        right,
                    },
                    dilation,
                    groups,
                    bias,
                    epilogue: Epilogue {
                        residual,
                        activation,
                        pool,
                    },
                }
            },
        );
    let avg_pool = (
        kernel_and_padding(4),
        pair(1, 3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |((kernel, padding), stride, ceil_mode, count_include_pad)| AvgPool2d {
                kernel,
                stride,
                padding,
                ceil_mode,
                count_include_pad,
            },
        );
    let linear = (
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(activation()),
    )
        .prop_map(|(bias, residual, activation)| Linear {
            bias,
            epilogue: Epilogue {
                residual,
                activation,
                pool: None,
            },
        });
    (
        conv,
        pair(1, 3),
        max_pool_attrs(4),
        avg_pool,
        activation(),
        any::<f32>(),
        0..=3usize,
        linear,
    )
        .prop_map(
            |(conv, kernel, max_pool, avg_pool, activation, eps, start_dim, linear)| Attrs {
                conv,
                kernel,
                max_pool,
                avg_pool,
                activation,
                eps,
                start_dim,
                linear,
            },
        )
}

/// One graph using every op with the drawn attributes. On a 16×16 input the conv's result is at
/// least (16 − 2·(3 − 1) − 1) / 2 + 1 = 6 wide, which fits the epilogue pool's widest window
/// (3 − 1)·2 + 1 = 5; the residual operand is the same conv without epilogue.
fn random_graph(a: &Attrs) -> kiln::Result<Graph> {
    let mut g = Graph::new("random");
    let x = g.add_input("x", &[1, 4, 16, 16])?;
    let w = g.add_param("w", &[4, 4 / a.conv.groups, a.kernel[0], a.kernel[1]], None)?;
    let b = g.add_param("b", &[4], None)?;
    let plain_conv = Conv2d {
        bias: false,
        epilogue: Epilogue::default(),
        ..a.conv.clone()
    };
    let c0 = g.add_op("c0", Op::Conv2d(plain_conv), &[x, w])?;
    let mut operands = vec![x, w];
    if a.conv.bias {
        operands.push(b);
    }
    if a.conv.epilogue.residual {
        operands.push(c0);
    }
    let c = g.add_op("c", Op::Conv2d(a.conv.clone()), &operands)?;
    let mp = g.add_op("mp", Op::MaxPool2d(a.max_pool.clone()), &[x])?;
    let ap = g.add_op("ap", Op::AvgPool2d(a.avg_pool.clone()), &[x])?;
    let act = g.add_op("act", Op::Activation(a.activation), &[x])?;
    let stats: Vec<ValueId> = (0..4)
        .map(|i| g.add_param(&format!("bn.{i}"), &[4], None))
        .collect::<kiln::Result<_>>()?;
    let bn_op = Op::BatchNorm2d(BatchNorm2d { eps: a.eps });
    let bn = g.add_op("bn", bn_op, &[act, stats[0], stats[1], stats[2], stats[3]])?;
    let sum = g.add_op("sum", Op::Add(Add), &[bn, x])?;
    let fl = g.add_op(
        "fl",
        Op::Flatten(Flatten {
            start_dim: a.start_dim,
        }),
        &[sum],
    )?;
    let flat = g.add_op("flat", Op::Flatten(Flatten { start_dim: 1 }), &[x])?;
    let lw = g.add_param("lw", &[8, 1024], None)?;
    let lb = g.add_param("lb", &[8], None)?;
    let l0 = g.add_op(
        "l0",
        Op::Linear(Linear {
            bias: false,
            epilogue: Epilogue::default(),
        }),
        &[flat, lw],
    )?;
    let mut operands = vec![flat, lw];
    if a.linear.bias {
        operands.push(lb);
    }
    if a.linear.epilogue.residual {
        operands.push(l0);
    }
    let l = g.add_op("l", Op::Linear(a.linear.clone()), &operands)?;
    let gap = g.add_op("gap", Op::GlobalAvgPool2d(GlobalAvgPool2d), &[mp])?;
    g.set_outputs(vec![c, ap, fl, l, gap]);
    Ok(g)
}

proptest! {
    #![proptest_config(common::proptest_config(64))]

    #[test]
    fn random_attributes_round_trip(a in attrs()) {
        let g = random_graph(&a).unwrap();
        let text = print(&g);
        let parsed = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(print(&parsed), text);
        // Op equality is exact for every attribute except NaN floats, which print the same but
        // compare unequal; the text comparison above covers those.
        let has_nan = [a.eps].iter().chain(float_attrs(&a).iter()).any(|f| f.is_nan());
        if !has_nan {
            assert_same_graph(&g, &parsed);
        }
    }
}

fn float_attrs(a: &Attrs) -> Vec<f32> {
    let of = |act: &Activation| match *act {
        Activation::LeakyRelu { negative_slope } => Some(negative_slope),
        Activation::Elu { alpha } => Some(alpha),
        _ => None,
    };
    [
        Some(a.activation),
        a.conv.epilogue.activation,
        a.linear.epilogue.activation,
    ]
    .iter()
    .flatten()
    .filter_map(of)
    .collect()
}
