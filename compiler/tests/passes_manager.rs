//! The pass manager and what it reports: levels and pass lists, `--print-after…`, `--time-passes`,
//! the verifier after each pass, `--emit stats` / `dot` / `ir`, and `--explain`.

mod passes_support;

use kiln::passes::{Changed, OptLevel, Pass, PassManager, PASS_NAMES};
use kiln::{Graph, Result};
use passes_support::load;

fn run(pm: PassManager, g: &Graph) -> (kiln::passes::Compiled, String) {
    let mut log = Vec::new();
    let c = pm.run(g.clone(), &mut log).unwrap();
    (c, String::from_utf8(log).unwrap())
}

#[test]
fn levels_and_their_pipelines() {
    assert_eq!(OptLevel::O0.pipeline(), [] as [&str; 0]);
    assert_eq!(
        OptLevel::O1.pipeline(),
        ["dce", "fold_batch_norm", "fuse_activation"]
    );
    assert_eq!(OptLevel::O2.pipeline(), PASS_NAMES);
    // -O2 starts with -O1.
    assert!(OptLevel::O2.pipeline().starts_with(OptLevel::O1.pipeline()));
    assert_eq!(OptLevel::default(), OptLevel::O2);
    for (text, level) in [
        ("0", OptLevel::O0),
        ("-O1", OptLevel::O1),
        ("O2", OptLevel::O2),
    ] {
        assert_eq!(text.parse::<OptLevel>().unwrap(), level);
    }
    assert_eq!(OptLevel::O1.to_string(), "-O1");
    assert!("3".parse::<OptLevel>().is_err());
    assert_eq!(
        PassManager::new(OptLevel::O1).pass_names(),
        OptLevel::O1.pipeline()
    );
}

#[test]
fn pass_lists_are_checked() {
    let pm = PassManager::from_list("dce,fuse_activation,memory_plan").unwrap();
    assert_eq!(pm.pass_names(), ["dce", "fuse_activation", "memory_plan"]);
    let err = PassManager::from_list("dce,fuse_everything")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "unknown pass `fuse_everything`; the passes are: dce, fold_batch_norm, fuse_activation, fuse_residual, fuse_pool, inplace, memory_plan"
    );
    let err = PassManager::from_list("inplace,dce")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`dce` rewrites the graph, so it must come before `inplace`"),
        "{err}"
    );
    let err = PassManager::from_list("memory_plan,inplace")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`inplace` must come before `memory_plan`"),
        "{err}"
    );
    let err = PassManager::new(OptLevel::O2)
        .print_after("nope")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("unknown pass `nope`"), "{err}");
}

#[test]
fn simple_cnn_fuses_both_relus_and_both_pools() {
    let g = load("golden/simple_cnn_batch2");
    let (c, _) = run(PassManager::new(OptLevel::O2), &g);
    let s = c.stats();
    assert_eq!(s.ops.get("conv2d"), Some(&2));
    assert_eq!(s.ops.len(), 1, "standalone ops left: {:?}", s.ops);
    assert_eq!((s.fused_activation, s.fused_pool), (2, 2));
    // Memory: conv1 [2, 32, 16, 16] = 65536 bytes and conv2 [2, 64, 8, 8] = 32768 bytes, both live
    // while conv2 runs; nothing else is stored. Unoptimized: conv1 and relu1 2·32·32·32·4 = 262144
    // each, pool 65536, conv2 and relu2 2·64·16·16·4 = 131072 each, pool_1 32768: 884736.
    assert_eq!(
        s.to_json(),
        r#"{
  "ops": {"conv2d": 2},
  "fused": {"activation": 2, "batch_norm": 0, "residual": 0, "pool": 2},
  "in_place": 0,
  "memory": {"arena_bytes": 98304, "naive_bytes": 98304, "lower_bound_bytes": 98304, "unoptimized_bytes": 884736},
  "steps": 2,
  "fallback": 0,
  "passes": ["dce", "fold_batch_norm", "fuse_activation", "fuse_residual", "fuse_pool", "inplace", "memory_plan"]
}
"#
    );
}

#[test]
fn residual_block_tail_joins_the_second_conv() {
    let g = load("golden/residual_block");
    let (c, _) = run(PassManager::new(OptLevel::O2), &g);
    let s = c.stats();
    assert_eq!(
        s.ops.into_iter().collect::<Vec<_>>(),
        [("conv2d".to_string(), 2)]
    );
    assert_eq!((s.fused_activation, s.fused_residual), (2, 1));
    let ir = c.ir_text();
    assert!(
        ir.contains("%conv2 = conv2d(%relu1, %conv2.weight, %conv2.bias, %x)")
            || ir.contains("%conv2 = conv2d(%conv1, %conv2.weight, %conv2.bias, %x)"),
        "{ir}"
    );
    assert!(ir.contains("residual=true, activation=relu"), "{ir}");

    // -O1 fuses the first relu only; the add and the last relu stay.
    let (c1, _) = run(PassManager::new(OptLevel::O1), &g);
    let s1 = c1.stats();
    assert_eq!(
        (s1.ops.get("add"), s1.ops.get("relu")),
        (Some(&1), Some(&1))
    );
    assert_eq!(s1.fused_activation, 1);
}

#[test]
fn mini_resnet_folds_every_batch_norm() {
    let g = load("golden/mini_resnet");
    let (c, _) = run(PassManager::new(OptLevel::O2), &g);
    let s = c.stats();
    // 12 BatchNorms (bn1, two in each of the 4 blocks, one in each of the 3 downsamples), 4 residual
    // adds, 9 relus (the stem's, and two per block), 1 max-pool (into the stem conv).
    assert_eq!(s.fused_batch_norm, 12);
    assert_eq!(s.fused_residual, 4);
    assert_eq!(s.fused_activation, 9);
    assert_eq!(s.fused_pool, 1);
    assert_eq!(s.ops.get("batch_norm"), None);
    assert_eq!(s.ops.get("add"), None);
    assert_eq!(s.ops.get("relu"), None);
    assert_eq!(s.ops.get("max_pool2d"), None);
    assert_eq!(
        s.in_place, 1,
        "the flatten, over the global average pool's result"
    );
}

#[test]
fn print_after_and_time_passes_write_to_the_log() {
    let g = load("golden/residual_block");
    let pm = PassManager::new(OptLevel::O2)
        .print_after("fuse_residual")
        .unwrap()
        .print_after("memory_plan")
        .unwrap()
        .time_passes(true);
    let (_, log) = run(pm, &g);
    assert!(
        log.contains("; after fuse_residual\ngraph residual_block("),
        "{log}"
    );
    assert!(
        log.contains("; after memory_plan\nplan residual_block("),
        "{log}"
    );
    assert_eq!(log.matches("; after ").count(), 2);
    assert!(log.contains("; pass timings"));
    for name in PASS_NAMES.iter().chain(&["lower", "total"]) {
        assert!(
            log.contains(&format!(";   {name} ")),
            "no timing for {name}:\n{log}"
        );
    }

    let (_, log) = run(PassManager::new(OptLevel::O2).print_after_all(true), &g);
    assert_eq!(log.matches("; after ").count(), PASS_NAMES.len());
    // Each graph dump parses back (remarks are comments).
    let dump = log.split("; after fuse_activation\n").nth(1).unwrap();
    let dump = &dump[..dump.find("; after ").unwrap()];
    kiln::ir::text::parse(dump).unwrap();
}

/// A pass that breaks the graph: it records a wrong type on the first relu.
struct Breaker;

impl Pass for Breaker {
    fn name(&self) -> &'static str {
        "breaker"
    }

    fn run(&self, graph: &mut Graph) -> Result<Changed> {
        let relu = graph.find("relu1").unwrap();
        graph.node_mut(relu).ty = kiln::TensorType::new(&[1, 2, 3]);
        Ok(Changed::by(1))
    }
}

#[test]
fn the_verifier_names_the_pass_and_the_node_it_broke() {
    let g = load("golden/residual_block");
    let err = PassManager::from_names(&["dce"])
        .unwrap()
        .then(Breaker)
        .verify_each(true)
        .run(g, &mut std::io::sink())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("%relu1: after pass `breaker`: recorded type f32[1, 2, 3]"),
        "{err}"
    );
}

#[test]
fn explain_lists_rewrites_and_refusals() {
    let g = load("models/conv_two_users.kiln");
    let (c, _) = run(PassManager::new(OptLevel::O2), &g);
    assert_eq!(
        c.explain(),
        "dce: 0 rewrites
fold_batch_norm: 0 rewrites
fuse_activation: 0 rewrites
  %relu: not fused: %conv has 2 users (%relu, %gate)
  %gate: not fused: %conv has 2 users (%relu, %gate)
fuse_residual: 0 rewrites
fuse_pool: 0 rewrites
inplace: 2 rewrites
  %relu: not in place: %conv is read later by %gate
memory_plan: 0 rewrites
"
    );
    let ir = c.ir_text();
    assert!(ir.contains("%relu = relu(%conv) : f32[1, 4, 8, 8]  ; not fused: %conv has 2 users (%relu, %gate); not in place: %conv is read later by %gate"), "{ir}");
}

#[test]
fn dot_draws_a_fused_conv_as_one_box() {
    let g = load("golden/simple_cnn_batch2");
    let (c, _) = run(PassManager::new(OptLevel::O2), &g);
    let dot = c.dot();
    assert!(dot.starts_with("digraph \"simple_cnn_batch2\" {"), "{dot}");
    assert!(dot.contains("[label=\"%conv1\\nconv2d 3x3, stride 1, pad 1\\nweight [32, 3, 3, 3]\\n+ bias\\n+ relu\\n+ max_pool2d 2x2, stride 2, pad 0\"]"), "{dot}");
    assert!(dot.contains("[label=\"[2, 32, 16, 16]\"]"), "{dot}");
    assert!(!dot.contains("relu1") && !dot.contains("%pool"), "{dot}");
    assert!(dot.trim_end().ends_with('}'));
}

#[test]
fn a_fused_residual_edge_is_labelled() {
    let g = load("golden/residual_block");
    let (c, _) = run(PassManager::new(OptLevel::O2), &g);
    assert!(c.dot().contains("[label=\"residual [1, 8, 16, 16]\"]"));
}

#[test]
fn the_graph_passes_run_without_weights() {
    let path = passes_support::fixtures().join("models/bn_after_conv_bias.kiln");
    let g = kiln::ir::text::parse_file(&path).unwrap();
    let o = PassManager::new(OptLevel::O2)
        .optimize(g.clone(), &mut std::io::sink())
        .unwrap();
    // Without data the BatchNorm cannot fold, so the relu follows the BatchNorm and stays too.
    assert!(o.graph.find("bn").is_some() && o.graph.find("relu").is_some());
    assert!(o.ir_text().contains(
        "%bn = batch_norm(%conv, %bn.weight, %bn.bias, %bn.running_mean, %bn.running_var) {eps=1e-5} : f32[1, 8, 8, 8]  ; not folded: %conv.weight has no data (weights are not bound)"
    ), "{}", o.ir_text());
    assert_eq!(o.rewrites.len(), 5, "graph passes only: {:?}", o.rewrites);
    // Lowering needs the data.
    let err = PassManager::new(OptLevel::O2)
        .run(g, &mut std::io::sink())
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing weight `conv.weight`"), "{err}");
}

#[test]
fn bisect_finds_no_divergence_in_mini_resnet() {
    let g = load("golden/mini_resnet");
    let x = passes_support::inputs(&g, 5);
    let report = kiln::debug::bisect::bisect(&g, &x, &PassManager::new(OptLevel::O2)).unwrap();
    let stages: Vec<&str> = report.stages.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(stages, PASS_NAMES);
    assert!(report.first_divergent().is_none(), "{report}");
    assert!(
        report
            .to_string()
            .ends_with("no pass diverges (rtol 1e-4, atol 1e-5)\n"),
        "{report}"
    );
}
