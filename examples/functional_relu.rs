//! Seed tutorial, example 4: the functional API, `F.relu` (a new tensor) and `F.relu_` (in place).
//!
//! ```python
//! input_tensor = torch.randn(1, 5, 5)
//! output1 = F.relu(input_tensor)
//! F.relu_(input_tensor)
//! print("输出:n", output1)
//! ```

use kiln::nn::functional as F;
use kiln::nn::py_bool;
use kiln_examples::{print_tensor, SEED};
use kiln_runtime::Tensor;

fn main() {
    let mut input = Tensor::randn(&[1, 5, 5], SEED).unwrap();

    // Way 1: a new tensor; the input is untouched.
    let output1 = F::relu(&input);
    // Way 2: the in-place variant overwrites the input.
    F::relu_(&mut input);

    print_tensor("Output", &output1);
    print_tensor("Input after relu_", &input);
    println!("relu and relu_ agree: {}", py_bool(output1 == input));
}
