//! The `Engine` / `CompiledModel` API: concurrent runs from several threads, input checks before
//! native code, the memory limit, caller-provided memory, inspection listings and the bench report.

use kiln::codegen::jit::Capture;
use kiln::engine::{bench, Backend, BenchOptions, Engine, Options};
use kiln::nn::models::SimpleCnn;
use kiln_runtime::Tensor;
use std::sync::Arc;
use std::time::Duration;

fn simple_cnn(batch: usize) -> kiln::Graph {
    kiln::nn::trace_with_init(&SimpleCnn::new(), &[batch, 3, 32, 32], "simple_cnn", 1).unwrap()
}

#[test]
fn concurrent_runs_give_each_caller_its_own_result() {
    let engine = Engine::new(Options {
        threads: 2,
        ..Options::default()
    })
    .unwrap();
    let model = Arc::new(engine.compile(simple_cnn(1)).unwrap());
    let interp = Engine::new(Options {
        backend: Backend::Interpreter,
        ..Options::default()
    })
    .unwrap()
    .compile(simple_cnn(1))
    .unwrap();
    let inputs: Vec<Tensor> = (0..4)
        .map(|i| Tensor::randn(&[1, 3, 32, 32], i).unwrap())
        .collect();
    let expected: Vec<Tensor> = inputs
        .iter()
        .map(|x| interp.run(std::slice::from_ref(x)).unwrap().remove(0))
        .collect();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let model = Arc::clone(&model);
            let x = inputs[i].clone();
            std::thread::spawn(move || {
                (0..20)
                    .map(|_| model.run(std::slice::from_ref(&x)).unwrap().remove(0))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        for y in h.join().unwrap() {
            assert!(
                y.allclose(&expected[i], 1e-4, 1e-5),
                "thread {i}: max abs diff {}",
                y.max_abs_diff(&expected[i])
            );
        }
    }
}

#[test]
fn wrong_inputs_are_errors_not_crashes() {
    let model = Engine::new(Options::default())
        .unwrap()
        .compile(simple_cnn(1))
        .unwrap();
    let wrong_shape = model
        .run(&[Tensor::zeros(&[1, 3, 32, 31]).unwrap()])
        .unwrap_err();
    assert!(
        wrong_shape
            .to_string()
            .contains("expected shape [1, 3, 32, 32], got [1, 3, 32, 31]"),
        "{wrong_shape}"
    );
    let none = model.run(&[]).unwrap_err();
    assert!(
        none.to_string().contains("expected 1 input(s), got 0"),
        "{none}"
    );
    // Caller-provided memory: every length is checked before native code runs.
    let x = vec![0f32; 3 * 32 * 32];
    let mut out = vec![0f32; 64 * 8 * 8];
    let mut small = vec![0f32; model.arena_floats() - 1];
    let err = model
        .run_with_arena(&[&x], &mut small, &mut [&mut out])
        .unwrap_err();
    assert!(err.to_string().contains("arena"), "{err}");
    let mut arena = vec![0f32; model.arena_floats()];
    let err = model
        .run_with_arena(&[&x[1..]], &mut arena, &mut [&mut out])
        .unwrap_err();
    assert!(err.to_string().contains("input 0"), "{err}");
    model
        .run_with_arena(&[&x], &mut arena, &mut [&mut out])
        .unwrap();
    // relu then max-pool of a conv of zeros is relu(bias) ≥ 0 everywhere.
    assert!(out.iter().all(|&v| v >= 0.0));
}

#[test]
fn models_over_the_memory_limit_are_rejected_before_allocation() {
    // SimpleCNN at batch 1024 needs an arena of 1024·(32·32·32 + …)·4 bytes ≫ 1 MiB.
    let engine = Engine::new(Options {
        memory_limit: 1 << 20,
        ..Options::default()
    })
    .unwrap();
    let err = engine.compile(simple_cnn(1024)).unwrap_err();
    assert!(
        err.to_string()
            .contains("more than the memory limit of 1048576 bytes"),
        "{err}"
    );
    // The default limit (4 GiB) accepts it.
    assert!(Engine::new(Options::default())
        .unwrap()
        .compile(simple_cnn(16))
        .is_ok());
}

#[test]
fn the_memory_limit_counts_winograds_transformed_filters() {
    // A 3×3 conv 4096 → 1 channel on a 2×2 image: weights 4096·9·4 B = 144 KiB, arena and
    // scratch (padded planes, transformed input) 2.0 MiB; its Winograd filter transform pads the
    // one output channel to a block of 12: 16·4096·12·4 B = 3 MiB. With a 4 MiB limit the arena
    // and twice the weights fit (2.3 MiB), the transformed filters do not (5.3 MiB).
    use kiln::nn::{Conv2d, Sequential};
    let model = Sequential::new().append(Conv2d::new(4096, 1, 3).padding(1));
    let graph = kiln::nn::trace_with_init(&model, &[1, 4096, 2, 2], "wide", 1).unwrap();
    let limited = |memory_limit| {
        Engine::new(Options {
            memory_limit,
            ..Options::default()
        })
        .unwrap()
        .compile(graph.clone())
    };
    let err = limited(4 << 20).unwrap_err();
    assert!(err.to_string().contains("packed weights"), "{err}");
    assert!(limited(8 << 20).is_ok());
}

#[test]
fn listings_hold_clif_and_disassembly() {
    let engine = Engine::new(Options {
        capture: Capture {
            clif: true,
            asm: true,
        },
        ..Options::default()
    })
    .unwrap();
    let model = engine.compile(simple_cnn(1)).unwrap();
    let l = model.listings();
    assert!(l.iter().any(|f| f.name == "entry"));
    // SimpleCNN's 3×3 convs run as Winograd: the phase with the matrix products.
    let conv = l
        .iter()
        .find(|f| f.name.ends_with("_winograd"))
        .expect("a Winograd phase");
    let clif = conv.clif.as_deref().unwrap();
    assert!(clif.contains("fma") && clif.contains("f32x4"), "{clif}");
    let asm = conv.asm.as_deref().unwrap();
    assert!(asm.contains("vfmadd"), "{asm}");
    assert_eq!(model.jit_stats().unwrap().fallback_steps, 0);
    let text = model.clif_text();
    assert!(
        text.starts_with("; function s0_conv2d_"),
        "{}",
        &text[..80.min(text.len())]
    );
    assert!(text.contains("; function entry\n"));
    assert!(model.asm_text().contains("vfmadd"));
}

#[test]
fn bench_reports_every_figure() {
    let model = Engine::new(Options {
        threads: 1,
        ..Options::default()
    })
    .unwrap()
    .compile(simple_cnn(1))
    .unwrap();
    let x = Tensor::randn(&[1, 3, 32, 32], 3).unwrap();
    let opts = BenchOptions {
        warmup: 1,
        min_runs: 3,
        min_time: Duration::from_millis(1),
        profile: true,
        peak_time: Duration::from_millis(20),
    };
    let r = bench(&model, &[x], &opts).unwrap();
    assert!(r.latency_ms.min <= r.latency_ms.median && r.latency_ms.median <= r.latency_ms.max);
    assert!(r.gflops > 0.0 && r.peak_gflops > 0.0 && r.peak_fraction > 0.0);
    assert_eq!((r.batch, r.threads, r.backend), (1, 1, "jit"));
    let p = r.profile.as_ref().unwrap();
    assert_eq!(p.len(), model.plan().steps.len());
    assert!(p[0].name.starts_with("conv2d"));
    let json = r.to_json();
    for key in [
        "\"latency_ms\": {\"median\"",
        "\"min\"",
        "\"max\"",
        "\"gflops\"",
        "\"peak_gflops\"",
        "\"peak_fraction\"",
        "\"compile_ms\"",
        "\"batch\": 1",
        "\"threads\": 1",
        "\"backend\": \"jit\"",
    ] {
        assert!(json.contains(key), "{key} missing in {json}");
    }
}
