//! `kiln bench`: compiles a model and measures it on seeded random inputs with
//! [`kiln::engine::bench`]: warm-up, then median/min/max latency, GFLOP/s, compile time and the share
//! of the f32x4 FMA peak measured in the same run.

use super::model::{self, Source};
use super::{ExecArgs, ModelArgs, OptArgs};
use kiln::codegen::jit::Capture;
use kiln::engine::{bench as measure, BenchOptions};
use kiln::frontend::onnx::Dim;
use kiln::{Error, Graph, Result};
use kiln_runtime::Tensor;
use std::collections::BTreeMap;

pub(crate) fn bench(
    args: &ModelArgs,
    opt: &OptArgs,
    exec: &ExecArgs,
    batch: Option<usize>,
    profile: bool,
    json: bool,
) -> Result<()> {
    if batch == Some(0) {
        return Err(Error::Usage("--batch must be at least 1".into()));
    }
    let graph = load_at_batch(args, batch)?;
    let engine = exec.engine(Capture::default(), args.memory_limit)?;
    // Compile first: it refuses a model beyond the memory limit before any input is allocated.
    let model = engine.compile_with(graph, &opt.pass_manager()?, &mut std::io::stderr())?;
    let inputs: Vec<Tensor> = model
        .input_shapes()
        .iter()
        .enumerate()
        .map(|(i, shape)| Tensor::randn(shape, 42 + i as u64))
        .collect::<Result<_, _>>()?;
    let report = measure(
        &model,
        &inputs,
        &BenchOptions {
            profile,
            ..BenchOptions::default()
        },
    )?;
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

/// Loads the model with every input's first dimension set to `batch` (when given): a symbolic ONNX
/// batch is specialised to it, a static one re-specialised.
fn load_at_batch(args: &ModelArgs, batch: Option<usize>) -> Result<Graph> {
    let source = Source::open(&args.model, args.memory_limit)?;
    let shapes = match &source {
        Source::Onnx(m) => symbolic_batch_shapes(&m.inputs()?, batch.unwrap_or(1)),
        Source::Kiln(_) => BTreeMap::new(),
    };
    let mut graph = model::load_with_shapes(args, source, &shapes)?;
    if let Some(n) = batch {
        let shapes: Vec<_> = graph
            .inputs()
            .iter()
            .map(|&v| {
                let mut shape = graph.ty(v).shape.clone();
                if let Some(d) = shape.first_mut() {
                    *d = n;
                }
                (v, shape)
            })
            .collect();
        graph.respecialize(&shapes)?;
    }
    Ok(graph)
}

/// Shapes for ONNX inputs whose only symbolic dimension is the first (the batch): that dimension
/// becomes `batch`. Inputs with other symbolic dimensions are left out, so the importer asks for
/// `--shape`.
fn symbolic_batch_shapes(
    inputs: &[kiln::frontend::onnx::InputInfo],
    batch: usize,
) -> BTreeMap<String, Vec<usize>> {
    let mut shapes = BTreeMap::new();
    for input in inputs {
        let Some(dims) = &input.dims else { continue };
        let shape: Option<Vec<usize>> = dims
            .iter()
            .enumerate()
            .map(|(i, d)| match d {
                Dim::Fixed(n) => Some(*n),
                Dim::Symbolic(_) if i == 0 => Some(batch),
                Dim::Symbolic(_) => None,
            })
            .collect();
        if let Some(shape) = shape {
            shapes.insert(input.name.clone(), shape);
        }
    }
    shapes
}
