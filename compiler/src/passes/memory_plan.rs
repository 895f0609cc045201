//! `memory_plan`: places every intermediate in one arena so that buffers whose live ranges do not
//! overlap share bytes, and the plan verifier that proves the result safe.
//!
//! The unit of placement is a *storage*: a buffer, or a chain of buffers joined by in-place steps
//! (they share one place by construction). Each storage has a live range (see [`liveness`]) and a
//! size rounded up to [`ARENA_ALIGN`]. Placement is greedy — take the storages in some order and put
//! each at the lowest-waste offset that does not collide with an already placed storage whose range
//! overlaps — tried with several orders (largest first, earliest first, longest-lived first,
//! largest area first) and two fits (first gap, tightest gap); the smallest arena wins. On the
//! example models this lands on the lower bound, the largest total of storages live at one step.
//!
//! ```text
//! step 0: %a (32 KiB) live 0..=1   → offset 0
//! step 1: %b (16 KiB) live 1..=2   → offset 32768 (overlaps %a in time)
//! step 2: %c (32 KiB) live 2..=3   → offset 0     (%a is dead by then)
//! arena 49152 bytes = lower bound (step 1 or 2: 48 KiB live)
//! ```
//!
//! [`verify_plan`] runs whenever a plan is built (by [`lower`](crate::lower::lower) and after every
//! plan pass). It checks, from the plan alone, that every in-place step follows the in-place rules
//! and that no two buffers of different storages overlap in bytes while both are live.
//!
//! [`liveness`]: super::liveness

use super::inplace::{check, elementwise_operands};
use super::liveness::{
    aliased_operand, aliases_from_plan, live_ranges, lower_bound, storages, Storage,
};
use super::remarks::Remark;
use super::{Changed, PlanPass};
use crate::error::Result;
use kiln_runtime::plan::{BufferId, BufferKind, MemoryStats, Plan, ARENA_ALIGN};
use kiln_runtime::RuntimeError;

/// The memory planning pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryPlan;

impl PlanPass for MemoryPlan {
    fn name(&self) -> &'static str {
        "memory_plan"
    }

    fn run(&self, plan: &mut Plan) -> Result<Changed> {
        let alias = aliases_from_plan(plan);
        let (stores, class) = storages(plan, &alias);
        let (offsets, arena) = pack(&stores);
        let before: Vec<Option<usize>> = plan.buffers.iter().map(offset).collect();
        write_offsets(plan, &class, &offsets, arena);
        let moved = plan
            .buffers
            .iter()
            .zip(before)
            .filter(|(b, old)| offset(b) != *old)
            .count();
        Ok(Changed::by(moved))
    }

    fn explain(&self, _plan: &Plan) -> Vec<Remark> {
        Vec::new()
    }
}

fn offset(b: &kiln_runtime::plan::Buffer) -> Option<usize> {
    match b.kind {
        BufferKind::Intermediate { offset } => Some(offset),
        _ => None,
    }
}

fn aligned(bytes: usize) -> usize {
    bytes.next_multiple_of(ARENA_ALIGN)
}

/// Lays the storages out one after the other in order of first write, with no reuse: the layout of
/// an unplanned (`-O0`) plan. Buffers joined by `alias` share their place.
pub fn layout_naive(plan: &mut Plan, alias: &[Option<BufferId>]) {
    let (stores, class) = storages(plan, alias);
    let mut offsets = Vec::with_capacity(stores.len());
    let mut end = 0;
    for s in &stores {
        offsets.push(end);
        end += aligned(s.bytes);
    }
    write_offsets(plan, &class, &offsets, end);
}

/// Gives every buffer its storage's offset and sets the arena size.
fn write_offsets(plan: &mut Plan, class: &[Option<usize>], offsets: &[usize], arena: usize) {
    for (b, buf) in plan.buffers.iter_mut().enumerate() {
        if let BufferKind::Intermediate { offset } = &mut buf.kind {
            // An intermediate no step writes (none in a lowered graph) gets offset 0: it is never
            // read, and the arena is made large enough for it below.
            *offset = class
                .get(b)
                .copied()
                .flatten()
                .and_then(|c| offsets.get(c).copied())
                .unwrap_or(0);
        }
    }
    let largest_unplaced = plan
        .buffers
        .iter()
        .enumerate()
        .filter(|(b, buf)| offset(buf).is_some() && class.get(*b).copied().flatten().is_none())
        .map(|(_, buf)| aligned(buf.bytes()))
        .max()
        .unwrap_or(0);
    plan.arena_bytes = arena.max(largest_unplaced);
}

/// Which storages a greedy placement takes first.
#[derive(Debug, Clone, Copy)]
enum TakeFirst {
    Largest,
    Earliest,
    LongestLived,
    LargestArea,
}

/// Places the storages; returns each one's offset and the arena size (the best of several greedy
/// placements).
pub fn pack(stores: &[Storage]) -> (Vec<usize>, usize) {
    let orders = [
        TakeFirst::Largest,
        TakeFirst::Earliest,
        TakeFirst::LongestLived,
        TakeFirst::LargestArea,
    ];
    let mut best: Option<(Vec<usize>, usize)> = None;
    for order in orders {
        for best_fit in [false, true] {
            let (offsets, arena) = place(stores, order, best_fit);
            if best.as_ref().is_none_or(|(_, a)| arena < *a) {
                best = Some((offsets, arena));
            }
        }
    }
    best.unwrap_or_default()
}

fn place(stores: &[Storage], order: TakeFirst, best_fit: bool) -> (Vec<usize>, usize) {
    let mut idx: Vec<usize> = (0..stores.len()).collect();
    let len = |s: &Storage| s.range.last - s.range.first + 1;
    // Ties always fall back to the earlier storage, so the placement is deterministic.
    match order {
        TakeFirst::Largest => idx.sort_by_key(|&i| (std::cmp::Reverse(stores[i].bytes), i)),
        TakeFirst::Earliest => idx.sort_by_key(|&i| (stores[i].range.first, i)),
        TakeFirst::LongestLived => idx.sort_by_key(|&i| {
            (
                std::cmp::Reverse(len(&stores[i])),
                std::cmp::Reverse(stores[i].bytes),
                i,
            )
        }),
        TakeFirst::LargestArea => {
            idx.sort_by_key(|&i| (std::cmp::Reverse(len(&stores[i]) * stores[i].bytes), i))
        }
    }
    let mut offsets: Vec<Option<usize>> = vec![None; stores.len()];
    let mut arena = 0;
    for &i in &idx {
        let size = aligned(stores[i].bytes);
        let mut busy: Vec<(usize, usize)> = (0..stores.len())
            .filter_map(|j| {
                let off = offsets[j]?;
                stores[j]
                    .range
                    .overlaps(&stores[i].range)
                    .then(|| (off, off + aligned(stores[j].bytes)))
            })
            .collect();
        busy.sort();
        let mut gaps: Vec<(usize, usize)> = Vec::new();
        let mut cur = 0;
        for (start, end) in busy {
            if start > cur {
                gaps.push((cur, start - cur));
            }
            cur = cur.max(end);
        }
        let fitting = gaps.into_iter().filter(|&(_, g)| g >= size);
        let chosen = if best_fit {
            fitting.min_by_key(|&(off, g)| (g, off))
        } else {
            fitting.min_by_key(|&(off, _)| off)
        };
        let off = chosen.map_or(cur, |(off, _)| off);
        offsets[i] = Some(off);
        arena = arena.max(off + size);
    }
    (offsets.into_iter().map(|o| o.unwrap_or(0)).collect(), arena)
}

/// Memory figures of a plan: its arena, the naive sum of every intermediate's size, and the lower
/// bound (the largest total of storages live at one step).
pub fn memory_stats(plan: &Plan) -> MemoryStats {
    let naive_bytes = plan
        .buffers
        .iter()
        .filter(|b| offset(b).is_some())
        .map(|b| b.bytes())
        .sum();
    let (stores, _) = storages(plan, &aliases_from_plan(plan));
    MemoryStats {
        arena_bytes: plan.arena_bytes,
        naive_bytes,
        lower_bound_bytes: lower_bound(plan, &stores),
    }
}

/// The plan verifier: the plan is consistent ([`Plan::validate`]), every in-place step writes over
/// an operand the in-place rules allow, and no two buffers of different storages overlap in the
/// arena while both are live. The error names the buffers, their bytes and the step.
pub fn verify_plan(plan: &Plan) -> Result<()> {
    let invalid = |msg: String| crate::Error::Runtime(RuntimeError::InvalidPlan(msg));
    plan.validate().map_err(invalid)?;
    let ranges = live_ranges(plan);
    let name = |b: BufferId| format!("%{}", plan.buffers[b.0].name);
    for (s, step) in plan.steps.iter().enumerate() {
        if !step.in_place {
            continue;
        }
        let Some(k) = aliased_operand(plan, step) else {
            return Err(invalid(format!(
                "step {s} ({}) is marked in place, but no operand shares its offset",
                name(step.output)
            )));
        };
        if !elementwise_operands(&step.op).contains(&k) {
            return Err(invalid(format!(
                "step {s} ({}): {} does not read operand {k} element-wise, so it cannot write over it",
                name(step.output),
                step.op.name()
            )));
        }
        check(plan, &ranges, s, step.inputs[k], step.output).map_err(|why| {
            invalid(format!(
                "step {s}: {} cannot be in place of {}: {why}",
                name(step.output),
                name(step.inputs[k])
            ))
        })?;
    }
    let (_, class) = storages(plan, &aliases_from_plan(plan));
    let placed: Vec<(BufferId, usize, usize, _)> = plan
        .buffers
        .iter()
        .enumerate()
        .filter_map(|(b, buf)| Some((BufferId(b), offset(buf)?, buf.bytes(), ranges[b]?)))
        .collect();
    for (i, &(a, oa, ba, ra)) in placed.iter().enumerate() {
        for &(b, ob, bb, rb) in &placed[i + 1..] {
            let same_storage = class[a.0].is_some() && class[a.0] == class[b.0];
            let bytes_overlap = oa < ob + bb && ob < oa + ba;
            if !same_storage && bytes_overlap && ra.overlaps(&rb) {
                return Err(invalid(format!(
                    "{} (bytes {oa}..{}, live steps {}..={}) and {} (bytes {ob}..{}, live steps {}..={}) overlap while both are live at step {}",
                    name(a),
                    oa + ba,
                    ra.first,
                    ra.last,
                    name(b),
                    ob + bb,
                    rb.first,
                    rb.last,
                    ra.first.max(rb.first)
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passes::liveness::LiveRange;

    fn st(first: usize, last: usize, bytes: usize) -> Storage {
        Storage {
            buffers: Vec::new(),
            range: LiveRange { first, last },
            bytes,
        }
    }

    #[test]
    fn disjoint_lifetimes_share_bytes() {
        // a: 0..=1, b: 1..=2, c: 2..=3. a and c never meet, so c reuses a's place:
        // arena = 4096 (a or c) + 1024 (b) = 5120.
        let stores = [st(0, 1, 4096), st(1, 2, 1024), st(2, 3, 4096)];
        let (offsets, arena) = pack(&stores);
        assert_eq!(arena, 5120);
        assert_eq!(offsets[0], offsets[2]);
    }

    #[test]
    fn a_gap_is_reused_when_it_fits() {
        // Largest first: a (0..=0, 1024) at 0, b (0..=3, 1024) at 1024; c (1..=3, 512) fits a's
        // place once a is dead: arena stays 2048.
        let stores = [st(0, 0, 1024), st(0, 3, 1024), st(1, 3, 512)];
        let (_, arena) = pack(&stores);
        assert_eq!(arena, 2048);
    }
}
