//! `inplace`: an element-wise step writes its result into an operand's buffer when that is safe,
//! decided on the lowered schedule (liveness is a property of the schedule, not of the graph).
//!
//! A step may take over operand `k`'s storage only if
//! 1. the op is element-wise in that operand: element `i` of the result reads only element `i` of
//!    it (an activation, `add`, `batch_norm`'s input, `flatten`; not a conv or a pool);
//! 2. the operand is an intermediate: never a graph input (the caller owns it) nor a parameter;
//! 3. the operand is not a graph output and no later step reads it (it is dead after this step);
//! 4. the sizes match.
//!
//! ```text
//! step 1: %pool = max_pool2d(%c) …
//! step 2: %r = relu(%pool) … in place of %pool      ; %pool is dead after step 2
//! ```
//!
//! `nn.ReLU(inplace=True)` is only a hint at the PyTorch level: whether a step runs in place is
//! decided here by these rules alone, and never changes a result. For `add`, operand 0 is tried
//! first. The pass marks the steps, then lays the arena out again without reuse (each storage after
//! the other); `memory_plan` packs it.

use super::liveness::{aliases_from_plan, is_intermediate, live_ranges, next_reader, LiveRange};
use super::memory_plan::layout_naive;
use super::remarks::Remark;
use super::{Changed, PlanPass};
use crate::error::Result;
use kiln_runtime::ops::Op;
use kiln_runtime::plan::{BufferId, BufferKind, Plan};

/// The in-place pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct InPlace;

const NAME: &str = "inplace";

impl PlanPass for InPlace {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(&self, plan: &mut Plan) -> Result<Changed> {
        let mut alias = aliases_from_plan(plan);
        let mut n = 0;
        for (s, decision) in decide(plan) {
            let Ok(k) = decision else { continue };
            let step = &mut plan.steps[s];
            if let (Some(slot), Some(&operand)) = (alias.get_mut(step.output.0), step.inputs.get(k))
            {
                *slot = Some(operand);
                step.in_place = true;
                n += 1;
            }
        }
        layout_naive(plan, &alias);
        Ok(Changed::by(n))
    }

    fn explain(&self, plan: &Plan) -> Vec<Remark> {
        decide(plan)
            .into_iter()
            .filter_map(|(s, d)| {
                let why = d.err()?;
                let out = plan.steps.get(s)?.output;
                let name = &plan.buffers.get(out.0)?.name;
                Some(Remark::new(NAME, name, format!("not in place: {why}")))
            })
            .collect()
    }
}

/// The operands (by position) an op may write its result over: those it reads element-wise.
pub fn elementwise_operands(op: &Op) -> &'static [usize] {
    match op {
        Op::Activation(_) | Op::BatchNorm2d(_) | Op::Flatten(_) => &[0],
        Op::Add(_) => &[0, 1],
        _ => &[],
    }
}

/// For every element-wise step not yet in place: the operand it can take over, or why none.
fn decide(plan: &Plan) -> Vec<(usize, Result<usize, String>)> {
    let ranges = live_ranges(plan);
    let mut out = Vec::new();
    for (s, step) in plan.steps.iter().enumerate() {
        let candidates = elementwise_operands(&step.op);
        if candidates.is_empty() || step.in_place {
            continue;
        }
        let mut reasons: Vec<String> = Vec::new();
        let mut chosen = None;
        for &k in candidates {
            let Some(&b) = step.inputs.get(k) else {
                continue;
            };
            match check(plan, &ranges, s, b, step.output) {
                Ok(()) => {
                    chosen = Some(k);
                    break;
                }
                Err(why) if !reasons.contains(&why) => reasons.push(why),
                Err(_) => {}
            }
        }
        out.push((s, chosen.ok_or_else(|| reasons.join("; "))));
    }
    out
}

/// Whether step `s` may write `output` over operand `b` (rules 2–4; rule 1 is the caller's).
pub fn check(
    plan: &Plan,
    ranges: &[Option<LiveRange>],
    s: usize,
    b: BufferId,
    output: BufferId,
) -> Result<(), String> {
    let buf = plan
        .buffers
        .get(b.0)
        .ok_or_else(|| format!("{b} does not exist"))?;
    let name = format!("%{}", buf.name);
    match buf.kind {
        BufferKind::Input { .. } => return Err(format!("{name} is a graph input")),
        BufferKind::Param(_) => return Err(format!("{name} is a parameter")),
        BufferKind::Intermediate { .. } => {}
    }
    if plan.outputs.contains(&b) {
        return Err(format!("{name} is a graph output"));
    }
    let last = ranges.get(b.0).copied().flatten().map(|r| r.last);
    if last != Some(s) {
        let later = next_reader(plan, b, s)
            .and_then(|t| plan.steps.get(t))
            .and_then(|t| plan.buffers.get(t.output.0))
            .map(|t| format!(" by %{}", t.name))
            .unwrap_or_default();
        return Err(format!("{name} is read later{later}"));
    }
    let out = plan
        .buffers
        .get(output.0)
        .ok_or_else(|| format!("{output} does not exist"))?;
    if out.bytes() != buf.bytes() || !is_intermediate(plan, output) {
        return Err(format!(
            "{name} has {} bytes, the result {}",
            buf.bytes(),
            out.bytes()
        ));
    }
    Ok(())
}
