//! A builder mirroring `torch.nn`: modules with named children that print like PyTorch's
//! `print(model)` and trace into a [`Graph`](crate::Graph) whose parameters carry `state_dict` names.
//!
//! ```
//! use kiln::nn::{self, models::SimpleCnn};
//!
//! let model = SimpleCnn::new();
//! assert!(model.to_string().starts_with("SimpleCNN(\n  (conv1): Conv2d(3, 32, kernel_size=(3, 3)"));
//! let graph = nn::trace(&nn::ReLU::new(), &[2, 3], "relu").unwrap();
//! assert_eq!(graph.ty(graph.outputs()[0]).shape, vec![2, 3]);
//! ```
//!
//! - [`Module`] is the trait; leaf layers live in `activation`, `conv`, `pool`, `norm` and `linear`,
//!   [`Sequential`] in `container`.
//! - [`repr`] (and `Display`) prints a module as PyTorch does.
//! - [`trace`] / [`trace_with_init`] turn a module into a graph (see [`Tracer`] for the naming rules).
//! - [`functional`] holds the eager functions (`relu`, `relu_`).

mod activation;
mod container;
mod conv;
pub mod functional;
pub mod init;
mod linear;
pub mod models;
mod module;
mod norm;
mod pool;
mod repr;
mod tracer;

pub use activation::{LeakyReLU, ReLU, Sigmoid, Tanh, ELU, GELU};
pub use container::Sequential;
pub use conv::Conv2d;
pub use kiln_runtime::ops::GeluApproximate;
pub use linear::{Flatten, Linear};
pub use module::{named_parameters, Module, ParamSpec, Size2};
pub use norm::BatchNorm2d;
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
pub use repr::{py_bool, py_float, repr};
pub use tracer::{trace, trace_with_init, Tracer};
