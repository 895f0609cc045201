//! The optimizer through the `kiln` binary: `-O` levels, `--passes`, `--emit stats|plan|ir|dot`,
//! `--explain`, the print/time switches and `kiln debug bisect`.

mod common;

use common::{assert_npy_matches, golden, kiln, s, scratch, stdout_of, FIXTURES};
use kiln_runtime::io::safetensors::encode_safetensors;
use kiln_runtime::Tensor;
use std::collections::BTreeMap;
use std::path::Path;

#[test]
fn stats_show_simple_cnn_fully_fused() {
    let model = golden("simple_cnn_batch2", "model.kiln");
    let weights = golden("simple_cnn_batch2", "weights.safetensors");
    let json = stdout_of(&kiln(&[
        "compile",
        &model,
        "--weights",
        &weights,
        "-O2",
        "--emit",
        "stats",
    ]));
    // Both ReLUs and both pools live in the two convs' epilogues; nothing else is left.
    assert!(json.contains(r#""ops": {"conv2d": 2}"#), "{json}");
    assert!(
        json.contains(r#""fused": {"activation": 2, "batch_norm": 0, "residual": 0, "pool": 2}"#),
        "{json}"
    );
    for key in [
        r#""in_place": "#,
        r#""arena_bytes": "#,
        r#""naive_bytes": "#,
        r#""lower_bound_bytes": "#,
    ] {
        assert!(json.contains(key), "{key} missing from {json}");
    }
    // At -O0 nothing is fused.
    let json = stdout_of(&kiln(&[
        "compile",
        &model,
        "--weights",
        &weights,
        "-O0",
        "--emit",
        "stats",
    ]));
    assert!(
        json.contains(r#""ops": {"conv2d": 2, "max_pool2d": 2, "relu": 2}"#),
        "{json}"
    );
}

#[test]
fn residual_block_tail_is_fused_into_the_second_conv() {
    let ir = stdout_of(&kiln(&[
        "compile",
        &golden("residual_block", "model.kiln"),
        "--emit",
        "ir",
    ]));
    let conv2 = ir
        .lines()
        .find(|l| l.trim_start().starts_with("%conv2 = conv2d("))
        .expect("a conv2 line");
    assert!(conv2.contains("residual=true, activation=relu"), "{ir}");
    assert!(!ir.contains("= add(") && !ir.contains("= relu("), "{ir}");
}

#[test]
fn refusals_are_explained() {
    let model = format!("{FIXTURES}/models/conv_two_users.kiln");
    let out = stdout_of(&kiln(&["compile", &model, "--emit", "ir", "--explain"]));
    assert!(
        out.contains("; not fused: %conv has 2 users (%relu, %gate)"),
        "{out}"
    );
    // A plan needs the weights: give the model's two parameters some.
    let dir = scratch("explain");
    let mut weights = BTreeMap::new();
    weights.insert(
        "conv.weight".to_string(),
        Tensor::full(&[4, 3, 3, 3], 0.1).unwrap(),
    );
    weights.insert("conv.bias".to_string(), Tensor::full(&[4], 0.0).unwrap());
    let w = dir.join("w.safetensors");
    std::fs::write(&w, encode_safetensors(&weights)).unwrap();
    let model = format!("{FIXTURES}/models/relu_of_input.kiln");
    let plan = stdout_of(&kiln(&[
        "compile",
        &model,
        "--weights",
        s(&w),
        "--emit",
        "plan",
    ]));
    assert!(plan.contains("not in place: %x is a graph input"), "{plan}");
}

#[test]
fn pass_selection_and_observation() {
    let model = golden("simple_cnn_batch2", "model.kiln");
    let out = kiln(&["compile", &model, "--passes", "dce,frobnicate"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: unknown pass `frobnicate`; the passes are: dce,"),
        "{err}"
    );

    // Only fuse_activation: the pools stay standalone.
    let ir = stdout_of(&kiln(&["compile", &model, "--passes", "fuse_activation"]));
    assert!(
        ir.contains("activation=relu") && ir.contains("= max_pool2d("),
        "{ir}"
    );

    let out = kiln(&[
        "compile",
        &model,
        "--print-after",
        "fuse_pool",
        "--time-passes",
        "--verify-each",
    ]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("fuse_pool") && log.contains("pool_kernel=[2, 2]"),
        "{log}"
    );
    assert!(log.contains("; pass timings"), "{log}");

    let out = kiln(&["compile", &model, "-O7"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn dot_lists_the_epilogue() {
    let dot = stdout_of(&kiln(&[
        "compile",
        &golden("simple_cnn_batch2", "model.kiln"),
        "--emit",
        "dot",
    ]));
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(dot.contains("relu") && dot.contains("max_pool"), "{dot}");
}

#[test]
fn every_level_gives_pytorchs_answer() {
    let dir = scratch("levels");
    let expected = golden("mini_resnet", "expected.npy");
    for level in ["-O0", "-O1", "-O2"] {
        let y = dir.join(format!("y{level}.npy"));
        stdout_of(&kiln(&[
            "run",
            &golden("mini_resnet", "model.kiln"),
            "--weights",
            &golden("mini_resnet", "weights.safetensors"),
            "--input",
            &golden("mini_resnet", "input.npy"),
            "--output",
            s(&y),
            level,
        ]));
        assert_npy_matches(&y, Path::new(&expected), level);
    }
}

#[test]
fn bisect_finds_no_divergence_in_the_real_pipeline() {
    let out = stdout_of(&kiln(&[
        "debug",
        "bisect",
        &golden("mini_resnet", "model.kiln"),
        "--weights",
        &golden("mini_resnet", "weights.safetensors"),
        "--input",
        &golden("mini_resnet", "input.npy"),
    ]));
    for pass in ["fold_batch_norm", "fuse_residual", "memory_plan"] {
        assert!(out.contains(pass), "{out}");
    }
    assert!(out.contains("no pass diverges"), "{out}");
}
