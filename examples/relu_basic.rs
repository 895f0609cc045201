//! Seed tutorial, example 1: `nn.ReLU()` on a small tensor, run through the compiled graph.
//!
//! ```python
//! relu = nn.ReLU()
//! input_tensor = torch.tensor([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]])
//! output = relu(input_tensor)
//! ```

use kiln::nn::{self, ReLU};
use kiln_examples::print_tensor;
use kiln_runtime::Tensor;

fn main() -> kiln::Result<()> {
    let relu = ReLU::new();
    let input = Tensor::from_vec(vec![-1.0, 2.0, -3.0, 4.0, -5.0, 6.0], &[2, 3])?;

    // Trace the module into a graph on the input's shape and run it on the reference interpreter.
    let graph = nn::trace(&relu, input.shape(), "relu_basic")?;
    let outputs = kiln::run_interpreter(&graph, std::slice::from_ref(&input))?;
    let Some(output) = outputs.first() else {
        return Err(kiln::Error::Graph("the graph returned no output".into()));
    };

    print_tensor("Input", &input);
    print_tensor("Output", output);
    Ok(())
}
