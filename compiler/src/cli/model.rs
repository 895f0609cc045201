//! Loading a model for the CLI: picks the front end by file extension, fixes input shapes (from
//! `--shape` and, for `kiln run`, from the input files) and binds weights.

use super::ModelArgs;
use kiln::frontend::onnx::OnnxModel;
use kiln::{Error, Graph, Result};
use kiln_runtime::io::safetensors::read_safetensors_within;
use kiln_runtime::shape::fmt_shape;
use std::collections::BTreeMap;
use std::path::Path;

/// A model file, opened but not yet specialised to input shapes.
pub(crate) enum Source {
    /// A `.kiln` text file: every shape is static.
    Kiln(Graph),
    /// An `.onnx` file, whose inputs may have symbolic dimensions.
    Onnx(Box<OnnxModel>),
}

impl Source {
    /// Opens `path` with the front end its extension names.
    /// The file must fit in `memory_limit`, checked before it is read.
    pub(crate) fn open(path: &Path, memory_limit: u64) -> Result<Source> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            Some("kiln") => {
                if let Ok(meta) = std::fs::metadata(path) {
                    // The parsed graph takes a small multiple of its text.
                    kiln_runtime::budget::check(
                        "text import",
                        &format!("{} ({} bytes, parsed)", path.display(), meta.len()),
                        meta.len().saturating_mul(4),
                        memory_limit,
                    )
                    .map_err(kiln_runtime::RuntimeError::from)?;
                }
                Ok(Source::Kiln(kiln::ir::text::parse_file(path)?))
            }
            Some("onnx") => Ok(Source::Onnx(Box::new(OnnxModel::open_within(
                path,
                memory_limit,
            )?))),
            _ => Err(Error::Usage(format!(
                "{}: unknown model format; expected a .kiln or .onnx file",
                path.display()
            ))),
        }
    }

    /// The model's input names, in call order.
    pub(crate) fn input_names(&self) -> Result<Vec<String>> {
        match self {
            Source::Kiln(g) => Ok(g.inputs().iter().map(|&v| g.name(v).to_string()).collect()),
            Source::Onnx(m) => Ok(m.inputs()?.into_iter().map(|i| i.name).collect()),
        }
    }

    /// The graph with every input's shape fixed: an ONNX model's symbolic dimensions are specialised
    /// to `shapes`; a `.kiln` graph's static shapes must agree with the ones `--shape` gives.
    fn into_graph(
        self,
        shapes: &BTreeMap<String, Vec<usize>>,
        restated: &BTreeMap<String, Vec<usize>>,
    ) -> Result<Graph> {
        match self {
            Source::Kiln(g) => {
                check_fixed_shapes(&g, restated)?;
                Ok(g)
            }
            Source::Onnx(m) => m.import(shapes),
        }
    }
}

/// Loads `args.model` with its weights, verified and ready to compile. `input_shapes` are the
/// shapes of the inputs at hand (by input name), which specialise symbolic dimensions; `--shape`
/// options take their place where given.
pub(crate) fn load_with_shapes(
    args: &ModelArgs,
    source: Source,
    input_shapes: &BTreeMap<String, Vec<usize>>,
) -> Result<Graph> {
    let restated = parse_shapes(&args.shape)?;
    let mut shapes = input_shapes.clone();
    shapes.extend(restated.clone());
    let mut graph = source.into_graph(&shapes, &restated)?;
    if let Some(w) = &args.weights {
        let weights = read_safetensors_within(w, args.memory_limit)?;
        kiln::weights::bind_weights(&mut graph, &weights)?;
    }
    kiln::ir::verify::verify(&graph)?;
    Ok(graph)
}

/// Loads `args.model` with the shapes `--shape` gives.
pub(crate) fn load(args: &ModelArgs) -> Result<Graph> {
    load_with_shapes(
        args,
        Source::open(&args.model, args.memory_limit)?,
        &BTreeMap::new(),
    )
}

/// Whether every parameter has its data (lowering needs it; printing the graph does not).
pub(crate) fn all_params_bound(graph: &Graph) -> bool {
    graph
        .params()
        .iter()
        .all(|&p| matches!(graph.node(p).kind, kiln::NodeKind::Param(Some(_))))
}

/// Parses `NAME=1x3x224x224` options.
fn parse_shapes(specs: &[String]) -> Result<BTreeMap<String, Vec<usize>>> {
    let mut shapes = BTreeMap::new();
    for spec in specs {
        let bad = || {
            Error::Usage(format!(
                "--shape {spec}: expected NAME=DIMS such as x=1x3x224x224"
            ))
        };
        let (name, dims) = spec.split_once('=').ok_or_else(bad)?;
        let dims = dims
            .split('x')
            .map(|d| d.trim().parse::<usize>().map_err(|_| bad()))
            .collect::<Result<Vec<_>>>()?;
        if name.is_empty() || dims.is_empty() {
            return Err(bad());
        }
        shapes.insert(name.to_string(), dims);
    }
    Ok(shapes)
}

/// A `.kiln` graph has static shapes: `--shape` may only restate them.
fn check_fixed_shapes(graph: &Graph, shapes: &BTreeMap<String, Vec<usize>>) -> Result<()> {
    for (name, dims) in shapes {
        let input = graph
            .inputs()
            .iter()
            .find(|&&v| graph.name(v) == name)
            .ok_or_else(|| {
                Error::Usage(format!("--shape {name}=…: the model has no input %{name}"))
            })?;
        let declared = &graph.ty(*input).shape;
        if declared != dims {
            return Err(Error::Usage(format!(
                "--shape {name}: the model declares {}, got {}",
                fmt_shape(declared),
                fmt_shape(dims)
            )));
        }
    }
    Ok(())
}
