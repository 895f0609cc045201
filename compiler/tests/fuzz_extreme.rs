//! Structure-aware fuzzing with extreme attributes and shapes (beside `onnx_fuzz.rs`'s byte-level
//! fuzzing): models of every op whose dimensions and attributes take boundary values — 0, 1,
//! 2^31−1, 2^31, 2^32, 2^40, 2^62, 2^63−1, u64::MAX, and negative ones where the format is signed —
//! mixed with ordinary small ones, so that most models get past a first check and reach the next.
//!
//! Three targets make the models:
//! - `library`: built with `Graph::add_input`/`add_param`/`add_op` (every op, fused epilogues
//!   included); a model the library accepts must also print as text and parse back unchanged;
//! - `text`: such a model printed as `.kiln`, then one to three of its numbers replaced by
//!   boundary spellings (negative, 2^64, 2^128, leading zeros, …) and parsed;
//! - `onnx`: one or two ONNX nodes (`Conv`, pools, `Gemm`, `Reshape`, `ConstantOfShape`, `Pad`,
//!   `Slice`, …) with signed boundary attributes, input dims and initializer dims, imported.
//!
//! Every model that gets through its front end is compiled by the interpreter (`-O0`, the oracle)
//! and by the JIT (`-O0` or `-O2`, one or two threads) under a 64 MiB memory limit; when both accept
//! it and it is cheap enough to run, the JIT runs with its input, arena and every output against a
//! guard page (`common::guard`) and must agree with the interpreter. A refusal (`Err`) is fine; a
//! panic, a disagreement, a text that does not round-trip, or a fault is a finding. The model
//! being tried is written to `$CARGO_TARGET_TMPDIR/fuzz_extreme_last.*` first, so that even a
//! crash leaves its input behind.
//!
//! - `quick_extreme_models` (always run): a fixed seed, a few hundred models per target.
//! - `fuzz_extreme_for_a_while` (ignored): each target for `KILN_FUZZ_SECS` seconds (default 60)
//!   from `KILN_FUZZ_SEED` (default: the clock); `KILN_FUZZ_TARGET` picks one target, e.g.
//!   `KILN_FUZZ_SECS=600 cargo test --release -p kiln-compiler --test fuzz_extreme -- --ignored --nocapture`.

mod common;

use common::close_to_interpreter;
use common::guard::run_guarded;
use common::onnx_build::{a_float, a_int, a_ints, f32_tensor, i64_tensor, input, model, node};
use common::random_graph::activation;
use kiln::engine::{Backend, CompiledModel, Engine, Options};
use kiln::frontend::onnx::proto::{AttributeProto, ModelProto, NodeProto, TensorProto};
use kiln::frontend::onnx::OnnxModel;
use kiln::ir::text::{parse, print};
use kiln::passes::OptLevel;
use kiln::{Graph, NodeKind, ValueId};
use kiln_runtime::ops::{
    Add, AvgPool2d, BatchNorm2d, Conv2d, Epilogue, Flatten, GlobalAvgPool2d, Linear, MaxPool2d, Op,
    Padding2d,
};
use kiln_runtime::Tensor;
use prost::Message;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// The memory limit every model is compiled under: small, so that big-but-legal models are refused
/// quickly instead of being run.
const LIMIT: u64 = 64 << 20;
/// Parameters are materialised (and models run) only up to this many elements in all.
const MAX_PARAM_ELEMENTS: usize = 1 << 20;
/// Models whose input has more elements are compiled but not run.
const MAX_INPUT_ELEMENTS: usize = 1 << 20;
/// Models needing more work than this are compiled but not run (the interpreter is slow).
const MAX_FLOPS: u64 = 50_000_000;

/// Unsigned boundary values (dimensions and attributes of the library's `usize` fields).
const EXTREME: &[u64] = &[
    0,
    1,
    2,
    3,
    (1 << 31) - 1,
    1 << 31,
    1 << 32,
    1 << 40,
    1 << 62,
    (1 << 63) - 1,
    u64::MAX - 1,
    u64::MAX,
];

/// Spellings a number of a `.kiln` file is replaced with.
const TEXT_EXTREME: &[&str] = &[
    "0",
    "1",
    "-1",
    "-0",
    "00",
    "007",
    "2147483647",
    "2147483648",
    "4294967296",
    "4611686018427387904",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "1e9",
    "0x10",
    "1.5",
    "",
];

/// SplitMix64: small, seeded, good enough to choose models.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True one time in `n`.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn extreme(&mut self) -> usize {
        EXTREME[self.below(EXTREME.len())] as usize
    }

    /// A dimension: mostly 1–6, sometimes a boundary value.
    fn dim(&mut self) -> usize {
        if self.one_in(10) {
            self.extreme()
        } else {
            1 + self.below(6)
        }
    }

    /// A kernel size, stride or dilation: mostly 1–3, sometimes a boundary value (0 included).
    fn positive(&mut self) -> usize {
        if self.one_in(8) {
            self.extreme()
        } else {
            1 + self.below(3)
        }
    }

    /// A padding: mostly 0–2, sometimes a boundary value.
    fn padding(&mut self) -> usize {
        if self.one_in(8) {
            self.extreme()
        } else {
            self.below(3)
        }
    }

    /// A signed ONNX attribute: mostly 0–3, sometimes a boundary value or its negation.
    fn signed(&mut self) -> i64 {
        if self.one_in(5) {
            let v = EXTREME[self.below(EXTREME.len())] as i64;
            if self.one_in(2) {
                v.wrapping_neg()
            } else {
                v
            }
        } else {
            self.below(4) as i64
        }
    }
}

/// What a run of one target saw.
#[derive(Default, Debug)]
struct Stats {
    /// Models tried.
    iterations: u64,
    /// Models the front end (builder, parser or importer) accepted.
    accepted: u64,
    /// Models both the interpreter and the JIT compiled.
    compiled: u64,
    /// Models run on both and compared.
    compared: u64,
    /// Panics, disagreements and round-trip failures.
    findings: Vec<String>,
}

impl Stats {
    fn line(&self, target: &str, elapsed: Duration) -> String {
        format!(
            "{target}: {} models in {:.0} s: {} accepted by the front end, {} compiled by both back \
             ends, {} run and compared under guard pages; {} findings",
            self.iterations,
            elapsed.as_secs_f64(),
            self.accepted,
            self.compiled,
            self.compared,
            self.findings.len()
        )
    }
}

/// The engines a model is compiled with, made once (each owns a thread pool).
struct Engines {
    interpreter: Engine,
    /// Indexed by `[opt level is O2][two threads]`.
    jit: [[Engine; 2]; 2],
}

impl Engines {
    fn new() -> Engines {
        let opts = |backend, opt_level, threads| Options {
            backend,
            opt_level,
            threads,
            memory_limit: LIMIT,
            ..Options::default()
        };
        let jit = |level| {
            [1, 2].map(|threads| {
                Engine::new(opts(Backend::Jit, level, threads)).expect("a JIT engine")
            })
        };
        Engines {
            interpreter: Engine::new(opts(Backend::Interpreter, OptLevel::O0, 1))
                .expect("an interpreter engine"),
            jit: [jit(OptLevel::O0), jit(OptLevel::O2)],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The library target.

/// A max pool with random (often extreme) attributes.
fn max_pool(rng: &mut Rng) -> MaxPool2d {
    MaxPool2d {
        kernel: [rng.positive(), rng.positive()],
        stride: [rng.positive(), rng.positive()],
        padding: padding(rng),
        dilation: [rng.positive(), rng.positive()],
        ceil_mode: rng.one_in(2),
    }
}

fn padding(rng: &mut Rng) -> Padding2d {
    Padding2d {
        top: rng.padding(),
        left: rng.padding(),
        bottom: rng.padding(),
        right: rng.padding(),
    }
}

/// Adds one op of a random kind on `src` (with its parameters); `None` when the builder refuses it.
fn add_random_op(g: &mut Graph, rng: &mut Rng, i: usize, src: ValueId) -> Option<ValueId> {
    let shape = g.ty(src).shape.clone();
    let channels = shape.get(1).copied().unwrap_or(1);
    let last = shape.last().copied().unwrap_or(1);
    let name = format!("v{i}");
    let mut params: Vec<(&str, Vec<usize>)> = Vec::new();
    let mut extra: Vec<ValueId> = Vec::new();
    let op = match rng.below(10) {
        0 | 1 => {
            let groups = match rng.below(5) {
                0 => channels,
                1 => rng.positive(),
                _ => 1,
            };
            let out_channels = match rng.below(3) {
                0 => groups.saturating_mul(1 + rng.below(2)),
                1 => rng.dim(),
                _ => 1 + rng.below(8),
            };
            let per_group = channels.checked_div(groups).unwrap_or(channels);
            params.push((
                "weight",
                vec![out_channels, per_group, rng.positive(), rng.positive()],
            ));
            let bias = rng.one_in(2);
            if bias {
                params.push(("bias", vec![out_channels]));
            }
            let mut epilogue = Epilogue::default();
            if rng.one_in(2) {
                epilogue.activation = Some(activation(rng.below(7)));
            }
            if rng.one_in(3) {
                epilogue.pool = Some(max_pool(rng));
            }
            let mut conv = Conv2d {
                stride: [rng.positive(), rng.positive()],
                padding: padding(rng),
                dilation: [rng.positive(), rng.positive()],
                groups,
                bias,
                epilogue,
            };
            if rng.one_in(4) {
                // A residual operand of the conv's result shape: the source itself when it fits.
                conv.epilogue.residual = true;
                extra.push(src);
            }
            Op::Conv2d(conv)
        }
        2 => Op::MaxPool2d(max_pool(rng)),
        3 => Op::AvgPool2d(AvgPool2d {
            kernel: [rng.positive(), rng.positive()],
            stride: [rng.positive(), rng.positive()],
            padding: padding(rng),
            ceil_mode: rng.one_in(2),
            count_include_pad: rng.one_in(2),
        }),
        4 => Op::GlobalAvgPool2d(GlobalAvgPool2d),
        5 => Op::Activation(activation(rng.below(7))),
        6 => {
            let c = if rng.one_in(6) { rng.dim() } else { channels };
            for p in ["weight", "bias", "running_mean", "running_var"] {
                params.push((p, vec![c]));
            }
            let eps = [1e-5, 0.0, 1e30, f32::MIN_POSITIVE][rng.below(4)];
            Op::BatchNorm2d(BatchNorm2d { eps })
        }
        7 => {
            extra.push(src);
            Op::Add(Add)
        }
        8 => Op::Flatten(Flatten {
            start_dim: if rng.one_in(4) {
                rng.extreme()
            } else {
                rng.below(4)
            },
        }),
        _ => {
            let k = if rng.one_in(6) { rng.dim() } else { last };
            let out = rng.dim();
            let bias = rng.one_in(2);
            params.push(("weight", vec![out, k]));
            if bias {
                params.push(("bias", vec![out]));
            }
            let mut epilogue = Epilogue::default();
            if rng.one_in(2) {
                epilogue.activation = Some(activation(rng.below(7)));
            }
            Op::Linear(Linear { bias, epilogue })
        }
    };
    let mut operands = vec![src];
    // Parameters come after the input and before a residual (the operand order of the op set).
    let residual = matches!(&op, Op::Conv2d(c) if c.epilogue.residual);
    for (p, s) in &params {
        operands.push(g.add_param(&format!("{name}.{p}"), s, None).ok()?);
    }
    if residual || matches!(op, Op::Add(_)) {
        operands.extend(extra);
    }
    g.add_op(&name, op, &operands).ok()
}

/// A random model built with the library; `None` when the builder refused its input or first op.
fn library_model(rng: &mut Rng) -> Option<Graph> {
    let mut g = Graph::new("fuzz");
    let rank = if rng.one_in(10) { rng.below(6) } else { 4 };
    let shape: Vec<usize> = (0..rank).map(|_| rng.dim()).collect();
    let mut last = g.add_input("x", &shape).ok()?;
    let mut any = false;
    for i in 0..1 + rng.below(3) {
        match add_random_op(&mut g, rng, i, last) {
            Some(v) => {
                last = v;
                any = true;
            }
            None => break,
        }
    }
    if !any {
        return None;
    }
    g.set_outputs(vec![last]);
    Some(g)
}

/// Gives every parameter seeded random data (a variance positive; now and then one NaN, ±Inf or
/// huge weight); false if the parameters are too large to materialise here.
fn fill_params(g: &mut Graph, rng: &mut Rng) -> bool {
    let params = g.params();
    let total = params
        .iter()
        .map(|&p| {
            g.ty(p)
                .shape
                .iter()
                .fold(1usize, |a, &d| a.saturating_mul(d))
        })
        .fold(0usize, usize::saturating_add);
    if total > MAX_PARAM_ELEMENTS {
        return false;
    }
    for p in params {
        let shape = g.ty(p).shape.clone();
        let Ok(mut t) = Tensor::randn(&shape, rng.next()) else {
            return false;
        };
        let variance = g.name(p).ends_with("running_var");
        t.data_mut().iter_mut().for_each(|v| {
            *v = if variance { v.abs() + 0.5 } else { *v * 0.5 };
        });
        if !variance && t.numel() > 0 && rng.one_in(20) {
            let at = rng.below(t.numel());
            t.data_mut()[at] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30][rng.below(4)];
        }
        g.node_mut(p).kind = NodeKind::Param(Some(t));
    }
    true
}

/// The model's input (seeded normal values, now and then NaN), if it is small enough to run.
fn model_input(g: &Graph, rng: &mut Rng) -> Option<Tensor> {
    let &x = g.inputs().first()?;
    let shape = g.ty(x).shape.clone();
    if shape.iter().fold(1usize, |a, &d| a.saturating_mul(d)) > MAX_INPUT_ELEMENTS {
        return None;
    }
    let mut t = Tensor::randn(&shape, rng.next()).ok()?;
    if t.numel() > 0 && rng.one_in(10) {
        let at = rng.below(t.numel());
        t.data_mut()[at] = f32::NAN;
    }
    Some(t)
}

// ---------------------------------------------------------------------------------------------
// The text target.

/// Replaces one to three numbers of `text` by boundary spellings.
fn mutate_text(text: &str, rng: &mut Rng) -> String {
    let bytes = text.as_bytes();
    let mut numbers: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            numbers.push((start, i));
        } else {
            i += 1;
        }
    }
    if numbers.is_empty() {
        return text.to_string();
    }
    let mut picked: Vec<(usize, usize)> = (0..1 + rng.below(3))
        .map(|_| numbers[rng.below(numbers.len())])
        .collect();
    picked.sort_unstable();
    picked.dedup();
    let mut out = text.to_string();
    for &(start, end) in picked.iter().rev() {
        out.replace_range(start..end, TEXT_EXTREME[rng.below(TEXT_EXTREME.len())]);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The ONNX target.

/// An `ints` attribute of `n` signed boundary values.
fn ints(rng: &mut Rng, name: &str, n: usize) -> AttributeProto {
    let n = if rng.one_in(8) { rng.below(6) } else { n };
    let v: Vec<i64> = (0..n).map(|_| rng.signed()).collect();
    a_ints(name, &v)
}

/// A kernel-ish `ints` attribute: mostly 1–3 per entry.
fn positive_ints(rng: &mut Rng, name: &str) -> AttributeProto {
    if rng.one_in(4) {
        return ints(rng, name, 2);
    }
    let v: Vec<i64> = (0..2).map(|_| 1 + rng.below(3) as i64).collect();
    a_ints(name, &v)
}

/// A float initializer of `dims` (data only when small and the dims are valid: otherwise the data
/// does not match, which is also worth trying).
fn initializer(rng: &mut Rng, name: &str, dims: &[i64]) -> TensorProto {
    let numel = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(usize::try_from(d).ok()?));
    let data: Vec<f32> = match numel {
        Some(n) if n <= MAX_PARAM_ELEMENTS => (0..n)
            .map(|_| (rng.below(2001) as f32 - 1000.0) / 2000.0)
            .collect(),
        _ => Vec::new(),
    };
    f32_tensor(name, dims, &data)
}

/// A dim of an ONNX shape: mostly 1–6, sometimes a signed boundary value.
fn onnx_dim(rng: &mut Rng) -> i64 {
    if rng.one_in(8) {
        rng.signed()
    } else {
        1 + rng.below(6) as i64
    }
}

/// One or two ONNX nodes on a float input `x` of rank 4 (mostly), with extreme attributes.
fn onnx_model(rng: &mut Rng) -> ModelProto {
    let dims: Vec<i64> = (0..if rng.one_in(10) { rng.below(6) } else { 4 })
        .map(|_| onnx_dim(rng))
        .collect();
    let c = dims.get(1).copied().unwrap_or(1);
    let mut inits = Vec::new();
    let mut nodes: Vec<NodeProto> = Vec::new();
    let pads = |rng: &mut Rng| {
        if rng.one_in(3) {
            ints(rng, "pads", 4)
        } else {
            a_ints("pads", &[0, 1, 1, 0].map(|p| p * rng.below(2) as i64))
        }
    };
    match rng.below(12) {
        0 | 1 => {
            let group = if rng.one_in(3) { rng.signed() } else { 1 };
            let oc = onnx_dim(rng);
            let per_group = if group > 0 { c / group } else { c };
            let k = [1 + rng.below(3) as i64, 1 + rng.below(3) as i64];
            let k = if rng.one_in(6) {
                [rng.signed(), rng.signed()]
            } else {
                k
            };
            inits.push(initializer(rng, "w", &[oc, per_group, k[0], k[1]]));
            inits.push(initializer(rng, "b", &[oc]));
            let mut attrs = vec![
                positive_ints(rng, "strides"),
                positive_ints(rng, "dilations"),
                pads(rng),
                a_int("group", group),
            ];
            if rng.one_in(3) {
                attrs.push(a_ints("kernel_shape", &k));
            }
            nodes.push(node("Conv", &["x", "w", "b"], &["y"], attrs));
        }
        2 | 3 => {
            let op = ["MaxPool", "AveragePool"][rng.below(2)];
            let mut attrs = vec![
                positive_ints(rng, "kernel_shape"),
                positive_ints(rng, "strides"),
                pads(rng),
                a_int("ceil_mode", rng.signed()),
            ];
            if op == "MaxPool" {
                attrs.push(positive_ints(rng, "dilations"));
            } else {
                attrs.push(a_int("count_include_pad", rng.signed()));
            }
            nodes.push(node(op, &["x"], &["y"], attrs));
        }
        4 => nodes.push(node("GlobalAveragePool", &["x"], &["y"], vec![])),
        5 => {
            for p in ["s", "b", "m", "v"] {
                let len = if rng.one_in(6) { onnx_dim(rng) } else { c };
                inits.push(initializer(rng, p, &[len]));
            }
            let eps = [1e-5, 0.0, -1.0, 1e30, f32::NAN][rng.below(5)];
            nodes.push(node(
                "BatchNormalization",
                &["x", "s", "b", "m", "v"],
                &["y"],
                vec![a_float("epsilon", eps)],
            ));
        }
        6 => nodes.push(node(
            "Flatten",
            &["x"],
            &["y"],
            vec![a_int("axis", rng.signed())],
        )),
        7 => {
            // Flatten, then a Gemm with extreme dims and flags.
            let k = if rng.one_in(4) {
                onnx_dim(rng)
            } else {
                dims.iter().skip(1).product()
            };
            let n = onnx_dim(rng);
            let trans_b = rng.below(2) as i64;
            let w = if trans_b == 1 { [n, k] } else { [k, n] };
            inits.push(initializer(rng, "w", &w));
            inits.push(initializer(rng, "b", &[n]));
            nodes.push(node("Flatten", &["x"], &["f"], vec![a_int("axis", 1)]));
            nodes.push(node(
                "Gemm",
                &["f", "w", "b"],
                &["y"],
                vec![
                    a_int("transB", if rng.one_in(6) { rng.signed() } else { trans_b }),
                    a_float("alpha", [1.0, 0.0, -2.0, 1e30][rng.below(4)]),
                ],
            ));
        }
        8 => {
            let n = if rng.one_in(5) { rng.below(70) } else { 2 };
            let shape: Vec<i64> = (0..n)
                .map(|_| [rng.signed(), -1, 0, 1][rng.below(4)])
                .collect();
            inits.push(i64_tensor("shape", &[shape.len() as i64], &shape));
            nodes.push(node("Reshape", &["x", "shape"], &["y"], vec![]));
        }
        9 => {
            // A constant of extreme shape added to the input.
            let shape: Vec<i64> = (0..1 + rng.below(4)).map(|_| onnx_dim(rng)).collect();
            inits.push(i64_tensor("shape", &[shape.len() as i64], &shape));
            nodes.push(node("ConstantOfShape", &["shape"], &["k"], vec![]));
            nodes.push(node("Add", &["x", "k"], &["y"], vec![]));
        }
        10 => {
            let pads: Vec<i64> = (0..8).map(|_| rng.signed() * rng.below(2) as i64).collect();
            inits.push(i64_tensor("pads", &[pads.len() as i64], &pads));
            nodes.push(node("Pad", &["x", "pads"], &["y"], vec![]));
        }
        _ => {
            let starts = [rng.signed()];
            let ends = [[rng.signed(), i64::MAX, -1][rng.below(3)]];
            let axes = [rng.signed()];
            let steps = [[1, rng.signed()][rng.below(2)]];
            for (n, v) in [
                ("starts", starts),
                ("ends", ends),
                ("axes", axes),
                ("steps", steps),
            ] {
                inits.push(i64_tensor(n, &[1], &v));
            }
            nodes.push(node(
                "Slice",
                &["x", "starts", "ends", "axes", "steps"],
                &["y"],
                vec![],
            ));
        }
    }
    if rng.one_in(3) {
        let last = nodes
            .last()
            .and_then(|n| n.output.first().cloned())
            .unwrap_or_default();
        nodes.push(node("Relu", &[&last], &["z"], vec![]));
    }
    let out = nodes
        .last()
        .and_then(|n| n.output.first().cloned())
        .unwrap_or_default();
    model(vec![input("x", &dims)], inits, nodes, &[&out])
}

// ---------------------------------------------------------------------------------------------
// Running a model.

fn last_input_path(ext: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz_extreme_last.{ext}"))
}

/// Compiles `g` on both back ends and, when both accept it and it is cheap, compares a guarded JIT
/// run with the interpreter. `Err` is a finding.
fn exercise(g: &Graph, engines: &Engines, rng: &mut Rng, stats: &mut Stats) -> Result<(), String> {
    let interpreter = engines.interpreter.compile(g.clone());
    let jit = &engines.jit[rng.below(2)][rng.below(2)];
    let compiled = jit.compile(g.clone());
    let (Ok(interpreter), Ok(compiled)) = (interpreter, compiled) else {
        return Ok(());
    };
    stats.compiled += 1;
    let Some(x) = model_input(g, rng) else {
        return Ok(());
    };
    if compiled.flops() > MAX_FLOPS {
        return Ok(());
    }
    let Ok(want) = interpreter.run(std::slice::from_ref(&x)) else {
        return Ok(());
    };
    compare(&compiled, &x, &want, rng.one_in(2))?;
    stats.compared += 1;
    Ok(())
}

/// The JIT's guarded run against the interpreter's outputs.
fn compare(model: &CompiledModel, x: &Tensor, want: &[Tensor], at_end: bool) -> Result<(), String> {
    let lens: Vec<usize> = want.iter().map(Tensor::numel).collect();
    let outs = run_guarded(model, &[x.data()], &lens, at_end)?;
    for (i, (o, w)) in outs.into_iter().zip(want).enumerate() {
        let got = Tensor::from_vec(o, w.shape()).map_err(|e| e.to_string())?;
        close_to_interpreter(&got, w).map_err(|e| format!("output {i}: {e}"))?;
    }
    Ok(())
}

/// Runs `f` and turns a panic into a finding carrying `what`.
fn guarded_step(what: &str, f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| format!("{what}: {e}")),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("{what}: panic: {msg}"))
        }
    }
}

/// One model of `target`; returns a finding as `Err`.
fn one(target: &str, engines: &Engines, rng: &mut Rng, stats: &mut Stats) -> Result<(), String> {
    stats.iterations += 1;
    match target {
        "library" => {
            let Some(mut g) = library_model(rng) else {
                return Ok(());
            };
            stats.accepted += 1;
            let text = print(&g);
            let _ = std::fs::write(last_input_path("kiln"), &text);
            let back = parse(&text).map_err(|e| format!("does not parse back: {e}\n{text}"))?;
            if print(&back) != text {
                return Err(format!("does not print back the same:\n{text}"));
            }
            if fill_params(&mut g, rng) {
                exercise(&g, engines, rng, stats).map_err(|e| format!("{e}\n{text}"))?;
            }
            Ok(())
        }
        "text" => {
            let Some(g) = library_model(rng) else {
                return Ok(());
            };
            let text = mutate_text(&print(&g), rng);
            let _ = std::fs::write(last_input_path("kiln"), &text);
            let Ok(mut g) = parse(&text) else {
                return Ok(());
            };
            stats.accepted += 1;
            if fill_params(&mut g, rng) {
                exercise(&g, engines, rng, stats).map_err(|e| format!("{e}\n{text}"))?;
            }
            Ok(())
        }
        _ => {
            let m = onnx_model(rng);
            let bytes = m.encode_to_vec();
            let _ = std::fs::write(last_input_path("onnx"), &bytes);
            let imported = OnnxModel::from_bytes(&bytes, None)
                .map(|o| o.with_memory_limit(LIMIT))
                .and_then(|o| o.import(&BTreeMap::new()));
            let Ok(g) = imported else {
                return Ok(());
            };
            stats.accepted += 1;
            exercise(&g, engines, rng, stats).map_err(|e| format!("{e}\n{m:?}"))
        }
    }
}

/// Runs `target` from `seed` for `iterations` models or until `deadline`.
fn run_target(target: &str, seed: u64, iterations: u64, deadline: Instant) -> Stats {
    let engines = Engines::new();
    let mut rng = Rng(seed);
    let mut stats = Stats::default();
    while stats.iterations < iterations && Instant::now() < deadline {
        let mut model_rng = Rng(rng.next());
        let result = guarded_step(target, || {
            let mut s = Stats::default();
            let r = one(target, &engines, &mut model_rng, &mut s);
            stats.iterations += s.iterations;
            stats.accepted += s.accepted;
            stats.compiled += s.compiled;
            stats.compared += s.compared;
            r
        });
        if let Err(e) = result {
            stats.findings.push(e);
        }
    }
    stats
}

const TARGETS: [&str; 3] = ["library", "text", "onnx"];

#[test]
fn quick_extreme_models() {
    let mut findings = Vec::new();
    for (i, target) in TARGETS.iter().enumerate() {
        let start = Instant::now();
        let stats = run_target(
            target,
            0x6b69_6c6e + i as u64,
            2000,
            start + Duration::MAX / 4,
        );
        println!("{}", stats.line(target, start.elapsed()));
        // A fixed seed must reach every stage, or the test checks less than it claims (most
        // mutated texts are refused by the parser or by the declared result types, as they
        // should be).
        let (accepted, compared) = if *target == "text" { (5, 2) } else { (40, 10) };
        assert!(stats.accepted >= accepted, "{target}: {stats:?}");
        assert!(stats.compared >= compared, "{target}: {stats:?}");
        findings.extend(stats.findings);
    }
    assert!(findings.is_empty(), "findings:\n{}", findings.join("\n\n"));
}

#[test]
#[ignore = "a long fuzzing run: KILN_FUZZ_SECS per target (default 60)"]
fn fuzz_extreme_for_a_while() {
    let secs: u64 = std::env::var("KILN_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let seed = std::env::var("KILN_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let only = std::env::var("KILN_FUZZ_TARGET").ok();
    let mut findings = Vec::new();
    for target in TARGETS {
        if only.as_deref().is_some_and(|o| o != target) {
            continue;
        }
        println!("{target}: seed {seed}");
        let start = Instant::now();
        let stats = run_target(target, seed, u64::MAX, start + Duration::from_secs(secs));
        println!("{}", stats.line(target, start.elapsed()));
        for f in &stats.findings {
            println!("finding: {f}\n");
        }
        findings.extend(stats.findings);
    }
    assert!(findings.is_empty(), "{} findings", findings.len());
}
