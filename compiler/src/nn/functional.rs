//! The functional API, like `torch.nn.functional` (`F.relu`, `F.relu_`): eager kernels on tensors,
//! no graph involved.

pub use kiln_runtime::ops::activation::{relu, relu_};
