//! Golden tests against PyTorch: every case under `tests/fixtures/golden/` (written by
//! `scripts/gen_golden.py`) is parsed from its `model.kiln`, given its `weights.safetensors`, run on
//! the reference interpreter with `input.npy`, and compared with PyTorch's `expected.npy` within the
//! tolerances of its `case.json`.
//!
//! Each case is its own `#[test]`, so a report names the failing ones; `every_fixture_is_listed`
//! fails if a fixture directory exists that the list does not name, so none is silently skipped.

use kiln_runtime::io::npy::read_npy;
use kiln_runtime::io::safetensors::read_safetensors;
use kiln_runtime::Tensor;
use std::path::{Path, PathBuf};

/// One `#[test]` per case name, and `CASES` listing them all.
macro_rules! golden_cases {
    ($($name:ident),* $(,)?) => {
        /// Every case this file tests (a fixture directory of the same name holds it).
        const CASES: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                if let Err(msg) = run_case(stringify!($name)) {
                    panic!("golden case `{}` failed: {msg}", stringify!($name));
                }
            }
        )*
    };
}

golden_cases! {
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
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

/// What `case.json` says about comparing a case's output.
struct Tolerance {
    rtol: f32,
    atol: f32,
    /// The expected output holds NaN; the same positions must be NaN in ours.
    exact_nan: bool,
}

/// The raw text of `key`'s value in the flat JSON object that `gen_golden.py` writes (numbers and
/// booleans only are read; the crate has no JSON dependency and needs none for this).
fn json_value<'a>(json: &'a str, key: &str) -> Result<&'a str, String> {
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

fn read_tolerance(path: &Path) -> Result<Tolerance, String> {
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
    Ok(Tolerance {
        rtol: number("rtol")?,
        atol: number("atol")?,
        exact_nan,
    })
}

/// Whether one pair of elements passes [`Tensor::allclose`]'s test (repeated here only to point at
/// the first element that does not).
fn element_close(a: f32, b: f32, rtol: f32, atol: f32) -> bool {
    if a.is_nan() || b.is_nan() {
        a.is_nan() && b.is_nan()
    } else if a.is_infinite() || b.is_infinite() {
        a == b
    } else {
        (a - b).abs() <= atol + rtol * b.abs()
    }
}

/// The multi-dimensional index of flat position `flat` in a row-major tensor of `shape`.
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
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
fn describe_mismatch(got: &Tensor, expected: &Tensor, tol: &Tolerance) -> String {
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
        .filter(|(_, (&a, &b))| !element_close(a, b, tol.rtol, tol.atol))
        .map(|(i, _)| i)
        .collect();
    let first = match bad.first() {
        Some(&i) => format!(
            "first at index {:?}: got {:?}, expected {:?}",
            unravel(i, expected.shape()),
            got.data()[i],
            expected.data()[i]
        ),
        None => "no single element differs (allclose and this test disagree)".to_string(),
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

/// Runs one case end to end; the error says which step failed and how.
fn run_case(name: &str) -> Result<(), String> {
    let dir = golden_dir().join(name);
    let tol = read_tolerance(&dir.join("case.json"))?;
    let mut graph = kiln::ir::text::parse_file(&dir.join("model.kiln"))
        .map_err(|e| format!("parsing model.kiln: {e}"))?;
    let weights = read_safetensors(&dir.join("weights.safetensors"))
        .map_err(|e| format!("reading weights: {e}"))?;
    kiln::weights::bind_weights(&mut graph, &weights)
        .map_err(|e| format!("binding weights: {e}"))?;
    let input = read_npy(&dir.join("input.npy")).map_err(|e| format!("reading input: {e}"))?;
    let expected =
        read_npy(&dir.join("expected.npy")).map_err(|e| format!("reading expected: {e}"))?;
    if tol.exact_nan != expected.data().iter().any(|v| v.is_nan()) {
        return Err(format!(
            "case.json says exact_nan={} but expected.npy {} NaN",
            tol.exact_nan,
            if tol.exact_nan { "holds no" } else { "holds" }
        ));
    }
    let outputs = kiln::run_interpreter(&graph, &[input]).map_err(|e| format!("running: {e}"))?;
    let [got] = outputs.as_slice() else {
        return Err(format!("{} outputs, expected 1", outputs.len()));
    };
    // `allclose` requires NaN exactly where PyTorch has NaN and compares the rest within the
    // tolerances, which is what exact_nan cases need (and the others have no NaN to match).
    if got.allclose(&expected, tol.rtol, tol.atol) {
        Ok(())
    } else {
        Err(describe_mismatch(got, &expected, &tol))
    }
}

#[test]
fn every_fixture_is_listed() {
    let dir = golden_dir();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())));
    let mut on_disk: Vec<String> = entries
        .filter(|entry| entry.path().join("model.kiln").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let unlisted: Vec<&String> = on_disk
        .iter()
        .filter(|name| !CASES.contains(&name.as_str()))
        .collect();
    assert!(
        unlisted.is_empty(),
        "fixture directories with a model.kiln that golden_cases! does not list: {unlisted:?}"
    );
    let missing: Vec<&&str> = CASES
        .iter()
        .filter(|name| !on_disk.iter().any(|d| d == *name))
        .collect();
    assert!(
        missing.is_empty(),
        "cases listed in golden_cases! without a fixture directory (run scripts/gen_golden.py): \
         {missing:?}"
    );
}

#[test]
fn case_json_values_are_read() {
    // The shape gen_golden.py writes (json.dumps with indent=2).
    let json = "{\n  \"rtol\": 0.0001,\n  \"atol\": 1e-05,\n  \"exact_nan\": true,\n  \"note\": \"x\"\n}\n";
    assert_eq!(json_value(json, "rtol"), Ok("0.0001"));
    assert_eq!(json_value(json, "atol"), Ok("1e-05"));
    assert_eq!(json_value(json, "exact_nan"), Ok("true"));
    assert!(json_value(json, "missing").is_err());
}

#[test]
fn unravel_is_row_major() {
    // Shape [2, 3, 4]: flat 23 = 1·12 + 2·4 + 3.
    assert_eq!(unravel(23, &[2, 3, 4]), vec![1, 2, 3]);
    assert_eq!(unravel(0, &[2, 3, 4]), vec![0, 0, 0]);
}

#[test]
fn model_kiln_is_in_printed_form() {
    // gen_golden.py writes the text the printer would print (plus leading `;` comments), so the
    // fixtures double as printer tests: parse → print must give each file back unchanged.
    let mut differ = Vec::new();
    for name in CASES {
        let path = golden_dir().join(name).join("model.kiln");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let body: String = text
            .lines()
            .skip_while(|line| line.starts_with(';'))
            .map(|line| format!("{line}\n"))
            .collect();
        let graph = kiln::ir::text::parse(&text)
            .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
        let printed = kiln::ir::text::print(&graph);
        if printed != body {
            differ.push(format!("{name}:\n--- file\n{body}--- printed\n{printed}"));
        }
    }
    assert!(
        differ.is_empty(),
        "printing the parsed model.kiln changes it:\n{}",
        differ.join("\n")
    );
}

#[test]
fn mismatch_report_names_the_first_bad_element() {
    let tol = Tolerance {
        rtol: 1e-4,
        atol: 1e-5,
        exact_nan: true,
    };
    let got = Tensor::from_vec(vec![1.0, f32::NAN, 3.5, 4.0], &[2, 2]).unwrap();
    let expected = Tensor::from_vec(vec![1.0, f32::NAN, 3.0, 4.0], &[2, 2]).unwrap();
    // Flat index 2 of a [2, 2] tensor is [1, 0]; |3.5 − 3.0| = 0.5 > 1e-5 + 1e-4·3.
    let report = describe_mismatch(&got, &expected, &tol);
    assert!(report.contains("max abs diff 0.5"), "{report}");
    assert!(report.contains("1 of 4 elements differ"), "{report}");
    assert!(
        report.contains("first at index [1, 0]: got 3.5, expected 3.0"),
        "{report}"
    );
}
