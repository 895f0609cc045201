//! Differential property tests of the JIT on random graphs, and its memory safety.
//!
//! The generator extends the optimizer's (`random_graphs.rs`) with what stresses code generation:
//! odd sizes (H, W, C not multiples of 4), 1×1 to 7×7 and rectangular kernels, strides 1–3,
//! dilation, groups (including depthwise), asymmetric padding larger than the kernel's half,
//! max and average pools with `ceil_mode` and `count_include_pad`, global average pooling,
//! flatten + linear heads, batches from 1 to 6 (4 and more take the conv's image-per-item path) and
//! NaN in the input. For each graph, at `-O0` and `-O2`:
//! - the JIT agrees with the interpreter on the same plan (NaN at the same places);
//! - 1 and 2 threads give bit-identical results;
//! - both conv tiling schemes (row tiles and pixel tiles) agree with the interpreter too;
//! - run with its arena, every input and every output placed against an inaccessible guard page
//!   (on either side), the JIT gives the same bits — any read or write outside them would crash.

mod common;

use kiln::codegen::conv::ConvScheme;
use kiln::engine::{Engine, Options};
use kiln::passes::{OptLevel, PassManager};
use kiln::{Graph, NodeKind, ValueId};
use kiln_runtime::ops::{
    Activation, Add, AvgPool2d, BatchNorm2d, Conv2d, Epilogue, Flatten, GeluApproximate,
    GlobalAvgPool2d, Linear, MaxPool2d, Op, Padding2d,
};
use kiln_runtime::plan::Plan;
use kiln_runtime::Tensor;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Inst {
    Conv {
        src: usize,
        out_channels: usize,
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: [usize; 4],
        dilation: (usize, usize),
        groups: usize,
        bias: bool,
    },
    Act {
        src: usize,
        kind: usize,
    },
    MaxPool {
        src: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        dilation: usize,
        ceil_mode: bool,
    },
    AvgPool {
        src: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        ceil_mode: bool,
        count_include_pad: bool,
    },
    Add {
        a: usize,
        b: usize,
    },
    BatchNorm {
        src: usize,
    },
    GlobalAvg {
        src: usize,
    },
}

#[derive(Debug, Clone)]
struct Spec {
    input: [usize; 4],
    insts: Vec<Inst>,
    /// A flatten + linear head with this many outputs (and a fused-able activation), if any.
    head: Option<(usize, bool, usize)>,
    extra_outputs: u32,
    nan: bool,
    seed: u64,
}

fn odd_kernel() -> impl Strategy<Value = usize> {
    prop_oneof![3 => Just(1usize), 4 => Just(3usize), 1 => Just(2usize), 2 => Just(5usize), 1 => Just(7usize)]
}

fn inst() -> impl Strategy<Value = Inst> {
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

fn spec() -> impl Strategy<Value = Spec> {
    (
        (1usize..7, 1usize..7, 1usize..14, 1usize..14),
        prop::collection::vec(inst(), 1..10),
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
        let mut t = Tensor::randn(&shape, spec.seed.wrapping_add(i as u64));
        if node.name.ends_with("running_var") {
            t.data_mut().iter_mut().for_each(|v| *v = v.abs() + 0.5);
        } else {
            t.data_mut().iter_mut().for_each(|v| *v *= 0.5);
        }
        g.node_mut(p).kind = NodeKind::Param(Some(t));
    }
    g
}

fn input(spec: &Spec) -> Tensor {
    let mut x = Tensor::randn(&spec.input, spec.seed ^ 0x5eed);
    if spec.nan {
        let n = x.numel();
        let d = x.data_mut();
        for k in 0..1 + n / 50 {
            d[(k * 7919 + spec.seed as usize % 97) % n] = f32::NAN;
        }
    }
    x
}

/// Agreement with the interpreter: NaN at the same places, the rest within 1e-4 relative plus
/// 1e-4 of the output's largest magnitude (sums taken in another order, with FMAs).
fn close(got: &Tensor, want: &Tensor) -> Result<(), String> {
    if got.shape() != want.shape() {
        return Err(format!("shape {:?} vs {:?}", got.shape(), want.shape()));
    }
    let scale = want
        .data()
        .iter()
        .filter(|v| v.is_finite())
        .fold(1f32, |m, v| m.max(v.abs()));
    for (i, (&a, &b)) in got.data().iter().zip(want.data()).enumerate() {
        let ok = if a.is_nan() || b.is_nan() {
            a.is_nan() && b.is_nan()
        } else if a.is_infinite() || b.is_infinite() {
            a == b
        } else {
            (a - b).abs() <= 1e-4 * b.abs() + 1e-4 * scale
        };
        if !ok {
            return Err(format!("element {i}: jit {a:e}, interpreter {b:e}"));
        }
    }
    Ok(())
}

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
        let mut first: Option<Vec<Tensor>> = None;
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
            if conv_scheme.is_some() {
                continue;
            }
            if let Some(f) = &first {
                for (a, b) in f.iter().zip(&got) {
                    let same = a
                        .data()
                        .iter()
                        .zip(b.data())
                        .all(|(p, q)| p.to_bits() == q.to_bits());
                    prop_assert!(same, "{} t{}: differs from 1 thread", level, threads);
                }
            } else {
                first = Some(got);
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
}

/// A test-only allocator placing a buffer against an inaccessible page, and the guarded run.
mod guard {
    use super::*;

    const PAGE: usize = 4096;

    /// `len` floats whose first (or last) element touches a `PROT_NONE` page; the other side has
    /// one too. Reading or writing one float outside the buffer on the touching side faults.
    pub struct Guarded {
        map: *mut u8,
        map_len: usize,
        data: *mut f32,
        len: usize,
    }

    impl Guarded {
        pub fn new(len: usize, at_end: bool) -> Guarded {
            let bytes = len * 4;
            let pages = bytes.div_ceil(PAGE).max(1);
            let map_len = (pages + 2) * PAGE;
            // SAFETY: an anonymous private mapping, not aliased by anything; the result is checked.
            let map = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    map_len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert!(map != libc::MAP_FAILED, "mmap failed");
            let map = map.cast::<u8>();
            // SAFETY: both ranges are whole pages inside the mapping just created.
            unsafe {
                assert_eq!(libc::mprotect(map.cast(), PAGE, libc::PROT_NONE), 0);
                assert_eq!(
                    libc::mprotect(map.add((pages + 1) * PAGE).cast(), PAGE, libc::PROT_NONE),
                    0
                );
            }
            let offset = if at_end {
                (pages + 1) * PAGE - bytes
            } else {
                PAGE
            };
            // SAFETY: `offset + bytes` ≤ `(pages + 1)·PAGE` < `map_len`: inside the mapping.
            let data = unsafe { map.add(offset) }.cast::<f32>();
            Guarded {
                map,
                map_len,
                data,
                len,
            }
        }

        pub fn from(values: &[f32], at_end: bool) -> Guarded {
            let mut g = Guarded::new(values.len(), at_end);
            g.slice_mut().copy_from_slice(values);
            g
        }

        pub fn slice(&self) -> &[f32] {
            // SAFETY: `data..data + len` lies in the readable part of the mapping, which lives as
            // long as `self`; the anonymous mapping starts zeroed, so every float is initialised.
            unsafe { std::slice::from_raw_parts(self.data, self.len) }
        }

        pub fn slice_mut(&mut self) -> &mut [f32] {
            // SAFETY: as in `slice`; `&mut self` makes the borrow unique.
            unsafe { std::slice::from_raw_parts_mut(self.data, self.len) }
        }
    }

    impl Drop for Guarded {
        fn drop(&mut self) {
            // SAFETY: unmaps exactly the mapping `new` created; no slice of it outlives `self`.
            unsafe { libc::munmap(self.map.cast(), self.map_len) };
        }
    }

    pub fn check_guarded(g: &Graph, x: &Tensor) -> Result<(), TestCaseError> {
        for level in [OptLevel::O0, OptLevel::O2] {
            let engine = Engine::new(Options::default()).unwrap();
            let model = engine.compile_plan(plan_at(g, level)).unwrap();
            let want = model.run(std::slice::from_ref(x)).unwrap();
            for at_end in [true, false] {
                let input = Guarded::from(x.data(), at_end);
                let mut arena = Guarded::new(model.arena_floats(), at_end);
                let mut outs: Vec<Guarded> = want
                    .iter()
                    .map(|t| Guarded::new(t.numel(), at_end))
                    .collect();
                {
                    let mut out_slices: Vec<&mut [f32]> =
                        outs.iter_mut().map(Guarded::slice_mut).collect();
                    model
                        .run_with_arena(&[input.slice()], arena.slice_mut(), &mut out_slices)
                        .unwrap();
                }
                for (o, w) in outs.iter().zip(&want) {
                    let same = o
                        .slice()
                        .iter()
                        .zip(w.data())
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    prop_assert!(same, "{}: guarded run differs (at_end {})", level, at_end);
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
            let v = unsafe { std::ptr::read_volatile(g.data.add(5)) };
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
