//! `cargo bench -p kiln-compiler [-- FILTER…]`: the JIT on SimpleCNN (batch 1, 8, 32), the golden
//! mini-ResNet and, when `scripts/gen_golden.py --resnet18` has written it, ResNet-18 — at 1 and 2
//! threads, with the per-step profile — and the interpreter on SimpleCNN at batch 1 for the
//! speed-up. Prints `kiln bench`'s text report for each. No criterion: the library's
//! [`kiln::engine::bench`] is what `kiln bench` runs, so this measures the same thing.

use kiln::engine::{bench, Backend, BenchOptions, Engine, Options};
use kiln::nn::models::SimpleCnn;
use kiln::Graph;
use kiln_runtime::io::safetensors::read_safetensors;
use kiln_runtime::Tensor;
use std::path::Path;
use std::time::Duration;

fn simple_cnn(batch: usize) -> Graph {
    kiln::nn::trace_with_init(&SimpleCnn::new(), &[batch, 3, 32, 32], "simple_cnn", 7)
        .expect("SimpleCNN traces")
}

/// One `k×k` conv (+ bias + ReLU) layer: `c → o` channels on `hw × hw`, with `stride` and padding
/// `k / 2`.
fn conv_layer(c: usize, o: usize, hw: usize, k: usize, stride: usize) -> Graph {
    use kiln_runtime::ops::{Activation, Conv2d, Epilogue, Op, Padding2d};
    let mut g = Graph::new("layer");
    let x = g.add_input("x", &[1, c, hw, hw]).expect("input");
    let w = g
        .add_param(
            "w",
            &[o, c, k, k],
            Some(Tensor::randn(&[o, c, k, k], 1).unwrap()),
        )
        .expect("weight");
    let b = g
        .add_param("b", &[o], Some(Tensor::randn(&[o], 2).unwrap()))
        .expect("bias");
    let conv = Op::Conv2d(Conv2d {
        stride: [stride, stride],
        padding: Padding2d::symmetric(k / 2, k / 2),
        dilation: [1, 1],
        groups: 1,
        bias: true,
        epilogue: Epilogue::default(),
    });
    let y = g.add_op("conv", conv, &[x, w, b]).expect("conv");
    let r = g
        .add_op("relu", Op::Activation(Activation::Relu), &[y])
        .expect("relu");
    g.set_outputs(vec![r]);
    g
}

fn from_fixture(dir: &Path) -> Option<Graph> {
    let mut g = kiln::ir::text::parse_file(&dir.join("model.kiln")).ok()?;
    let w = read_safetensors(&dir.join("weights.safetensors")).ok()?;
    kiln::weights::bind_weights(&mut g, &w).ok()?;
    Some(g)
}

fn run(name: &str, graph: &Graph, backend: Backend, threads: usize, profile: bool) {
    let engine = Engine::new(Options {
        backend,
        threads,
        ..Options::default()
    })
    .expect("engine");
    let model = engine.compile(graph.clone()).expect("compiles");
    let inputs: Vec<Tensor> = model
        .input_shapes()
        .iter()
        .enumerate()
        .map(|(i, s)| Tensor::randn(s, 42 + i as u64).unwrap())
        .collect();
    let opts = BenchOptions {
        profile,
        min_time: Duration::from_millis(if backend == Backend::Jit { 1000 } else { 300 }),
        min_runs: if backend == Backend::Jit { 20 } else { 3 },
        warmup: if backend == Backend::Jit { 5 } else { 1 },
        ..BenchOptions::default()
    };
    let report = bench(&model, &inputs, &opts).expect("bench");
    println!("== {name} ({} , {threads} thread(s))", backend.name());
    println!("{}", report.to_text());
    println!("{}\n", report.to_json());
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden");
    let mut models: Vec<(String, Graph)> = [1, 8, 32]
        .iter()
        .map(|&b| (format!("simple_cnn_b{b}"), simple_cnn(b)))
        .collect();
    if let Some(g) = from_fixture(&golden.join("mini_resnet")) {
        models.push(("mini_resnet".into(), g));
    }
    let r18 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fixtures/resnet18");
    if let Some(g) = from_fixture(&r18) {
        models.push(("resnet18".into(), g));
    }
    // Single layers (1 thread): SimpleCNN's conv2, one 3×3 conv of each ResNet-18 stage and the
    // 1×1 stride-2 downsample convs.
    for (name, c, o, hw, k, s) in [
        ("layer_simple_conv2", 32, 64, 16, 3, 1),
        ("layer_r18_stage1", 64, 64, 56, 3, 1),
        ("layer_r18_stage2", 128, 128, 28, 3, 1),
        ("layer_r18_stage3", 256, 256, 14, 3, 1),
        ("layer_r18_stage4", 512, 512, 7, 3, 1),
        ("layer_r18_down2", 64, 128, 56, 1, 2),
        ("layer_r18_down3", 128, 256, 28, 1, 2),
        ("layer_r18_down4", 256, 512, 14, 1, 2),
    ] {
        if wanted(name) {
            run(name, &conv_layer(c, o, hw, k, s), Backend::Jit, 1, true);
        }
    }
    for (name, graph) in &models {
        if !wanted(name) {
            continue;
        }
        for threads in [1, 2] {
            run(name, graph, Backend::Jit, threads, true);
        }
        if name == "simple_cnn_b1" {
            run(name, graph, Backend::Interpreter, 1, false);
        }
    }
}
