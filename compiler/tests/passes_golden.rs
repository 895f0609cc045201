//! Every golden PyTorch case, from its `.kiln` text and from its `.onnx` export, at `-O0`, `-O1` and
//! `-O2` through the interpreter, matches PyTorch's output within the case's tolerances. ResNet-18
//! (`target/fixtures/resnet18`, written by `scripts/gen_golden.py --resnet18`) joins when present
//! and the tests are built with optimizations (the reference kernels take minutes on it otherwise).

use kiln::passes::{OptLevel, PassManager};
use kiln::Graph;
use kiln_runtime::io::npy::read_npy;
use kiln_runtime::io::safetensors::read_safetensors;
use kiln_runtime::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn golden_cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("model.kiln").exists())
        .collect();
    cases.sort();
    cases
}

/// A number from the flat `case.json` the generator writes.
fn json_number(json: &str, key: &str) -> Option<f32> {
    let at = json.find(&format!("\"{key}\""))?;
    let rest = json[at..].split_once(':')?.1;
    let end = rest.find([',', '}', '\n']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

/// The case's model from its `.kiln` text with its weights, and from its `.onnx` file if any.
fn models(case: &Path) -> Vec<(&'static str, Graph)> {
    let mut g = kiln::ir::text::parse_file(&case.join("model.kiln")).unwrap();
    let w = read_safetensors(&case.join("weights.safetensors")).unwrap();
    kiln::weights::bind_weights(&mut g, &w).unwrap();
    let mut out = vec![("kiln", g)];
    let onnx = case.join("model.onnx");
    if onnx.exists() {
        out.push((
            "onnx",
            kiln::frontend::onnx::load_onnx(&onnx, &BTreeMap::new()).unwrap(),
        ));
    }
    out
}

/// Runs one case at every level; returns the failures.
fn check_case(case: &Path) -> Vec<String> {
    let json = std::fs::read_to_string(case.join("case.json")).unwrap_or_default();
    let rtol = json_number(&json, "rtol").unwrap_or(1e-4);
    let atol = json_number(&json, "atol").unwrap_or(1e-5);
    let input = read_npy(&case.join("input.npy")).unwrap();
    let expected = read_npy(&case.join("expected.npy")).unwrap();
    let name = case.file_name().unwrap().to_string_lossy().to_string();
    let mut failures = Vec::new();
    for (front, graph) in models(case) {
        for level in [OptLevel::O0, OptLevel::O1, OptLevel::O2] {
            let compiled = PassManager::new(level)
                .run(graph.clone(), &mut std::io::sink())
                .unwrap();
            let got: Vec<Tensor> =
                kiln_runtime::interpreter::run(&compiled.plan, std::slice::from_ref(&input))
                    .unwrap();
            let ok = got.len() == 1 && got[0].allclose(&expected, rtol, atol);
            if !ok {
                failures.push(format!(
                    "{name} ({front}, {level}): max |diff| {}",
                    got.first().map_or(f32::NAN, |g| g.max_abs_diff(&expected))
                ));
            }
        }
    }
    failures
}

#[test]
fn every_golden_case_matches_pytorch_at_every_level() {
    let cases = golden_cases();
    assert!(cases.len() >= 30, "only {} golden cases found", cases.len());
    let failures: Vec<String> = cases.iter().flat_map(|c| check_case(c)).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn resnet18_matches_pytorch_at_every_level() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fixtures/resnet18");
    if cfg!(debug_assertions) || !dir.join("model.kiln").exists() {
        eprintln!("skipped: needs a release build and {}", dir.display());
        return;
    }
    let failures = check_case(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
