//! Seed tutorial, example 3: the `SimpleCNN` model: its structure, a forward pass on a random
//! 3×32×32 image, and (beyond the tutorial) the graph Kiln traced from it, that graph after the
//! optimizer (each Conv→ReLU→MaxPool becomes one conv), and the same output from native code.

use kiln::engine::{Engine, Options};
use kiln::nn::{self, models::SimpleCnn, py_bool};
use kiln::passes::{OptLevel, PassManager};
use kiln_examples::SEED;
use kiln_runtime::shape::fmt_torch_size;
use kiln_runtime::Tensor;

fn main() -> kiln::Result<()> {
    let model = SimpleCnn::new();
    println!("Model structure:");
    println!("{model}");

    // A random "image", and the model traced with PyTorch's default initialisation.
    let input = Tensor::randn(&[1, 3, 32, 32], SEED).unwrap();
    let graph = nn::trace_with_init(&model, input.shape(), "simple_cnn", SEED)?;
    let outputs = kiln::run_interpreter(&graph, std::slice::from_ref(&input))?;
    let Some(output) = outputs.first() else {
        return Err(kiln::Error::Graph("the graph returned no output".into()));
    };

    println!("\nInput shape: {}", fmt_torch_size(input.shape()));
    println!("Output shape: {}", fmt_torch_size(output.shape()));

    println!("\nGraph IR:");
    print!("{}", kiln::ir::text::print(&graph));

    // Optimized at -O2 and compiled to native code: the same numbers as the interpreter's.
    let optimized = PassManager::new(OptLevel::O2).run(graph.clone(), &mut std::io::sink())?;
    println!("\nOptimized IR (-O2):");
    print!("{}", optimized.ir_text());
    let native = Engine::new(Options::default())?.compile(graph)?;
    let jit_outputs = native.run(std::slice::from_ref(&input))?;
    let same = jit_outputs
        .first()
        .is_some_and(|y| y.allclose(output, 1e-4, 1e-5));
    println!("\nJIT output equals the interpreter's: {}", py_bool(same));
    Ok(())
}
