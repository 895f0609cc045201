//! `kiln compile`: loads a model, optimizes it and prints it in the requested form.

use super::{model, Emit, ModelArgs, OptArgs};
use kiln::codegen::jit::Capture;
use kiln::engine::{Engine, Options};
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
        Emit::Dot => print!("{}", compiled.dot()),
        Emit::Stats | Emit::Clif | Emit::Asm => {
            // These need the native code: compile the plan with the JIT, keeping its text.
            let capture = Capture {
                clif: emit == Emit::Clif,
                asm: emit == Emit::Asm,
            };
            let engine = Engine::new(Options {
                capture,
                threads: 1,
                memory_limit: args.memory_limit,
                ..Options::default()
            })?;
            let model = engine.compile_plan(compiled.plan.clone())?;
            match emit {
                Emit::Clif => print!("{}", model.clif_text()),
                Emit::Asm => print!("{}", model.asm_text()),
                _ => {
                    let mut stats = compiled.stats();
                    stats.fallback = model.jit_stats().map_or(0, |s| s.fallback_steps);
                    print!("{}", stats.to_json());
                }
            }
        }
    }
    if explain {
        print!("{}", compiled.explain());
    }
    Ok(())
}
