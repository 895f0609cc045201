//! The text form of a [`Graph`](crate::Graph) (`.kiln` files): the printer's output is the parser's
//! input, and `print(parse(print(g))) == print(g)`.
//!
//! ```text
//! ; SimpleCNN from the seed tutorial.            <- comments run from `;` to the end of the line
//! graph simple_cnn(%x: f32[1, 3, 32, 32]) {
//!   param %conv1.weight: f32[32, 3, 3, 3]
//!   param %conv1.bias: f32[32]
//!   %conv1 = conv2d(%x, %conv1.weight, %conv1.bias) {stride=[1, 1], padding=[1, 1, 1, 1], dilation=[1, 1], groups=1} : f32[1, 32, 32, 32]
//!   %relu1 = relu(%conv1) : f32[1, 32, 32, 32]
//!   %pool = max_pool2d(%relu1) {kernel=[2, 2], stride=[2, 2], padding=[0, 0, 0, 0], dilation=[1, 1], ceil_mode=false} : f32[1, 32, 16, 16]
//!   return %pool
//! }
//! ```
//!
//! - The header lists the graph inputs in call order with their types; `return` lists the outputs
//!   (`return %a, %b`).
//! - `param` lines declare parameters (named by their `state_dict` key) with their shapes; the data
//!   comes from a weights file. They come first, in creation order; ops follow in topological order.
//! - A value name is `%` followed by one or more of `[A-Za-z0-9_.]`.
//! - An op line is `%result = op(%operands…) {attributes} : type`; the braces are omitted when the op
//!   has no attributes. Every attribute is printed, defaults included; the parser requires all of
//!   them. Attribute values are integers, floats (Rust's shortest round-trip form, e.g. `0.01`,
//!   `1e-5`), `true`/`false`, identifiers (`none`, `tanh`) and lists of integers.
//! - The result type is checked against the type inferred from the operands.
//!
//! Ops and their attributes (operand order as in [`kiln_runtime::ops`]):
//!
//! | op | attributes |
//! |---|---|
//! | `conv2d` | `stride=[sh, sw]`, `padding=[top, left, bottom, right]`, `dilation=[dh, dw]`, `groups=g`; a third operand is the bias |
//! | `max_pool2d` | `kernel=[kh, kw]`, `stride`, `padding` (4 sides), `dilation`, `ceil_mode=bool` |
//! | `avg_pool2d` | `kernel`, `stride`, `padding` (4 sides), `ceil_mode`, `count_include_pad=bool` |
//! | `global_avg_pool2d` | — |
//! | `relu`, `sigmoid`, `tanh` | — |
//! | `leaky_relu` | `negative_slope=f` |
//! | `gelu` | `approximate=none` or `approximate=tanh` |
//! | `elu` | `alpha=f` |
//! | `batch_norm` | `eps=f` |
//! | `add` | — |
//! | `flatten` | `start_dim=d` |
//! | `linear` | —; a third operand is the bias |

mod parse;
mod print;

pub use parse::{parse, parse_file};
pub use print::print;
