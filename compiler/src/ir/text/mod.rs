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
//!   (`return %a, %b`; at least one).
//! - `param` lines declare parameters (named by their `state_dict` key) with their shapes; the data
//!   comes from a weights file. They come first, in creation order; ops follow in topological order.
//!   (The parser also accepts a `param` line later, as long as it precedes its first use.)
//! - A value name is `%` followed by one or more of `[A-Za-z0-9_.]`; the graph name, op names and
//!   attribute names are identifiers, `[A-Za-z_][A-Za-z0-9_]*`. A value is defined once, before it
//!   is used.
//! - A type is `f32[d, …]` (`f32[]` for a scalar).
//! - An op line is `%result = op(%operands…) {attributes} : type`; the braces are omitted when the op
//!   has no attributes. Every attribute is printed, defaults included; the parser requires all of
//!   them (the epilogue attributes below are the only optional ones). Attribute values are
//!   integers, floats, `true`/`false`, identifiers (`none`, `tanh`), lists of integers and, for
//!   `activation`, an activation with its arguments.
//! - Floats print in Rust's shortest round-trip form, `format!("{:?}", x)`: `0.01`, `1e-5`, `1.0`,
//!   `-0.5`, `inf`, `-inf`, `NaN`; the parser reads those spellings and plain integers (`1`).
//! - Newlines are whitespace to the parser: one statement may span lines.
//! - The result type is checked against the type inferred from the operands.
//!
//! Ops and their attributes (operand order as in [`kiln_runtime::ops`]):
//!
//! | op | attributes |
//! |---|---|
//! | `conv2d` | `stride=[sh, sw]`, `padding=[top, left, bottom, right]`, `dilation=[dh, dw]`, `groups=g`, then the epilogue's; a third operand is the bias |
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
//! | `linear` | the epilogue's; a third operand is the bias |
//!
//! A fused epilogue (see [`kiln_runtime::ops::Epilogue`]) on `conv2d` or `linear` prints as extra
//! attributes after the op's own, each only when present (absent means "none"):
//!
//! | attribute | meaning |
//! |---|---|
//! | `residual=true` | adds the operand after the bias (or after the weight, without bias) |
//! | `activation=a` | the activation op written as a value, its attributes as positional arguments: `relu`, `sigmoid`, `tanh`, `leaky_relu(0.01)`, `gelu(none)`, `gelu(tanh)`, `elu(1.0)` |
//! | `pool_kernel`, `pool_stride`, `pool_padding`, `pool_dilation`, `pool_ceil_mode` | a max-pool over the result: the `max_pool2d` attributes prefixed with `pool_`, all five or none |
//!
//! ```text
//! %c = conv2d(%x, %w, %b, %skip) {stride=[1, 1], padding=[1, 1, 1, 1], dilation=[1, 1], groups=1, residual=true, activation=relu, pool_kernel=[2, 2], pool_stride=[2, 2], pool_padding=[0, 0, 0, 0], pool_dilation=[1, 1], pool_ceil_mode=false} : f32[1, 32, 16, 16]
//! ```
//!
//! The bias is not an attribute: a conv or linear has one when it has an operand more than input,
//! weight and (with `residual=true`) the residual.
//!
//! Errors are [`ParseError`](crate::ParseError)s at the 1-based line and column of the offending
//! token, saying what was expected and what was found (`3:18: expected ',' or ')' after operand,
//! found '%w'`). The negative tests in `compiler/tests/text/` show one file per kind of error.

mod attrs;
mod lexer;
mod parse;
mod print;

pub use parse::{parse, parse_file};
pub use print::print;
