//! Hostile shapes, attributes and sizes: Kiln's limits (dimensions and attributes < 2³¹, at most
//! 2⁴⁰ elements) and the one memory budget, checked at every stage. The reproducers of
//! `fixtures/repro/` (F1, F3, F4, F5, F12) each give one clean `error: …` line, exit status 1 and
//! no output file; the library gives an `Err`.

mod common;

use common::{assert_error, assert_success, golden, kiln, s, scratch, FIXTURES};
use kiln::engine::{Backend, Engine, Options};
use kiln::nn::{self, Conv2d, MaxPool2d};
use kiln_runtime::io::npy::encode_npy;
use kiln_runtime::Tensor;
use std::path::Path;

fn repro(file: &str) -> String {
    format!("{FIXTURES}/repro/{file}")
}

/// Runs `kiln run` on a repro model and checks the error and that no output was written.
fn run_refused(model: &str, extra: &[&str], fragments: &[&str]) {
    let dir = scratch("refused");
    let y = dir.join("y.npy");
    let mut args = vec!["run", model, "--output", s(&y)];
    args.extend_from_slice(extra);
    let out = kiln(&args);
    assert_error(&out, fragments);
    assert!(!y.exists(), "an output was written for {model}");
}

#[test]
fn f1_pool_strides_past_the_attribute_limit_are_refused_by_every_back_end() {
    let x = repro("F1/x.npy");
    let x4 = repro("F1/x4.npy");
    let w4 = repro("F1/w4.safetensors");
    let fuzz_x = repro("F1/fuzz_x_1x2x5x5.npy");
    let cases: [(&str, Vec<&str>, &str); 5] = [
        (
            "F1/maxpool_huge_stride.kiln",
            vec!["--input", &x],
            "attribute stride",
        ),
        (
            "F1/avgpool_stride_2pow63m1.kiln",
            vec!["--input", &x4],
            "attribute stride",
        ),
        (
            "F1/maxpool_stride_2pow62_silent_wrong.kiln",
            vec!["--input", &x4],
            "attribute stride",
        ),
        (
            "F1/fuzz_maxpool_ceil_stride_u64max.kiln",
            vec!["--input", &fuzz_x],
            "attribute stride",
        ),
        (
            "F1/conv_fused_pool_stride_2pow63m1.kiln",
            vec!["--input", &x4, "--weights", &w4],
            "attribute pool_stride",
        ),
    ];
    for (model, args, what) in cases {
        for backend in ["jit", "interp"] {
            let mut a = args.clone();
            a.extend(["--backend", backend]);
            run_refused(&repro(model), &a, &[what, "expected values < 2^31"]);
        }
    }
}

#[test]
fn strides_within_the_limit_but_absurd_are_refused_before_any_code_is_emitted() {
    // Stride 2³¹ − 1 is a legal attribute, but a phase-split copy for it would need terabytes:
    // the geometry bound refuses it cleanly (the interpreter, which copies nothing, runs it).
    let dir = scratch("absurd_stride");
    let model = dir.join("m.kiln");
    std::fs::write(
        &model,
        "graph g(%x: f32[1, 3, 8, 8]) {\n  %p = max_pool2d(%x) {kernel=[3, 3], stride=[2, 2147483647], padding=[1, 1, 1, 1], dilation=[1, 1], ceil_mode=false} : f32[1, 3, 4, 1]\n  return %p\n}\n",
    )
    .unwrap();
    let x = repro("F1/x.npy");
    run_refused(
        s(&model),
        &["--input", &x],
        &["jit: padded copies of step 0 (max_pool2d) needs"],
    );
    let y = dir.join("y.npy");
    let out = kiln(&[
        "run",
        s(&model),
        "--input",
        &x,
        "--output",
        s(&y),
        "--backend",
        "interp",
    ]);
    assert_success(&out);
    // Each output is the max of rows 2i-1..2i+1 of column 0 (the only window column).
    let xt = kiln_runtime::io::npy::read_npy(Path::new(&x)).unwrap();
    let yt = kiln_runtime::io::npy::read_npy(&y).unwrap();
    for c in 0..3usize {
        for i in 0..4usize {
            let rows = (2 * i).saturating_sub(1)..(2 * i + 2).min(8);
            let expected = rows
                .flat_map(|r| (0..2).map(move |col| (r, col)))
                .map(|(r, col)| xt.data()[(c * 8 + r) * 8 + col])
                .fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(yt.data()[c * 4 + i], expected, "channel {c} row {i}");
        }
    }
}

#[test]
fn f5_deeply_nested_attribute_values_are_a_line_col_error() {
    let out = kiln(&["compile", &repro("F5/nested_brackets_15000.kiln")]);
    assert_error(
        &out,
        &[
            "nested_brackets_15000.kiln:2:",
            "nested more than 32 levels deep",
        ],
    );
    // 32 levels are still parsed (and then refused for what they are, not for their depth).
    let deep = format!("{}1{}", "[".repeat(32), "]".repeat(32));
    let text = format!(
        "graph g(%x: f32[1, 1, 4, 4]) {{\n  %y = max_pool2d(%x) {{kernel={deep}}} : f32[1, 1, 4, 4]\n  return %y\n}}\n"
    );
    let err = kiln::ir::text::parse(&text).unwrap_err().to_string();
    assert!(!err.contains("nested"), "{err}");
}

#[test]
fn f12_shapes_whose_element_count_overflows_are_refused() {
    let out = kiln(&[
        "compile",
        &repro("F12/input_2pow64_elements.kiln"),
        "--emit",
        "stats",
    ]);
    assert_error(
        &out,
        &["node %x (input): declared shape", "every dimension < 2^31"],
    );
    // The library probes of the report: each graph is refused when parsed or compiled, on both
    // back ends, and the tensor itself cannot be built.
    let graphs = [
        "graph g(%x: f32[9223372036854775809, 2]) {\n  %y = relu(%x) : f32[9223372036854775809, 2]\n  return %y\n}\n",
        "graph g(%x: f32[1, 2, 9223372036854775809, 1]) {\n  %y = global_avg_pool2d(%x) : f32[1, 2, 1, 1]\n  return %y\n}\n",
        "graph g(%x: f32[1048576, 1048577]) {\n  %y = relu(%x) : f32[1048576, 1048577]\n  return %y\n}\n",
    ];
    for src in graphs {
        let err = kiln::ir::text::parse(src).unwrap_err().to_string();
        assert!(err.contains("declared shape"), "{err}");
    }
    assert!(Tensor::zeros(&[(1 << 63) + 1, 2]).is_err());
    assert!(Tensor::zeros(&[4294967296, 4294967296]).is_err());
    assert!(Tensor::from_vec(vec![0.0; 2], &[(1 << 63) + 1, 2]).is_err());
    // Within the limits the graph compiles, and a mismatched tensor is refused at run time.
    let g = kiln::ir::text::parse(
        "graph g(%x: f32[2, 3]) {\n  %y = relu(%x) : f32[2, 3]\n  return %y\n}\n",
    )
    .unwrap();
    for backend in [Backend::Jit, Backend::Interpreter] {
        let engine = Engine::new(Options {
            backend,
            threads: 1,
            ..Options::default()
        })
        .unwrap();
        let model = engine.compile(g.clone()).unwrap();
        assert!(model.run(&[Tensor::zeros(&[3, 2]).unwrap()]).is_err());
    }
}

#[test]
fn the_nn_builder_has_the_same_limits() {
    let err = nn::trace(&Conv2d::new(3, 1 << 31, 3), &[1, 3, 8, 8], "big")
        .unwrap_err()
        .to_string();
    assert!(err.contains("every dimension < 2^31"), "{err}");
    let err = nn::trace(&MaxPool2d::new(2).stride(1 << 40), &[1, 3, 8, 8], "p")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("attribute stride: expected values < 2^31"),
        "{err}"
    );
}

#[test]
fn f3_onnx_import_is_bounded_by_the_memory_limit() {
    for (model, what) in [
        (
            "F3/twelve_unused_constantofshape_2pow28.onnx",
            "(ConstantOfShape of [268435456]) needs 1073741824 bytes",
        ),
        (
            "F3/constantofshape_mul_chain_2pow28.onnx",
            "(ConstantOfShape of [268435456]) needs 1073741824 bytes",
        ),
    ] {
        let out = kiln(&[
            "compile",
            &repro(model),
            "--emit",
            "stats",
            "--memory-limit",
            "256M",
        ]);
        assert_error(
            &out,
            &[
                "onnx import: ",
                what,
                "more than the memory limit of 268435456 bytes",
            ],
        );
    }
    let out = kiln(&[
        "compile",
        &repro("F3/reshape_to_2pow28_dims.onnx"),
        "--memory-limit",
        "256M",
    ]);
    assert_error(&out, &["onnx import: ", "needs"]);
}

#[test]
fn f4_the_interpreter_is_bounded_by_the_memory_limit() {
    let args = [
        "--weights",
        &repro("F4/w1.safetensors"),
        "--input",
        &repro("F4/x1.npy"),
    ];
    for backend in ["interp", "jit"] {
        let mut a = args.to_vec();
        a.extend(["--backend", backend]);
        let stage = if backend == "interp" {
            "interpreter: "
        } else {
            "jit: "
        };
        run_refused(
            &repro("F4/conv_pad30000.kiln"),
            &a,
            &[stage, "more than the memory limit of 4294967296 bytes"],
        );
    }
}

#[test]
fn every_stage_names_itself_and_the_bytes() {
    let case = "simple_cnn_batch2";
    let (model, weights, input) = (
        golden(case, "model.kiln"),
        golden(case, "weights.safetensors"),
        golden(case, "input.npy"),
    );
    let size = |p: &str| std::fs::metadata(p).unwrap().len();
    let run = |limit: &str, backend: &str| {
        let dir = scratch("stages");
        let y = dir.join("y.npy");
        kiln(&[
            "run",
            &model,
            "--weights",
            &weights,
            "--input",
            &input,
            "--output",
            s(&y),
            "--memory-limit",
            limit,
            "--backend",
            backend,
        ])
    };
    // Text import: the model file, parsed (4 bytes a byte of text).
    let needed = 4 * size(&model);
    let out = kiln(&["compile", &model, "--memory-limit", "100"]);
    assert_error(
        &out,
        &[
            "text import: ",
            &format!("needs {needed} bytes"),
            "limit of 100 bytes",
        ],
    );
    // Weights: the file and its decoded tensors.
    let limit = (4 * size(&model)).to_string();
    let needed = 2 * size(&weights);
    assert!(
        needed > 4 * size(&model),
        "the weights must be the larger file here"
    );
    let out = kiln(&[
        "compile",
        &model,
        "--weights",
        &weights,
        "--memory-limit",
        &limit,
    ]);
    assert_error(&out, &["weights: ", &format!("needs {needed} bytes")]);
    let limit = (2 * size(&weights)).to_string();
    // Interpreter and JIT: what they hold while running, above the weights' limit.
    assert_error(&run(&limit, "interp"), &["interpreter: ", "needs"]);
    assert_error(&run(&limit, "jit"), &["jit: ", "needs"]);
    // Enough for everything: the run succeeds.
    assert_success(&run("64M", "jit"));
    assert_success(&run("64M", "interp"));
}

#[test]
fn inputs_larger_than_the_limit_are_refused_from_their_size() {
    let dir = scratch("input_budget");
    let x = dir.join("x.npy");
    std::fs::write(&x, encode_npy(&Tensor::zeros(&[64, 64]).unwrap())).unwrap();
    let model = dir.join("m.kiln");
    std::fs::write(
        &model,
        "graph g(%x: f32[64, 64]) {\n  %y = relu(%x) : f32[64, 64]\n  return %y\n}\n",
    )
    .unwrap();
    let size = std::fs::metadata(&x).unwrap().len();
    let y = dir.join("y.npy");
    // The model's text (4 × 80 bytes parsed) fits in 1000 bytes; the 16 KiB input does not.
    let out = kiln(&[
        "run",
        s(&model),
        "--input",
        s(&x),
        "--output",
        s(&y),
        "--memory-limit",
        "1000",
    ]);
    assert_error(
        &out,
        &[
            "input: ",
            &format!("({size} bytes) needs {size} bytes"),
            "limit of 1000 bytes",
        ],
    );
    assert!(!y.exists());
}

#[test]
fn memory_limit_takes_byte_counts_with_binary_suffixes() {
    let model = golden("simple_cnn_batch2", "model.kiln");
    let out = kiln(&["compile", &model, "--memory-limit", "4X"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("expected a byte count such as 1048576 or 4G"),
        "{stderr}"
    );
    let out = kiln(&["compile", &model, "--memory-limit", "99999999999T"]);
    assert_eq!(out.status.code(), Some(1));
    assert_success(&kiln(&["compile", &model, "--memory-limit", "1G"]));
}
