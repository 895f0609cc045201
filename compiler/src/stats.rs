//! `kiln compile --emit stats`: what the optimizer left and did, as one JSON object.
//!
//! ```text
//! {
//!   "ops": {"conv2d": 2},
//!   "fused": {"activation": 2, "batch_norm": 0, "residual": 0, "pool": 2},
//!   "in_place": 0,
//!   "memory": {"arena_bytes": 49152, "naive_bytes": 49152, "lower_bound_bytes": 49152, "unoptimized_bytes": 442368},
//!   "steps": 2,
//!   "fallback": 0,
//!   "passes": ["dce", "fold_batch_norm", …]
//! }
//! ```
//!
//! - `ops`: the standalone ops of the optimized graph, by op name (a fused conv counts as `conv2d`);
//! - `fused`: activations, residual adds and max-pools now inside a conv or linear epilogue (counted
//!   on the optimized graph), and BatchNorms folded (counted by `fold_batch_norm`);
//! - `in_place`: steps of the plan that write over an operand;
//! - `memory`: the plan's arena, the naive sum of all its intermediates, the lower bound (the largest
//!   total of simultaneously live bytes at any step), and the naive sum of the graph before any
//!   pass (`unoptimized_bytes`: what `-O0` lays out);
//! - `steps`, `passes`: the plan's step count and the passes that ran;
//! - `fallback`: steps the JIT would run through a reference kernel rather than generated code
//!   (`kiln compile` fills it in by compiling the plan; always 0 today).

use crate::ir::graph::Graph;
use crate::passes::rewrite::epilogue;
use crate::passes::Compiled;
use kiln_runtime::plan::MemoryStats;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The figures `--emit stats` prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Standalone ops left in the optimized graph, by op name.
    pub ops: BTreeMap<String, usize>,
    /// Activations inside an epilogue.
    pub fused_activation: usize,
    /// BatchNorms folded into a conv or linear.
    pub fused_batch_norm: usize,
    /// Residual adds inside an epilogue.
    pub fused_residual: usize,
    /// Max-pools inside a conv's epilogue.
    pub fused_pool: usize,
    /// Steps that write their result over an operand.
    pub in_place: usize,
    /// The plan's memory figures.
    pub memory: MemoryStats,
    /// The naive bytes of the unoptimized graph (every op's result, no reuse): what `-O0` needs.
    pub unoptimized_bytes: usize,
    /// Number of steps in the plan.
    pub steps: usize,
    /// The passes that ran, in order.
    pub passes: Vec<&'static str>,
    /// Steps the JIT runs through a reference kernel instead of generated code (set by the caller
    /// that compiled the plan; 0 when nothing was compiled).
    pub fallback: usize,
}

impl Stats {
    /// The figures of a pipeline's result.
    pub fn of(compiled: &Compiled) -> Stats {
        let mut stats = Stats::of_graph(&compiled.graph);
        stats.fused_batch_norm = compiled.rewrites_of("fold_batch_norm");
        stats.in_place = compiled.plan.steps.iter().filter(|s| s.in_place).count();
        stats.memory = compiled.memory;
        stats.unoptimized_bytes = compiled.unoptimized_bytes;
        stats.steps = compiled.plan.steps.len();
        stats.passes = compiled.rewrites.iter().map(|(p, _)| *p).collect();
        stats
    }

    /// The op counts and epilogue contents of `graph` (the other figures stay zero).
    pub fn of_graph(graph: &Graph) -> Stats {
        let mut stats = Stats::default();
        for v in graph.values() {
            let Some(op) = graph.op(v) else { continue };
            *stats.ops.entry(op.name().to_string()).or_default() += 1;
            if let Some(e) = epilogue(op) {
                stats.fused_activation += usize::from(e.activation.is_some());
                stats.fused_residual += usize::from(e.residual);
                stats.fused_pool += usize::from(e.pool.is_some());
            }
        }
        stats
    }

    /// The JSON object, pretty-printed, keys in a fixed order, ending with a newline.
    pub fn to_json(&self) -> String {
        let ops: Vec<String> = self
            .ops
            .iter()
            .map(|(name, n)| format!("{}: {n}", json_string(name)))
            .collect();
        let passes: Vec<String> = self.passes.iter().map(|p| json_string(p)).collect();
        let m = &self.memory;
        let mut out = String::from("{\n");
        let _ = writeln!(out, "  \"ops\": {{{}}},", ops.join(", "));
        let _ = writeln!(
            out,
            "  \"fused\": {{\"activation\": {}, \"batch_norm\": {}, \"residual\": {}, \"pool\": {}}},",
            self.fused_activation, self.fused_batch_norm, self.fused_residual, self.fused_pool
        );
        let _ = writeln!(out, "  \"in_place\": {},", self.in_place);
        let _ = writeln!(
            out,
            "  \"memory\": {{\"arena_bytes\": {}, \"naive_bytes\": {}, \"lower_bound_bytes\": {}, \"unoptimized_bytes\": {}}},",
            m.arena_bytes, m.naive_bytes, m.lower_bound_bytes, self.unoptimized_bytes
        );
        let _ = writeln!(out, "  \"steps\": {},", self.steps);
        let _ = writeln!(out, "  \"fallback\": {},", self.fallback);
        let _ = writeln!(out, "  \"passes\": [{}]", passes.join(", "));
        out.push_str("}\n");
        out
    }
}

/// A JSON string literal (op and pass names are plain identifiers, but escape anyway).
fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_exactly_the_documented_keys() {
        let mut s = Stats::default();
        s.ops.insert("conv2d".into(), 2);
        s.fused_activation = 2;
        s.fused_pool = 2;
        s.memory = MemoryStats {
            arena_bytes: 3,
            naive_bytes: 4,
            lower_bound_bytes: 5,
        };
        s.passes = vec!["dce"];
        s.fallback = 1;
        assert_eq!(
            s.to_json(),
            "{\n  \"ops\": {\"conv2d\": 2},\n  \"fused\": {\"activation\": 2, \"batch_norm\": 0, \"residual\": 0, \"pool\": 2},\n  \"in_place\": 0,\n  \"memory\": {\"arena_bytes\": 3, \"naive_bytes\": 4, \"lower_bound_bytes\": 5, \"unoptimized_bytes\": 0},\n  \"steps\": 0,\n  \"fallback\": 1,\n  \"passes\": [\"dce\"]\n}\n"
        );
        assert_eq!(json_string("a\"b\\"), "\"a\\\"b\\\\\"");
    }
}
