//! Snapshots of what the optimizer does to every example model: the graph before any pass
//! (`<model>.input`), after each graph pass of `-O2` (`<model>.<pass>`, refusals as trailing
//! comments), and the final plan (`<model>.plan`), in the repository's top-level `snapshots/`.
//!
//! Reading them is how to learn what Kiln does; review changes with `cargo insta review` (or rerun
//! with `INSTA_UPDATE=always` and read the diff).

mod passes_support;

use kiln::passes::{print_with_remarks, OptLevel, PassManager, StageIr};
use passes_support::{load, MODELS};
use std::path::Path;

/// Snapshots every stage of `-O2` on the model called `name`.
fn snapshot_model(name: &str) {
    let fixture = MODELS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .unwrap();
    let graph = load(fixture);
    let graph_name = graph.name.clone();
    let pipeline = OptLevel::O2.pipeline();
    let mut stages: Vec<(String, String, String)> = Vec::new();
    PassManager::new(OptLevel::O2)
        .run_observed(graph, &mut std::io::sink(), &mut |stage, ir| {
            let position = pipeline.iter().position(|p| *p == stage);
            let (text, description) = match (stage, ir) {
                ("input", StageIr::Graph(g, r)) => (
                    print_with_remarks(g, r),
                    format!("{name} before any pass ({fixture})"),
                ),
                (_, StageIr::Graph(g, r)) => (
                    print_with_remarks(g, r),
                    format!(
                        "{name} after pass {} of -O2: {stage}",
                        position.map_or(0, |p| p + 1)
                    ),
                ),
                ("memory_plan", StageIr::Plan(p, r)) => (
                    kiln::plan_text::print_plan(&graph_name, p, r),
                    format!("{name}: the final plan of -O2"),
                ),
                _ => return Ok(()),
            };
            let stage = if stage == "memory_plan" {
                "plan"
            } else {
                stage
            };
            stages.push((format!("{name}.{stage}"), text, description));
            Ok(())
        })
        .unwrap();
    assert_eq!(stages.len(), pipeline.len());
    for (snapshot, text, description) in stages {
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("../snapshots"));
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_description(description);
        settings.bind(|| insta::assert_snapshot!(snapshot, text));
    }
}

#[test]
fn simple_cnn() {
    snapshot_model("simple_cnn");
}

#[test]
fn residual_block() {
    snapshot_model("residual_block");
}

#[test]
fn classifier() {
    snapshot_model("classifier");
}

#[test]
fn mini_resnet() {
    snapshot_model("mini_resnet");
}

#[test]
fn relu_after_pool() {
    snapshot_model("relu_after_pool");
}

#[test]
fn conv_two_users() {
    snapshot_model("conv_two_users");
}

#[test]
fn relu_of_input() {
    snapshot_model("relu_of_input");
}

#[test]
fn bn_after_conv_bias() {
    snapshot_model("bn_after_conv_bias");
}

#[test]
fn every_model_has_a_test() {
    let tests = include_str!("snapshots.rs");
    for (name, _) in MODELS {
        assert!(
            tests.contains(&format!("fn {name}()")),
            "no snapshot test for {name}"
        );
    }
}
