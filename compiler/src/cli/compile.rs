//! `kiln compile`: loads a model, optimizes it and prints it in the requested form.

use super::{model, Emit, ModelArgs, OptArgs};
use kiln::Result;

pub(crate) fn compile(args: &ModelArgs, opt: &OptArgs, emit: Emit, explain: bool) -> Result<()> {
    let graph = model::load(args)?;
    let pm = opt.pass_manager()?;
    let mut log = std::io::stderr();
    // The graph-level forms need no plan, and so no weights: a `.kiln` file can be inspected alone.
    if matches!(emit, Emit::Ir | Emit::Dot) && !model::all_params_bound(&graph) {
        let optimized = pm.optimize(graph, &mut log)?;
        print!(
            "{}",
            if emit == Emit::Ir {
                optimized.ir_text()
            } else {
                optimized.dot()
            }
        );
        if explain {
            print!("{}", optimized.explain());
        }
        return Ok(());
    }
    let compiled = pm.run(graph, &mut log)?;
    match emit {
        Emit::Ir => print!("{}", compiled.ir_text()),
        Emit::Plan => print!("{}", compiled.plan_text()),
        Emit::Stats => println!("{}", compiled.stats().to_json()),
        Emit::Dot => print!("{}", compiled.dot()),
    }
    if explain {
        print!("{}", compiled.explain());
    }
    Ok(())
}
