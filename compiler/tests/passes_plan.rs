//! The plan passes: `inplace` fires where the in-place rules allow and refuses (with the reason)
//! where they do not; `memory_plan` reuses memory, stays within 10 % of the lower bound on the
//! example models, and the plan verifier rejects unsafe plans. The numbers never change.

mod passes_support;

use kiln::passes::memory_plan::{memory_stats, verify_plan};
use kiln::passes::{OptLevel, PassManager};
use kiln::Graph;
use kiln_runtime::plan::{BufferKind, Plan};
use passes_support::{assert_close, inputs, load, parse_bound, run_at};
use std::path::Path;

const CONV: &str = "{stride=[1, 1], padding=[1, 1, 1, 1], dilation=[1, 1], groups=1}";

fn compile(g: &Graph) -> kiln::passes::Compiled {
    PassManager::new(OptLevel::O2)
        .run(g.clone(), &mut std::io::sink())
        .unwrap()
}

/// The step writing the buffer called `name`.
fn step<'a>(plan: &'a Plan, name: &str) -> &'a kiln_runtime::plan::Step {
    plan.steps
        .iter()
        .find(|s| plan.buffers[s.output.0].name == name)
        .unwrap_or_else(|| panic!("no step writes %{name}"))
}

fn offset(plan: &Plan, name: &str) -> usize {
    match plan.buffers.iter().find(|b| b.name == name).unwrap().kind {
        BufferKind::Intermediate { offset } => offset,
        _ => panic!("%{name} is not an intermediate"),
    }
}

/// The differential check: `-O2` computes what `-O0` computes.
fn same_numbers(g: &Graph) {
    let x = inputs(g, 11);
    assert_close(
        &g.name,
        &run_at(g, OptLevel::O2, &x),
        &run_at(g, OptLevel::O0, &x),
    );
}

#[test]
fn a_relu_after_a_pool_writes_over_it() {
    let g = load("models/relu_after_pool.kiln");
    let c = compile(&g);
    let relu = step(&c.plan, "relu");
    assert!(relu.in_place);
    assert_eq!(offset(&c.plan, "relu"), offset(&c.plan, "pool"));
    assert_eq!(c.stats().in_place, 1);
    assert!(c.plan_text().contains(", in place of %pool"));
    same_numbers(&g);
}

#[test]
fn an_add_and_a_flatten_run_in_place() {
    let g = parse_bound(&format!(
        "graph g(%x: f32[1, 3, 4, 4]) {{
  param %w: f32[3, 3, 3, 3]
  param %b: f32[3]
  %c = conv2d(%x, %w, %b) {CONV} : f32[1, 3, 4, 4]
  %s = add(%x, %c) : f32[1, 3, 4, 4]
  %f = flatten(%s) {{start_dim=1}} : f32[1, 48]
  %t = tanh(%f) : f32[1, 48]
  return %t
}}"
    ));
    let c = compile(&g);
    // The conv took the add as its residual; what is left: flatten over the conv, tanh over flatten.
    let mut p = PassManager::from_names(&["inplace"]).unwrap();
    p = p.verify_each(true);
    let only_inplace = p.run(g.clone(), &mut std::io::sink()).unwrap();
    // add(%x, %c): %x is a graph input, so the add writes over %c (operand 1).
    assert!(step(&only_inplace.plan, "s").in_place);
    assert_eq!(
        offset(&only_inplace.plan, "s"),
        offset(&only_inplace.plan, "c")
    );
    assert!(step(&only_inplace.plan, "f").in_place);
    assert!(step(&only_inplace.plan, "t").in_place);
    // All four share one storage: the arena holds one 192-byte buffer (aligned to 192).
    assert_eq!(only_inplace.plan.arena_bytes, 192);
    assert_eq!(c.stats().in_place, 2);
    same_numbers(&g);
}

#[test]
fn in_place_refusals_say_why() {
    // %r reads the graph input; %t's operand %c is read later; %u's operand %t is an output; add
    // reads a parameter and an intermediate that is still needed.
    let g = parse_bound(&format!(
        "graph g(%x: f32[1, 3, 4, 4]) {{
  param %w: f32[3, 3, 3, 3]
  param %b: f32[3]
  param %p: f32[1, 3, 4, 4]
  %r = relu(%x) : f32[1, 3, 4, 4]
  %c = conv2d(%r, %w, %b) {CONV} : f32[1, 3, 4, 4]
  %t = tanh(%c) : f32[1, 3, 4, 4]
  %u = sigmoid(%t) : f32[1, 3, 4, 4]
  %s = add(%p, %c) : f32[1, 3, 4, 4]
  %v = add(%s, %c) : f32[1, 3, 4, 4]
  return %u, %t, %v
}}"
    ));
    let c = PassManager::from_names(&["inplace", "memory_plan"])
        .unwrap()
        .run(g.clone(), &mut std::io::sink())
        .unwrap();
    let text = c.plan_text();
    let expect = [
        "%r = relu(%x) : f32[1, 3, 4, 4]  ; not in place: %x is a graph input",
        "%t = tanh(%c) : f32[1, 3, 4, 4]  ; not in place: %c is read later by %s",
        "%u = sigmoid(%t) : f32[1, 3, 4, 4]  ; not in place: %t is a graph output",
        "%s = add(%p, %c) : f32[1, 3, 4, 4]  ; not in place: %p is a parameter; %c is read later by %v",
        // The last reader of %s and %c: writes over %s.
        "%v = add(%s, %c) : f32[1, 3, 4, 4], in place of %s",
    ];
    for line in expect {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
    assert!(c
        .explain()
        .contains("inplace: 1 rewrite\n  %r: not in place: %x is a graph input"));
    same_numbers(&g);
}

#[test]
fn memory_plan_reuses_dead_buffers() {
    // Six relu/tanh in a chain, each of 4 KiB, with in place off: two buffers alternate.
    let mut body =
        String::from("graph chain(%x: f32[1, 1024]) {\n  %v0 = relu(%x) : f32[1, 1024]\n");
    for i in 1..6 {
        body += &format!("  %v{i} = tanh(%v{}) : f32[1, 1024]\n", i - 1);
    }
    body += "  return %v5\n}\n";
    let g = parse_bound(&body);
    let c = PassManager::from_names(&["memory_plan"])
        .unwrap()
        .run(g.clone(), &mut std::io::sink())
        .unwrap();
    // Naive: 6 × 4096; live at once: the operand and the result, 2 × 4096.
    assert_eq!(c.memory.naive_bytes, 6 * 4096);
    assert_eq!(c.memory.lower_bound_bytes, 2 * 4096);
    assert_eq!(c.memory.arena_bytes, 2 * 4096);
    // At -O2 the tanh chain runs in place: one buffer.
    let o2 = compile(&g);
    assert_eq!(o2.memory.arena_bytes, 4096);
    assert_eq!(o2.memory.lower_bound_bytes, 4096);
    same_numbers(&g);
}

#[test]
fn o0_lays_every_intermediate_out_once() {
    let g = load("golden/simple_cnn_batch2");
    let c = PassManager::new(OptLevel::O0)
        .run(g, &mut std::io::sink())
        .unwrap();
    // conv1/relu1: 2·32·32·32·4 = 262144 bytes each; pool: 65536; conv2/relu2: 2·64·16·16·4 = 131072
    // each; pool_1: 32768. Sum: 2·262144 + 65536 + 2·131072 + 32768 = 884736.
    assert_eq!(c.memory.naive_bytes, 884_736);
    assert_eq!(c.memory.arena_bytes, 884_736);
    // Largest live set: relu1 is written while conv1 is read (step 1): 524288.
    assert_eq!(c.memory.lower_bound_bytes, 524_288);
}

/// `-O2` memory figures of a model, checked against the 1.10 × lower bound target.
fn figures(name: &str, g: &Graph) -> kiln_runtime::plan::MemoryStats {
    let c = compile(g);
    let m = c.memory;
    eprintln!(
        "{name}: unoptimized {} bytes; -O2 naive {} bytes, arena {} bytes, lower bound {} bytes",
        c.unoptimized_bytes, m.naive_bytes, m.arena_bytes, m.lower_bound_bytes
    );
    assert!(m.lower_bound_bytes <= m.arena_bytes, "{name}: {m:?}");
    assert!(
        m.arena_bytes <= m.naive_bytes.next_multiple_of(64) * 2,
        "{name}: {m:?}"
    );
    assert!(
        m.arena_bytes as f64 <= 1.10 * m.lower_bound_bytes as f64,
        "{name}: arena {} > 1.10 × lower bound {}",
        m.arena_bytes,
        m.lower_bound_bytes
    );
    verify_plan(&c.plan).unwrap();
    m
}

#[test]
fn memory_figures_of_the_example_models() {
    let simple = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models/simple_cnn.kiln"),
    )
    .unwrap();
    let b1 = figures("SimpleCNN batch 1", &parse_bound(&simple));
    // Both convs carry relu and pool: conv1 [1, 32, 16, 16] = 32768 bytes and conv2 [1, 64, 8, 8] =
    // 16384 bytes, live together while conv2 runs.
    assert_eq!(b1.arena_bytes, 49_152);
    assert_eq!(b1.lower_bound_bytes, 49_152);
    let b32 = figures(
        "SimpleCNN batch 32",
        &parse_bound(&simple.replace("f32[1, ", "f32[32, ")),
    );
    assert_eq!(b32.arena_bytes, 32 * 49_152);
    figures("mini ResNet", &load("golden/mini_resnet"));
    let resnet18 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fixtures/resnet18");
    if resnet18.join("model.kiln").exists() {
        let mut g = kiln::ir::text::parse_file(&resnet18.join("model.kiln")).unwrap();
        let w =
            kiln_runtime::io::safetensors::read_safetensors(&resnet18.join("weights.safetensors"))
                .unwrap();
        kiln::weights::bind_weights(&mut g, &w).unwrap();
        figures("ResNet-18 batch 1", &g);
    } else {
        eprintln!("ResNet-18 skipped: no {}", resnet18.display());
    }
}

#[test]
fn the_plan_verifier_rejects_overlapping_live_buffers() {
    let g = load("models/conv_two_users.kiln");
    let mut plan = PassManager::from_names(&["memory_plan"])
        .unwrap()
        .run(g, &mut std::io::sink())
        .unwrap()
        .plan;
    verify_plan(&plan).unwrap();
    // Put %relu (live 1..=3) where %conv (live 0..=2) is.
    let conv_at = offset(&plan, "conv");
    for b in &mut plan.buffers {
        if b.name == "relu" {
            b.kind = BufferKind::Intermediate { offset: conv_at };
        }
    }
    let err = verify_plan(&plan).unwrap_err().to_string();
    assert!(
        err.contains("%conv") && err.contains("%relu") && err.contains("overlap"),
        "{err}"
    );
}

#[test]
fn the_plan_verifier_rejects_a_wrong_in_place_step() {
    // relu(%x) marked in place with no operand at its offset.
    let g = load("models/relu_of_input.kiln");
    let mut plan = compile(&g).plan;
    let s = plan
        .steps
        .iter()
        .position(|s| s.op.name() == "relu")
        .unwrap();
    plan.steps[s].in_place = true;
    let err = verify_plan(&plan).unwrap_err().to_string();
    assert!(err.contains("marked in place"), "{err}");

    // %relu over %conv while %gate still reads %conv.
    let g = load("models/conv_two_users.kiln");
    let mut plan = PassManager::new(OptLevel::O0)
        .run(g, &mut std::io::sink())
        .unwrap()
        .plan;
    let conv_at = offset(&plan, "conv");
    let relu = plan.buffers.iter().position(|b| b.name == "relu").unwrap();
    plan.buffers[relu].kind = BufferKind::Intermediate { offset: conv_at };
    let s = plan.steps.iter().position(|s| s.output.0 == relu).unwrap();
    plan.steps[s].in_place = true;
    let err = verify_plan(&plan).unwrap_err().to_string();
    assert!(err.contains("%conv is read later by %gate"), "{err}");
}

#[test]
fn memory_stats_agree_with_the_plan() {
    for (name, fixture) in passes_support::MODELS {
        let c = compile(&load(fixture));
        assert_eq!(memory_stats(&c.plan), c.memory, "{name}");
        assert!(c.memory.arena_bytes >= c.memory.lower_bound_bytes, "{name}");
    }
}
