//! Parses the text form, with line:column errors that say what was expected.

use crate::error::Result;
use crate::ir::graph::Graph;
use std::path::Path;

/// Parses a graph from its text form.
pub fn parse(text: &str) -> Result<Graph> {
    let _ = text;
    todo!()
}

/// Reads and parses a `.kiln` file; errors carry the file name.
pub fn parse_file(path: &Path) -> Result<Graph> {
    let _ = path;
    todo!()
}
