//! Golden tests against PyTorch: every case under `tests/fixtures/golden/` (written by
//! `scripts/gen_golden.py`) is parsed from its `model.kiln`, given its `weights.safetensors`, run on
//! the reference interpreter with `input.npy`, and compared with PyTorch's `expected.npy` within the
//! tolerances of its `case.json`.
//!
//! Each case is its own `#[test]`, so a report names the failing ones; `every_fixture_is_listed`
//! fails if a fixture directory exists that the list does not name, so none is silently skipped.

mod common;

use common::{
    describe_mismatch, golden_dir, json_value, load_case, load_kiln_model, unlisted_cases, unravel,
    Tolerance, GOLDEN_CASES,
};
use kiln_runtime::Tensor;

common::golden_cases!(run_case);

/// Runs one case end to end; the error says which step failed and how.
fn run_case(name: &str) -> Result<(), String> {
    let dir = golden_dir().join(name);
    let case = load_case(&dir)?;
    let graph = load_kiln_model(&dir)?;
    let exact_nan = case.json.exact_nan;
    if exact_nan != case.expected.data().iter().any(|v| v.is_nan()) {
        return Err(format!(
            "case.json says exact_nan={exact_nan} but expected.npy {} NaN",
            if exact_nan { "holds no" } else { "holds" }
        ));
    }
    let outputs =
        kiln::run_interpreter(&graph, &[case.input]).map_err(|e| format!("running: {e}"))?;
    // `allclose` requires NaN exactly where PyTorch has NaN and compares the rest within the
    // tolerances, which is what exact_nan cases need (and the others have no NaN to match).
    common::check_outputs(&outputs, &case.expected, case.json.tol)
}

#[test]
fn every_fixture_is_listed() {
    let unlisted = unlisted_cases("model.kiln").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        unlisted.is_empty(),
        "fixture directories with a model.kiln that golden_cases! (tests/common/mod.rs) does not \
         list: {unlisted:?}"
    );
    let missing: Vec<&&str> = GOLDEN_CASES
        .iter()
        .filter(|name| !golden_dir().join(name).join("model.kiln").is_file())
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
    for name in GOLDEN_CASES {
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
    };
    let got = Tensor::from_vec(vec![1.0, f32::NAN, 3.5, 4.0], &[2, 2]).unwrap();
    let expected = Tensor::from_vec(vec![1.0, f32::NAN, 3.0, 4.0], &[2, 2]).unwrap();
    // Flat index 2 of a [2, 2] tensor is [1, 0]; |3.5 − 3.0| = 0.5 > 1e-5 + 1e-4·3.
    let report = describe_mismatch(&got, &expected, tol);
    assert!(report.contains("max abs diff 0.5"), "{report}");
    assert!(report.contains("1 of 4 elements differ"), "{report}");
    assert!(
        report.contains("first at index [1, 0]: got 3.5, expected 3.0"),
        "{report}"
    );
}
