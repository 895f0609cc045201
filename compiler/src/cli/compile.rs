//! `kiln compile`: loads a model and prints it in the requested form.

use super::{model, Emit, ModelArgs};
use kiln::Result;

pub(crate) fn compile(args: &ModelArgs, emit: Emit) -> Result<()> {
    let graph = model::load(args)?;
    match emit {
        Emit::Ir => print!("{}", kiln::ir::text::print(&graph)),
    }
    Ok(())
}
