//! Loading a model for the CLI: picks the front end by file extension, fixes input shapes and binds
//! weights.

use super::ModelArgs;
use kiln::{Error, Graph, Result};
use kiln_runtime::io::safetensors::read_safetensors;
use std::collections::BTreeMap;
use std::path::Path;

/// Loads `args.model` with its weights, verified and ready to lower.
pub(crate) fn load(args: &ModelArgs) -> Result<Graph> {
    let shapes = parse_shapes(&args.shape)?;
    let mut graph = match extension(&args.model).as_deref() {
        Some("kiln") => {
            let g = kiln::ir::text::parse_file(&args.model)?;
            check_fixed_shapes(&g, &shapes)?;
            g
        }
        _ => {
            return Err(Error::Usage(format!(
                "{}: unknown model format; expected a .kiln file",
                args.model.display()
            )))
        }
    };
    if let Some(w) = &args.weights {
        let weights = read_safetensors(w)?;
        kiln::weights::bind_weights(&mut graph, &weights)?;
    }
    kiln::ir::verify::verify(&graph)?;
    Ok(graph)
}

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
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
                kiln_runtime::shape::fmt_shape(declared),
                kiln_runtime::shape::fmt_shape(dims)
            )));
        }
    }
    Ok(())
}
