//! The [`Plan`]: the lowered, ordered program both back ends execute — buffers (inputs, parameters,
//! intermediates placed in one arena) and steps (an op, its operand buffers, its result buffer).

use crate::ops::Op;
use crate::shape::{fmt_shape, numel};
use crate::tensor::Tensor;
use std::fmt;

/// Index of a buffer in [`Plan::buffers`]; prints as `b3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufferId(pub usize);

impl fmt::Display for BufferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{}", self.0)
    }
}

/// Where a buffer's storage comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum BufferKind {
    /// The caller's `index`-th input: read only, never written.
    Input {
        /// Position among the model's inputs.
        index: usize,
    },
    /// A parameter with its data, owned by the plan: read only.
    Param(Tensor),
    /// An intermediate living in the arena at `offset` bytes.
    Intermediate {
        /// Byte offset in the arena (a multiple of [`ARENA_ALIGN`]).
        offset: usize,
    },
}

/// Alignment of every buffer in the arena, in bytes (one cache line).
pub const ARENA_ALIGN: usize = 64;

/// One tensor-valued storage location of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Buffer {
    /// The value's name in the graph it came from (for printing and errors).
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Where it lives.
    pub kind: BufferKind,
}

impl Buffer {
    /// Size in bytes.
    pub fn bytes(&self) -> usize {
        numel(&self.shape).saturating_mul(std::mem::size_of::<f32>())
    }
}

/// One operation of the program.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// What to compute.
    pub op: Op,
    /// Operand buffers, in the op's operand order.
    pub inputs: Vec<BufferId>,
    /// Result buffer (always an intermediate).
    pub output: BufferId,
    /// Whether `output` shares its storage with one of `inputs` (set by the in-place pass).
    pub in_place: bool,
}

/// Memory figures of a plan, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Size of the arena holding every intermediate.
    pub arena_bytes: usize,
    /// Sum of all intermediates' sizes (what an arena without reuse would need).
    pub naive_bytes: usize,
    /// The largest total of simultaneously live intermediate bytes at any step (no plan does better).
    pub lower_bound_bytes: usize,
}

/// The lowered program: a schedule of steps over buffers, with a memory plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Every buffer; [`BufferId`] indexes this.
    pub buffers: Vec<Buffer>,
    /// Steps in execution order.
    pub steps: Vec<Step>,
    /// The model's inputs, in call order.
    pub inputs: Vec<BufferId>,
    /// The model's outputs, in return order.
    pub outputs: Vec<BufferId>,
    /// Arena size in bytes.
    pub arena_bytes: usize,
}

impl Plan {
    /// The buffer behind an id.
    pub fn buffer(&self, id: BufferId) -> &Buffer {
        &self.buffers[id.0]
    }

    /// Shapes of the model's inputs, in call order.
    pub fn input_shapes(&self) -> Vec<&[usize]> {
        self.inputs
            .iter()
            .map(|&b| self.buffer(b).shape.as_slice())
            .collect()
    }

    /// Checks the plan's internal consistency: ids in range, every step's operand shapes fit its op,
    /// outputs are intermediates inside the arena, every intermediate is written before it is read.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.buffers.len();
        let mut written = vec![false; n];
        for (i, b) in self.buffers.iter().enumerate() {
            match b.kind {
                BufferKind::Input { .. } | BufferKind::Param(_) => written[i] = true,
                BufferKind::Intermediate { offset } => {
                    if offset % ARENA_ALIGN != 0 || offset + b.bytes() > self.arena_bytes {
                        return Err(format!(
                            "buffer b{i} ({}) at offset {offset} with {} bytes does not fit an arena of {} bytes",
                            b.name,
                            b.bytes(),
                            self.arena_bytes
                        ));
                    }
                }
            }
        }
        for (s, step) in self.steps.iter().enumerate() {
            let ids = step.inputs.iter().chain(std::iter::once(&step.output));
            if let Some(bad) = ids.clone().find(|id| id.0 >= n) {
                return Err(format!("step {s}: buffer {bad} does not exist"));
            }
            if let Some(unset) = step.inputs.iter().find(|id| !written[id.0]) {
                return Err(format!("step {s}: reads {unset} before it is written"));
            }
            let out = self.buffer(step.output);
            if !matches!(out.kind, BufferKind::Intermediate { .. }) {
                return Err(format!(
                    "step {s}: writes {} which is not an intermediate",
                    step.output
                ));
            }
            let shapes: Vec<&[usize]> = step
                .inputs
                .iter()
                .map(|&b| self.buffer(b).shape.as_slice())
                .collect();
            let inferred = step
                .op
                .infer_shape(&shapes)
                .map_err(|e| format!("step {s} ({}): {e}", step.op.name()))?;
            if inferred != out.shape {
                return Err(format!(
                    "step {s} ({}): result buffer {} has shape {}, the op gives {}",
                    step.op.name(),
                    step.output,
                    fmt_shape(&out.shape),
                    fmt_shape(&inferred)
                ));
            }
            written[step.output.0] = true;
        }
        for &o in &self.outputs {
            if o.0 >= n || !written[o.0] {
                return Err(format!("output {o} is never written"));
            }
        }
        Ok(())
    }
}
