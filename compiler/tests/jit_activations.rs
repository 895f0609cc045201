//! The JIT's vector activations against the reference (`Activation::eval_scalar`) over a sweep of
//! inputs: a dense grid on [−20, 20], log-spaced magnitudes up to f32::MAX, ±0, subnormals, ±∞ and
//! NaN. The bound is the one documented in `codegen/activation.rs`: max absolute error ≤ 1e-6,
//! NaN exactly where the reference has NaN, infinities equal.

use kiln::engine::{Engine, Options};
use kiln_runtime::ops::{Activation, GeluApproximate};
use kiln_runtime::plan::{Buffer, BufferId, BufferKind, Plan, Step};
use kiln_runtime::{Op, Tensor};

fn sweep() -> Vec<f32> {
    let mut v: Vec<f32> = (-20_000..=20_000).map(|i| i as f32 * 1e-3).collect();
    for e in -45..=38 {
        for m in [1.0f32, 2.5, 7.0] {
            let x = m * 10f32.powi(e);
            if x.is_finite() {
                v.push(x);
                v.push(-x);
            }
        }
    }
    v.extend([
        0.0,
        -0.0,
        1e-40,
        -1e-40,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::from_bits(1),
        -f32::from_bits(1),
        f32::MAX,
        f32::MIN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        88.7,
        88.8,
        -87.3,
        -87.4,
        -103.9,
        -104.0,
    ]);
    // An odd length, so that the tail lanes are exercised too.
    if v.len().is_multiple_of(4) {
        v.push(0.5);
    }
    v
}

/// A plan with one activation step over an input of `n` elements.
fn plan(act: Activation, n: usize) -> Plan {
    Plan {
        buffers: vec![
            Buffer {
                name: "x".into(),
                shape: vec![n],
                kind: BufferKind::Input { index: 0 },
            },
            Buffer {
                name: "y".into(),
                shape: vec![n],
                kind: BufferKind::Intermediate { offset: 0 },
            },
        ],
        steps: vec![Step {
            op: Op::Activation(act),
            inputs: vec![BufferId(0)],
            output: BufferId(1),
            in_place: false,
        }],
        inputs: vec![BufferId(0)],
        outputs: vec![BufferId(1)],
        arena_bytes: (n * 4).next_multiple_of(64),
    }
}

fn check(act: Activation) -> f32 {
    let xs = sweep();
    let x = Tensor::from_slice(&xs, &[xs.len()]).unwrap();
    let engine = Engine::new(Options {
        threads: 1,
        ..Options::default()
    })
    .unwrap();
    let model = engine.compile_plan(plan(act, xs.len())).unwrap();
    let y = model.run(&[x]).unwrap().remove(0);
    let mut worst = 0f32;
    for (&xi, &got) in xs.iter().zip(y.data()) {
        let want = act.eval_scalar(xi);
        if want.is_nan() || got.is_nan() {
            assert!(
                want.is_nan() && got.is_nan(),
                "{act:?}({xi:e}) = {got:e}, reference {want:e}"
            );
            continue;
        }
        if want.is_infinite() || got.is_infinite() {
            assert_eq!(got, want, "{act:?}({xi:e})");
            continue;
        }
        let err = (got - want).abs();
        assert!(
            err <= 1e-6,
            "{act:?}({xi:e}) = {got:e}, reference {want:e}, error {err:e}"
        );
        worst = worst.max(err);
    }
    eprintln!("{act:?}: max abs error {worst:e}");
    worst
}

#[test]
fn relu_and_leaky_relu_are_exact() {
    assert_eq!(check(Activation::Relu), 0.0);
    assert_eq!(
        check(Activation::LeakyRelu {
            negative_slope: 0.01
        }),
        0.0
    );
    assert_eq!(
        check(Activation::LeakyRelu {
            negative_slope: 0.2
        }),
        0.0
    );
}

#[test]
fn sigmoid_within_bound() {
    check(Activation::Sigmoid);
}

#[test]
fn tanh_within_bound() {
    check(Activation::Tanh);
}

#[test]
fn gelu_erf_within_bound() {
    check(Activation::Gelu {
        approximate: GeluApproximate::None,
    });
}

#[test]
fn gelu_tanh_within_bound() {
    check(Activation::Gelu {
        approximate: GeluApproximate::Tanh,
    });
}

#[test]
fn elu_within_bound() {
    check(Activation::Elu { alpha: 1.0 });
    check(Activation::Elu { alpha: 0.5 });
}

#[test]
fn special_values_follow_pytorch() {
    // relu(−0) = −0 and relu(NaN) = NaN (PyTorch), not 0: the sign bit survives.
    let xs = [-0.0f32, f32::NAN, -1.0, 2.0, 0.0];
    let x = Tensor::from_slice(&xs, &[5]).unwrap();
    let engine = Engine::new(Options::default()).unwrap();
    let y = engine
        .compile_plan(plan(Activation::Relu, 5))
        .unwrap()
        .run(&[x])
        .unwrap();
    let d = y[0].data();
    assert!(d[0] == 0.0 && d[0].is_sign_negative());
    assert!(d[1].is_nan());
    assert_eq!(&d[2..], &[0.0, 2.0, 0.0]);
}
