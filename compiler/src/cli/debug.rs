//! `kiln debug bisect`: names the first pass whose outputs diverge from the unoptimized graph's.

use super::{run::load_with_inputs, ModelArgs, OptArgs};
use kiln::{Error, Result};

pub(crate) fn bisect(args: &ModelArgs, opt: &OptArgs, inputs: &[String]) -> Result<()> {
    let (graph, inputs) = load_with_inputs(args, inputs)?;
    let report = kiln::debug::bisect::bisect(&graph, &inputs, &opt.pass_manager()?)?;
    print!("{report}");
    match report.first_divergent() {
        None => Ok(()),
        Some(stage) => Err(Error::Usage(format!(
            "pass `{}` changes the model's outputs",
            stage.stage
        ))),
    }
}
