//! The optimizer: the [`Pass`] trait, one file per pass, the pipeline of each [`OptLevel`] and the
//! [`PassManager`] that runs a pipeline, verifies after every pass and lowers the result to a
//! [`Plan`].
//!
//! Passes come in two kinds that share one list of names ([`PASS_NAMES`]):
//! - graph passes ([`Pass`]) rewrite the [`Graph`]: `dce`, `fold_batch_norm`, `fuse_activation`,
//!   `fuse_residual`, `fuse_pool`;
//! - plan passes ([`PlanPass`]) decide on the lowered schedule, because liveness is a property of
//!   the schedule: `inplace`, `memory_plan`. They run after lowering, so in a pipeline they come
//!   after every graph pass.
//!
//! Every candidate a pass refuses keeps its reason ([`Remarks`]), shown as a trailing comment in
//! the text forms and listed by [`Compiled::explain`].
//!
//! # Adding a pass
//! 1. A file `passes/NAME.rs` with a unit struct implementing [`Pass`] (or [`PlanPass`]), its
//!    module doc explaining the rewrite with a tiny IR example. Write a `candidate` function that
//!    checks the pattern with guard clauses and returns the rewrite or a [`Remark`] saying why not;
//!    `run` applies the first good candidate until none is left ([`rewrite::fixpoint`]), and
//!    `explain` lists the refused ones. Edit the graph only through [`rewrite`]'s helpers.
//! 2. Its name in [`PASS_NAMES`] and in `Stage::by_name`; its place in the `-O1`/`-O2` lists, with
//!    a comment on what it must run before or after.
//! 3. Tests: in `tests/passes_rewrites.rs` (or `passes_plan.rs`), that it fires (the structure
//!    changed) and that the interpreter gives the same numbers before and after; that it refuses
//!    where it must, with the exact remark; a case in `tests/random_graphs.rs` if it needs a shape
//!    the generator does not make; then review the new `snapshots/` with `cargo insta review`.
//!
//! ```
//! use kiln::passes::{OptLevel, PassManager};
//!
//! let graph = kiln::ir::text::parse(
//!     "graph g(%x: f32[1, 4]) {\n  %a = relu(%x) : f32[1, 4]\n  %dead = sigmoid(%x) : f32[1, 4]\n  %b = tanh(%a) : f32[1, 4]\n  return %b\n}\n",
//! ).unwrap();
//! let compiled = PassManager::new(OptLevel::O2).run(graph, &mut std::io::sink()).unwrap();
//! assert!(compiled.graph.find("dead").is_none());
//! // %a is an intermediate read only by %b: tanh writes over it. relu cannot write over %x, an input.
//! assert_eq!(compiled.stats().in_place, 1);
//! assert!(compiled.plan_text().contains("not in place: %x is a graph input"));
//! ```

pub mod dce;
pub mod dot;
pub mod fold_batch_norm;
pub mod fuse_activation;
pub mod fuse_pool;
pub mod fuse_residual;
pub mod inplace;
pub mod liveness;
pub mod memory_plan;
pub mod remarks;
pub mod rewrite;

pub use remarks::{print_with_remarks, Remark, Remarks};

use crate::error::VerifyError;
use crate::error::{Error, Result};
use crate::ir::graph::Graph;
use crate::ir::verify::verify;
use kiln_runtime::plan::{MemoryStats, Plan};
use std::fmt;
use std::io::Write;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// What a pass did: the number of rewrites it made (0: the IR is unchanged).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changed {
    /// Rewrites made: nodes fused or removed, steps put in place, buffers moved.
    pub rewrites: usize,
}

impl Changed {
    /// Nothing changed.
    pub const NONE: Changed = Changed { rewrites: 0 };

    /// `n` rewrites.
    pub fn by(n: usize) -> Changed {
        Changed { rewrites: n }
    }

    /// Whether the pass changed anything.
    pub fn any(self) -> bool {
        self.rewrites > 0
    }
}

/// A rewrite of the graph. Its name comes from its type; it checks its pattern with guard clauses
/// and edits the graph through the helpers of [`rewrite`].
pub trait Pass {
    /// The pass's name in [`PASS_NAMES`] and on the command line.
    fn name(&self) -> &'static str;

    /// Rewrites `graph`; an error is a bug or an unsupported graph, never a refusal.
    fn run(&self, graph: &mut Graph) -> Result<Changed>;

    /// The candidates this pass refuses on `graph`, each with its reason. The manager calls it right
    /// after [`run`](Pass::run), when every candidate still present is a refused one.
    fn explain(&self, graph: &Graph) -> Vec<Remark> {
        let _ = graph;
        Vec::new()
    }
}

/// A decision on the lowered [`Plan`] (in place, memory layout). Same shape as [`Pass`].
pub trait PlanPass {
    /// The pass's name in [`PASS_NAMES`].
    fn name(&self) -> &'static str;

    /// Changes `plan`; the manager runs the plan verifier afterwards, always.
    fn run(&self, plan: &mut Plan) -> Result<Changed>;

    /// The candidates this pass refuses on `plan`, each with its reason (called after `run`).
    fn explain(&self, plan: &Plan) -> Vec<Remark> {
        let _ = plan;
        Vec::new()
    }
}

/// Every pass, by name, in the order the `-O2` pipeline runs them.
pub const PASS_NAMES: &[&str] = &[
    "dce",
    "fold_batch_norm",
    "fuse_activation",
    "fuse_residual",
    "fuse_pool",
    "inplace",
    "memory_plan",
];

/// `-O1`: the rewrites that only ever remove work.
const O1: &[&str] = &[
    // First, so that the use counts the fusions check count only live users.
    "dce",
    // Before fuse_activation: the BatchNorm sits between a conv and its ReLU, and only a conv with
    // an empty epilogue can absorb a BatchNorm.
    "fold_batch_norm",
    "fuse_activation",
];

/// `-O2`: `-O1`, then the rest.
const O2: &[&str] = &[
    "dce",
    "fold_batch_norm",
    "fuse_activation",
    // After fuse_activation, which leaves `relu(add(conv, y))` alone (its relu follows the add);
    // fuse_residual takes the add and then the relu.
    "fuse_residual",
    // Last of the fusions: the pool comes after the activation (and residual) in the epilogue.
    "fuse_pool",
    // On the lowered plan. In place first, so that memory_plan places each in-place chain as one
    // storage.
    "inplace",
    "memory_plan",
];

/// An optimization level (`-O0`, `-O1`, `-O2`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OptLevel {
    /// No pass: the graph as written, intermediates laid out one after the other.
    O0,
    /// Dead code, BatchNorm folding, activation fusion.
    O1,
    /// Everything: also residual and pool fusion, in place, memory planning.
    #[default]
    O2,
}

impl OptLevel {
    /// The names of the passes this level runs, in order.
    pub fn pipeline(self) -> &'static [&'static str] {
        match self {
            OptLevel::O0 => &[],
            OptLevel::O1 => O1,
            OptLevel::O2 => O2,
        }
    }
}

impl FromStr for OptLevel {
    type Err = Error;

    /// `0`, `1`, `2`, with or without a leading `O` or `-O`.
    fn from_str(s: &str) -> Result<OptLevel> {
        match s.trim_start_matches('-').trim_start_matches('O') {
            "0" => Ok(OptLevel::O0),
            "1" => Ok(OptLevel::O1),
            "2" => Ok(OptLevel::O2),
            _ => Err(Error::Usage(format!(
                "unknown optimization level `{s}`; expected -O0, -O1 or -O2"
            ))),
        }
    }
}

impl fmt::Display for OptLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = match self {
            OptLevel::O0 => 0,
            OptLevel::O1 => 1,
            OptLevel::O2 => 2,
        };
        write!(f, "-O{n}")
    }
}

/// One stage of a pipeline.
enum Stage {
    Graph(Box<dyn Pass>),
    Plan(Box<dyn PlanPass>),
}

impl Stage {
    fn name(&self) -> &'static str {
        match self {
            Stage::Graph(p) => p.name(),
            Stage::Plan(p) => p.name(),
        }
    }

    /// The pass called `name`.
    fn by_name(name: &str) -> Option<Stage> {
        Some(match name {
            "dce" => Stage::Graph(Box::new(dce::Dce)),
            "fold_batch_norm" => Stage::Graph(Box::new(fold_batch_norm::FoldBatchNorm)),
            "fuse_activation" => Stage::Graph(Box::new(fuse_activation::FuseActivation)),
            "fuse_residual" => Stage::Graph(Box::new(fuse_residual::FuseResidual)),
            "fuse_pool" => Stage::Graph(Box::new(fuse_pool::FusePool)),
            "inplace" => Stage::Plan(Box::new(inplace::InPlace)),
            "memory_plan" => Stage::Plan(Box::new(memory_plan::MemoryPlan)),
            _ => return None,
        })
    }
}

/// Which IR to print after which pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum PrintAfter {
    #[default]
    Nothing,
    All,
    Names(Vec<String>),
}

/// The IR at one point of a pipeline, with the remarks made so far, as
/// [`PassManager::run_observed`] shows it.
#[derive(Debug, Clone, Copy)]
pub enum StageIr<'a> {
    /// After a graph pass (or, for the stage named `input`, before any).
    Graph(&'a Graph, &'a Remarks),
    /// After lowering (the stage named `lower`) or after a plan pass.
    Plan(&'a Plan, &'a Remarks),
}

/// Runs a pipeline of passes: verifies the graph after every graph pass (always in debug builds and
/// tests, on request otherwise), lowers it, runs the plan passes with the plan verifier after each,
/// and optionally prints the IR after passes and times them.
pub struct PassManager {
    stages: Vec<Stage>,
    verify_each: bool,
    print_after: PrintAfter,
    time_passes: bool,
}

impl fmt::Debug for PassManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PassManager")
            .field("passes", &self.pass_names())
            .field("verify_each", &self.verify_each)
            .field("print_after", &self.print_after)
            .field("time_passes", &self.time_passes)
            .finish()
    }
}

impl PassManager {
    /// The pipeline of `level`.
    pub fn new(level: OptLevel) -> PassManager {
        let stages = level
            .pipeline()
            .iter()
            .filter_map(|n| Stage::by_name(n))
            .collect();
        PassManager::with_stages(stages)
    }

    /// An empty pipeline (add passes with [`then`](PassManager::then)).
    pub fn empty() -> PassManager {
        PassManager::with_stages(Vec::new())
    }

    fn with_stages(stages: Vec<Stage>) -> PassManager {
        PassManager {
            stages,
            verify_each: cfg!(debug_assertions),
            print_after: PrintAfter::Nothing,
            time_passes: false,
        }
    }

    /// The passes named in `names` (`--passes a,b,c`), in that order. An unknown name is an error
    /// listing the known ones; a graph pass after a plan pass, or `inplace` after `memory_plan`, is an
    /// error saying why.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<PassManager> {
        let mut stages: Vec<Stage> = Vec::new();
        for name in names {
            let name = name.as_ref().trim();
            let stage = Stage::by_name(name).ok_or_else(|| unknown_pass(name))?;
            if let (Stage::Graph(_), Some(plan)) =
                (&stage, stages.iter().find(|s| matches!(s, Stage::Plan(_))))
            {
                return Err(Error::Usage(format!(
                    "pass `{name}` rewrites the graph, so it must come before `{}`, which works on the lowered plan",
                    plan.name()
                )));
            }
            if name == "inplace" && stages.iter().any(|s| s.name() == "memory_plan") {
                return Err(Error::Usage(
                    "pass `inplace` must come before `memory_plan`, which places its in-place chains"
                        .into(),
                ));
            }
            stages.push(stage);
        }
        Ok(PassManager::with_stages(stages))
    }

    /// Parses `--passes a,b,c`.
    pub fn from_list(list: &str) -> Result<PassManager> {
        let names: Vec<&str> = list.split(',').filter(|n| !n.trim().is_empty()).collect();
        PassManager::from_names(&names)
    }

    /// Appends a graph pass (after the graph passes already there; plan passes always run last).
    pub fn then(mut self, pass: impl Pass + 'static) -> PassManager {
        let at = self
            .stages
            .iter()
            .position(|s| matches!(s, Stage::Plan(_)))
            .unwrap_or(self.stages.len());
        self.stages.insert(at, Stage::Graph(Box::new(pass)));
        self
    }

    /// Appends a plan pass.
    pub fn then_plan(mut self, pass: impl PlanPass + 'static) -> PassManager {
        self.stages.push(Stage::Plan(Box::new(pass)));
        self
    }

    /// Runs the verifier after every graph pass (`--verify-each`); always on in debug builds.
    pub fn verify_each(mut self, on: bool) -> PassManager {
        self.verify_each = on || cfg!(debug_assertions);
        self
    }

    /// Prints the IR after every pass (`--print-after-all`).
    pub fn print_after_all(mut self, on: bool) -> PassManager {
        if on {
            self.print_after = PrintAfter::All;
        }
        self
    }

    /// Prints the IR after each pass called `name` (`--print-after NAME`, repeatable); an unknown
    /// name is an error listing the known ones.
    pub fn print_after(mut self, name: &str) -> Result<PassManager> {
        if !PASS_NAMES.contains(&name) {
            return Err(unknown_pass(name));
        }
        match &mut self.print_after {
            PrintAfter::All => {}
            PrintAfter::Names(names) => names.push(name.to_string()),
            PrintAfter::Nothing => self.print_after = PrintAfter::Names(vec![name.to_string()]),
        }
        Ok(self)
    }

    /// Reports each pass's run time at the end of [`run`](PassManager::run) (`--time-passes`).
    pub fn time_passes(mut self, on: bool) -> PassManager {
        self.time_passes = on;
        self
    }

    /// The names of the pipeline's passes, in order.
    pub fn pass_names(&self) -> Vec<&'static str> {
        self.stages.iter().map(Stage::name).collect()
    }

    fn prints_after(&self, name: &str) -> bool {
        match &self.print_after {
            PrintAfter::Nothing => false,
            PrintAfter::All => true,
            PrintAfter::Names(names) => names.iter().any(|n| n == name),
        }
    }

    /// Optimizes and lowers `graph`. Printed IR (`--print-after…`) and the timing table
    /// (`--time-passes`) go to `log`, as each pass finishes, so that they are there even when a
    /// later pass fails. Lowering needs every parameter bound; [`optimize`](PassManager::optimize)
    /// does not.
    pub fn run(&self, graph: Graph, log: &mut dyn Write) -> Result<Compiled> {
        self.run_observed(graph, log, &mut |_, _| Ok(()))
    }

    /// Runs only the graph passes (for `--emit ir` or `dot`, which need no plan and so no weights;
    /// BatchNorm folding then refuses, saying the weights are not bound).
    pub fn optimize(&self, graph: Graph, log: &mut dyn Write) -> Result<Optimized> {
        let optimized = self.graph_stages(graph, log, &mut |_, _| Ok(()))?;
        if self.time_passes {
            write!(log, "{}", timing_report(&optimized.timings)).map_err(log_error)?;
        }
        Ok(optimized)
    }

    /// [`run`](PassManager::run), calling `observe` with the IR before any pass (stage `input`),
    /// after every graph pass, after lowering (stage `lower`) and after every plan pass. Snapshot
    /// tests and `kiln debug bisect` watch the pipeline through it.
    pub fn run_observed(
        &self,
        graph: Graph,
        log: &mut dyn Write,
        observe: &mut dyn FnMut(&str, StageIr<'_>) -> Result<()>,
    ) -> Result<Compiled> {
        let Optimized {
            graph,
            mut remarks,
            mut rewrites,
            mut timings,
            unoptimized_bytes,
        } = self.graph_stages(graph, log, observe)?;
        let start = Instant::now();
        let mut plan = crate::lower::lower(&graph)?;
        timings.push(("lower", start.elapsed()));
        observe("lower", StageIr::Plan(&plan, &remarks))?;
        let plan_passes = self.stages.iter().filter_map(|s| match s {
            Stage::Plan(p) => Some(p),
            Stage::Graph(_) => None,
        });
        for pass in plan_passes {
            let name = pass.name();
            let start = Instant::now();
            let changed = pass
                .run(&mut plan)
                .map_err(|e| Error::Graph(format!("pass `{name}` failed: {e}")))?;
            timings.push((name, start.elapsed()));
            rewrites.push((name, changed.rewrites));
            // The plan verifier runs whenever a plan is built, whatever the build profile.
            memory_plan::verify_plan(&plan).map_err(|e| {
                Error::Graph(format!("pass `{name}` produced an invalid plan: {e}"))
            })?;
            remarks.replace_pass(name, pass.explain(&plan));
            if self.prints_after(name) {
                let text = crate::plan_text::print_plan(&graph.name, &plan, &remarks);
                writeln!(log, "; after {name}")
                    .and_then(|()| write!(log, "{text}"))
                    .map_err(log_error)?;
            }
            observe(name, StageIr::Plan(&plan, &remarks))?;
        }
        if self.time_passes {
            write!(log, "{}", timing_report(&timings)).map_err(log_error)?;
        }
        Ok(Compiled {
            memory: memory_plan::memory_stats(&plan),
            graph,
            plan,
            remarks,
            rewrites,
            timings,
            unoptimized_bytes,
        })
    }

    /// The graph passes, each followed by the verifier (when on), its remarks, printing and
    /// `observe`.
    fn graph_stages(
        &self,
        mut graph: Graph,
        log: &mut dyn Write,
        observe: &mut dyn FnMut(&str, StageIr<'_>) -> Result<()>,
    ) -> Result<Optimized> {
        verify(&graph)?;
        let unoptimized_bytes = graph
            .values()
            .filter(|&v| graph.op(v).is_some())
            .map(|v| graph.ty(v).bytes())
            .sum();
        let mut remarks = Remarks::new();
        observe("input", StageIr::Graph(&graph, &remarks))?;
        let mut rewrites: Vec<(&'static str, usize)> = Vec::new();
        let mut timings: Vec<(&'static str, Duration)> = Vec::new();
        let graph_passes = self.stages.iter().filter_map(|s| match s {
            Stage::Graph(p) => Some(p),
            Stage::Plan(_) => None,
        });
        for pass in graph_passes {
            let name = pass.name();
            let start = Instant::now();
            let changed = pass
                .run(&mut graph)
                .map_err(|e| Error::Graph(format!("pass `{name}` failed: {e}")))?;
            timings.push((name, start.elapsed()));
            rewrites.push((name, changed.rewrites));
            if self.verify_each {
                verify(&graph).map_err(|e| broken_by(name, e))?;
            }
            remarks.replace_pass(name, pass.explain(&graph));
            remarks.retain_values(|v| graph.find(v).is_some());
            if self.prints_after(name) {
                writeln!(log, "; after {name}")
                    .and_then(|()| write!(log, "{}", print_with_remarks(&graph, &remarks)))
                    .map_err(log_error)?;
            }
            observe(name, StageIr::Graph(&graph, &remarks))?;
        }
        Ok(Optimized {
            graph,
            remarks,
            rewrites,
            timings,
            unoptimized_bytes,
        })
    }
}

fn unknown_pass(name: &str) -> Error {
    Error::Usage(format!(
        "unknown pass `{name}`; the passes are: {}",
        PASS_NAMES.join(", ")
    ))
}

/// A verifier error after pass `pass`: the same errors, each saying which pass broke the node.
fn broken_by(pass: &str, e: VerifyError) -> Error {
    Error::Verify(VerifyError {
        errors: e
            .errors
            .into_iter()
            .map(|(node, msg)| (node, format!("after pass `{pass}`: {msg}")))
            .collect(),
    })
}

fn log_error(e: std::io::Error) -> Error {
    Error::Runtime(kiln_runtime::RuntimeError::Io {
        path: "<log>".into(),
        source: e,
    })
}

/// The result of the graph passes alone ([`PassManager::optimize`]).
#[derive(Debug, Clone)]
pub struct Optimized {
    /// The optimized graph.
    pub graph: Graph,
    /// Every refused candidate with its reason.
    pub remarks: Remarks,
    /// Rewrites per pass run, in pipeline order.
    pub rewrites: Vec<(&'static str, usize)>,
    /// Run time of every pass, in order.
    pub timings: Vec<(&'static str, Duration)>,
    /// The naive bytes of the graph before any pass: the sum of every op's result.
    pub unoptimized_bytes: usize,
}

impl Optimized {
    /// `--emit ir`: the optimized graph's text form, refusals as trailing comments.
    pub fn ir_text(&self) -> String {
        print_with_remarks(&self.graph, &self.remarks)
    }

    /// `--emit dot`: the optimized graph in Graphviz form.
    pub fn dot(&self) -> String {
        dot::to_dot(&self.graph)
    }

    /// `--explain`: each pass's rewrites and every refusal with its reason.
    pub fn explain(&self) -> String {
        remarks::explain(&self.rewrites, &self.remarks)
    }
}

/// `--time-passes`: one line per pass with its run time, then the total.
fn timing_report(timings: &[(&'static str, Duration)]) -> String {
    let mut out = String::from("; pass timings\n");
    let total: Duration = timings.iter().map(|(_, d)| *d).sum();
    for (name, d) in timings {
        out.push_str(&format!(
            ";   {name:<16} {:>10.3} ms\n",
            d.as_secs_f64() * 1e3
        ));
    }
    out.push_str(&format!(
        ";   {:<16} {:>10.3} ms\n",
        "total",
        total.as_secs_f64() * 1e3
    ));
    out
}

/// The result of a pipeline: the optimized graph, its plan, and what the passes did and refused.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The optimized graph.
    pub graph: Graph,
    /// The lowered, memory-planned program.
    pub plan: Plan,
    /// Every refused candidate with its reason.
    pub remarks: Remarks,
    /// Rewrites per pass run, in pipeline order.
    pub rewrites: Vec<(&'static str, usize)>,
    /// Run time of every pass (and of lowering), in order.
    pub timings: Vec<(&'static str, Duration)>,
    /// Arena, naive and lower-bound bytes of [`plan`](Compiled::plan).
    pub memory: MemoryStats,
    /// The naive bytes of the graph before any pass (what `-O0` needs): the sum of every op's
    /// result.
    pub unoptimized_bytes: usize,
}

impl Compiled {
    /// `--emit ir`: the optimized graph's text form, refusals as trailing comments.
    pub fn ir_text(&self) -> String {
        print_with_remarks(&self.graph, &self.remarks)
    }

    /// `--emit plan`: the plan's text form.
    pub fn plan_text(&self) -> String {
        crate::plan_text::print_plan(&self.graph.name, &self.plan, &self.remarks)
    }

    /// `--emit dot`: the optimized graph in Graphviz form.
    pub fn dot(&self) -> String {
        dot::to_dot(&self.graph)
    }

    /// `--emit stats`: the counts and memory figures.
    pub fn stats(&self) -> crate::stats::Stats {
        crate::stats::Stats::of(self)
    }

    /// `--explain`: each pass's rewrites and every refusal with its reason.
    pub fn explain(&self) -> String {
        remarks::explain(&self.rewrites, &self.remarks)
    }

    /// How many rewrites the passes called `pass` made in total.
    pub fn rewrites_of(&self, pass: &str) -> usize {
        self.rewrites
            .iter()
            .filter(|(p, _)| *p == pass)
            .map(|(_, n)| n)
            .sum()
    }

    /// `--time-passes`: one line per pass (and lowering) with its run time, then the total.
    pub fn timing_report(&self) -> String {
        timing_report(&self.timings)
    }
}
