//! The random graph generator of the property tests (`random_graphs.rs`: the optimizer;
//! `jit_random.rs`: the JIT against the interpreter), so that both explore the same graphs.
//!
//! A graph is a chain or DAG of instructions whose operands are picked among the values so far —
//! so values get several users — and whose outputs include values from the middle of the graph.
//! The instructions: conv with odd sizes (H, W, C not multiples of 4), 1×1 to 7×7 and rectangular
//! kernels, strides 1–3, dilation, groups (including depthwise), asymmetric padding larger than
//! the kernel's half; the seven activations; max and average pools with `ceil_mode` and
//! `count_include_pad`; add; batch_norm; global average pooling; then maybe a flatten + linear head
//! with an activation. Batches go from 1 to 6 (4 and more take the conv's image-per-item path) and
//! the input may hold NaN.

use kiln::{Graph, NodeKind, ValueId};
use kiln_runtime::ops::{
    Activation, Add, AvgPool2d, BatchNorm2d, Conv2d, Epilogue, Flatten, GeluApproximate,
    GlobalAvgPool2d, Linear, MaxPool2d, Op, Padding2d,
};
use kiln_runtime::Tensor;
use proptest::prelude::*;

/// One instruction of a random graph; operands are picked among the values so far by index
/// (modulo their count; `usize::MAX` is the last value), so any instruction applies to any graph.
#[derive(Debug, Clone)]
pub enum Inst {
    /// A conv; `groups` 0 is plain, 1 depthwise (channel multiplier 1 or 2 by `out_channels`'
    /// parity), 2 two groups when the input channels split evenly.
    Conv {
        /// Operand index.
        src: usize,
        /// Output channels (per group when grouped).
        out_channels: usize,
        /// Kernel height and width.
        kernel: (usize, usize),
        /// Vertical and horizontal stride.
        stride: (usize, usize),
        /// Padding: top, left, bottom, right.
        padding: [usize; 4],
        /// Vertical and horizontal dilation.
        dilation: (usize, usize),
        /// Which grouping (see above).
        groups: usize,
        /// Whether the conv has a bias.
        bias: bool,
    },
    /// An activation; `kind` indexes [`activation`].
    Act {
        /// Operand index.
        src: usize,
        /// Which activation.
        kind: usize,
    },
    /// A square max pool.
    MaxPool {
        /// Operand index.
        src: usize,
        /// Kernel size.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Symmetric padding.
        padding: usize,
        /// Dilation.
        dilation: usize,
        /// Whether the output size rounds up.
        ceil_mode: bool,
    },
    /// An average pool with a `kernel × (kernel + 1)` window.
    AvgPool {
        /// Operand index.
        src: usize,
        /// Kernel height (the width is one more).
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Symmetric padding.
        padding: usize,
        /// Whether the output size rounds up.
        ceil_mode: bool,
        /// Whether padding counts in the divisor.
        count_include_pad: bool,
    },
    /// `a + b`, `b` picked among the values of `a`'s type (possibly `a` itself).
    Add {
        /// Operand index of `a`.
        a: usize,
        /// Index among the values typed like `a`.
        b: usize,
    },
    /// An inference batch_norm.
    BatchNorm {
        /// Operand index.
        src: usize,
    },
    /// A global average pool.
    GlobalAvg {
        /// Operand index.
        src: usize,
    },
}

/// A whole random graph: its input shape, instructions, head, outputs and data.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The input's NCHW shape.
    pub input: [usize; 4],
    /// The instructions, in order.
    pub insts: Vec<Inst>,
    /// A flatten + linear head: its output features, whether it has a bias, and an activation
    /// (a [`activation`] kind; 7 means none).
    pub head: Option<(usize, bool, usize)>,
    /// Which values besides the last are also returned (bit `i % 32`: value i).
    pub extra_outputs: u32,
    /// Whether the input holds some NaN.
    pub nan: bool,
    /// The seed of the weights and the input.
    pub seed: u64,
}

/// A kernel side: mostly 1 and 3, sometimes the even 2 and the large 5 and 7.
fn odd_kernel() -> impl Strategy<Value = usize> {
    prop_oneof![3 => Just(1usize), 4 => Just(3usize), 1 => Just(2usize), 2 => Just(5usize), 1 => Just(7usize)]
}

/// One random instruction.
pub fn inst() -> impl Strategy<Value = Inst> {
    // The last value is the likeliest operand, which makes chains; the others make DAGs.
    let src = prop_oneof![3 => Just(usize::MAX), 1 => 0usize..16];
    prop_oneof![
        4 => (src.clone(), 1usize..9, (odd_kernel(), odd_kernel()), (1usize..4, 1usize..4),
              prop::array::uniform4(0usize..5), (1usize..4, 1usize..3), 0usize..3, any::<bool>())
            .prop_map(|(src, out_channels, kernel, stride, padding, dilation, groups, bias)| Inst::Conv {
                src, out_channels, kernel, stride, padding, dilation, groups, bias
            }),
        3 => (src.clone(), 0usize..7).prop_map(|(src, kind)| Inst::Act { src, kind }),
        1 => (src.clone(), 1usize..4, 1usize..4, 0usize..2, 1usize..3, any::<bool>())
            .prop_map(|(src, kernel, stride, padding, dilation, ceil_mode)| Inst::MaxPool {
                src, kernel, stride, padding, dilation, ceil_mode
            }),
        1 => (src.clone(), 1usize..4, 1usize..4, 0usize..2, any::<bool>(), any::<bool>())
            .prop_map(|(src, kernel, stride, padding, ceil_mode, count_include_pad)| Inst::AvgPool {
                src, kernel, stride, padding, ceil_mode, count_include_pad
            }),
        2 => (src.clone(), 0usize..16).prop_map(|(a, b)| Inst::Add { a, b }),
        1 => src.clone().prop_map(|src| Inst::BatchNorm { src }),
        1 => src.prop_map(|src| Inst::GlobalAvg { src }),
    ]
}

/// One random graph of 1 to 15 instructions.
pub fn spec() -> impl Strategy<Value = Spec> {
    (
        (1usize..7, 1usize..7, 1usize..14, 1usize..14),
        prop::collection::vec(inst(), 1..16),
        prop::option::of((1usize..13, any::<bool>(), 0usize..8)),
        any::<u32>(),
        prop::bool::weighted(0.2),
        any::<u64>(),
    )
        .prop_map(
            |((n, c, h, w), insts, head, extra_outputs, nan, seed)| Spec {
                input: [n, c, h, w],
                insts,
                head,
                extra_outputs,
                nan,
                seed,
            },
        )
}

/// The activation of kind `kind` (0–6; larger is ELU).
pub fn activation(kind: usize) -> Activation {
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

/// Adds `op` on `operands` plus fresh parameters of `param_shapes`, if the shapes work out.
fn try_op(
    g: &mut Graph,
    name: &str,
    op: Op,
    operands: &[ValueId],
    param_shapes: &[(&str, Vec<usize>)],
) -> Option<ValueId> {
    let mut shapes: Vec<Vec<usize>> = operands.iter().map(|&v| g.ty(v).shape.clone()).collect();
    shapes.extend(param_shapes.iter().map(|(_, s)| s.clone()));
    let refs: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
    op.infer_shape(&refs).ok()?;
    let mut all = operands.to_vec();
    for (p, s) in param_shapes {
        all.push(g.add_param(&format!("{name}.{p}"), s, None).ok()?);
    }
    g.add_op(name, op, &all).ok()
}

/// Builds the graph a spec describes, its parameters bound to seeded random data; instructions
/// whose shapes do not work out are skipped.
pub fn build(spec: &Spec) -> Graph {
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
                groups,
                bias,
            } => {
                let s = pick(src);
                let c_in = g.ty(s).shape[1];
                let (groups, out_channels) = match groups {
                    1 => (c_in, c_in * (1 + out_channels % 2)), // depthwise (multiplier 1 or 2)
                    2 if c_in.is_multiple_of(2) => (2, 2 * out_channels),
                    _ => (1, out_channels),
                };
                let op = Op::Conv2d(Conv2d {
                    stride: [stride.0, stride.1],
                    padding: Padding2d {
                        top: padding[0],
                        left: padding[1],
                        bottom: padding[2],
                        right: padding[3],
                    },
                    dilation: [dilation.0, dilation.1],
                    groups,
                    bias,
                    epilogue: Epilogue::default(),
                });
                let mut params = vec![(
                    "weight",
                    vec![out_channels, c_in / groups, kernel.0, kernel.1],
                )];
                if bias {
                    params.push(("bias", vec![out_channels]));
                }
                try_op(&mut g, &name, op, &[s], &params)
            }
            Inst::Act { src, kind } => try_op(
                &mut g,
                &name,
                Op::Activation(activation(kind)),
                &[pick(src)],
                &[],
            ),
            Inst::MaxPool {
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
                try_op(&mut g, &name, op, &[pick(src)], &[])
            }
            Inst::AvgPool {
                src,
                kernel,
                stride,
                padding,
                ceil_mode,
                count_include_pad,
            } => {
                let op = Op::AvgPool2d(AvgPool2d {
                    kernel: [kernel, kernel + 1],
                    stride: [stride, stride],
                    padding: Padding2d::symmetric(padding, padding),
                    ceil_mode,
                    count_include_pad,
                });
                try_op(&mut g, &name, op, &[pick(src)], &[])
            }
            Inst::Add { a, b } => {
                let a = pick(a);
                let same: Vec<ValueId> = values
                    .iter()
                    .copied()
                    .filter(|&v| g.ty(v) == g.ty(a))
                    .collect();
                let b = same[b % same.len()];
                try_op(&mut g, &name, Op::Add(Add), &[a, b], &[])
            }
            Inst::BatchNorm { src } => {
                let s = pick(src);
                let c = g.ty(s).shape[1];
                let params: Vec<(&str, Vec<usize>)> =
                    ["weight", "bias", "running_mean", "running_var"]
                        .iter()
                        .map(|p| (*p, vec![c]))
                        .collect();
                try_op(
                    &mut g,
                    &name,
                    Op::BatchNorm2d(BatchNorm2d { eps: 1e-5 }),
                    &[s],
                    &params,
                )
            }
            Inst::GlobalAvg { src } => try_op(
                &mut g,
                &name,
                Op::GlobalAvgPool2d(GlobalAvgPool2d),
                &[pick(src)],
                &[],
            ),
        };
        values.extend(added);
    }
    let mut last = values[values.len() - 1];
    if let Some((out, bias, act)) = spec.head {
        let flat = try_op(
            &mut g,
            "flat",
            Op::Flatten(Flatten { start_dim: 1 }),
            &[last],
            &[],
        );
        if let Some(f) = flat {
            let k = g.ty(f).shape[1];
            let mut params = vec![("weight", vec![out, k])];
            if bias {
                params.push(("bias", vec![out]));
            }
            let lin = Op::Linear(Linear {
                bias,
                epilogue: Epilogue::default(),
            });
            if let Some(l) = try_op(&mut g, "fc", lin, &[f], &params) {
                last = l;
                values.push(l);
                if act < 7 {
                    if let Some(a) =
                        try_op(&mut g, "fc_act", Op::Activation(activation(act)), &[l], &[])
                    {
                        last = a;
                        values.push(a);
                    }
                }
            }
        }
    }
    let mut outputs = vec![last];
    for (i, &v) in values.iter().enumerate().skip(1) {
        if spec.extra_outputs & (1 << (i % 32)) != 0 && !outputs.contains(&v) {
            outputs.push(v);
        }
    }
    g.set_outputs(outputs);
    for (i, p) in g.params().into_iter().enumerate() {
        let node = g.node(p);
        let shape = node.ty.shape.clone();
        let mut t = Tensor::randn(&shape, spec.seed.wrapping_add(i as u64)).unwrap();
        if node.name.ends_with("running_var") {
            // A variance must be positive.
            t.data_mut().iter_mut().for_each(|v| *v = v.abs() + 0.5);
        } else {
            t.data_mut().iter_mut().for_each(|v| *v *= 0.5);
        }
        g.node_mut(p).kind = NodeKind::Param(Some(t));
    }
    g
}

/// The graph's input: seeded normal values, with about one element in 50 NaN if `spec.nan`.
pub fn input(spec: &Spec) -> Tensor {
    let mut x = Tensor::randn(&spec.input, spec.seed ^ 0x5eed).unwrap();
    if spec.nan {
        let n = x.numel();
        let d = x.data_mut();
        for k in 0..1 + n / 50 {
            d[(k * 7919 + spec.seed as usize % 97) % n] = f32::NAN;
        }
    }
    x
}
