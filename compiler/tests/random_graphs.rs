//! Property tests over random graphs (`common::random_graph`): chains and DAGs of conv,
//! activations, max and average pools, add, batch_norm, global pooling and linear heads with random
//! shapes and attributes, values with several users, and outputs taken from the middle of the
//! graph. For each graph:
//! - the verifier holds after every pass of `-O2` (the manager verifies after each);
//! - the interpreter gives the same outputs at `-O0`, `-O1` and `-O2`;
//! - the text form round-trips, before and after optimizing;
//! - the plan verifier holds and the arena is at least the lower bound, at every level;
//! - every activation left right after a conv has a remark saying why it was not fused.

mod common;

use common::random_graph::{build, input, spec, Spec};
use kiln::passes::memory_plan::verify_plan;
use kiln::passes::{OptLevel, PassManager};
use kiln::Graph;
use kiln_runtime::ops::Op;
use kiln_runtime::Tensor;
use proptest::prelude::*;

fn roundtrip(g: &Graph) -> Result<(), TestCaseError> {
    let text = kiln::ir::text::print(g);
    let again =
        kiln::ir::text::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
    prop_assert_eq!(kiln::ir::text::print(&again), text);
    Ok(())
}

fn check(spec: &Spec) -> Result<(), TestCaseError> {
    let g = build(spec);
    kiln::ir::verify::verify(&g).map_err(|e| TestCaseError::fail(e.to_string()))?;
    roundtrip(&g)?;
    let x = vec![input(spec)];
    let mut reference: Option<Vec<Tensor>> = None;
    for level in [OptLevel::O0, OptLevel::O1, OptLevel::O2] {
        let compiled = PassManager::new(level)
            .verify_each(true)
            .run(g.clone(), &mut std::io::sink())
            .map_err(|e| TestCaseError::fail(format!("{level}: {e}")))?;
        verify_plan(&compiled.plan).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let m = compiled.memory;
        prop_assert!(m.arena_bytes >= m.lower_bound_bytes, "{}: {:?}", level, m);
        roundtrip(&compiled.graph)?;
        let out = kiln_runtime::interpreter::run(&compiled.plan, &x)
            .map_err(|e| TestCaseError::fail(format!("{level}: {e}")))?;
        match &reference {
            None => reference = Some(out),
            Some(want) => {
                for (i, (got, want)) in out.iter().zip(want).enumerate() {
                    // Folding a BatchNorm reorders roundings: a little looser than the golden
                    // tolerance.
                    prop_assert!(
                        got.allclose(want, 1e-3, 1e-4),
                        "{}: output {} differs by up to {}",
                        level,
                        i,
                        got.max_abs_diff(want)
                    );
                }
            }
        }
        if level == OptLevel::O2 {
            // Every activation still right after a conv says why it was not fused.
            let og = &compiled.graph;
            for v in og.values() {
                let Some(Op::Activation(_)) = og.op(v) else {
                    continue;
                };
                let after_conv = og
                    .operands(v)
                    .first()
                    .is_some_and(|&p| matches!(og.op(p), Some(Op::Conv2d(_))));
                if after_conv {
                    prop_assert!(
                        compiled.remarks.for_value(og.name(v)).next().is_some(),
                        "no remark on %{}\n{}",
                        og.name(v),
                        compiled.ir_text()
                    );
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(common::proptest_config(if cfg!(debug_assertions) { 64 } else { 256 }))]

    #[test]
    fn random_graphs_survive_the_optimizer(spec in spec()) {
        check(&spec)?;
    }
}

/// The shared generator does make what the module doc promises (and what the JIT's tests rely
/// on): among 256 graphs, at least a few of each kind below. Counted, not assumed, because a
/// change to the generator's weights or the shape checks could silently stop making one.
#[test]
fn the_generator_makes_the_promised_shapes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::new(common::proptest_config(256));
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for _ in 0..256 {
        let spec = spec().new_tree(&mut runner).unwrap().current();
        let g = build(&spec);
        let mut seen = std::collections::BTreeSet::new();
        for v in g.values() {
            if let Some(op) = g.op(v) {
                seen.insert(op.name());
            }
            // Several users, or one user besides being returned.
            let returned = usize::from(g.outputs().contains(&v));
            if g.op(v).is_some() && g.users(v).len() + returned >= 2 {
                seen.insert("several users");
            }
            if returned == 1 && !g.users(v).is_empty() {
                seen.insert("output mid-graph");
            }
        }
        if spec.nan {
            seen.insert("nan");
        }
        for name in seen {
            *counts.entry(name).or_default() += 1;
        }
    }
    // Shown with `--nocapture`.
    println!("graphs (of 256) having each: {counts:?}");
    for want in [
        "conv2d",
        "batch_norm",
        "add",
        "max_pool2d",
        "avg_pool2d",
        "global_avg_pool2d",
        "linear",
        "several users",
        "output mid-graph",
        "nan",
    ] {
        let n = counts.get(want).copied().unwrap_or(0);
        assert!(n >= 5, "only {n} of 256 graphs have {want}: {counts:?}");
    }
}
