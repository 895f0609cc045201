//! Liveness over the lowered schedule: when each intermediate buffer is written and last read, and
//! which buffers share one storage because a step wrote its result in place of an operand.
//!
//! Steps are numbered in execution order. An intermediate is live from the step that writes it to
//! the last step that reads it, both inclusive: during a step, its operands and its result exist at
//! the same time, so they may share memory only when the step is in place. A graph output stays
//! live past the last step (its range ends at `steps.len()`), because the caller reads it.
//!
//! ```text
//! step 0: %a = conv2d(%x, …)     %a live 0..=2
//! step 1: %b = relu(%a)          %b live 1..=1 (dead after its last reader, step 2)
//! step 2: %c = add(%a, %b)       %c live 2..=3 (a graph output)
//! ```

use kiln_runtime::plan::{BufferId, BufferKind, Plan, Step};

/// The steps during which a buffer holds a value: written at `first`, last read at `last`
/// (`last == steps.len()` for a graph output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveRange {
    /// The step that writes it.
    pub first: usize,
    /// The last step that reads it, or the step count for a graph output.
    pub last: usize,
}

impl LiveRange {
    /// Whether the two ranges share a step.
    pub fn overlaps(&self, other: &LiveRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }

    /// Whether `step` lies in the range.
    pub fn contains(&self, step: usize) -> bool {
        self.first <= step && step <= self.last
    }
}

/// The live range of every buffer, indexed by [`BufferId`]: `None` for inputs, parameters and
/// intermediates no step writes.
pub fn live_ranges(plan: &Plan) -> Vec<Option<LiveRange>> {
    let mut ranges: Vec<Option<LiveRange>> = vec![None; plan.buffers.len()];
    for (s, step) in plan.steps.iter().enumerate() {
        if let Some(r) = ranges.get_mut(step.output.0) {
            if r.is_none() && is_intermediate(plan, step.output) {
                *r = Some(LiveRange { first: s, last: s });
            }
        }
        for b in &step.inputs {
            if let Some(Some(r)) = ranges.get_mut(b.0) {
                r.last = r.last.max(s);
            }
        }
    }
    for o in &plan.outputs {
        if let Some(Some(r)) = ranges.get_mut(o.0) {
            r.last = plan.steps.len();
        }
    }
    ranges
}

/// Whether `b` lives in the arena.
pub fn is_intermediate(plan: &Plan, b: BufferId) -> bool {
    plan.buffers
        .get(b.0)
        .is_some_and(|buf| matches!(buf.kind, BufferKind::Intermediate { .. }))
}

/// The first step after `after` that reads `b`.
pub fn next_reader(plan: &Plan, b: BufferId, after: usize) -> Option<usize> {
    plan.steps
        .iter()
        .enumerate()
        .skip(after + 1)
        .find(|(_, step)| step.inputs.contains(&b))
        .map(|(s, _)| s)
}

/// The operand (by position) whose storage an in-place step writes: the intermediate operand at
/// the result's offset. `None` for a step that is not in place, or whose plan has no such operand
/// (the plan verifier reports that).
pub fn aliased_operand(plan: &Plan, step: &Step) -> Option<usize> {
    if !step.in_place {
        return None;
    }
    let offset_of = |b: BufferId| match plan.buffers.get(b.0).map(|buf| &buf.kind) {
        Some(BufferKind::Intermediate { offset }) => Some(*offset),
        _ => None,
    };
    let out = offset_of(step.output)?;
    step.inputs
        .iter()
        .position(|&b| b != step.output && offset_of(b) == Some(out))
}

/// For every buffer, the buffer whose storage it takes over (its in-place step's aliased operand),
/// as the plan records it.
pub fn aliases_from_plan(plan: &Plan) -> Vec<Option<BufferId>> {
    let mut alias = vec![None; plan.buffers.len()];
    for step in &plan.steps {
        if let Some(k) = aliased_operand(plan, step) {
            if let (Some(slot), Some(&operand)) = (alias.get_mut(step.output.0), step.inputs.get(k))
            {
                *slot = Some(operand);
            }
        }
    }
    alias
}

/// One piece of storage: the buffers that share it (a chain of in-place steps), the union of their
/// live ranges and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// The buffers, in the order they are written.
    pub buffers: Vec<BufferId>,
    /// From the first write to the last read of any of them.
    pub range: LiveRange,
    /// The largest of their sizes, in bytes (in-place steps keep the size).
    pub bytes: usize,
}

/// Groups the live intermediates into storages, following `alias` (see [`aliases_from_plan`]).
/// Returns the storages, ordered by first write, and each buffer's storage index.
pub fn storages(plan: &Plan, alias: &[Option<BufferId>]) -> (Vec<Storage>, Vec<Option<usize>>) {
    let ranges = live_ranges(plan);
    let n = plan.buffers.len();
    let root = |mut b: usize| {
        // A chain is at most as long as the buffer list; the bound guards a malformed alias cycle.
        for _ in 0..n {
            match alias.get(b).copied().flatten() {
                Some(next) if next.0 != b && ranges.get(next.0).is_some_and(|r| r.is_some()) => {
                    b = next.0
                }
                _ => break,
            }
        }
        b
    };
    let mut index_of_root: Vec<Option<usize>> = vec![None; n];
    let mut class: Vec<Option<usize>> = vec![None; n];
    let mut out: Vec<Storage> = Vec::new();
    let mut order: Vec<(usize, usize)> = ranges
        .iter()
        .enumerate()
        .filter_map(|(b, r)| r.map(|r| (r.first, b)))
        .collect();
    order.sort();
    for (_, b) in order {
        let Some(range) = ranges[b] else { continue };
        let r = root(b);
        let bytes = plan.buffers[b].bytes();
        let idx = match index_of_root[r] {
            Some(i) => {
                let s = &mut out[i];
                s.buffers.push(BufferId(b));
                s.range.first = s.range.first.min(range.first);
                s.range.last = s.range.last.max(range.last);
                s.bytes = s.bytes.max(bytes);
                i
            }
            None => {
                out.push(Storage {
                    buffers: vec![BufferId(b)],
                    range,
                    bytes,
                });
                index_of_root[r] = Some(out.len() - 1);
                out.len() - 1
            }
        };
        class[b] = Some(idx);
    }
    (out, class)
}

/// The largest total size of storages live at one step: no memory plan can use less.
pub fn lower_bound(plan: &Plan, storages: &[Storage]) -> usize {
    (0..=plan.steps.len())
        .map(|s| {
            storages
                .iter()
                .filter(|st| st.range.contains(s))
                .map(|st| st.bytes)
                .sum::<usize>()
        })
        .max()
        .unwrap_or(0)
}
