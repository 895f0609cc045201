//! Seed tutorial, example 3: the `SimpleCNN` model: its structure, a forward pass on a random
//! 3×32×32 image, and (beyond the tutorial) the graph Kiln traced from it.

use kiln::nn::{self, models::SimpleCnn};
use kiln_examples::SEED;
use kiln_runtime::shape::fmt_torch_size;
use kiln_runtime::Tensor;

fn main() -> kiln::Result<()> {
    let model = SimpleCnn::new();
    println!("Model structure:");
    println!("{model}");

    // A random "image", and the model traced with PyTorch's default initialisation.
    let input = Tensor::randn(&[1, 3, 32, 32], SEED);
    let graph = nn::trace_with_init(&model, input.shape(), "simple_cnn", SEED)?;
    let outputs = kiln::run_interpreter(&graph, std::slice::from_ref(&input))?;
    let Some(output) = outputs.first() else {
        return Err(kiln::Error::Graph("the graph returned no output".into()));
    };

    println!("\nInput shape: {}", fmt_torch_size(input.shape()));
    println!("Output shape: {}", fmt_torch_size(output.shape()));

    println!("\nGraph IR:");
    print!("{}", kiln::ir::text::print(&graph));
    Ok(())
}
