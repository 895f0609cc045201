//! `kiln debug bisect MODEL --input x.npy`: runs the interpreter on the unoptimized graph, then
//! after every pass of a pipeline, and names the first pass whose outputs diverge from the
//! unoptimized ones.
//!
//! A wrong result is either a pass bug or a back-end bug; the interpreter after each pass separates
//! the passes from one another. After a graph pass the graph is lowered as is (naive layout); after
//! a plan pass (`inplace`, `memory_plan`) the plan itself runs, so a wrong in-place decision or an
//! overlapping layout shows too.
//!
//! ```text
//! stage             max |diff|  result
//! dce                        0  ok
//! fold_batch_norm      2.4e-7  ok
//! fuse_activation         1.5  DIVERGES
//! …
//! first divergent pass: fuse_activation (rtol 1e-4, atol 1e-5)
//! ```

use crate::error::Result;
use crate::ir::graph::Graph;
use crate::lower::lower;
use crate::passes::{PassManager, StageIr};
use kiln_runtime::interpreter;
use kiln_runtime::Tensor;
use std::fmt;

/// Relative tolerance of the comparison (the golden tests' tolerance).
pub const RTOL: f32 = 1e-4;
/// Absolute tolerance of the comparison.
pub const ATOL: f32 = 1e-5;

/// The outcome of one stage.
#[derive(Debug, Clone, PartialEq)]
pub struct StageOutcome {
    /// The pass after which the interpreter ran.
    pub stage: String,
    /// The largest absolute difference from the unoptimized outputs over all outputs (NaN when the
    /// shapes differ or a NaN meets a number).
    pub max_abs_diff: f32,
    /// Whether every output is within tolerance (and has its reference's shape).
    pub matches: bool,
    /// Why the stage could not be run, if it could not (the pass failed, or the interpreter did).
    pub error: Option<String>,
}

/// The outcome of every stage, in pipeline order.
#[derive(Debug, Clone, PartialEq)]
pub struct Bisection {
    /// One entry per pass that ran (and one for a pass that failed).
    pub stages: Vec<StageOutcome>,
    /// The relative tolerance used.
    pub rtol: f32,
    /// The absolute tolerance used.
    pub atol: f32,
}

impl Bisection {
    /// The first stage whose outputs diverge (or that failed).
    pub fn first_divergent(&self) -> Option<&StageOutcome> {
        self.stages.iter().find(|s| !s.matches)
    }
}

impl fmt::Display for Bisection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<18} {:>11}  result", "stage", "max |diff|")?;
        for s in &self.stages {
            let result = match (&s.error, s.matches) {
                (Some(e), _) => format!("FAILED: {e}"),
                (None, true) => "ok".to_string(),
                (None, false) => "DIVERGES".to_string(),
            };
            writeln!(f, "{:<18} {:>11.2e}  {result}", s.stage, s.max_abs_diff)?;
        }
        match self.first_divergent() {
            Some(s) => writeln!(
                f,
                "first divergent pass: {} (rtol {:e}, atol {:e})",
                s.stage, self.rtol, self.atol
            ),
            None => writeln!(
                f,
                "no pass diverges (rtol {:e}, atol {:e})",
                self.rtol, self.atol
            ),
        }
    }
}

/// Bisects `pm`'s pipeline on `graph` (bound weights) and `inputs`, with [`RTOL`] and [`ATOL`].
pub fn bisect(graph: &Graph, inputs: &[Tensor], pm: &PassManager) -> Result<Bisection> {
    bisect_with_tolerance(graph, inputs, pm, RTOL, ATOL)
}

/// [`bisect`] with explicit tolerances. An error means the unoptimized graph itself cannot run; a
/// pass that fails is reported as the stage that failed.
pub fn bisect_with_tolerance(
    graph: &Graph,
    inputs: &[Tensor],
    pm: &PassManager,
    rtol: f32,
    atol: f32,
) -> Result<Bisection> {
    crate::ir::verify::verify(graph)?;
    let reference = interpreter::run(&lower(graph)?, inputs)?;
    let mut stages: Vec<StageOutcome> = Vec::new();
    let compare = |stage: &str, got: Result<Vec<Tensor>>| -> StageOutcome {
        let got = match got {
            Ok(got) => got,
            Err(e) => {
                return StageOutcome {
                    stage: stage.to_string(),
                    max_abs_diff: f32::NAN,
                    matches: false,
                    error: Some(e.to_string()),
                }
            }
        };
        let same_count = got.len() == reference.len();
        let max_abs_diff = got
            .iter()
            .zip(&reference)
            .map(|(g, r)| g.max_abs_diff(r))
            .fold(0.0f32, |m, d| {
                if m.is_nan() || d.is_nan() {
                    f32::NAN
                } else {
                    m.max(d)
                }
            });
        let matches = same_count
            && got
                .iter()
                .zip(&reference)
                .all(|(g, r)| g.allclose(r, rtol, atol));
        StageOutcome {
            stage: stage.to_string(),
            max_abs_diff,
            matches,
            error: None,
        }
    };
    let run = pm.run_observed(graph.clone(), &mut std::io::sink(), &mut |stage, ir| {
        let outputs = match (stage, ir) {
            ("input", _) | ("lower", _) => return Ok(()),
            (_, StageIr::Graph(g, _)) => lower(g).and_then(|p| Ok(interpreter::run(&p, inputs)?)),
            (_, StageIr::Plan(p, _)) => interpreter::run(p, inputs).map_err(Into::into),
        };
        stages.push(compare(stage, outputs));
        Ok(())
    });
    if let Err(e) = run {
        // The pass after the last one observed is the one that failed.
        let names = pm.pass_names();
        let failed = names.get(stages.len()).copied().unwrap_or("lower");
        stages.push(StageOutcome {
            stage: failed.to_string(),
            max_abs_diff: f32::NAN,
            matches: false,
            error: Some(e.to_string()),
        });
    }
    Ok(Bisection { stages, rtol, atol })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::text::parse;
    use crate::passes::{Changed, OptLevel, Pass};
    use kiln_runtime::ops::Op;

    /// A deliberately wrong activation fusion: it removes the activation after a conv but forgets
    /// to put it in the epilogue — the kind of bug bisection is for.
    struct ForgetfulFuseActivation;

    impl Pass for ForgetfulFuseActivation {
        fn name(&self) -> &'static str {
            "forgetful_fuse_activation"
        }

        fn run(&self, graph: &mut Graph) -> Result<Changed> {
            let victims: Vec<_> = graph
                .values()
                .filter(|&v| matches!(graph.op(v), Some(Op::Activation(_))))
                .filter(|&v| {
                    graph
                        .operands(v)
                        .first()
                        .is_some_and(|&p| matches!(graph.op(p), Some(Op::Conv2d(_))))
                })
                .collect();
            for &v in &victims {
                let producer = graph.operands(v)[0];
                crate::passes::rewrite::bypass(graph, v, producer)?;
            }
            Ok(Changed::by(victims.len()))
        }
    }

    /// conv (one output channel, weight 1, bias −1) → relu, on x = [0, 1, 2, 3]:
    /// conv gives x − 1 = [−1, 0, 1, 2]; relu gives [0, 0, 1, 2].
    fn model() -> (Graph, Vec<Tensor>) {
        let mut g = parse(
            "graph m(%x: f32[1, 1, 2, 2]) {\n  param %w: f32[1, 1, 1, 1]\n  param %b: f32[1]\n  %c = conv2d(%x, %w, %b) {stride=[1, 1], padding=[0, 0, 0, 0], dilation=[1, 1], groups=1} : f32[1, 1, 2, 2]\n  %r = relu(%c) : f32[1, 1, 2, 2]\n  return %r\n}\n",
        )
        .unwrap();
        let w = g.find("w").unwrap();
        let b = g.find("b").unwrap();
        g.node_mut(w).kind =
            crate::NodeKind::Param(Some(Tensor::full(&[1, 1, 1, 1], 1.0).unwrap()));
        g.node_mut(b).kind = crate::NodeKind::Param(Some(Tensor::full(&[1], -1.0).unwrap()));
        let x = Tensor::from_vec(vec![0.0, 1.0, 2.0, 3.0], &[1, 1, 2, 2]).unwrap();
        (g, vec![x])
    }

    #[test]
    fn names_the_deliberately_wrong_pass() {
        let (g, x) = model();
        let pm = PassManager::from_names(&["dce", "fold_batch_norm"])
            .unwrap()
            .then(ForgetfulFuseActivation)
            .then(crate::passes::fuse_pool::FusePool)
            .then_plan(crate::passes::inplace::InPlace)
            .then_plan(crate::passes::memory_plan::MemoryPlan);
        let report = bisect(&g, &x, &pm).unwrap();
        let names: Vec<&str> = report.stages.iter().map(|s| s.stage.as_str()).collect();
        assert_eq!(
            names,
            [
                "dce",
                "fold_batch_norm",
                "forgetful_fuse_activation",
                "fuse_pool",
                "inplace",
                "memory_plan"
            ]
        );
        let first = report.first_divergent().unwrap();
        assert_eq!(first.stage, "forgetful_fuse_activation");
        // Without the relu the output is [−1, 0, 1, 2] instead of [0, 0, 1, 2]: off by 1 at one place.
        assert_eq!(first.max_abs_diff, 1.0);
        assert!(report
            .to_string()
            .contains("first divergent pass: forgetful_fuse_activation"));
    }

    #[test]
    fn the_real_pipeline_does_not_diverge() {
        let (g, x) = model();
        let report = bisect(&g, &x, &PassManager::new(OptLevel::O2)).unwrap();
        assert_eq!(report.stages.len(), OptLevel::O2.pipeline().len());
        assert!(report.first_divergent().is_none(), "{report}");
    }
}
