//! Every golden PyTorch case, from its `.kiln` text and from its `.onnx` export, at `-O0`, `-O1` and
//! `-O2` through the interpreter, matches PyTorch's output within the case's tolerances. ResNet-18
//! (`target/fixtures/resnet18`, written by `scripts/gen_golden.py --resnet18`) joins when present
//! and the tests are built with optimizations (the reference kernels take minutes on it otherwise).

mod common;

use common::{check_outputs, golden_dir, import_onnx, load_case, load_kiln_model};
use kiln::passes::{OptLevel, PassManager};
use kiln::Graph;
use std::collections::BTreeMap;
use std::path::Path;

/// The case's model from its `.kiln` text with its weights, and from its `.onnx` file if any.
fn models(case: &Path) -> Result<Vec<(&'static str, Graph)>, String> {
    let mut out = vec![("kiln", load_kiln_model(case)?)];
    let onnx = case.join("model.onnx");
    if onnx.exists() {
        out.push(("onnx", import_onnx(&onnx, &BTreeMap::new())?));
    }
    Ok(out)
}

/// Runs one case at every level; returns the failures.
fn check_case(case: &Path) -> Vec<String> {
    let name = case.file_name().map_or_else(
        || case.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let (data, models) =
        match load_case(case).and_then(|data| models(case).map(|models| (data, models))) {
            Ok(loaded) => loaded,
            Err(e) => return vec![format!("{name}: {e}")],
        };
    let mut failures = Vec::new();
    for (front, graph) in models {
        for level in [OptLevel::O0, OptLevel::O1, OptLevel::O2] {
            let result = PassManager::new(level)
                .run(graph.clone(), &mut std::io::sink())
                .map_err(|e| format!("compiling: {e}"))
                .and_then(|compiled| {
                    kiln_runtime::interpreter::run(
                        &compiled.plan,
                        std::slice::from_ref(&data.input),
                    )
                    .map_err(|e| format!("running: {e}"))
                })
                .and_then(|got| check_outputs(&got, &data.expected, data.json.tol));
            if let Err(e) = result {
                failures.push(format!("{name} ({front}, {level}): {e}"));
            }
        }
    }
    failures
}

#[test]
fn every_golden_case_matches_pytorch_at_every_level() {
    // Every fixture directory with a model.kiln, listed or not: golden.rs checks the list.
    let cases = common::fixture_cases("model.kiln").unwrap_or_else(|e| panic!("{e}"));
    assert!(cases.len() >= 30, "only {} golden cases found", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .flat_map(|name| check_case(&golden_dir().join(name)))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn resnet18_matches_pytorch_at_every_level() {
    let dir = common::resnet18_dir();
    if cfg!(debug_assertions) || !dir.join("model.kiln").exists() {
        eprintln!("skipped: needs a release build and {}", dir.display());
        return;
    }
    let failures = check_case(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
