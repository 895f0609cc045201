//! The JIT back end through the `kiln` binary: `--backend`, `--threads`, `kiln bench`,
//! `--emit clif|asm` and the `"fallback"` count of `--emit stats`.

mod common;

use common::*;
use kiln_runtime::io::npy::read_npy;

/// Runs the mini ResNet with `extra` options and returns the output file's path.
fn run_mini_resnet(dir: &std::path::Path, tag: &str, extra: &[&str]) -> std::path::PathBuf {
    let y = dir.join(format!("{tag}.npy"));
    let mut args = vec![
        "run".to_string(),
        golden("mini_resnet", "model.onnx"),
        "--input".to_string(),
        golden("mini_resnet", "input.npy"),
        "--output".to_string(),
        s(&y).to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_success(&kiln(&args));
    y
}

#[test]
fn jit_matches_pytorch_and_the_interpreter_for_any_thread_count() {
    let dir = scratch("backends");
    let expected = golden("mini_resnet", "expected.npy");
    let interp = run_mini_resnet(&dir, "interp", &["--backend", "interp"]);
    let one = run_mini_resnet(&dir, "jit1", &["--backend", "jit", "--threads", "1"]);
    let two = run_mini_resnet(&dir, "jit2", &["--threads", "2"]);
    for y in [&interp, &one, &two] {
        assert_npy_matches(y, expected.as_ref(), &y.display().to_string());
    }
    // Thread count never changes a result, to the bit.
    assert_eq!(read_npy(&one).unwrap(), read_npy(&two).unwrap());
}

#[test]
fn bench_json_has_the_documented_keys() {
    let out = stdout_of(&kiln(&[
        "bench",
        &golden("simple_cnn_batch2", "model_dynamic.onnx"),
        "--batch",
        "1",
        "--threads",
        "1",
        "--json",
    ]));
    let json = out.trim();
    assert!(json.starts_with('{') && json.ends_with('}'), "{json}");
    for key in [
        r#""latency_ms": {"median": "#,
        r#""min": "#,
        r#""max": "#,
        r#""gflops": "#,
        r#""peak_gflops": "#,
        r#""peak_fraction": "#,
        r#""compile_ms": "#,
        r#""batch": 1,"#,
        r#""threads": 1,"#,
        r#""backend": "jit""#,
    ] {
        assert!(json.contains(key), "{key} missing from {json}");
    }
}

#[test]
fn bench_profile_lists_every_step() {
    // `kiln bench` of the SimpleCNN golden model, one thread, with the profile table.
    let bench = |extra: &[&str]| {
        let (model, weights) = (
            golden("simple_cnn_batch2", "model.kiln"),
            golden("simple_cnn_batch2", "weights.safetensors"),
        );
        let mut args = vec![
            "bench",
            &model,
            "--weights",
            &weights,
            "--threads",
            "1",
            "--profile",
        ];
        args.extend_from_slice(extra);
        stdout_of(&kiln(&args))
    };
    let out = bench(&["--batch", "3"]);
    // Both convs carry their ReLU and pool, at the re-specialised batch.
    assert!(out.contains("batch 3"), "{out}");
    assert_eq!(out.matches("conv2d+relu+max_pool2d").count(), 2, "{out}");
    assert!(out.contains("[3, 64, 8, 8]"), "{out}");
    // Both 3×3 stride-1 convs are Winograd's, and the table says so and why their share of peak
    // may pass 100 %.
    let kernels = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.contains("conv2d+"))
            .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
            .collect()
    };
    assert_eq!(kernels(&out), ["winograd", "winograd"], "{out}");
    assert!(out.contains("2.25× fewer"), "{out}");
    // `--conv-kernel rows` forces the direct kernel everywhere.
    let rows = bench(&["--conv-kernel", "rows"]);
    assert_eq!(kernels(&rows), ["direct", "direct"], "{rows}");
}

#[test]
fn emit_clif_asm_and_fallback_count() {
    let model = golden("residual_block", "model.kiln");
    let weights = golden("residual_block", "weights.safetensors");
    let clif = stdout_of(&kiln(&[
        "compile",
        &model,
        "--weights",
        &weights,
        "--emit",
        "clif",
    ]));
    assert!(clif.contains("function") && clif.contains("fma"), "{clif}");
    let asm = stdout_of(&kiln(&[
        "compile",
        &model,
        "--weights",
        &weights,
        "--emit",
        "asm",
    ]));
    assert!(asm.contains("vfmadd"), "{asm}");
    let stats = stdout_of(&kiln(&[
        "compile",
        &model,
        "--weights",
        &weights,
        "--emit",
        "stats",
    ]));
    assert!(stats.contains(r#""fallback": 0"#), "{stats}");
}

#[test]
fn bench_rejects_bad_options() {
    let model = golden("simple_cnn_batch2", "model_dynamic.onnx");
    assert_error(&kiln(&["bench", &model, "--batch", "0"]), &["--batch"]);
    assert_error(
        &kiln(&["bench", &model, "--threads", "lots"]),
        &["--threads"],
    );
}
