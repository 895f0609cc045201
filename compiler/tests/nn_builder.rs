//! The `nn` builder: reprs against PyTorch's `print(model)`, traced names and shapes, default init.

use kiln::ir::NodeKind;
use kiln::nn::models::{ResidualBlock, SimpleCnn};
use kiln::nn::{
    self, AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Flatten, LeakyReLU, Linear, MaxPool2d,
    Module, ReLU, Sequential, Sigmoid, Tanh, Tracer, ELU, GELU,
};
use kiln::{Graph, Result, ValueId};
use kiln_runtime::ops::{Activation, Op};
use kiln_runtime::Tensor;

// Every expected repr below is `repr(m)` printed by torch 2.15 from /work/venv:
//
// import torch.nn as nn
// class SimpleCNN(nn.Module): ...            # the seed tutorial's model
// for m in [
//     nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1, dilation=2, groups=1, bias=False),
//     nn.Conv2d(4, 8, kernel_size=(3, 5), stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2, bias=False),
//     nn.Conv2d(3, 8, 1),
//     nn.ReLU(inplace=True), nn.ReLU(), nn.LeakyReLU(), nn.LeakyReLU(negative_slope=0.1),
//     nn.LeakyReLU(0.2, inplace=True), nn.GELU(), nn.GELU(approximate='tanh'), nn.ELU(),
//     nn.ELU(alpha=0.5, inplace=True), nn.MaxPool2d(2), nn.MaxPool2d((2, 3)),
//     nn.MaxPool2d(3, stride=(2, 1), padding=1, dilation=(1, 2), ceil_mode=True),
//     nn.AvgPool2d(2), nn.AvgPool2d((3, 3), stride=1, padding=(1, 0), ceil_mode=True, count_include_pad=False),
//     nn.AdaptiveAvgPool2d(1), nn.BatchNorm2d(16), nn.BatchNorm2d(16, eps=1e-3, momentum=0.01),
//     nn.BatchNorm2d(4, momentum=None), nn.Linear(4096, 10), nn.Linear(3, 2, bias=False),
//     nn.Flatten(), nn.Flatten(0, -1), nn.Sigmoid(), nn.Tanh(), nn.Sequential(),
//     nested(),  # see `nested()` below
//     SimpleCNN(),
// ]:
//     print(repr(repr(m)))

const SIMPLE_CNN_REPR: &str = "SimpleCNN(
  (conv1): Conv2d(3, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
  (relu1): ReLU()
  (conv2): Conv2d(32, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
  (relu2): ReLU()
  (pool): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
)";

/// ```python
/// nn.Sequential(
///     nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True)),
///     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
/// ```
fn nested() -> Sequential {
    Sequential::new()
        .append(
            Sequential::new()
                .append(Conv2d::new(3, 16, 3).padding(1))
                .append(BatchNorm2d::new(16))
                .append(ReLU { inplace: true }),
        )
        .append(AdaptiveAvgPool2d::new(1))
        .append(Flatten::new())
        .append(Linear::new(16, 10))
}

const NESTED_REPR: &str = "Sequential(
  (0): Sequential(
    (0): Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
    (1): BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    (2): ReLU(inplace=True)
  )
  (1): AdaptiveAvgPool2d(output_size=1)
  (2): Flatten(start_dim=1, end_dim=-1)
  (3): Linear(in_features=16, out_features=10, bias=True)
)";

#[test]
fn conv2d_reprs_match_pytorch() {
    let cases: Vec<(Conv2d, &str)> = vec![
        (
            Conv2d::new(3, 8, 3).stride(2).padding(1).dilation(2).groups(1).bias(false),
            "Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(2, 2), bias=False)",
        ),
        (
            Conv2d::new(4, 8, (3, 5))
                .stride((2, 1))
                .padding((1, 2))
                .dilation((2, 1))
                .groups(2)
                .bias(false),
            "Conv2d(4, 8, kernel_size=(3, 5), stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2, bias=False)",
        ),
        (Conv2d::new(3, 8, 1), "Conv2d(3, 8, kernel_size=(1, 1), stride=(1, 1))"),
    ];
    for (m, expected) in cases {
        assert_eq!(m.to_string(), expected);
    }
}

#[test]
fn activation_reprs_match_pytorch() {
    let cases: Vec<(Box<dyn Module>, &str)> = vec![
        (Box::new(ReLU { inplace: true }), "ReLU(inplace=True)"),
        (Box::new(ReLU::new()), "ReLU()"),
        (
            Box::new(LeakyReLU::default()),
            "LeakyReLU(negative_slope=0.01)",
        ),
        (
            Box::new(LeakyReLU::new(0.1)),
            "LeakyReLU(negative_slope=0.1)",
        ),
        (
            Box::new(LeakyReLU {
                negative_slope: 0.2,
                inplace: true,
            }),
            "LeakyReLU(negative_slope=0.2, inplace=True)",
        ),
        (Box::new(GELU::new()), "GELU(approximate='none')"),
        (Box::new(GELU::tanh()), "GELU(approximate='tanh')"),
        (Box::new(ELU::default()), "ELU(alpha=1.0)"),
        (
            Box::new(ELU {
                alpha: 0.5,
                inplace: true,
            }),
            "ELU(alpha=0.5, inplace=True)",
        ),
        (Box::new(Sigmoid), "Sigmoid()"),
        (Box::new(Tanh), "Tanh()"),
    ];
    for (m, expected) in cases {
        assert_eq!(nn::repr(m.as_ref()), expected);
        // `Display` on `dyn Module` is the same text.
        assert_eq!(m.to_string(), expected);
    }
}

#[test]
fn pool_norm_linear_flatten_reprs_match_pytorch() {
    let cases: Vec<(Box<dyn Module>, &str)> = vec![
        (
            Box::new(MaxPool2d::new(2)),
            "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)",
        ),
        (
            Box::new(MaxPool2d::new((2, 3))),
            "MaxPool2d(kernel_size=(2, 3), stride=(2, 3), padding=0, dilation=1, ceil_mode=False)",
        ),
        (
            Box::new(
                MaxPool2d::new(3)
                    .stride((2, 1))
                    .padding(1)
                    .dilation((1, 2))
                    .ceil_mode(true),
            ),
            "MaxPool2d(kernel_size=3, stride=(2, 1), padding=1, dilation=(1, 2), ceil_mode=True)",
        ),
        (
            Box::new(AvgPool2d::new(2)),
            "AvgPool2d(kernel_size=2, stride=2, padding=0)",
        ),
        (
            Box::new(
                AvgPool2d::new((3, 3))
                    .stride(1)
                    .padding((1, 0))
                    .ceil_mode(true)
                    .count_include_pad(false),
            ),
            "AvgPool2d(kernel_size=(3, 3), stride=1, padding=(1, 0))",
        ),
        (
            Box::new(AdaptiveAvgPool2d::new(1)),
            "AdaptiveAvgPool2d(output_size=1)",
        ),
        (
            Box::new(BatchNorm2d::new(16)),
            "BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)",
        ),
        (
            Box::new(BatchNorm2d::new(16).eps(1e-3).momentum(Some(0.01))),
            "BatchNorm2d(16, eps=0.001, momentum=0.01, affine=True, bias=True, track_running_stats=True)",
        ),
        (
            Box::new(BatchNorm2d::new(4).momentum(None)),
            "BatchNorm2d(4, eps=1e-05, momentum=None, affine=True, bias=True, track_running_stats=True)",
        ),
        (
            Box::new(Linear::new(4096, 10)),
            "Linear(in_features=4096, out_features=10, bias=True)",
        ),
        (
            Box::new(Linear::new(3, 2).bias(false)),
            "Linear(in_features=3, out_features=2, bias=False)",
        ),
        (Box::new(Flatten::new()), "Flatten(start_dim=1, end_dim=-1)"),
        (
            Box::new(Flatten::with_dims(0, -1)),
            "Flatten(start_dim=0, end_dim=-1)",
        ),
        (Box::new(Sequential::new()), "Sequential()"),
    ];
    for (m, expected) in cases {
        assert_eq!(nn::repr(m.as_ref()), expected);
    }
}

#[test]
fn composite_reprs_match_pytorch() {
    assert_eq!(SimpleCnn::new().to_string(), SIMPLE_CNN_REPR);
    assert_eq!(nested().to_string(), NESTED_REPR);
}

/// `(name, shape)` of every parameter node, in creation order.
fn param_shapes(g: &Graph) -> Vec<(String, Vec<usize>)> {
    g.params()
        .into_iter()
        .map(|p| (g.name(p).to_string(), g.ty(p).shape.clone()))
        .collect()
}

fn owned(v: &[(&str, &[usize])]) -> Vec<(String, Vec<usize>)> {
    v.iter().map(|(n, s)| (n.to_string(), s.to_vec())).collect()
}

#[test]
fn simple_cnn_traces_with_state_dict_names_and_tutorial_output_shape() -> Result<()> {
    let g = nn::trace(&SimpleCnn::new(), &[1, 3, 32, 32], "simple_cnn")?;
    // `[(k, list(v.shape)) for k, v in SimpleCNN().state_dict().items()]` in PyTorch.
    let expected = owned(&[
        ("conv1.weight", &[32, 3, 3, 3]),
        ("conv1.bias", &[32]),
        ("conv2.weight", &[64, 32, 3, 3]),
        ("conv2.bias", &[64]),
    ]);
    assert_eq!(param_shapes(&g), expected);
    assert_eq!(nn::named_parameters(&SimpleCnn::new()), expected);
    // Unbound: the weights come from a file.
    assert!(g
        .params()
        .iter()
        .all(|&p| g.node(p).kind == NodeKind::Param(None)));
    // The tutorial prints `torch.Size([1, 64, 8, 8])`: 32 → pool → 16 → pool → 8.
    let out = g.outputs()[0];
    assert_eq!(g.ty(out).shape, vec![1, 64, 8, 8]);
    assert_eq!(g.name(out), "pool_1");
    kiln::ir::verify::verify(&g)?;
    Ok(())
}

#[test]
fn module_called_twice_gets_fresh_value_names_but_shares_parameters() -> Result<()> {
    let g = nn::trace(&SimpleCnn::new(), &[1, 3, 32, 32], "simple_cnn")?;
    let pool = g.find("pool").expect("first pool call");
    let pool_1 = g.find("pool_1").expect("second pool call");
    assert!(matches!(g.op(pool), Some(Op::MaxPool2d(_))));
    assert!(matches!(g.op(pool_1), Some(Op::MaxPool2d(_))));
    assert_eq!(g.ty(pool).shape, vec![1, 32, 16, 16]);
    assert_eq!(g.operands(pool), vec![g.find("relu1").expect("relu1")]);
    assert_eq!(g.operands(pool_1), vec![g.find("relu2").expect("relu2")]);

    // A convolution applied twice has one weight node used by both calls.
    struct Twice {
        conv: Conv2d,
    }
    impl Module for Twice {
        fn type_name(&self) -> &str {
            "Twice"
        }
        fn named_children(&self) -> Vec<(String, &dyn Module)> {
            vec![("conv".into(), &self.conv)]
        }
        fn forward(&self, t: &mut Tracer, x: ValueId) -> Result<ValueId> {
            let y = t.call("conv", &self.conv, x)?;
            t.call("conv", &self.conv, y)
        }
    }
    let g = nn::trace(
        &Twice {
            conv: Conv2d::new(4, 4, 3).padding(1),
        },
        &[1, 4, 6, 6],
        "twice",
    )?;
    assert_eq!(g.params().len(), 2);
    let weight = g.find("conv.weight").expect("weight");
    let users: Vec<&str> = g.users(weight).into_iter().map(|u| g.name(u)).collect();
    assert_eq!(users, vec!["conv", "conv_1"]);
    Ok(())
}

#[test]
fn sequential_names_children_by_position() -> Result<()> {
    let g = nn::trace(&nested(), &[2, 3, 8, 8], "nested")?;
    // PyTorch's `state_dict()` keys and shapes, without the unused `0.1.num_batches_tracked`.
    let expected = owned(&[
        ("0.0.weight", &[16, 3, 3, 3]),
        ("0.0.bias", &[16]),
        ("0.1.weight", &[16]),
        ("0.1.bias", &[16]),
        ("0.1.running_mean", &[16]),
        ("0.1.running_var", &[16]),
        ("3.weight", &[10, 16]),
        ("3.bias", &[10]),
    ]);
    assert_eq!(param_shapes(&g), expected);
    for (name, op) in [
        ("0.0", "conv2d"),
        ("0.1", "batch_norm"),
        ("0.2", "relu"),
        ("1", "global_avg_pool2d"),
        ("2", "flatten"),
        ("3", "linear"),
    ] {
        let v = g.find(name).unwrap_or_else(|| panic!("no value %{name}"));
        assert_eq!(g.op(v).map(Op::name), Some(op), "%{name}");
    }
    // `model(torch.randn(2, 3, 8, 8)).shape` is `torch.Size([2, 10])`.
    assert_eq!(g.ty(g.outputs()[0]).shape, vec![2, 10]);
    Ok(())
}

#[test]
fn a_root_leaf_is_named_by_its_op_and_runs() -> Result<()> {
    let g = nn::trace(&ReLU { inplace: true }, &[2, 3], "relu")?;
    let out = g.outputs()[0];
    assert_eq!(g.name(out), "relu");
    // The in-place hint traces as an ordinary relu.
    assert_eq!(g.op(out), Some(&Op::Activation(Activation::Relu)));
    let x = Tensor::from_vec(vec![-1.0, 2.0, -3.0, 4.0, -5.0, 6.0], &[2, 3])?;
    let y = kiln::run_interpreter(&g, &[x])?;
    // max(0, x) element-wise.
    assert_eq!(y[0].data(), &[0.0, 2.0, 0.0, 4.0, 0.0, 6.0]);
    Ok(())
}

#[test]
fn residual_block_adds_its_input_and_reuses_relu() -> Result<()> {
    let g = nn::trace(&ResidualBlock::new(8), &[1, 8, 5, 5], "residual")?;
    let add = g.find("add").expect("the residual add");
    let operands: Vec<&str> = g.operands(add).into_iter().map(|v| g.name(v)).collect();
    assert_eq!(operands, vec!["conv2", "x"]);
    let out = g.outputs()[0];
    assert_eq!(g.name(out), "relu_1");
    assert_eq!(g.ty(out).shape, vec![1, 8, 5, 5]);
    Ok(())
}

/// The largest |v| over a parameter's data.
fn max_abs(g: &Graph, name: &str) -> f32 {
    let p = g.find(name).unwrap_or_else(|| panic!("no param %{name}"));
    match &g.node(p).kind {
        NodeKind::Param(Some(t)) => t.data().iter().fold(0.0f32, |m, v| m.max(v.abs())),
        other => panic!("%{name} is not a bound param: {other:?}"),
    }
}

#[test]
fn default_init_follows_pytorch_bounds() -> Result<()> {
    let g = nn::trace_with_init(&SimpleCnn::new(), &[1, 3, 32, 32], "simple_cnn", 0)?;
    // Conv2d bound = 1/√fan_in: conv1 fan_in = 3·3·3 = 27, conv2 fan_in = 32·3·3 = 288.
    for (name, fan_in) in [
        ("conv1.weight", 27.0f32),
        ("conv1.bias", 27.0),
        ("conv2.weight", 288.0),
        ("conv2.bias", 288.0),
    ] {
        let bound = 1.0 / fan_in.sqrt();
        let m = max_abs(&g, name);
        assert!(m < bound, "{name}: max |w| {m} >= bound {bound}");
        // Samples fill the interval (conv1.bias, the smallest, has 32 draws).
        assert!(
            m > 0.5 * bound,
            "{name}: max |w| {m} far below bound {bound}"
        );
    }
    // Same seed, same weights; another seed, other weights.
    let again = nn::trace_with_init(&SimpleCnn::new(), &[1, 3, 32, 32], "simple_cnn", 0)?;
    let other = nn::trace_with_init(&SimpleCnn::new(), &[1, 3, 32, 32], "simple_cnn", 1)?;
    let w = |g: &Graph| g.node(g.find("conv1.weight").expect("w")).kind.clone();
    assert_eq!(w(&g), w(&again));
    assert_ne!(w(&g), w(&other));

    // BatchNorm: weight 1, bias 0, running_mean 0, running_var 1; Linear bound 1/√16 = 0.25.
    let g = nn::trace_with_init(&nested(), &[1, 3, 8, 8], "nested", 7)?;
    for (name, value) in [
        ("0.1.weight", 1.0),
        ("0.1.bias", 0.0),
        ("0.1.running_mean", 0.0),
        ("0.1.running_var", 1.0),
    ] {
        let p = g.find(name).expect("bn param");
        assert_eq!(
            g.node(p).kind,
            NodeKind::Param(Some(Tensor::full(&[16], value).unwrap()))
        );
    }
    assert!(max_abs(&g, "3.weight") < 0.25);
    Ok(())
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    // A forward that calls a child under a name `named_children` does not list.
    struct Typo {
        relu: ReLU,
    }
    impl Module for Typo {
        fn type_name(&self) -> &str {
            "Typo"
        }
        fn named_children(&self) -> Vec<(String, &dyn Module)> {
            vec![("relu".into(), &self.relu)]
        }
        fn forward(&self, t: &mut Tracer, x: ValueId) -> Result<ValueId> {
            t.call("rleu", &self.relu, x)
        }
    }
    let err = nn::trace(&Typo { relu: ReLU::new() }, &[2], "typo").unwrap_err();
    assert!(err.to_string().contains("no child `rleu`"), "{err}");

    // Flatten must run to the last dimension (the runtime op's only form).
    let err = nn::trace(&Flatten::with_dims(0, 1), &[2, 3, 4], "f").unwrap_err();
    assert!(err.to_string().contains("last dimension"), "{err}");

    // Conv2d channel counts must divide by groups.
    let err = nn::trace(&Conv2d::new(3, 8, 3).groups(2), &[1, 3, 8, 8], "c").unwrap_err();
    assert!(err.to_string().contains("divisible by groups"), "{err}");
}

#[test]
fn traced_graphs_round_trip_through_the_text_form() -> Result<()> {
    // Sequential's positional names (`%0.1.running_var`, `%3`) must survive printing and parsing.
    for g in [
        nn::trace(&nested(), &[1, 3, 8, 8], "nested")?,
        nn::trace(&ResidualBlock::new(4), &[1, 4, 6, 6], "residual")?,
        nn::trace(&SimpleCnn::new(), &[1, 3, 32, 32], "simple_cnn")?,
    ] {
        let text = kiln::ir::text::print(&g);
        let reparsed = kiln::ir::text::parse(&text)?;
        assert_eq!(kiln::ir::text::print(&reparsed), text);
    }
    Ok(())
}
