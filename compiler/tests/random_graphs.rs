//! Property tests over random graphs: chains and DAGs of conv, activations, max-pool, add and
//! batch_norm with random shapes and attributes, values with several users, and outputs taken from
//! the middle of the graph. For each graph:
//! - the verifier holds after every pass of `-O2` (the manager verifies after each);
//! - the interpreter gives the same outputs at `-O0`, `-O1` and `-O2`;
//! - the text form round-trips, before and after optimizing;
//! - the plan verifier holds and the arena is at least the lower bound, at every level;
//! - every activation left right after a conv has a remark saying why it was not fused.

mod common;

mod passes_support;

use kiln::passes::memory_plan::verify_plan;
use kiln::passes::{OptLevel, PassManager};
use kiln::{Graph, ValueId};
use kiln_runtime::ops::{
    Activation, Add, BatchNorm2d, Conv2d, Epilogue, GeluApproximate, MaxPool2d, Op, Padding2d,
};
use kiln_runtime::Tensor;
use proptest::prelude::*;

/// One instruction of a random graph; operands are picked among the values so far by index
/// (modulo their count), so any instruction applies to any graph.
#[derive(Debug, Clone)]
enum Inst {
    Conv {
        src: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        dilation: usize,
        depthwise: bool,
        bias: bool,
    },
    Act {
        src: usize,
        kind: usize,
    },
    Pool {
        src: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        dilation: usize,
        ceil_mode: bool,
    },
    Add {
        a: usize,
        b: usize,
    },
    BatchNorm {
        src: usize,
    },
}

#[derive(Debug, Clone)]
struct Spec {
    input: [usize; 4],
    insts: Vec<Inst>,
    /// Which values besides the last are also returned (bit i: value i).
    extra_outputs: u32,
    seed: u64,
}

fn inst() -> impl Strategy<Value = Inst> {
    // The last value is the likeliest operand, which makes chains; the others make DAGs.
    let src = prop_oneof![3 => Just(usize::MAX), 1 => 0usize..16];
    prop_oneof![
        3 => (src.clone(), 1usize..5, 1usize..4, 1usize..3, 0usize..2, 1usize..3, any::<bool>(), any::<bool>())
            .prop_map(|(src, out_channels, kernel, stride, padding, dilation, depthwise, bias)| Inst::Conv {
                src, out_channels, kernel, stride, padding, dilation, depthwise, bias
            }),
        3 => (src.clone(), 0usize..7).prop_map(|(src, kind)| Inst::Act { src, kind }),
        1 => (src.clone(), 1usize..4, 1usize..3, 0usize..2, 1usize..3, any::<bool>())
            .prop_map(|(src, kernel, stride, padding, dilation, ceil_mode)| Inst::Pool {
                src, kernel, stride, padding, dilation, ceil_mode
            }),
        2 => (src.clone(), 0usize..16).prop_map(|(a, b)| Inst::Add { a, b }),
        1 => src.prop_map(|src| Inst::BatchNorm { src }),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        1usize..3,
        1usize..4,
        3usize..9,
        3usize..9,
        prop::collection::vec(inst(), 1..16),
        any::<u32>(),
        any::<u64>(),
    )
        .prop_map(|(n, c, h, w, insts, extra_outputs, seed)| Spec {
            input: [n, c, h, w],
            insts,
            extra_outputs,
            seed,
        })
}

fn activation(kind: usize) -> Activation {
    match kind {
        0 => Activation::Relu,
        1 => Activation::LeakyRelu {
            negative_slope: 0.1,
        },
        2 => Activation::Sigmoid,
        3 => Activation::Tanh,
        4 => Activation::Gelu {
            approximate: GeluApproximate::None,
        },
        5 => Activation::Gelu {
            approximate: GeluApproximate::Tanh,
        },
        _ => Activation::Elu { alpha: 0.7 },
    }
}

/// Builds the graph a spec describes; instructions whose shapes do not work out are skipped.
fn build(spec: &Spec) -> Graph {
    let mut g = Graph::new("random");
    let x = g.add_input("x", &spec.input).unwrap();
    let mut values: Vec<ValueId> = vec![x];
    for (i, inst) in spec.insts.iter().enumerate() {
        let name = format!("v{i}");
        let pick = |k: usize| {
            if k == usize::MAX {
                values[values.len() - 1]
            } else {
                values[k % values.len()]
            }
        };
        let added = match *inst {
            Inst::Conv {
                src,
                out_channels,
                kernel,
                stride,
                padding,
                dilation,
                depthwise,
                bias,
            } => {
                let s = pick(src);
                let shape = g.ty(s).shape.clone();
                let c_in = shape[1];
                let (groups, out_channels) = if depthwise {
                    (c_in, c_in)
                } else {
                    (1, out_channels)
                };
                let op = Op::Conv2d(Conv2d {
                    stride: [stride, stride],
                    padding: Padding2d::symmetric(padding, padding),
                    dilation: [dilation, dilation],
                    groups,
                    bias,
                    epilogue: Epilogue::default(),
                });
                let w_shape = [out_channels, c_in / groups, kernel, kernel];
                let mut shapes: Vec<&[usize]> = vec![&shape, &w_shape];
                let b_shape = [out_channels];
                if bias {
                    shapes.push(&b_shape);
                }
                if op.infer_shape(&shapes).is_err() {
                    None
                } else {
                    let w = g
                        .add_param(&format!("{name}.weight"), &w_shape, None)
                        .unwrap();
                    let mut operands = vec![s, w];
                    if bias {
                        operands.push(
                            g.add_param(&format!("{name}.bias"), &b_shape, None)
                                .unwrap(),
                        );
                    }
                    Some(g.add_op(&name, op, &operands).unwrap())
                }
            }
            Inst::Act { src, kind } => Some(
                g.add_op(&name, Op::Activation(activation(kind)), &[pick(src)])
                    .unwrap(),
            ),
            Inst::Pool {
                src,
                kernel,
                stride,
                padding,
                dilation,
                ceil_mode,
            } => {
                let op = Op::MaxPool2d(MaxPool2d {
                    kernel: [kernel, kernel],
                    stride: [stride, stride],
                    padding: Padding2d::symmetric(padding, padding),
                    dilation: [dilation, dilation],
                    ceil_mode,
                });
                g.add_op(&name, op, &[pick(src)]).ok()
            }
            Inst::Add { a, b } => {
                let a = pick(a);
                let same: Vec<ValueId> = values
                    .iter()
                    .copied()
                    .filter(|&v| g.ty(v) == g.ty(a))
                    .collect();
                let b = same[b % same.len()];
                Some(g.add_op(&name, Op::Add(Add), &[a, b]).unwrap())
            }
            Inst::BatchNorm { src } => {
                let s = pick(src);
                let c = g.ty(s).shape[1];
                let stats: Vec<ValueId> = ["weight", "bias", "running_mean", "running_var"]
                    .iter()
                    .map(|p| g.add_param(&format!("{name}.{p}"), &[c], None).unwrap())
                    .collect();
                let mut operands = vec![s];
                operands.extend(stats);
                Some(
                    g.add_op(&name, Op::BatchNorm2d(BatchNorm2d { eps: 1e-5 }), &operands)
                        .unwrap(),
                )
            }
        };
        values.extend(added);
    }
    let mut outputs = vec![values[values.len() - 1]];
    for (i, &v) in values.iter().enumerate().skip(1) {
        if spec.extra_outputs & (1 << (i % 32)) != 0 && !outputs.contains(&v) {
            outputs.push(v);
        }
    }
    g.set_outputs(outputs);
    passes_support::bind_random(&mut g, spec.seed);
    g
}

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
    let x = vec![Tensor::randn(&spec.input, spec.seed ^ 0x5eed)];
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
