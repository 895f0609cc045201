//! The reference interpreter: runs a [`Plan`] step by step with the reference kernels, reading and
//! writing intermediates in one arena exactly where the memory plan put them. It is the oracle that
//! the JIT and the optimizer are checked against, so it stays plain.

use crate::error::{Result, RuntimeError};
use crate::plan::{BufferId, BufferKind, Plan};
use crate::shape::fmt_shape;
use crate::tensor::Tensor;

/// Checks `inputs` against the plan's declared inputs (count and shapes).
pub fn check_inputs(plan: &Plan, inputs: &[Tensor]) -> Result<()> {
    if inputs.len() != plan.inputs.len() {
        return Err(RuntimeError::InputCount {
            expected: plan.inputs.len(),
            got: inputs.len(),
        });
    }
    for (&id, t) in plan.inputs.iter().zip(inputs) {
        let b = plan.buffer(id);
        if t.shape() != b.shape.as_slice() {
            return Err(RuntimeError::InputShape {
                name: b.name.clone(),
                expected: fmt_shape(&b.shape),
                got: fmt_shape(t.shape()),
            });
        }
    }
    Ok(())
}

/// The most bytes [`run`] holds at once besides its inputs and the plan's parameters: the arena,
/// plus the largest step's operand copies and result (every step copies its operands out), plus
/// the outputs it returns. The compiler checks this against the memory budget before a model
/// may run on the interpreter.
pub fn memory_needed(plan: &Plan) -> u64 {
    let bytes = |id: BufferId| plan.buffer(id).bytes() as u64;
    let largest_step = plan
        .steps
        .iter()
        .map(|s| {
            s.inputs
                .iter()
                .map(|&i| bytes(i))
                .fold(bytes(s.output), u64::saturating_add)
        })
        .max()
        .unwrap_or(0);
    let outputs = plan
        .outputs
        .iter()
        .map(|&o| bytes(o))
        .fold(0, u64::saturating_add);
    (plan.arena_bytes as u64)
        .saturating_add(largest_step)
        .saturating_add(outputs)
}

/// Checks what [`run`] holds for `plan` — [`memory_needed`] and the parameters — against the
/// memory budget's `limit` (stage `interpreter`).
pub fn check_memory(plan: &Plan, limit: u64) -> Result<()> {
    let params = plan
        .buffers
        .iter()
        .filter(|b| matches!(b.kind, BufferKind::Param(_)))
        .map(|b| b.bytes() as u64)
        .fold(0, u64::saturating_add);
    crate::budget::check(
        "interpreter",
        "the arena, the parameters and the largest step's operands and result",
        memory_needed(plan).saturating_add(params),
        limit,
    )?;
    Ok(())
}

/// Runs `plan` on `inputs` and returns its outputs.
///
/// Every step copies its operands out of their storage, runs the op's reference kernel and writes the
/// result at its buffer's place in the arena; so an in-place step, whose result aliases an operand,
/// behaves exactly as the plan says.
pub fn run(plan: &Plan, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
    check_inputs(plan, inputs)?;
    plan.validate().map_err(RuntimeError::InvalidPlan)?;
    let mut arena = Vec::new();
    let floats = plan.arena_bytes / std::mem::size_of::<f32>();
    arena
        .try_reserve_exact(floats)
        .map_err(|_| RuntimeError::OutOfMemory {
            bytes: plan.arena_bytes as u64,
        })?;
    arena.resize(floats, 0f32);
    let fetch = |arena: &[f32], id: BufferId| -> Result<Tensor> {
        let b = plan.buffer(id);
        match &b.kind {
            BufferKind::Input { index } => Ok(inputs[*index].clone()),
            BufferKind::Param(t) => Ok(t.clone()),
            BufferKind::Intermediate { offset } => {
                let start = offset / std::mem::size_of::<f32>();
                let len = b.bytes() / std::mem::size_of::<f32>();
                Tensor::from_slice(&arena[start..start + len], &b.shape)
            }
        }
    };
    for step in &plan.steps {
        let operands = step
            .inputs
            .iter()
            .map(|&id| fetch(&arena, id))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Tensor> = operands.iter().collect();
        let result = step.op.eval(&refs)?;
        let BufferKind::Intermediate { offset } = plan.buffer(step.output).kind else {
            return Err(RuntimeError::InvalidPlan(format!(
                "step writes {} which is not an intermediate",
                step.output
            )));
        };
        let start = offset / std::mem::size_of::<f32>();
        arena[start..start + result.numel()].copy_from_slice(result.data());
    }
    plan.outputs.iter().map(|&id| fetch(&arena, id)).collect()
}
