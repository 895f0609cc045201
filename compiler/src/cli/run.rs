//! `kiln run`: reads inputs from `.npy` files, runs the model, writes the outputs. Outputs are written
//! only after the whole model ran, each atomically, so a failure leaves no partial file.

use super::model::{self, Source};
use super::{ExecArgs, ModelArgs, OptArgs};
use kiln::codegen::jit::Capture;
use kiln::{Error, Result};
use kiln_runtime::budget::Budget;
use kiln_runtime::io::npy::{read_npy_within, write_npy};
use kiln_runtime::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub(crate) fn run(
    args: &ModelArgs,
    opt: &OptArgs,
    inputs: &[String],
    outputs: &[PathBuf],
    exec: &ExecArgs,
) -> Result<()> {
    let (graph, inputs) = load_with_inputs(args, inputs)?;
    if outputs.len() != graph.outputs().len() {
        return Err(Error::Usage(format!(
            "the model has {} output(s), {} --output given",
            graph.outputs().len(),
            outputs.len()
        )));
    }
    let engine = exec.engine(Capture::default(), args.memory_limit)?;
    let model = engine.compile_with(graph, &opt.pass_manager()?, &mut std::io::stderr())?;
    let results = model.run(&inputs)?;
    for (path, tensor) in outputs.iter().zip(&results) {
        write_npy(path, tensor)?;
    }
    Ok(())
}

/// Opens the model, reads the inputs named by `specs`, and specialises the model to their shapes.
pub(crate) fn load_with_inputs(
    args: &ModelArgs,
    specs: &[String],
) -> Result<(kiln::Graph, Vec<Tensor>)> {
    let source = Source::open(&args.model, args.memory_limit)?;
    let names = source.input_names()?;
    let inputs = read_inputs(&names, specs, args.memory_limit)?;
    let shapes: BTreeMap<String, Vec<usize>> = names
        .iter()
        .zip(&inputs)
        .map(|(n, t)| (n.clone(), t.shape().to_vec()))
        .collect();
    let graph = model::load_with_shapes(args, source, &shapes)?;
    Ok((graph, inputs))
}

/// Matches `X.npy` / `NAME=X.npy` arguments to the model's inputs and reads them.
fn read_inputs(names: &[String], specs: &[String], memory_limit: u64) -> Result<Vec<Tensor>> {
    let mut paths: Vec<Option<&Path>> = vec![None; names.len()];
    let mut next_positional = 0;
    for spec in specs {
        let named = spec
            .split_once('=')
            .and_then(|(n, p)| names.iter().position(|m| m == n).map(|i| (i, p)));
        let (index, path) = match named {
            Some((i, p)) => (i, p),
            None => {
                while next_positional < names.len() && paths[next_positional].is_some() {
                    next_positional += 1;
                }
                (next_positional, spec.as_str())
            }
        };
        if index >= names.len() {
            return Err(Error::Usage(format!(
                "--input {spec}: the model takes {} input(s): {}",
                names.len(),
                names
                    .iter()
                    .map(|n| format!("%{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if paths[index].is_some() {
            return Err(Error::Usage(format!("input %{} given twice", names[index])));
        }
        paths[index] = Some(Path::new(path));
    }
    // All inputs together, each charged from its file size before it is read.
    let mut budget = Budget::new("input", memory_limit);
    names
        .iter()
        .zip(paths)
        .map(|(name, path)| {
            let path = path.ok_or_else(|| Error::Usage(format!("no --input given for %{name}")))?;
            Ok(read_npy_within(path, &mut budget)?)
        })
        .collect()
}
