//! `dce`: removes ops whose results nothing needs, and the parameters only they read.
//!
//! A value is needed when it is a graph output or an operand of a needed op; everything else
//! (except graph inputs, which are the caller's signature) goes:
//!
//! ```text
//! %a = relu(%x)            ; kept: an operand of %b
//! %dead = sigmoid(%x)      ; removed: no user, not an output
//! %b = tanh(%a)
//! return %b
//! ```

use super::{Changed, Pass};
use crate::error::Result;
use crate::ir::graph::{Graph, NodeKind, ValueId};
use std::collections::HashSet;

/// The dead-code elimination pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dce;

impl Pass for Dce {
    fn name(&self) -> &'static str {
        "dce"
    }

    fn run(&self, graph: &mut Graph) -> Result<Changed> {
        let mut needed: HashSet<ValueId> = HashSet::new();
        let mut work: Vec<ValueId> = graph.outputs().to_vec();
        while let Some(v) = work.pop() {
            if graph.contains(v) && needed.insert(v) {
                work.extend(graph.operands(v));
            }
        }
        let dead: Vec<ValueId> = graph
            .values()
            .filter(|v| !needed.contains(v) && !matches!(graph.node(*v).kind, NodeKind::Input))
            .collect();
        for &v in &dead {
            graph.remove(v)?;
        }
        Ok(Changed::by(dead.len()))
    }
}
