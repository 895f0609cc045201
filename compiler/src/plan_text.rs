//! The text form of a lowered [`Plan`] (`kiln compile --emit plan`): the memory figures, every
//! intermediate buffer with its place in the arena and its live range, then the steps in execution
//! order, with in-place marks and the in-place refusals as trailing comments.
//!
//! ```text
//! plan relu_after_pool(%x: f32[1, 3, 8, 8]) {
//!   memory: arena 448 bytes, naive 640 bytes, lower bound 448 bytes, parameters 448 bytes
//!   buffer %pool: f32[1, 3, 4, 4] at 256, 192 bytes, live steps 0..=1
//!   buffer %relu: f32[1, 3, 4, 4] at 256, 192 bytes, live steps 1..=2, shares the storage of %pool
//!   buffer %conv: f32[1, 4, 4, 4] at 0, 256 bytes, live steps 2..=return
//!   step 0: %pool = max_pool2d(%x) {kernel=[2, 2], stride=[2, 2], padding=[0, 0, 0, 0], dilation=[1, 1], ceil_mode=false} : f32[1, 3, 4, 4]
//!   step 1: %relu = relu(%pool) : f32[1, 3, 4, 4], in place of %pool
//!   step 2: %conv = conv2d(%relu, %conv.weight, %conv.bias) {stride=[1, 1], padding=[1, 1, 1, 1], dilation=[1, 1], groups=1} : f32[1, 4, 4, 4]
//!   return %conv
//! }
//! ```
//!
//! Op attributes print exactly as in the graph's text form (the printer of [`crate::ir::text`]
//! is the one source of that syntax). A live range `a..=b` runs from the step that writes the buffer
//! to the last step that reads it; `..=return` marks a graph output.

use crate::ir::graph::Graph;
use crate::ir::text::print;
use crate::ir::types::TensorType;
use crate::passes::liveness::{aliased_operand, live_ranges};
use crate::passes::memory_plan::memory_stats;
use crate::passes::Remarks;
use kiln_runtime::ops::Op;
use kiln_runtime::plan::{BufferId, BufferKind, Plan};
use std::fmt::Write;

/// The text form of `plan`, headed `plan NAME(…)`, with `remarks` on the steps they concern.
pub fn print_plan(name: &str, plan: &Plan, remarks: &Remarks) -> String {
    let mut out = String::new();
    let value = |b: BufferId| {
        plan.buffers
            .get(b.0)
            .map_or_else(|| format!("%<{b}>"), |buf| format!("%{}", buf.name))
    };
    let ty = |b: BufferId| {
        plan.buffers
            .get(b.0)
            .map_or_else(String::new, |buf| TensorType::new(&buf.shape).to_string())
    };
    let inputs: Vec<String> = plan
        .inputs
        .iter()
        .map(|&b| format!("{}: {}", value(b), ty(b)))
        .collect();
    let _ = writeln!(out, "plan {name}({}) {{", inputs.join(", "));

    let mem = memory_stats(plan);
    let param_bytes: usize = plan
        .buffers
        .iter()
        .filter(|b| matches!(b.kind, BufferKind::Param(_)))
        .map(|b| b.bytes())
        .sum();
    let _ = writeln!(
        out,
        "  memory: arena {} bytes, naive {} bytes, lower bound {} bytes, parameters {param_bytes} bytes",
        mem.arena_bytes, mem.naive_bytes, mem.lower_bound_bytes
    );

    let ranges = live_ranges(plan);
    let mut shares: Vec<Option<BufferId>> = vec![None; plan.buffers.len()];
    for step in &plan.steps {
        if let Some(k) = aliased_operand(plan, step) {
            if let Some(&operand) = step.inputs.get(k) {
                // The storage is named after the first buffer of the in-place chain.
                let root = shares.get(operand.0).copied().flatten().unwrap_or(operand);
                if let Some(slot) = shares.get_mut(step.output.0) {
                    *slot = Some(root);
                }
            }
        }
    }
    // Buffers in order of first write, as the steps produce them.
    let mut order: Vec<(usize, usize)> = ranges
        .iter()
        .enumerate()
        .filter_map(|(b, r)| r.map(|r| (r.first, b)))
        .collect();
    order.sort();
    for (_, b) in order {
        let (buf, Some(r)) = (&plan.buffers[b], ranges[b]) else {
            continue;
        };
        let BufferKind::Intermediate { offset } = buf.kind else {
            continue;
        };
        let last = if r.last >= plan.steps.len() {
            "return".to_string()
        } else {
            r.last.to_string()
        };
        let storage = shares[b]
            .map(|s| format!(", shares the storage of {}", value(s)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  buffer {}: {} at {offset}, {} bytes, live steps {}..={last}{storage}",
            value(BufferId(b)),
            ty(BufferId(b)),
            buf.bytes(),
            r.first
        );
    }

    for (s, step) in plan.steps.iter().enumerate() {
        let operands: Vec<String> = step.inputs.iter().map(|&b| value(b)).collect();
        let shapes: Vec<&[usize]> = step
            .inputs
            .iter()
            .filter_map(|b| plan.buffers.get(b.0).map(|buf| buf.shape.as_slice()))
            .collect();
        let in_place = aliased_operand(plan, step)
            .and_then(|k| step.inputs.get(k))
            .map(|&b| format!(", in place of {}", value(b)))
            .unwrap_or_default();
        let comment = plan
            .buffers
            .get(step.output.0)
            .map(|buf| remarks.comment_for(&buf.name))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  step {s}: {} = {}({}){} : {}{in_place}{comment}",
            value(step.output),
            step.op.name(),
            operands.join(", "),
            op_attrs(&step.op, &shapes),
            ty(step.output)
        );
    }
    let outputs: Vec<String> = plan.outputs.iter().map(|&b| value(b)).collect();
    let _ = writeln!(out, "  return {}\n}}", outputs.join(", "));
    out
}

/// ` {key=value, …}` exactly as the graph printer writes `op`'s attributes (empty for an op without
/// any). The printer only prints whole graphs, so this prints a one-op graph on operands of the
/// step's shapes and takes the attributes from its op line.
fn op_attrs(op: &Op, shapes: &[&[usize]]) -> String {
    let mut g = Graph::new("step");
    let operands: Option<Vec<_>> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| g.add_input(&format!("a{i}"), s).ok())
        .collect();
    let Some(operands) = operands else {
        return String::new();
    };
    let Ok(r) = g.add_op("r", op.clone(), &operands) else {
        return String::new();
    };
    g.set_outputs(vec![r]);
    let text = print(&g);
    let Some(line) = text.lines().find_map(|l| l.strip_prefix("  %r = ")) else {
        return String::new();
    };
    // `name(%a0, …) {attrs} : type`: the operand names hold no parentheses, so the operand list
    // ends at the first `)` (an attribute such as `activation=leaky_relu(0.01)` comes later), and
    // no attribute holds ` : `, so the type starts at the last one.
    match (line.find(')'), line.rfind(" : ")) {
        (Some(close), Some(colon)) if close < colon => line[close + 1..colon].to_string(),
        _ => String::new(),
    }
}
