//! The graph passes one at a time: each fires where it must (the structure changed: the fused op is
//! there, the old one gone), refuses where it must not (with its reason), and never changes the
//! numbers (the interpreter before and after agree).

mod passes_support;

use kiln::passes::dce::Dce;
use kiln::passes::fold_batch_norm::FoldBatchNorm;
use kiln::passes::fuse_activation::FuseActivation;
use kiln::passes::fuse_pool::FusePool;
use kiln::passes::fuse_residual::FuseResidual;
use kiln::passes::{Pass, Remark};
use kiln::{Graph, NodeKind};
use kiln_runtime::ops::{Activation, Op};
use kiln_runtime::Tensor;
use passes_support::{assert_close, inputs, parse_bound};

const CONV: &str = "{stride=[1, 1], padding=[1, 1, 1, 1], dilation=[1, 1], groups=1}";
const POOL: &str =
    "{kernel=[2, 2], stride=[2, 2], padding=[0, 0, 0, 0], dilation=[1, 1], ceil_mode=false}";

/// A graph text with `CONV`/`POOL` standing for the usual attributes.
fn model(body: &str) -> Graph {
    parse_bound(&body.replace("CONV", CONV).replace("POOL", POOL))
}

/// Runs `pass` on a copy of `g`: the graph after, its rewrite count and its refusals. Checks that
/// the result verifies and computes what `g` computes.
fn apply(pass: &dyn Pass, g: &Graph) -> (Graph, usize, Vec<Remark>) {
    let mut after = g.clone();
    let changed = pass.run(&mut after).unwrap();
    kiln::ir::verify::verify(&after).unwrap();
    let remarks = pass.explain(&after);
    let x = inputs(g, 3);
    let before_out = kiln::run_interpreter(g, &x).unwrap();
    let after_out = kiln::run_interpreter(&after, &x).unwrap();
    assert_close(pass.name(), &after_out, &before_out);
    (after, changed.rewrites, remarks)
}

fn op<'a>(g: &'a Graph, name: &str) -> &'a Op {
    g.op(g.find(name).unwrap_or_else(|| panic!("no %{name}")))
        .unwrap()
}

fn conv(g: &Graph, name: &str) -> kiln_runtime::ops::Conv2d {
    match op(g, name) {
        Op::Conv2d(c) => c.clone(),
        other => panic!("%{name} is {}", other.name()),
    }
}

/// Runs `pass` on `g` (see [`apply`]), checks that it rewrote nothing, and returns its refusals
/// as [`messages`].
fn refusals(pass: &dyn Pass, g: &Graph) -> Vec<String> {
    let (_, n, remarks) = apply(pass, g);
    assert_eq!(n, 0, "{} rewrote something", pass.name());
    messages(&remarks)
}

fn messages(remarks: &[Remark]) -> Vec<String> {
    remarks
        .iter()
        .map(|r| format!("%{}: {}", r.value, r.message))
        .collect()
}

// ---- dce ----

#[test]
fn dce_removes_dead_ops_and_their_parameters() {
    let g = model(
        "graph g(%x: f32[1, 3, 4, 4], %unused: f32[1]) {
  param %w: f32[4, 3, 3, 3]
  param %b: f32[4]
  %dead_conv = conv2d(%x, %w, %b) CONV : f32[1, 4, 4, 4]
  %dead = sigmoid(%dead_conv) : f32[1, 4, 4, 4]
  %a = relu(%x) : f32[1, 3, 4, 4]
  %mid = tanh(%a) : f32[1, 3, 4, 4]
  %out = sigmoid(%mid) : f32[1, 3, 4, 4]
  return %out, %mid
}",
    );
    let (after, n, remarks) = apply(&Dce, &g);
    // %dead, %dead_conv, %w and %b go; %mid stays (an output, though mid-graph); the unused input stays.
    assert_eq!(n, 4);
    for gone in ["dead", "dead_conv", "w", "b"] {
        assert!(after.find(gone).is_none(), "%{gone} survived");
    }
    for kept in ["x", "unused", "a", "mid", "out"] {
        assert!(after.find(kept).is_some(), "%{kept} removed");
    }
    assert!(remarks.is_empty());
    let (_, again, _) = apply(&Dce, &after);
    assert_eq!(again, 0);
}

// ---- fold_batch_norm ----

/// conv 1x1, one channel: y = 2·x + 1 on x = [1, 2] gives [3, 5]. BatchNorm with gamma 3, beta 0.5,
/// mean 1, var 3, eps 1: s = 3 / √(3 + 1) = 1.5, out = (y − 1)·1.5 + 0.5 = [3.5, 6.5].
/// Folded: w' = 2·1.5 = 3, b' = (1 − 1)·1.5 + 0.5 = 0.5; 3·[1, 2] + 0.5 = [3.5, 6.5].
#[test]
fn fold_batch_norm_by_hand() {
    let mut g = kiln::ir::text::parse(
        "graph g(%x: f32[1, 1, 1, 2]) {
  param %w: f32[1, 1, 1, 1]
  param %b: f32[1]
  param %g: f32[1]
  param %beta: f32[1]
  param %m: f32[1]
  param %v: f32[1]
  %c = conv2d(%x, %w, %b) {stride=[1, 1], padding=[0, 0, 0, 0], dilation=[1, 1], groups=1} : f32[1, 1, 1, 2]
  %bn = batch_norm(%c, %g, %beta, %m, %v) {eps=1.0} : f32[1, 1, 1, 2]
  return %bn
}",
    )
    .unwrap();
    for (name, value) in [
        ("w", 2.0),
        ("b", 1.0),
        ("g", 3.0),
        ("beta", 0.5),
        ("m", 1.0),
        ("v", 3.0),
    ] {
        let p = g.find(name).unwrap();
        let shape = g.ty(p).shape.clone();
        g.node_mut(p).kind = NodeKind::Param(Some(Tensor::full(&shape, value).unwrap()));
    }
    let x = Tensor::from_vec(vec![1.0, 2.0], &[1, 1, 1, 2]).unwrap();
    assert_eq!(
        kiln::run_interpreter(&g, std::slice::from_ref(&x)).unwrap()[0].data(),
        &[3.5, 6.5]
    );

    let (after, n, _) = apply(&FoldBatchNorm, &g);
    assert_eq!(n, 1);
    assert!(after.find("bn").is_none());
    let data = |name: &str| match &after.node(after.find(name).unwrap()).kind {
        NodeKind::Param(Some(t)) => t.data().to_vec(),
        _ => panic!("%{name} has no data"),
    };
    assert_eq!(data("w.folded"), [3.0]);
    assert_eq!(data("b.folded"), [0.5]);
    // The old parameters and the statistics are gone.
    for gone in ["w", "b", "g", "beta", "m", "v"] {
        assert!(after.find(gone).is_none(), "%{gone} survived");
    }
    assert_eq!(
        kiln::run_interpreter(&after, &[x]).unwrap()[0].data(),
        &[3.5, 6.5]
    );
    assert_eq!(after.outputs(), [after.find("c").unwrap()]);
}

#[test]
fn fold_batch_norm_gives_a_conv_without_bias_one() {
    let g = model(
        "graph g(%x: f32[1, 3, 6, 6]) {
  param %w: f32[8, 3, 3, 3]
  param %g: f32[8]
  param %beta: f32[8]
  param %m: f32[8]
  param %v: f32[8]
  %c = conv2d(%x, %w) {stride=[2, 2], padding=[1, 1, 1, 1], dilation=[1, 1], groups=1} : f32[1, 8, 3, 3]
  %bn = batch_norm(%c, %g, %beta, %m, %v) {eps=1e-5} : f32[1, 8, 3, 3]
  %r = relu(%bn) : f32[1, 8, 3, 3]
  return %r
}",
    );
    let (after, n, remarks) = apply(&FoldBatchNorm, &g);
    assert_eq!(n, 1);
    assert!(remarks.is_empty());
    let c = conv(&after, "c");
    assert!(c.bias);
    assert_eq!(after.operands(after.find("c").unwrap()).len(), 3);
    assert!(after.find("c.bias.folded").is_some());
    assert_eq!(
        after.operands(after.find("r").unwrap()),
        [after.find("c").unwrap()]
    );
}

#[test]
fn fold_batch_norm_handles_groups() {
    let g = model(
        "graph g(%x: f32[1, 4, 5, 5]) {
  param %w: f32[4, 1, 3, 3]
  param %b: f32[4]
  param %g: f32[4]
  param %beta: f32[4]
  param %m: f32[4]
  param %v: f32[4]
  %c = conv2d(%x, %w, %b) {stride=[1, 1], padding=[1, 1, 1, 1], dilation=[1, 1], groups=4} : f32[1, 4, 5, 5]
  %bn = batch_norm(%c, %g, %beta, %m, %v) {eps=1e-5} : f32[1, 4, 5, 5]
  return %bn
}",
    );
    let (_, n, _) = apply(&FoldBatchNorm, &g);
    assert_eq!(n, 1);
}

#[test]
fn fold_batch_norm_refusals() {
    let bn_params =
        "  param %g: f32[4]\n  param %beta: f32[4]\n  param %m: f32[4]\n  param %v: f32[4]\n";
    let head = format!(
        "graph g(%x: f32[1, 3, 4, 4]) {{\n  param %w: f32[4, 3, 3, 3]\n  param %b: f32[4]\n{bn_params}"
    );
    // Two users of the conv: folding would change what %t reads.
    let g = model(&format!(
        "{head}  %c = conv2d(%x, %w, %b) CONV : f32[1, 4, 4, 4]
  %bn = batch_norm(%c, %g, %beta, %m, %v) {{eps=1e-5}} : f32[1, 4, 4, 4]
  %t = tanh(%c) : f32[1, 4, 4, 4]
  %out = add(%bn, %t) : f32[1, 4, 4, 4]
  return %out
}}"
    ));
    let (after, n, remarks) = apply(&FoldBatchNorm, &g);
    assert_eq!(n, 0);
    assert!(after.find("bn").is_some());
    assert_eq!(
        messages(&remarks),
        ["%bn: not folded: %c has 2 users (%bn, %t)"]
    );

    // The conv's result is a graph output.
    let g = model(&format!(
        "{head}  %c = conv2d(%x, %w, %b) CONV : f32[1, 4, 4, 4]
  %bn = batch_norm(%c, %g, %beta, %m, %v) {{eps=1e-5}} : f32[1, 4, 4, 4]
  return %bn, %c
}}"
    ));
    assert_eq!(
        refusals(&FoldBatchNorm, &g),
        ["%bn: not folded: %c is a graph output"]
    );

    // The conv already applies an activation: the BatchNorm comes after it.
    let g = model(&format!(
        "{head}  %c = conv2d(%x, %w, %b) {{stride=[1, 1], padding=[1, 1, 1, 1], dilation=[1, 1], groups=1, activation=relu}} : f32[1, 4, 4, 4]
  %bn = batch_norm(%c, %g, %beta, %m, %v) {{eps=1e-5}} : f32[1, 4, 4, 4]
  return %bn
}}"
    ));
    assert_eq!(
        refusals(&FoldBatchNorm, &g),
        ["%bn: not folded: %c already has a fused epilogue; the BatchNorm would have to come after it"]
    );

    // Weights not bound: nothing to fold with.
    let mut g = kiln::ir::text::parse(&format!(
        "{head}  %c = conv2d(%x, %w, %b) {CONV} : f32[1, 4, 4, 4]
  %bn = batch_norm(%c, %g, %beta, %m, %v) {{eps=1e-5}} : f32[1, 4, 4, 4]
  return %bn
}}"
    ))
    .unwrap();
    let n = FoldBatchNorm.run(&mut g).unwrap();
    assert_eq!(n.rewrites, 0);
    assert_eq!(
        messages(&FoldBatchNorm.explain(&g)),
        ["%bn: not folded: %w has no data (weights are not bound)"]
    );
}

// ---- fuse_activation ----

#[test]
fn fuse_activation_takes_every_activation_after_conv_and_linear() {
    let acts = [
        ("relu", "relu"),
        ("leaky_relu", "leaky_relu {negative_slope=0.2}"),
        ("sigmoid", "sigmoid"),
        ("tanh", "tanh"),
        ("gelu", "gelu {approximate=tanh}"),
        ("elu", "elu {alpha=0.5}"),
    ];
    for (name, written) in acts {
        let (op_name, attrs) = written.split_once(' ').unwrap_or((written, ""));
        let g = model(&format!(
            "graph g(%x: f32[1, 3, 4, 4]) {{
  param %w: f32[4, 3, 3, 3]
  param %b: f32[4]
  param %fw: f32[5, 64]
  %c = conv2d(%x, %w, %b) CONV : f32[1, 4, 4, 4]
  %a = {op_name}(%c) {attrs} : f32[1, 4, 4, 4]
  %f = flatten(%a) {{start_dim=1}} : f32[1, 64]
  %l = linear(%f, %fw) : f32[1, 5]
  %a2 = {op_name}(%l) {attrs} : f32[1, 5]
  return %a2
}}"
        ));
        let (after, n, remarks) = apply(&FuseActivation, &g);
        assert_eq!(n, 2, "{name}");
        assert!(remarks.is_empty(), "{name}: {remarks:?}");
        assert!(after.find("a").is_none() && after.find("a2").is_none());
        let c = conv(&after, "c");
        assert_eq!(c.epilogue.activation.map(|a| a.name()), Some(name));
        let Op::Linear(l) = op(&after, "l") else {
            panic!()
        };
        assert_eq!(l.epilogue.activation.map(|a| a.name()), Some(name));
        assert_eq!(after.outputs(), [after.find("l").unwrap()]);
    }
}

#[test]
fn fuse_activation_refusals() {
    let head = "graph g(%x: f32[1, 3, 4, 4]) {\n  param %w: f32[4, 3, 3, 3]\n  param %b: f32[4]\n";
    // Two users.
    let g = model(&format!(
        "{head}  %c = conv2d(%x, %w, %b) CONV : f32[1, 4, 4, 4]
  %r = relu(%c) : f32[1, 4, 4, 4]
  %s = sigmoid(%c) : f32[1, 4, 4, 4]
  %out = add(%r, %s) : f32[1, 4, 4, 4]
  return %out
}}"
    ));
    let (after, n, remarks) = apply(&FuseActivation, &g);
    assert_eq!(n, 0);
    assert!(conv(&after, "c").epilogue.is_empty());
    assert_eq!(
        messages(&remarks),
        [
            "%r: not fused: %c has 2 users (%r, %s)",
            "%s: not fused: %c has 2 users (%r, %s)"
        ]
    );

    // The conv's result is returned as well.
    let g = model(&format!(
        "{head}  %c = conv2d(%x, %w, %b) CONV : f32[1, 4, 4, 4]
  %r = relu(%c) : f32[1, 4, 4, 4]
  return %r, %c
}}"
    ));
    let (_, n, remarks) = apply(&FuseActivation, &g);
    assert_eq!(n, 0);
    assert_eq!(messages(&remarks), ["%r: not fused: %c is a graph output"]);

    // Two activations in a row: the first fuses, the second cannot follow it into the epilogue.
    let g = model(&format!(
        "{head}  %c = conv2d(%x, %w, %b) CONV : f32[1, 4, 4, 4]
  %r = relu(%c) : f32[1, 4, 4, 4]
  %t = tanh(%r) : f32[1, 4, 4, 4]
  return %t
}}"
    ));
    let (after, n, remarks) = apply(&FuseActivation, &g);
    assert_eq!(n, 1);
    assert_eq!(
        conv(&after, "c").epilogue.activation,
        Some(Activation::Relu)
    );
    assert_eq!(
        messages(&remarks),
        ["%t: not fused: %c already applies relu"]
    );

    // A conv that already pools: the activation would come after the pool.
    let g = model(&format!(
        "{head}  %c = conv2d(%x, %w, %b) {{stride=[1, 1], padding=[1, 1, 1, 1], dilation=[1, 1], groups=1, pool_kernel=[2, 2], pool_stride=[2, 2], pool_padding=[0, 0, 0, 0], pool_dilation=[1, 1], pool_ceil_mode=false}} : f32[1, 4, 2, 2]
  %r = relu(%c) : f32[1, 4, 2, 2]
  return %r
}}"
    ));
    assert_eq!(
        refusals(&FuseActivation, &g),
        ["%r: not fused: %c already ends in a max-pool, which must come after the activation"]
    );

    // An activation of a graph input or of another op is no candidate at all.
    let g = model(
        "graph g(%x: f32[1, 4]) {\n  %r = relu(%x) : f32[1, 4]\n  %s = sigmoid(%r) : f32[1, 4]\n  return %s\n}",
    );
    let (_, n, remarks) = apply(&FuseActivation, &g);
    assert_eq!((n, remarks.len()), (0, 0));
}

// ---- fuse_residual ----

const BLOCK: &str = "graph g(%x: f32[1, 4, 6, 6]) {
  param %w1: f32[4, 4, 3, 3]
  param %b1: f32[4]
  param %w2: f32[4, 4, 3, 3]
  param %b2: f32[4]
";

#[test]
fn fuse_residual_takes_the_add_and_the_relu_after_it() {
    // The conv as operand 0, then as operand 1 of the add.
    for add in ["add(%c2, %x)", "add(%x, %c2)"] {
        let g = model(&format!(
            "{BLOCK}  %c1 = conv2d(%x, %w1, %b1) CONV : f32[1, 4, 6, 6]
  %r1 = relu(%c1) : f32[1, 4, 6, 6]
  %c2 = conv2d(%r1, %w2, %b2) CONV : f32[1, 4, 6, 6]
  %sum = {add} : f32[1, 4, 6, 6]
  %out = relu(%sum) : f32[1, 4, 6, 6]
  return %out
}}"
        ));
        let (after, n, remarks) = apply(&FuseResidual, &g);
        assert_eq!(n, 1, "{add}");
        assert!(remarks.is_empty(), "{remarks:?}");
        assert!(after.find("sum").is_none() && after.find("out").is_none());
        let c2 = after.find("c2").unwrap();
        let epi = conv(&after, "c2").epilogue;
        assert!(epi.residual);
        assert_eq!(epi.activation, Some(Activation::Relu));
        // Operands: input, weight, bias, then the residual.
        let names: Vec<&str> = after
            .operands(c2)
            .into_iter()
            .map(|v| after.name(v))
            .collect();
        assert_eq!(names, ["r1", "w2", "b2", "x"]);
        assert_eq!(after.outputs(), [c2]);
        // fuse_residual does not touch the first relu: that is fuse_activation's job.
        assert!(after.find("r1").is_some());
    }
}

#[test]
fn fuse_residual_without_activation_and_with_two_convs() {
    // add(conv_a, conv_b): conv_a takes conv_b as its residual.
    let g = model(&format!(
        "{BLOCK}  %ca = conv2d(%x, %w1, %b1) CONV : f32[1, 4, 6, 6]
  %cb = conv2d(%x, %w2, %b2) CONV : f32[1, 4, 6, 6]
  %sum = add(%ca, %cb) : f32[1, 4, 6, 6]
  return %sum
}}"
    ));
    let (after, n, _) = apply(&FuseResidual, &g);
    assert_eq!(n, 1);
    let ca = after.find("ca").unwrap();
    assert_eq!(after.operands(ca).last(), after.find("cb").as_ref());
    assert!(conv(&after, "ca").epilogue.activation.is_none());
}

#[test]
fn fuse_residual_refusals() {
    // The conv already applies relu: the residual add would have to come first.
    let g = model(&format!(
        "{BLOCK}  %c = conv2d(%x, %w1, %b1) {{stride=[1, 1], padding=[1, 1, 1, 1], dilation=[1, 1], groups=1, activation=relu}} : f32[1, 4, 6, 6]
  %sum = add(%c, %x) : f32[1, 4, 6, 6]
  return %sum
}}"
    ));
    assert_eq!(
        refusals(&FuseResidual, &g),
        ["%sum: not fused: %c already applies relu, and the residual add must come before it"]
    );

    // Two users of the conv; the add's other operand is not a conv.
    let g = model(&format!(
        "{BLOCK}  %c = conv2d(%x, %w1, %b1) CONV : f32[1, 4, 6, 6]
  %sum = add(%c, %x) : f32[1, 4, 6, 6]
  %t = tanh(%c) : f32[1, 4, 6, 6]
  %out = add(%sum, %t) : f32[1, 4, 6, 6]
  return %out
}}"
    ));
    assert_eq!(
        refusals(&FuseResidual, &g),
        ["%sum: not fused: %c has 2 users (%sum, %t)"]
    );

    // add(c, c): the conv cannot be its own residual.
    let g = model(&format!(
        "{BLOCK}  %c = conv2d(%x, %w1, %b1) CONV : f32[1, 4, 6, 6]
  %sum = add(%c, %c) : f32[1, 4, 6, 6]
  return %sum
}}"
    ));
    assert_eq!(
        refusals(&FuseResidual, &g),
        ["%sum: not fused: both operands are %c"]
    );

    // The add fuses (the conv's value becomes the sum, and is returned as such), but the relu
    // after it cannot: it would change the returned sum.
    let g = model(&format!(
        "{BLOCK}  %c = conv2d(%x, %w1, %b1) CONV : f32[1, 4, 6, 6]
  %sum = add(%c, %x) : f32[1, 4, 6, 6]
  %out = relu(%sum) : f32[1, 4, 6, 6]
  return %out, %sum
}}"
    ));
    let (after, n, remarks) = apply(&FuseResidual, &g);
    assert_eq!(n, 1);
    let c = after.find("c").unwrap();
    assert_eq!(after.outputs(), [after.find("out").unwrap(), c]);
    assert_eq!(
        messages(&remarks),
        ["%out: not fused: %c is a graph output"]
    );
}

// ---- fuse_pool ----

#[test]
fn fuse_pool_after_a_fused_conv_and_a_bare_one() {
    for (act, what) in [(", activation=relu", "fused conv"), ("", "bare conv")] {
        let g = model(&format!(
            "graph g(%x: f32[1, 3, 9, 9]) {{
  param %w: f32[4, 3, 3, 3]
  param %b: f32[4]
  %c = conv2d(%x, %w, %b) {{stride=[1, 1], padding=[1, 1, 1, 1], dilation=[1, 1], groups=1{act}}} : f32[1, 4, 9, 9]
  %p = max_pool2d(%c) {{kernel=[3, 3], stride=[2, 2], padding=[1, 1, 1, 1], dilation=[1, 1], ceil_mode=true}} : f32[1, 4, 5, 5]
  return %p
}}"
        ));
        let (after, n, remarks) = apply(&FusePool, &g);
        assert_eq!(n, 1, "{what}");
        assert!(remarks.is_empty());
        assert!(after.find("p").is_none());
        let c = after.find("c").unwrap();
        assert_eq!(after.ty(c).shape, [1, 4, 5, 5]);
        let pool = conv(&after, "c").epilogue.pool.unwrap();
        assert_eq!((pool.kernel, pool.ceil_mode), ([3, 3], true));
    }
}

#[test]
fn fuse_pool_refusals() {
    let head = "graph g(%x: f32[1, 3, 8, 8]) {\n  param %w: f32[4, 3, 3, 3]\n  param %b: f32[4]\n";
    let g = model(&format!(
        "{head}  %c = conv2d(%x, %w, %b) CONV : f32[1, 4, 8, 8]
  %p = max_pool2d(%c) POOL : f32[1, 4, 4, 4]
  return %p, %c
}}"
    ));
    let (_, n, remarks) = apply(&FusePool, &g);
    assert_eq!(n, 0);
    assert_eq!(messages(&remarks), ["%p: not fused: %c is a graph output"]);

    // Pool after pool: the second one stays.
    let g = model(&format!(
        "{head}  %c = conv2d(%x, %w, %b) CONV : f32[1, 4, 8, 8]
  %p = max_pool2d(%c) POOL : f32[1, 4, 4, 4]
  %q = max_pool2d(%p) POOL : f32[1, 4, 2, 2]
  return %q
}}"
    ));
    let (after, n, remarks) = apply(&FusePool, &g);
    assert_eq!(n, 1);
    assert!(after.find("q").is_some());
    assert_eq!(
        messages(&remarks),
        ["%q: not fused: %c already ends in a max-pool"]
    );

    // An average pool is no candidate.
    let g = model(&format!(
        "{head}  %c = conv2d(%x, %w, %b) CONV : f32[1, 4, 8, 8]
  %p = avg_pool2d(%c) {{kernel=[2, 2], stride=[2, 2], padding=[0, 0, 0, 0], ceil_mode=false, count_include_pad=true}} : f32[1, 4, 4, 4]
  return %p
}}"
    ));
    let (_, n, remarks) = apply(&FusePool, &g);
    assert_eq!((n, remarks.len()), (0, 0));
}

/// Found by the random-graph property test: with dilation, a pool window can lie wholly in the
/// padding and pool to −∞, where `relu(−∞) = 0` (PyTorch: `F.relu(F.max_pool2d(x, 2, 1, 1, 2))` of a
/// 1×1×1×1 `x` is `0.`) but the maximum of no activated element stays −∞. So the relu must stay out.
#[test]
fn fuse_pool_keeps_a_relu_out_when_a_window_is_all_padding() {
    let g = model(
        "graph g(%x: f32[1, 1, 3, 3]) {
  param %w: f32[1, 1, 3, 3]
  %c = conv2d(%x, %w) {stride=[1, 1], padding=[0, 0, 0, 0], dilation=[1, 1], groups=1} : f32[1, 1, 1, 1]
  %p = max_pool2d(%c) {kernel=[2, 2], stride=[1, 1], padding=[1, 1, 1, 1], dilation=[2, 2], ceil_mode=false} : f32[1, 1, 1, 1]
  %r = relu(%p) : f32[1, 1, 1, 1]
  return %r
}",
    );
    let (after, n, _) = apply(&FusePool, &g);
    assert_eq!(n, 1);
    assert!(
        after.find("r").is_some(),
        "the relu stays a step of its own"
    );
    assert_eq!(conv(&after, "c").epilogue.activation, None);
    let out = kiln::run_interpreter(&after, &inputs(&g, 1)).unwrap();
    assert_eq!(out[0].data(), &[0.0]);
}

#[test]
fn fuse_pool_takes_a_relu_after_the_pool_but_not_a_sigmoid() {
    let head = "graph g(%x: f32[1, 3, 8, 8]) {\n  param %w: f32[4, 3, 3, 3]\n  param %b: f32[4]\n";
    // relu and leaky_relu(0.2) are non-decreasing: applying them before the pool gives the same
    // numbers (checked by `apply`), so they join the epilogue.
    for act in ["relu", "leaky_relu {negative_slope=0.2}"] {
        let (name, attrs) = act.split_once(' ').unwrap_or((act, ""));
        let g = model(&format!(
            "{head}  %c = conv2d(%x, %w, %b) CONV : f32[1, 4, 8, 8]
  %p = max_pool2d(%c) POOL : f32[1, 4, 4, 4]
  %r = {name}(%p) {attrs} : f32[1, 4, 4, 4]
  return %r
}}"
        ));
        let (after, n, remarks) = apply(&FusePool, &g);
        assert_eq!(n, 1, "{act}");
        assert!(remarks.is_empty(), "{remarks:?}");
        assert!(after.find("r").is_none() && after.find("p").is_none());
        let epi = conv(&after, "c").epilogue;
        assert_eq!(epi.activation.map(|a| a.name()), Some(name));
        assert!(epi.pool.is_some());
    }
    // A sigmoid, or a leaky_relu with a negative slope, stays after the pooled conv.
    for act in ["sigmoid", "leaky_relu {negative_slope=-0.5}"] {
        let (name, attrs) = act.split_once(' ').unwrap_or((act, ""));
        let g = model(&format!(
            "{head}  %c = conv2d(%x, %w, %b) CONV : f32[1, 4, 8, 8]
  %p = max_pool2d(%c) POOL : f32[1, 4, 4, 4]
  %r = {name}(%p) {attrs} : f32[1, 4, 4, 4]
  return %r
}}"
        ));
        let (after, n, remarks) = apply(&FusePool, &g);
        assert_eq!(n, 1, "{act}");
        assert!(after.find("r").is_some());
        assert_eq!(
            messages(&remarks),
            ["%r: not fused: %c already ends in a max-pool, which must come after the activation"]
        );
    }
}
