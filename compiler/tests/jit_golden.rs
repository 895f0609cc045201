//! The JIT against the interpreter (the oracle) and against PyTorch on every golden case, at
//! `-O0`, `-O1` and `-O2`, with 1 and 2 threads: the JIT's result must be within the case's
//! tolerance of PyTorch's, within 1e-4 relative / 1e-5 absolute of the interpreter's on the same
//! plan, with NaN at exactly the same places, and bit-identical for every thread count.

mod common;

use common::{golden_dir, load_case, load_kiln_model};
use kiln::engine::{Backend, Engine, Options};
use kiln::passes::{OptLevel, PassManager};
use kiln_runtime::Tensor;
use std::path::{Path, PathBuf};

/// The case's model with its weights, its input, PyTorch's output, and its rtol and atol.
fn load(dir: &Path) -> (kiln::Graph, Tensor, Tensor, f32, f32) {
    let fail = |e: String| -> ! { panic!("{}: {e}", dir.display()) };
    let graph = load_kiln_model(dir).unwrap_or_else(|e| fail(e));
    let case = load_case(dir).unwrap_or_else(|e| fail(e));
    let tol = case.json.tol;
    (graph, case.input, case.expected, tol.rtol, tol.atol)
}

/// Checks one case at every level and thread count; returns a description of each failure.
fn check_case(dir: &Path) -> Vec<String> {
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let (graph, input, expected, rtol, atol) = load(dir);
    let mut failures = Vec::new();
    for level in [OptLevel::O0, OptLevel::O1, OptLevel::O2] {
        let compiled = PassManager::new(level)
            .run(graph.clone(), &mut std::io::sink())
            .unwrap_or_else(|e| panic!("{name} {level}: {e}"));
        let plan = compiled.plan;
        let oracle = kiln_runtime::interpreter::run(&plan, std::slice::from_ref(&input))
            .unwrap_or_else(|e| panic!("{name} {level}: interpreter: {e}"));
        let mut first: Option<Vec<Tensor>> = None;
        for threads in [1, 2] {
            let engine = Engine::new(Options {
                backend: Backend::Jit,
                opt_level: level,
                threads,
                ..Options::default()
            })
            .unwrap();
            let model = match engine.compile_plan(plan.clone()) {
                Ok(m) => m,
                Err(e) => {
                    failures.push(format!("{name} {level} t{threads}: compile: {e}"));
                    continue;
                }
            };
            assert_eq!(model.jit_stats().map(|s| s.fallback_steps), Some(0));
            let got = model.run(std::slice::from_ref(&input)).unwrap();
            let tag = format!("{name} {level} t{threads}");
            if !got[0].allclose(&oracle[0], 1e-4, 1e-5) {
                failures.push(format!(
                    "{tag}: vs interpreter max abs diff {}",
                    got[0].max_abs_diff(&oracle[0])
                ));
            }
            if !got[0].allclose(&expected, rtol, atol) {
                failures.push(format!(
                    "{tag}: vs PyTorch max abs diff {}",
                    got[0].max_abs_diff(&expected)
                ));
            }
            match &first {
                None => first = Some(got),
                Some(f) => {
                    let same = f[0]
                        .data()
                        .iter()
                        .zip(got[0].data())
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    if !same {
                        failures.push(format!("{tag}: differs from 1 thread"));
                    }
                }
            }
        }
    }
    failures
}

#[test]
fn jit_matches_interpreter_and_pytorch_on_every_golden_case() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("model.kiln").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 30, "only {} golden cases", dirs.len());
    let failures: Vec<String> = dirs.iter().flat_map(|d| check_case(d)).collect();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// torchvision's ResNet-18 at 1×3×224×224, when `scripts/gen_golden.py --resnet18` has written it
/// (it is ~45 MB and not committed).
#[test]
fn resnet18_matches_pytorch_when_present() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fixtures/resnet18");
    if !dir.join("model.kiln").is_file() {
        eprintln!("skipped: {} not present", dir.display());
        return;
    }
    let (graph, input, expected, rtol, atol) = load(&dir);
    let engine = Engine::new(Options {
        threads: 2,
        ..Options::default()
    })
    .unwrap();
    let model = engine.compile(graph).unwrap();
    let got = model.run(&[input]).unwrap();
    assert!(
        got[0].allclose(&expected, rtol, atol),
        "max abs diff {}",
        got[0].max_abs_diff(&expected)
    );
}

/// Batches of 4 and more take the one-phase, image-per-item conv path; the golden cases are
/// smaller, so SimpleCNN at batch 5 check that path against the interpreter.
#[test]
fn large_batches_match_interpreter() {
    use kiln::nn::models::SimpleCnn;
    let graph =
        kiln::nn::trace_with_init(&SimpleCnn::new(), &[5, 3, 32, 32], "simple_cnn", 3).unwrap();
    for level in [OptLevel::O0, OptLevel::O2] {
        let plan = PassManager::new(level)
            .run(graph.clone(), &mut std::io::sink())
            .unwrap()
            .plan;
        let x = Tensor::randn(&[5, 3, 32, 32], 11).unwrap();
        let oracle = kiln_runtime::interpreter::run(&plan, std::slice::from_ref(&x)).unwrap();
        for threads in [1, 2] {
            let engine = Engine::new(Options {
                threads,
                ..Options::default()
            })
            .unwrap();
            let got = engine
                .compile_plan(plan.clone())
                .unwrap()
                .run(std::slice::from_ref(&x))
                .unwrap();
            assert!(
                got[0].allclose(&oracle[0], 1e-4, 1e-5),
                "{level} t{threads}: max abs diff {}",
                got[0].max_abs_diff(&oracle[0])
            );
        }
    }
}

#[test]
fn simple_cnn_runs_native_code() {
    let (graph, input, expected, _, _) = load(&golden_dir().join("simple_cnn_batch2"));
    let engine = Engine::new(Options::default()).unwrap();
    let model = engine.compile(graph).unwrap();
    let stats = model.jit_stats().unwrap();
    eprintln!("{stats:?} {:?}", model.steps());
    assert!(stats.code_bytes > 1000 && stats.fallback_steps == 0);
    let got = model.run(&[input]).unwrap();
    assert!(
        got[0].allclose(&expected, 1e-4, 1e-5),
        "max abs diff {}",
        got[0].max_abs_diff(&expected)
    );
}

/// Winograd F(2×2, 3×3) rounds differently from a direct sum (its transforms add up to 9 terms
/// before and after the products). On the golden cases with 3×3 stride-1 convs its distance to
/// PyTorch must stay within the cases' tolerance and within a small factor of the direct
/// kernel's (both printed with `--nocapture`).
#[test]
fn winograd_error_stays_near_the_direct_kernels() {
    use kiln::codegen::conv::ConvScheme;
    for case in [
        "simple_cnn_batch2",
        "simple_cnn_classifier",
        "residual_block",
        "mini_resnet",
    ] {
        let (graph, input, expected, rtol, atol) = load(&golden_dir().join(case));
        let err = |scheme| {
            let engine = Engine::new(Options {
                conv_scheme: Some(scheme),
                ..Options::default()
            })
            .unwrap();
            let got = engine
                .compile(graph.clone())
                .unwrap()
                .run(std::slice::from_ref(&input));
            let got = got.unwrap().remove(0);
            assert!(got.allclose(&expected, rtol, atol), "{case} {scheme:?}");
            got.max_abs_diff(&expected)
        };
        let (wino, direct) = (err(ConvScheme::Winograd), err(ConvScheme::Rows));
        let scale = expected.data().iter().fold(0f32, |m, v| m.max(v.abs()));
        eprintln!("{case}: max |out| {scale:.3e}, max abs error vs PyTorch: winograd {wino:.3e}, direct {direct:.3e}");
        assert!(
            wino <= 4.0 * direct.max(1e-7 * scale),
            "{case}: winograd {wino:e} vs direct {direct:e}"
        );
    }
}
