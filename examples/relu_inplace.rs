//! Seed tutorial, example 2: `nn.ReLU(inplace=True)` overwrites its input instead of allocating.
//!
//! ```python
//! relu_inplace = nn.ReLU(inplace=True)
//! input_tensor = torch.randn(2, 4)
//! original_id = id(input_tensor)
//! output = relu_inplace(input_tensor)
//! print("是否修改了原张量:", id(output) == original_id)
//! ```

use kiln::nn::functional::{relu, relu_};
use kiln::nn::{py_bool, ReLU};
use kiln_examples::{print_tensor, SEED};
use kiln_runtime::Tensor;

fn main() {
    let relu_inplace = ReLU { inplace: true };
    let mut input = Tensor::randn(&[2, 4], SEED).unwrap();
    // Python compares object ids; the Rust equivalent is the address of the tensor's storage.
    let original = input.data().as_ptr();

    // Run eagerly, the module is `F.relu_` when `inplace` is set and `F.relu` otherwise.
    if relu_inplace.inplace {
        relu_(&mut input);
    } else {
        input = relu(&input);
    }

    let same_storage = input.data().as_ptr() == original;
    println!(
        "Modified the input tensor in place: {}",
        py_bool(same_storage)
    );
    print_tensor("Input/output", &input);
}
