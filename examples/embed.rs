//! Embedding Kiln in a program: compile a model once, then serve it from several threads.
//!
//! The model here is SimpleCNN (plus a classifier head) with PyTorch's default initialisation; a
//! real program would parse a `.kiln` or `.onnx` file and bind trained weights instead. Every
//! request thread calls `run` on the same `CompiledModel` (it is `Send + Sync`); each run gets its
//! own arena, and layers are split over the engine's thread pool when it is free.

use kiln::engine::{Engine, Options};
use kiln::nn::{self, models::SimpleCnn, Flatten, Linear, Sequential};
use kiln_examples::SEED;
use kiln_runtime::Tensor;
use std::sync::Arc;
use std::time::Instant;

fn main() -> kiln::Result<()> {
    // SimpleCNN, flattened, then a 10-way linear classifier.
    let model = Sequential::new()
        .append(SimpleCnn::new())
        .append(Flatten::new())
        .append(Linear::new(64 * 8 * 8, 10));
    let graph = nn::trace_with_init(&model, &[1, 3, 32, 32], "classifier", SEED)?;

    // Compile once: optimizer at -O2, native code, two threads per run.
    let start = Instant::now();
    let engine = Engine::new(Options {
        threads: 2,
        ..Options::default()
    })?;
    let compiled = Arc::new(engine.compile(graph)?);
    println!(
        "compiled in {:.1} ms ({} native steps, {} fallback)",
        start.elapsed().as_secs_f64() * 1e3,
        compiled.jit_stats().map_or(0, |s| s.native_steps),
        compiled.jit_stats().map_or(0, |s| s.fallback_steps),
    );

    // Serve: four "request" threads, each classifying its own images.
    let handles: Vec<_> = (0..4u64)
        .map(|client| {
            let compiled = Arc::clone(&compiled);
            std::thread::spawn(move || -> kiln::Result<Vec<usize>> {
                (0..8u64)
                    .map(|i| {
                        let image = Tensor::randn(&[1, 3, 32, 32], SEED + 100 * client + i)?;
                        let logits = compiled.run(&[image])?;
                        Ok(argmax(logits[0].data()))
                    })
                    .collect()
            })
        })
        .collect();
    for (client, handle) in handles.into_iter().enumerate() {
        let classes = handle
            .join()
            .map_err(|_| kiln::Error::Usage("a request thread panicked".into()))??;
        println!("client {client}: classes {classes:?}");
    }

    // A wrong input is an error, caught before any native code runs.
    let wrong = Tensor::zeros(&[1, 3, 28, 28])?;
    if let Err(e) = compiled.run(&[wrong]) {
        println!("rejected: {e}");
    }
    Ok(())
}

/// Index of the largest logit.
fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &x)| {
            if x > bv {
                (i, x)
            } else {
                (bi, bv)
            }
        })
        .0
}
