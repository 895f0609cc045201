//! Shared by the optimizer's tests: the example models (golden PyTorch fixtures with their weights,
//! or the small `.kiln` models of `fixtures/models/` with seeded random weights), inputs, and the
//! interpreter at a given optimization level.
#![allow(dead_code)]

use kiln::passes::{OptLevel, PassManager};
use kiln::{Graph, NodeKind};
use kiln_runtime::io::safetensors::read_safetensors;
use kiln_runtime::Tensor;
use std::path::{Path, PathBuf};

/// `compiler/tests/fixtures`.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The example models of the snapshots, as `(snapshot name, fixture)`: a golden case directory
/// name or a `.kiln` file under `fixtures/models/`.
pub const MODELS: &[(&str, &str)] = &[
    ("simple_cnn", "golden/simple_cnn_batch2"),
    ("residual_block", "golden/residual_block"),
    ("classifier", "golden/simple_cnn_classifier"),
    ("mini_resnet", "golden/mini_resnet"),
    ("relu_after_pool", "models/relu_after_pool.kiln"),
    ("conv_two_users", "models/conv_two_users.kiln"),
    ("relu_of_input", "models/relu_of_input.kiln"),
    ("bn_after_conv_bias", "models/bn_after_conv_bias.kiln"),
];

/// Loads a fixture with its weights: a golden case's `weights.safetensors`, or seeded random
/// weights for a model of `fixtures/models/`.
pub fn load(fixture: &str) -> Graph {
    let path = fixtures().join(fixture);
    if path.is_dir() {
        let mut g = kiln::ir::text::parse_file(&path.join("model.kiln")).unwrap();
        let w = read_safetensors(&path.join("weights.safetensors")).unwrap();
        kiln::weights::bind_weights(&mut g, &w).unwrap();
        g
    } else {
        let mut g = kiln::ir::text::parse_file(&path).unwrap();
        bind_random(&mut g, 7);
        g
    }
}

/// Parses `text` and binds seeded random weights.
pub fn parse_bound(text: &str) -> Graph {
    let mut g = kiln::ir::text::parse(text).unwrap();
    bind_random(&mut g, 7);
    g
}

/// Gives every unbound parameter seeded random data: variances and BatchNorm scales in [0.5, 1.5)
/// (a variance must be positive), everything else in [-0.5, 0.5).
pub fn bind_random(g: &mut Graph, seed: u64) {
    for (i, p) in g.params().into_iter().enumerate() {
        if !matches!(g.node(p).kind, NodeKind::Param(None)) {
            continue;
        }
        let name = g.name(p).to_string();
        let shape = g.ty(p).shape.clone();
        let positive = name.ends_with("running_var") || is_bn_scale(g, p);
        let (lo, hi) = if positive { (0.5, 1.5) } else { (-0.5, 0.5) };
        let t = Tensor::rand_uniform(
            &shape,
            lo,
            hi,
            seed.wrapping_mul(1000).wrapping_add(i as u64),
        )
        .unwrap();
        g.node_mut(p).kind = NodeKind::Param(Some(t));
    }
}

/// Whether `p` is operand 1 (the scale) of a batch_norm.
fn is_bn_scale(g: &Graph, p: kiln::ValueId) -> bool {
    g.users(p).into_iter().any(|u| {
        g.op(u).is_some_and(|op| op.name() == "batch_norm") && g.operands(u).get(1) == Some(&p)
    })
}

/// Seeded standard-normal inputs of the graph's input shapes.
pub fn inputs(g: &Graph, seed: u64) -> Vec<Tensor> {
    g.inputs()
        .iter()
        .enumerate()
        .map(|(i, &v)| Tensor::randn(&g.ty(v).shape, seed + i as u64).unwrap())
        .collect()
}

/// Compiles at `level` and runs the plan on the interpreter.
pub fn run_at(g: &Graph, level: OptLevel, inputs: &[Tensor]) -> Vec<Tensor> {
    let compiled = PassManager::new(level)
        .run(g.clone(), &mut std::io::sink())
        .unwrap();
    kiln_runtime::interpreter::run(&compiled.plan, inputs).unwrap()
}

/// Asserts that two output lists agree within the golden tolerance (rtol 1e-4, atol 1e-5).
pub fn assert_close(what: &str, got: &[Tensor], want: &[Tensor]) {
    assert_eq!(got.len(), want.len(), "{what}: output count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.allclose(w, 1e-4, 1e-5),
            "{what}: output {i} differs by up to {}",
            g.max_abs_diff(w)
        );
    }
}
