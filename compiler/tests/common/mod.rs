//! Shared by the compiler's integration tests: the golden PyTorch cases of `tests/fixtures/golden/`
//! (their one list, `case.json`, loading a case, comparing an output within its tolerances) and
//! running the `kiln` binary; and, in [`random_graph`], the property tests' random graphs.
//!
//! A test file includes it with `mod common;`. Every file is its own crate and uses a part of this
//! module only, so the parts it leaves would each warn as dead code there.
#![allow(dead_code)]

pub mod guard;
pub mod onnx_build;
pub mod random_graph;

use kiln::Graph;
use kiln_runtime::io::npy::read_npy;
use kiln_runtime::io::safetensors::read_safetensors;
use kiln_runtime::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `compiler/tests/fixtures`.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// `compiler/tests/fixtures/golden`: one directory per case, written by `scripts/gen_golden.py`.
pub fn golden_dir() -> PathBuf {
    Path::new(FIXTURES).join("golden")
}

/// `target/fixtures/resnet18`: torchvision's ResNet-18 as a golden case (45 MB, not committed),
/// where `python scripts/gen_golden.py --resnet18` writes it.
pub fn resnet18_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fixtures/resnet18")
}

/// The golden cases, listed once. `golden_cases!(run_case)` writes one `#[test]` per case, named
/// after it, that fails with the error of `run_case(name)` (a `fn(&str) -> Result<(), String>`), so
/// a report names the failing cases; `golden_cases!(const)` defines [`GOLDEN_CASES`] from the same
/// list (this module does that once).
macro_rules! golden_cases {
    (@expand const [$($name:ident),* $(,)?]) => {
        /// Every golden case, by its directory name under [`golden_dir`].
        pub const GOLDEN_CASES: &[&str] = &[$(stringify!($name)),*];
    };
    (@expand $run:ident [$($name:ident),* $(,)?]) => {
        $(
            #[test]
            fn $name() {
                if let Err(msg) = $run(stringify!($name)) {
                    panic!("golden case `{}` failed: {msg}", stringify!($name));
                }
            }
        )*
    };
    ($what:tt) => {
        $crate::common::golden_cases!(@expand $what [
            conv2d_basic,
            conv2d_stride2,
            conv2d_dilation2,
            conv2d_groups,
            conv2d_depthwise,
            conv2d_nonsquare,
            conv2d_no_bias,
            conv2d_asym_padding,
            max_pool2d_k2s2,
            max_pool2d_k3s2p1,
            max_pool2d_dilation2,
            max_pool2d_ceil_mode,
            max_pool2d_nan,
            relu_nan,
            avg_pool2d_pad,
            avg_pool2d_pad_exclude,
            avg_pool2d_ceil,
            avg_pool2d_ceil_exclude,
            global_avg_pool2d,
            act_relu,
            act_leaky_relu,
            act_sigmoid,
            act_tanh,
            act_gelu,
            act_gelu_tanh,
            act_elu,
            act_elu_alpha05,
            batch_norm,
            linear,
            flatten_linear,
            simple_cnn_batch2,
            residual_block,
            simple_cnn_classifier,
            mini_resnet,
        ]);
    };
}
// A path to the macro (`common::golden_cases!`) for the test files and for its own recursion.
pub(crate) use golden_cases;

golden_cases!(const);

/// The names of the directories under [`golden_dir`] that hold a file `marker`, sorted: what a
/// test compares with [`GOLDEN_CASES`] so that no fixture is silently skipped.
pub fn fixture_cases(marker: &str) -> Result<Vec<String>, String> {
    let dir = golden_dir();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("reading {}: {e}", dir.display()))? {
        let entry = entry.map_err(|e| format!("reading {}: {e}", dir.display()))?;
        if entry.path().join(marker).is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The fixture directories holding `marker` that [`GOLDEN_CASES`] does not list.
pub fn unlisted_cases(marker: &str) -> Result<Vec<String>, String> {
    let mut names = fixture_cases(marker)?;
    names.retain(|name| !GOLDEN_CASES.contains(&name.as_str()));
    Ok(names)
}

/// How close an output must be to PyTorch's (`numpy.allclose`: `|a - b| <= atol + rtol * |b|`).
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    /// Relative tolerance.
    pub rtol: f32,
    /// Absolute tolerance.
    pub atol: f32,
}

/// `gen_golden.py`'s tolerances for the small cases (`RTOL, ATOL`).
pub const SMALL_CASE_TOLERANCE: Tolerance = Tolerance {
    rtol: 1e-4,
    atol: 1e-5,
};

/// What a case's `case.json` says about comparing its output.
#[derive(Clone, Copy, Debug)]
pub struct CaseJson {
    /// The tolerances.
    pub tol: Tolerance,
    /// The expected output holds NaN; the same positions must be NaN in ours.
    pub exact_nan: bool,
}

/// The raw text of `key`'s value in the flat JSON object that `gen_golden.py` writes (numbers and
/// booleans only are read; the crate has no JSON dependency and needs none for this).
pub fn json_value<'a>(json: &'a str, key: &str) -> Result<&'a str, String> {
    let quoted = format!("\"{key}\"");
    let start = json
        .find(&quoted)
        .ok_or_else(|| format!("case.json has no \"{key}\""))?;
    let rest = json[start + quoted.len()..]
        .trim_start()
        .strip_prefix(':')
        .ok_or_else(|| format!("case.json: no `:` after \"{key}\""))?
        .trim_start();
    let end = rest.find([',', '}', '\n']).unwrap_or(rest.len());
    Ok(rest[..end].trim())
}

/// Reads a case's `case.json`.
pub fn read_case_json(path: &Path) -> Result<CaseJson, String> {
    let json =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let number = |key: &str| -> Result<f32, String> {
        let raw = json_value(&json, key)?;
        raw.parse::<f32>()
            .map_err(|e| format!("case.json: \"{key}\" is `{raw}`: {e}"))
    };
    let exact_nan = match json_value(&json, "exact_nan")? {
        "true" => true,
        "false" => false,
        other => {
            return Err(format!(
                "case.json: \"exact_nan\" is `{other}`, not a boolean"
            ))
        }
    };
    Ok(CaseJson {
        tol: Tolerance {
            rtol: number("rtol")?,
            atol: number("atol")?,
        },
        exact_nan,
    })
}

/// Reads a `.npy` file; the error names the file.
pub fn read_tensor(path: &Path) -> Result<Tensor, String> {
    read_npy(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// A golden case's data: its `input.npy`, PyTorch's `expected.npy` and its `case.json`.
pub struct Case {
    /// The model's one input.
    pub input: Tensor,
    /// PyTorch's output for it.
    pub expected: Tensor,
    /// What `case.json` says.
    pub json: CaseJson,
}

/// Reads the data of the case in `dir` (a directory under [`golden_dir`], or ResNet-18's).
pub fn load_case(dir: &Path) -> Result<Case, String> {
    Ok(Case {
        json: read_case_json(&dir.join("case.json"))?,
        input: read_tensor(&dir.join("input.npy"))?,
        expected: read_tensor(&dir.join("expected.npy"))?,
    })
}

/// The case's model from its `model.kiln`, with its `weights.safetensors` bound.
pub fn load_kiln_model(dir: &Path) -> Result<Graph, String> {
    let mut graph = kiln::ir::text::parse_file(&dir.join("model.kiln"))
        .map_err(|e| format!("parsing model.kiln: {e}"))?;
    let weights = read_safetensors(&dir.join("weights.safetensors"))
        .map_err(|e| format!("reading weights: {e}"))?;
    kiln::weights::bind_weights(&mut graph, &weights)
        .map_err(|e| format!("binding weights: {e}"))?;
    Ok(graph)
}

/// Imports an ONNX file (its weights are its initializers), giving the inputs named in `shapes`
/// those shapes.
pub fn import_onnx(path: &Path, shapes: &BTreeMap<String, Vec<usize>>) -> Result<Graph, String> {
    kiln::frontend::onnx::load_onnx(path, shapes)
        .map_err(|e| format!("importing {}: {e}", path.display()))
}

/// Checks that a model gave one output and that it is within `tol` of PyTorch's `expected`; the
/// error says how they differ.
pub fn check_outputs(outputs: &[Tensor], expected: &Tensor, tol: Tolerance) -> Result<(), String> {
    let [got] = outputs else {
        return Err(format!("{} outputs, expected 1", outputs.len()));
    };
    check_close(got, expected, tol)
}

/// Checks that `got` is within `tol` of `expected` ([`Tensor::allclose`], which also wants NaN
/// exactly where `expected` has NaN); the error says how they differ.
pub fn check_close(got: &Tensor, expected: &Tensor, tol: Tolerance) -> Result<(), String> {
    if got.allclose(expected, tol.rtol, tol.atol) {
        Ok(())
    } else {
        Err(describe_mismatch(got, expected, tol))
    }
}

/// Whether one pair of elements passes [`Tensor::allclose`]'s test: asked of `allclose` itself, one
/// element at a time, so that the report below cannot disagree with the check that failed.
fn element_close(a: f32, b: f32, tol: Tolerance) -> bool {
    Tensor::full(&[1], a)
        .unwrap()
        .allclose(&Tensor::full(&[1], b).unwrap(), tol.rtol, tol.atol)
}

/// The multi-dimensional index of flat position `flat` in a row-major tensor of `shape`.
pub fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (slot, &dim) in index.iter_mut().zip(shape).rev() {
        if dim > 0 {
            *slot = flat % dim;
            flat /= dim;
        }
    }
    index
}

/// Describes how `got` differs from `expected`: the max abs diff, the first differing element and
/// how many differ.
pub fn describe_mismatch(got: &Tensor, expected: &Tensor, tol: Tolerance) -> String {
    if got.shape() != expected.shape() {
        return format!(
            "output shape {:?}, PyTorch's {:?}",
            got.shape(),
            expected.shape()
        );
    }
    let bad: Vec<usize> = got
        .data()
        .iter()
        .zip(expected.data())
        .enumerate()
        .filter(|(_, (&a, &b))| !element_close(a, b, tol))
        .map(|(i, _)| i)
        .collect();
    let first = match bad.first() {
        Some(&i) => format!(
            "first at index {:?}: got {:?}, expected {:?}",
            unravel(i, expected.shape()),
            got.data()[i],
            expected.data()[i]
        ),
        None => "no single element differs".to_string(),
    };
    format!(
        "max abs diff {:?} (rtol {:?}, atol {:?}); {} of {} elements differ; {first}",
        got.max_abs_diff(expected),
        tol.rtol,
        tol.atol,
        bad.len(),
        expected.numel()
    )
}

/// `FIXTURES/golden/<case>/<file>`, as a command-line argument.
pub fn golden(case: &str, file: &str) -> String {
    format!("{FIXTURES}/golden/{case}/{file}")
}

/// Runs the `kiln` binary with `args`.
pub fn kiln(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .output()
        .expect("spawn kiln")
}

/// A fresh, empty scratch directory for one test, named after the test file, the process and `test`
/// (the tests of a file run at the same time, each in its own directory).
pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "kiln-{}-{}-{test}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Asserts the run succeeded, showing its stderr otherwise.
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The standard output of a run that must have succeeded.
pub fn stdout_of(out: &Output) -> String {
    assert_success(out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts the run failed with status 1 and one `error:` line containing every fragment.
pub fn assert_error(out: &Output, fragments: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.starts_with("error: "), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    for f in fragments {
        assert!(stderr.contains(f), "expected {f:?} in stderr: {stderr}");
    }
}

/// Asserts that the `.npy` file `got` a run wrote is within [`SMALL_CASE_TOLERANCE`] of
/// `expected`'s; `what` names the run in the failure.
pub fn assert_npy_matches(got: &Path, expected: &Path, what: &str) {
    let result = read_tensor(got).and_then(|got| {
        let expected = read_tensor(expected)?;
        check_close(&got, &expected, SMALL_CASE_TOLERANCE)
    });
    if let Err(e) = result {
        panic!("{what}: {e}");
    }
}

/// A proptest configuration running `cases` cases from a fixed seed, so that CI is deterministic;
/// set `PROPTEST_RNG_SEED` to explore other graphs (a failure prints the minimal case to add as a
/// regression test).
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, RngSeed};
    let mut config = Config::with_cases(cases);
    if config.rng_seed == RngSeed::Random {
        config.rng_seed = RngSeed::Fixed(0x6b69_6c6e);
    }
    config
}

/// Agreement with the interpreter: NaN at the same places, the rest within 1e-4 relative plus
/// 1e-4 of the output's largest magnitude (sums taken in another order, with FMAs).
pub fn close_to_interpreter(got: &Tensor, want: &Tensor) -> Result<(), String> {
    if got.shape() != want.shape() {
        return Err(format!("shape {:?} vs {:?}", got.shape(), want.shape()));
    }
    let scale = want
        .data()
        .iter()
        .filter(|v| v.is_finite())
        .fold(1f32, |m, v| m.max(v.abs()));
    for (i, (&a, &b)) in got.data().iter().zip(want.data()).enumerate() {
        let ok = if a.is_nan() || b.is_nan() {
            a.is_nan() && b.is_nan()
        } else if a.is_infinite() || b.is_infinite() {
            a == b
        } else {
            (a - b).abs() <= 1e-4 * b.abs() + 1e-4 * scale
        };
        if !ok {
            return Err(format!("element {i}: jit {a:e}, interpreter {b:e}"));
        }
    }
    Ok(())
}
