//! Differential property tests of the JIT on random graphs, and its memory safety.
//!
//! The graphs come from `common::random_graph`, shared with the optimizer's tests
//! (`random_graphs.rs`); it stresses code generation with odd sizes, 1×1 to 7×7 and rectangular
//! kernels, strides 1–3, dilation, groups, asymmetric padding, max and average pools, global
//! average pooling, flatten + linear heads, batches from 1 to 6 and NaN in the input. For each
//! graph, at `-O0` and `-O2`:
//! - the JIT agrees with the interpreter on the same plan (NaN at the same places);
//! - 1 and 2 threads give bit-identical results;
//! - by default 3×3 stride-1 convs run as Winograd F(2×2, 3×3); both direct conv tiling schemes
//!   (row tiles and pixel tiles), forced on every conv, agree with the interpreter too;
//! - run with its arena, every input and every output placed against an inaccessible guard page
//!   (on either side), the JIT gives the same bits — any read or write outside them would crash —
//!   with the default kernels and with each direct scheme forced.

mod common;

use common::close_to_interpreter as close;
use common::random_graph::{build, input, spec, Inst, Spec};
use kiln::codegen::conv::ConvScheme;
use kiln::engine::{Engine, Options};
use kiln::passes::{OptLevel, PassManager};
use kiln::Graph;
use kiln_runtime::plan::Plan;
use kiln_runtime::Tensor;
use proptest::prelude::*;

fn plan_at(g: &Graph, level: OptLevel) -> Plan {
    PassManager::new(level)
        .run(g.clone(), &mut std::io::sink())
        .expect("the optimizer accepts every generated graph")
        .plan
}

fn check(spec: &Spec) -> Result<(), TestCaseError> {
    let g = build(spec);
    let x = input(spec);
    for level in [OptLevel::O0, OptLevel::O2] {
        let plan = plan_at(&g, level);
        let want = kiln_runtime::interpreter::run(&plan, std::slice::from_ref(&x))
            .map_err(|e| TestCaseError::fail(format!("interpreter: {e}")))?;
        let mut first: Vec<(Option<ConvScheme>, Vec<Tensor>)> = Vec::new();
        let runs = [
            (1, None),
            (2, None),
            (1, Some(ConvScheme::Rows)),
            (1, Some(ConvScheme::Pixels)),
        ];
        for (threads, conv_scheme) in runs {
            let engine = Engine::new(Options {
                threads,
                conv_scheme,
                ..Options::default()
            })
            .unwrap();
            let model = engine
                .compile_plan(plan.clone())
                .map_err(|e| TestCaseError::fail(format!("{level}: compile: {e}")))?;
            let got = model.run(std::slice::from_ref(&x)).unwrap();
            for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                close(a, b).map_err(|e| {
                    TestCaseError::fail(format!(
                        "{level} t{threads} {conv_scheme:?} output {k}: {e}"
                    ))
                })?;
            }
            if let Some((_, f)) = first.iter().find(|(s, _)| *s == conv_scheme) {
                for (a, b) in f.iter().zip(&got) {
                    let same = a
                        .data()
                        .iter()
                        .zip(b.data())
                        .all(|(p, q)| p.to_bits() == q.to_bits());
                    prop_assert!(
                        same,
                        "{} t{} {:?}: differs from 1 thread",
                        level,
                        threads,
                        conv_scheme
                    );
                }
            } else {
                first.push((conv_scheme, got));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(common::proptest_config(96))]

    #[test]
    fn jit_agrees_with_interpreter_on_random_graphs(spec in spec()) {
        check(&spec)?;
    }

    #[test]
    fn jit_stays_inside_guarded_buffers(spec in spec()) {
        guard::check_guarded(&build(&spec), &input(&spec))?;
    }

    #[test]
    fn winograd_convs_agree_and_stay_inside_guarded_buffers(spec in winograd_spec()) {
        check(&spec)?;
        guard::check_guarded(&build(&spec), &input(&spec))?;
    }
}

/// Graphs of 3×3 stride-1 convs, the ones Winograd F(2×2, 3×3) computes (the general generator
/// makes few): odd and even sizes from 2×2, 1 to 40 channels, padding 0–2 per side, each conv followed maybe by an activation, a residual add
/// and a 2×2/2 max-pool (floor or ceil mode), which the optimizer fuses into its epilogue.
fn winograd_spec() -> impl Strategy<Value = Spec> {
    let block = (
        1usize..41,
        prop::array::uniform4(0usize..3),
        any::<bool>(),
        prop::option::of(0usize..7),
        prop::option::of(0usize..16),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(out_channels, padding, bias, act, add, pool)| {
            let mut insts = vec![Inst::Conv {
                src: usize::MAX,
                out_channels,
                kernel: (3, 3),
                stride: (1, 1),
                padding,
                dilation: (1, 1),
                groups: 0,
                bias,
            }];
            insts.extend(add.map(|b| Inst::Add { a: usize::MAX, b }));
            insts.extend(act.map(|kind| Inst::Act {
                src: usize::MAX,
                kind,
            }));
            insts.extend(pool.map(|ceil_mode| Inst::MaxPool {
                src: usize::MAX,
                kernel: 2,
                stride: 2,
                padding: 0,
                dilation: 1,
                ceil_mode,
            }));
            insts
        });
    (
        (1usize..4, 1usize..41, 2usize..19, 2usize..19),
        prop::collection::vec(block, 1..4),
        any::<u32>(),
        prop::bool::weighted(0.3),
        any::<u64>(),
    )
        .prop_map(|((n, c, h, w), blocks, extra_outputs, nan, seed)| Spec {
            input: [n, c, h, w],
            insts: blocks.into_iter().flatten().collect(),
            head: None,
            extra_outputs,
            nan,
            seed,
        })
}

/// A test-only allocator placing a buffer against an inaccessible page, and the guarded run.
mod guard {
    use super::*;

    use crate::common::guard::{run_guarded, Guarded};

    pub fn check_guarded(g: &Graph, x: &Tensor) -> Result<(), TestCaseError> {
        let levels = [OptLevel::O0, OptLevel::O2];
        let schemes = [None, Some(ConvScheme::Rows), Some(ConvScheme::Pixels)];
        for (level, conv_scheme) in levels.into_iter().flat_map(|l| schemes.map(|s| (l, s))) {
            let engine = Engine::new(Options {
                conv_scheme,
                ..Options::default()
            })
            .unwrap();
            let model = engine.compile_plan(plan_at(g, level)).unwrap();
            let want = model.run(std::slice::from_ref(x)).unwrap();
            let lens: Vec<usize> = want.iter().map(Tensor::numel).collect();
            for at_end in [true, false] {
                let outs = run_guarded(&model, &[x.data()], &lens, at_end).unwrap();
                for (o, w) in outs.iter().zip(&want) {
                    let same = o
                        .iter()
                        .zip(w.data())
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    prop_assert!(
                        same,
                        "{} {:?}: guarded run differs (at_end {})",
                        level,
                        conv_scheme,
                        at_end
                    );
                }
            }
        }
        Ok(())
    }

    #[test]
    fn the_guard_page_really_faults() {
        // A child process reads one float past a guarded buffer and must die of a signal; the
        // parent only checks how it ended.
        if std::env::var_os("KILN_GUARD_CHILD").is_some() {
            let g = Guarded::new(5, true);
            // SAFETY: deliberately not sound: this reads the PROT_NONE page right after the
            // buffer, to prove that such a read faults. It runs only in the child process.
            let v = unsafe { std::ptr::read_volatile(g.as_ptr().add(5)) };
            println!("read {v} past the end: the guard did not fault");
            std::process::exit(0);
        }
        let exe = std::env::current_exe().unwrap();
        let status = std::process::Command::new(exe)
            .args([
                "guard::the_guard_page_really_faults",
                "--exact",
                "--nocapture",
            ])
            .env("KILN_GUARD_CHILD", "1")
            .status()
            .unwrap();
        assert!(
            !status.success(),
            "the read past the guarded buffer did not fault"
        );
    }
}

/// A conv block for the hand-picked Winograd cases: 3×3, stride 1, padding 1, bias, then
/// `then` (activations, adds, pools) in order.
fn wino_spec(input: [usize; 4], out_channels: usize, then: Vec<Inst>, nan: bool) -> Spec {
    let mut insts = vec![Inst::Conv {
        src: usize::MAX,
        out_channels,
        kernel: (3, 3),
        stride: (1, 1),
        padding: [1; 4],
        dilation: (1, 1),
        groups: 0,
        bias: true,
    }];
    insts.extend(then);
    Spec {
        input,
        insts,
        head: None,
        extra_outputs: 0,
        nan,
        seed: 7,
    }
}

#[test]
fn winograd_work_splits_agree_with_interpreter() {
    let relu = || Inst::Act {
        src: usize::MAX,
        kind: 0,
    };
    let pool = || Inst::MaxPool {
        src: usize::MAX,
        kernel: 2,
        stride: 2,
        padding: 0,
        dilation: 1,
        ceil_mode: false,
    };
    let residual = || Inst::Add {
        a: usize::MAX,
        b: 0,
    };
    let cases = [
        // One image of 3 tile rows gives 3 bands, under 8 units, so the 5 channel blocks are
        // split into 2 groups reading one shared V (the kernel's own tests check the plan).
        wino_spec([1, 24, 6, 6], 60, vec![relu()], true),
        wino_spec([1, 40, 7, 5], 50, vec![residual(), relu()], false),
        // Odd sizes: a last tile row and column with one output; 13 channels (a 1-channel tail).
        wino_spec([2, 17, 9, 11], 13, vec![relu()], true),
        // The fused pool, several bands, a batch above the per-image threshold of direct convs.
        wino_spec([5, 20, 12, 16], 28, vec![relu(), pool()], true),
        // The pool without a monotone activation (sigmoid before the max).
        wino_spec(
            [1, 16, 10, 10],
            16,
            vec![
                Inst::Act {
                    src: usize::MAX,
                    kind: 2,
                },
                pool(),
            ],
            false,
        ),
    ];
    for spec in &cases {
        check(spec).unwrap_or_else(|e| panic!("{spec:?}: {e}"));
        guard::check_guarded(&build(spec), &input(spec))
            .unwrap_or_else(|e| panic!("{spec:?}: {e}"));
    }
}

#[test]
fn zero_sized_convs_agree_with_interpreter() {
    // No output channels, no input channels (the conv is its bias: zero here, no bias), no
    // images: every kernel plans them without dividing by zero and writes what the
    // interpreter does.
    let relu = Inst::Act {
        src: usize::MAX,
        kind: 0,
    };
    for (input, out_channels) in [([1, 3, 8, 8], 0), ([1, 0, 8, 8], 4), ([0, 3, 8, 8], 4)] {
        let spec = wino_spec(input, out_channels, vec![relu.clone()], false);
        check(&spec).unwrap_or_else(|e| panic!("{input:?} → {out_channels}: {e}"));
    }
}
