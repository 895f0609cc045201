//! The embedding API: compile a model once, run it many times, from as many threads as you like.
//!
//! ```
//! use kiln::engine::{Engine, Options};
//! use kiln_runtime::Tensor;
//!
//! let graph = kiln::ir::text::parse(
//!     "graph tiny(%x: f32[2, 3]) {\n  %y = relu(%x) : f32[2, 3]\n  return %y\n}\n",
//! ).unwrap();
//! let engine = Engine::new(Options::default()).unwrap(); // JIT, -O2, all cores
//! let model = engine.compile(graph).unwrap();           // CompiledModel: Send + Sync
//! let x = Tensor::from_vec(vec![-1.0, 2.0, -3.0, 4.0, -5.0, 6.0], &[2, 3]).unwrap();
//! let y = model.run(&[x]).unwrap();
//! assert_eq!(y[0].data(), &[0.0, 2.0, 0.0, 4.0, 0.0, 6.0]);
//! ```
//!
//! A [`CompiledModel`] owns its native code, its packed weights and a small pool of arenas: every
//! run takes an arena (or allocates one), so concurrent runs never share memory they write. Input
//! shapes are checked before native code runs; a model whose memory would exceed
//! [`Options::memory_limit`] is rejected when it is compiled, before anything is allocated.
//!
//! [`bench()`] measures a compiled model the way `kiln bench` reports it.

use crate::codegen::conv::ConvScheme;
use crate::codegen::jit::{Base, Capture, Listing};
use crate::codegen::{self, JitOptions, JitProgram, JitStats, StepInfo};
use crate::error::{Error, Result};
use crate::ir::graph::Graph;
use crate::passes::{OptLevel, PassManager};
use kiln_runtime::parallel::ThreadPool;
use kiln_runtime::plan::Plan;
use kiln_runtime::{interpreter, Tensor};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most threads an engine starts: more would only be a mistake (a typo in `--threads`).
pub const MAX_THREADS: usize = 256;

/// Which back end runs the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backend {
    /// Native code from Cranelift.
    #[default]
    Jit,
    /// The reference interpreter (the oracle; slow).
    Interpreter,
}

impl Backend {
    /// `"jit"` or `"interp"`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Jit => "jit",
            Backend::Interpreter => "interp",
        }
    }
}

/// How to compile and run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The back end.
    pub backend: Backend,
    /// The optimizer level.
    pub opt_level: OptLevel,
    /// Threads running each layer; 0 means one per hardware thread.
    pub threads: usize,
    /// The memory budget in bytes ([`kiln_runtime::budget`]): what the interpreter, or the JIT's
    /// arena, scratch, packed weights and code, may take.
    pub memory_limit: u64,
    /// What to keep of the generated code for inspection (`--emit clif|asm`).
    pub capture: Capture,
    /// Forces one conv tiling scheme (tests and experiments; `None`: chosen per layer).
    pub conv_scheme: Option<ConvScheme>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backend: Backend::Jit,
            opt_level: OptLevel::O2,
            threads: 0,
            memory_limit: codegen::DEFAULT_MEMORY_LIMIT,
            capture: Capture::default(),
            conv_scheme: None,
        }
    }
}

/// Compiles models with fixed options; the models it compiles share its thread pool.
#[derive(Debug, Clone)]
pub struct Engine {
    options: Options,
    pool: Arc<ThreadPool>,
}

impl Engine {
    /// An engine with `options` (starts the thread pool).
    pub fn new(options: Options) -> Result<Engine> {
        let threads = if options.threads == 0 {
            ThreadPool::available_threads()
        } else {
            options.threads
        };
        if threads > MAX_THREADS {
            return Err(Error::Usage(format!(
                "{threads} threads requested; at most {MAX_THREADS} are supported"
            )));
        }
        let pool = ThreadPool::new(threads)
            .map_err(|e| Error::Usage(format!("cannot start {threads} threads: {e}")))?;
        Ok(Engine {
            options,
            pool: Arc::new(pool),
        })
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Threads running each layer.
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// Verifies, optimizes (at the engine's level), lowers and compiles a graph whose parameters
    /// are bound.
    pub fn compile(&self, graph: Graph) -> Result<CompiledModel> {
        let pm = PassManager::new(self.options.opt_level);
        self.compile_with(graph, &pm, &mut std::io::sink())
    }

    /// [`compile`](Engine::compile) with a pass pipeline of the caller's (`--passes`,
    /// `--print-after…`), whose log goes to `log`. The compile time includes the passes.
    pub fn compile_with(
        &self,
        graph: Graph,
        pm: &PassManager,
        log: &mut dyn std::io::Write,
    ) -> Result<CompiledModel> {
        let start = Instant::now();
        crate::ir::verify::verify(&graph)?;
        let compiled = pm.run(graph, log)?;
        self.compile_plan_timed(compiled.plan, start)
    }

    /// Compiles an already lowered plan.
    pub fn compile_plan(&self, plan: Plan) -> Result<CompiledModel> {
        self.compile_plan_timed(plan, Instant::now())
    }

    fn compile_plan_timed(&self, plan: Plan, start: Instant) -> Result<CompiledModel> {
        plan.validate()
            .map_err(kiln_runtime::RuntimeError::InvalidPlan)?;
        let exec = match self.options.backend {
            Backend::Interpreter => {
                interpreter::check_memory(&plan, self.options.memory_limit)?;
                Exec::Interpreter
            }
            Backend::Jit => {
                let opts = JitOptions {
                    capture: self.options.capture,
                    memory_limit: self.options.memory_limit,
                    conv_scheme: self.options.conv_scheme,
                };
                Exec::Jit(Box::new(codegen::compile(&plan, &opts)?))
            }
        };
        Ok(CompiledModel {
            plan,
            exec,
            pool: Arc::clone(&self.pool),
            arenas: Mutex::new(Vec::new()),
            compile_time: start.elapsed(),
            backend: self.options.backend,
        })
    }
}

#[derive(Debug)]
enum Exec {
    Interpreter,
    Jit(Box<JitProgram>),
}

/// A model ready to run: `Send + Sync`; [`run`](CompiledModel::run) may be called from several
/// threads at once.
#[derive(Debug)]
pub struct CompiledModel {
    plan: Plan,
    exec: Exec,
    pool: Arc<ThreadPool>,
    /// Arenas of finished runs, reused by the next ones.
    arenas: Mutex<Vec<Tensor>>,
    compile_time: Duration,
    backend: Backend,
}

impl CompiledModel {
    /// The plan the model runs.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The back end.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Threads running each layer.
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// Time spent compiling (optimizer, lowering and code generation).
    pub fn compile_time(&self) -> Duration {
        self.compile_time
    }

    /// Code generation counts (`None` for the interpreter).
    pub fn jit_stats(&self) -> Option<JitStats> {
        match &self.exec {
            Exec::Jit(p) => Some(p.stats),
            Exec::Interpreter => None,
        }
    }

    /// The captured CLIF / disassembly of every generated function (empty unless the engine's
    /// [`Options::capture`] asked for them).
    pub fn listings(&self) -> &[Listing] {
        match &self.exec {
            Exec::Jit(p) => p.listings(),
            Exec::Interpreter => &[],
        }
    }

    /// The captured CLIF of every generated function, each under a `; function NAME` line (for
    /// `kiln compile --emit clif`; empty unless [`Options::capture`] asked for CLIF).
    pub fn clif_text(&self) -> String {
        listing_text(self.listings(), |l| l.clif.as_deref())
    }

    /// Cranelift's disassembly of every generated function, each under a `; function NAME` line
    /// (for `kiln compile --emit asm`; empty unless [`Options::capture`] asked for it).
    pub fn asm_text(&self) -> String {
        listing_text(self.listings(), |l| l.asm.as_deref())
    }

    /// Per plan step: its name (op and epilogue), result shape and flops.
    pub fn steps(&self) -> Vec<StepInfo> {
        match &self.exec {
            Exec::Jit(p) => p.steps.clone(),
            Exec::Interpreter => self
                .plan
                .steps
                .iter()
                .map(|s| StepInfo {
                    name: codegen::step_name(&s.op),
                    shape: self.plan.buffer(s.output).shape.clone(),
                    flops: codegen::step_flops(&self.plan, s),
                    kernel: "",
                })
                .collect(),
        }
    }

    /// Flops of one run (conv and linear multiply-adds, 2 each).
    pub fn flops(&self) -> u64 {
        self.plan
            .steps
            .iter()
            .map(|s| codegen::step_flops(&self.plan, s))
            .sum()
    }

    /// Shapes of the inputs, in call order.
    pub fn input_shapes(&self) -> Vec<Vec<usize>> {
        self.plan
            .inputs
            .iter()
            .map(|&b| self.plan.buffer(b).shape.clone())
            .collect()
    }

    /// Shapes of the outputs, in return order.
    pub fn output_shapes(&self) -> Vec<Vec<usize>> {
        self.plan
            .outputs
            .iter()
            .map(|&b| self.plan.buffer(b).shape.clone())
            .collect()
    }

    /// Floats of arena a run needs ([`run_with_arena`](Self::run_with_arena)).
    pub fn arena_floats(&self) -> usize {
        match &self.exec {
            Exec::Jit(p) => p.arena_bytes / 4,
            Exec::Interpreter => self.plan.arena_bytes / 4,
        }
    }

    /// Runs the model on `inputs` (checked against the declared shapes first).
    pub fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        interpreter::check_inputs(&self.plan, inputs)?;
        let Exec::Jit(program) = &self.exec else {
            return Ok(interpreter::run(&self.plan, inputs)?);
        };
        let mut arena = self.take_arena(program)?;
        let slices: Vec<&[f32]> = inputs.iter().map(Tensor::data).collect();
        let mut outputs: Vec<Tensor> = self
            .output_shapes()
            .iter()
            .map(|s| Tensor::zeros(s))
            .collect::<Result<_, _>>()?;
        let result = {
            let mut outs: Vec<&mut [f32]> = outputs.iter_mut().map(Tensor::data_mut).collect();
            self.run_jit(program, &slices, arena.data_mut(), &mut outs)
        };
        self.arenas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(arena);
        result.map(|()| outputs)
    }

    /// Runs the model with caller-provided memory: `inputs` in call order (each exactly the
    /// length of its shape), an `arena` of at least [`arena_floats`](Self::arena_floats) floats,
    /// and `outputs` of exactly the outputs' lengths. Native code touches no other memory than
    /// these and the model's weights (the guard-page tests rely on this). JIT back end only.
    pub fn run_with_arena(
        &self,
        inputs: &[&[f32]],
        arena: &mut [f32],
        outputs: &mut [&mut [f32]],
    ) -> Result<()> {
        match &self.exec {
            Exec::Jit(p) => self.run_jit(p, inputs, arena, outputs),
            Exec::Interpreter => Err(Error::Usage("run_with_arena needs the JIT back end".into())),
        }
    }

    fn take_arena(&self, program: &JitProgram) -> Result<Tensor> {
        let reused = self.arenas.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match reused {
            Some(arena) => Ok(arena),
            None => Ok(Tensor::zeros(&[program.arena_bytes / 4])?),
        }
    }

    /// Checks every length, builds the context table and calls the entry.
    fn run_jit(
        &self,
        program: &JitProgram,
        inputs: &[&[f32]],
        arena: &mut [f32],
        outputs: &mut [&mut [f32]],
    ) -> Result<()> {
        let ctx = self.context_table(program, inputs, arena, outputs.len())?;
        let entry = program.code.entry();
        // SAFETY: `context_table` checked that every input slice has exactly its declared length,
        // that the arena holds `program.arena_bytes`, and the weights blob is the one the code was
        // generated for; the generated code reads and writes only inside those (its offsets and
        // loop bounds are compile-time constants derived from the same plan). The slices stay
        // borrowed for the whole call, the pool is alive (`self.pool`), and the code is alive
        // (`program` is borrowed from `self`). Inputs are only read.
        unsafe { entry(ctx.as_ptr(), &self.pool) };
        self.copy_outputs(program, inputs, arena, outputs)
    }

    /// `[arena, weights, inputs…]`, after checking every length.
    fn context_table(
        &self,
        program: &JitProgram,
        inputs: &[&[f32]],
        arena: &mut [f32],
        n_outputs: usize,
    ) -> Result<Vec<usize>> {
        if inputs.len() != program.input_shapes.len() {
            return Err(kiln_runtime::RuntimeError::InputCount {
                expected: program.input_shapes.len(),
                got: inputs.len(),
            }
            .into());
        }
        for (i, (x, shape)) in inputs.iter().zip(&program.input_shapes).enumerate() {
            let n: usize = shape.iter().product();
            if x.len() != n {
                return Err(Error::Usage(format!(
                    "input {i}: expected {n} values (shape {shape:?}), got {}",
                    x.len()
                )));
            }
        }
        if arena.len() * 4 < program.arena_bytes {
            return Err(Error::Usage(format!(
                "arena of {} floats, the model needs {}",
                arena.len(),
                program.arena_bytes / 4
            )));
        }
        if n_outputs != program.outputs.len() {
            return Err(Error::Usage(format!(
                "{} output slices for {} outputs",
                n_outputs,
                program.outputs.len()
            )));
        }
        let mut ctx = vec![
            arena.as_mut_ptr() as usize,
            program.weights.data().as_ptr() as usize,
        ];
        ctx.extend(inputs.iter().map(|x| x.as_ptr() as usize));
        Ok(ctx)
    }

    fn copy_outputs(
        &self,
        program: &JitProgram,
        inputs: &[&[f32]],
        arena: &[f32],
        outputs: &mut [&mut [f32]],
    ) -> Result<()> {
        for (out, (loc, shape)) in outputs.iter_mut().zip(&program.outputs) {
            let n: usize = shape.iter().product();
            if out.len() != n {
                return Err(Error::Usage(format!(
                    "output slice of {} values for shape {shape:?}",
                    out.len()
                )));
            }
            let src: &[f32] = match loc.base {
                Base::Arena => arena,
                Base::Weights => program.weights.data(),
                Base::Input(i) => inputs.get(i).copied().unwrap_or(&[]),
            };
            let start = loc.offset / 4;
            let part = src.get(start..start + n).ok_or_else(|| {
                Error::Usage(format!("output at {loc:?} lies outside its buffer"))
            })?;
            out.copy_from_slice(part);
        }
        Ok(())
    }

    /// Runs the model once step by step, returning each step's wall time (JIT only: the
    /// interpreter gives `None`).
    pub fn run_profiled(&self, inputs: &[Tensor]) -> Result<Option<Vec<Duration>>> {
        interpreter::check_inputs(&self.plan, inputs)?;
        let Exec::Jit(program) = &self.exec else {
            return Ok(None);
        };
        let mut arena = self.take_arena(program)?;
        let slices: Vec<&[f32]> = inputs.iter().map(Tensor::data).collect();
        let ctx = self.context_table(program, &slices, arena.data_mut(), program.outputs.len())?;
        let mut times = Vec::with_capacity(program.code.steps().len());
        for phases in program.code.steps() {
            let t = Instant::now();
            for &(task, items) in phases {
                // SAFETY: as in `run_jit`: the same checked context table, and each phase is run
                // with exactly the item count it was generated for, in the entry's order.
                unsafe { self.pool.parallel_for(task, ctx.as_ptr().cast(), items) };
            }
            times.push(t.elapsed());
        }
        self.arenas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(arena);
        Ok(Some(times))
    }
}

/// Joins the listings' texts chosen by `pick`.
fn listing_text(listings: &[Listing], pick: impl Fn(&Listing) -> Option<&str>) -> String {
    let mut s = String::new();
    for l in listings {
        if let Some(text) = pick(l) {
            s.push_str(&format!("; function {}\n{}", l.name, text));
            if !text.ends_with('\n') {
                s.push('\n');
            }
            s.push('\n');
        }
    }
    s
}

/// How to benchmark.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Runs before measuring.
    pub warmup: usize,
    /// At least this many measured runs…
    pub min_runs: usize,
    /// …and at least this much measured time.
    pub min_time: Duration,
    /// Also time every step.
    pub profile: bool,
    /// Time spent measuring the FMA peak.
    pub peak_time: Duration,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            warmup: 5,
            min_runs: 20,
            min_time: Duration::from_millis(500),
            profile: false,
            peak_time: Duration::from_millis(200),
        }
    }
}

/// Latencies in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// Median.
    pub median: f64,
    /// Fastest.
    pub min: f64,
    /// Slowest.
    pub max: f64,
}

/// One row of a `--profile` table.
#[derive(Debug, Clone, PartialEq)]
pub struct StepProfile {
    /// Step index in the plan.
    pub index: usize,
    /// Op and epilogue (`conv2d+relu+max_pool2d`).
    pub name: String,
    /// The JIT's kernel for a conv or linear step (`direct`, `winograd`), else empty.
    pub kernel: &'static str,
    /// Result shape.
    pub shape: Vec<usize>,
    /// Median time, ms.
    pub ms: f64,
    /// Share of the summed step times.
    pub share: f64,
    /// GFLOP/s of its conv/linear work (0 for other ops).
    pub gflops: f64,
    /// Fraction of the measured peak (per thread) this step reaches.
    pub peak_fraction: f64,
}

/// The figures `kiln bench` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    /// Run latency.
    pub latency_ms: Latency,
    /// Conv/linear GFLOP/s at the median latency.
    pub gflops: f64,
    /// Measured single-thread f32x4 FMA peak, GFLOP/s.
    pub peak_gflops: f64,
    /// `gflops / (peak_gflops · threads)`.
    pub peak_fraction: f64,
    /// Compile time, ms.
    pub compile_ms: f64,
    /// Batch size (first dimension of the first input).
    pub batch: usize,
    /// Threads.
    pub threads: usize,
    /// `"jit"` or `"interp"`.
    pub backend: &'static str,
    /// Measured runs.
    pub runs: usize,
    /// Per-step profile, when asked for (JIT only).
    pub profile: Option<Vec<StepProfile>>,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// Benchmarks `model` on `inputs`: warm-up, then at least `min_runs` runs and `min_time`; the FMA
/// peak is measured in the same call (after the runs, so that the model's timing comes first).
pub fn bench(model: &CompiledModel, inputs: &[Tensor], opts: &BenchOptions) -> Result<BenchReport> {
    for _ in 0..opts.warmup {
        model.run(inputs)?;
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < opts.min_runs.max(1) || start.elapsed() < opts.min_time {
        let t = Instant::now();
        model.run(inputs)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let max = times.iter().copied().fold(0.0, f64::max);
    let runs = times.len();
    let med = median(&mut times);
    let flops = model.flops() as f64;
    let gflops = if med > 0.0 {
        flops / (med * 1e-3) / 1e9
    } else {
        0.0
    };
    let peak = codegen::peak::measure_peak_gflops(opts.peak_time)?;
    let threads = model.threads();
    let per_peak = peak * threads as f64;
    let profile = if opts.profile {
        profile(model, inputs, runs.clamp(5, 50), peak * threads as f64)?
    } else {
        None
    };
    Ok(BenchReport {
        latency_ms: Latency {
            median: med,
            min,
            max,
        },
        gflops,
        peak_gflops: peak,
        peak_fraction: if per_peak > 0.0 {
            gflops / per_peak
        } else {
            0.0
        },
        compile_ms: model.compile_time().as_secs_f64() * 1e3,
        batch: inputs
            .first()
            .and_then(|t| t.shape().first().copied())
            .unwrap_or(0),
        threads,
        backend: model.backend().name(),
        runs,
        profile,
    })
}

/// Per-step medians over `runs` profiled runs.
fn profile(
    model: &CompiledModel,
    inputs: &[Tensor],
    runs: usize,
    peak: f64,
) -> Result<Option<Vec<StepProfile>>> {
    let infos = model.steps();
    let mut per_step: Vec<Vec<f64>> = vec![Vec::new(); infos.len()];
    for _ in 0..runs {
        let Some(times) = model.run_profiled(inputs)? else {
            return Ok(None);
        };
        for (v, t) in per_step.iter_mut().zip(times) {
            v.push(t.as_secs_f64() * 1e3);
        }
    }
    let meds: Vec<f64> = per_step.iter_mut().map(|v| median(v)).collect();
    let total: f64 = meds.iter().sum();
    Ok(Some(
        infos
            .into_iter()
            .zip(meds)
            .enumerate()
            .map(|(index, (info, ms))| {
                let gflops = if ms > 0.0 {
                    info.flops as f64 / (ms * 1e-3) / 1e9
                } else {
                    0.0
                };
                StepProfile {
                    index,
                    name: info.name,
                    kernel: info.kernel,
                    shape: info.shape,
                    ms,
                    share: if total > 0.0 { ms / total } else { 0.0 },
                    gflops,
                    peak_fraction: if peak > 0.0 { gflops / peak } else { 0.0 },
                }
            })
            .collect(),
    ))
}

impl BenchReport {
    /// The report as one JSON object (the keys of `kiln bench --json`; `profile` only when
    /// profiled).
    pub fn to_json(&self) -> String {
        let mut s = format!(
            "{{\"latency_ms\": {{\"median\": {:.6}, \"min\": {:.6}, \"max\": {:.6}}}, \"gflops\": {:.4}, \
             \"peak_gflops\": {:.4}, \"peak_fraction\": {:.4}, \"compile_ms\": {:.3}, \"batch\": {}, \
             \"threads\": {}, \"backend\": \"{}\", \"runs\": {}",
            self.latency_ms.median,
            self.latency_ms.min,
            self.latency_ms.max,
            self.gflops,
            self.peak_gflops,
            self.peak_fraction,
            self.compile_ms,
            self.batch,
            self.threads,
            self.backend,
            self.runs
        );
        if let Some(p) = &self.profile {
            let rows: Vec<String> = p
                .iter()
                .map(|r| {
                    format!(
                        "{{\"step\": {}, \"op\": \"{}\", \"kernel\": \"{}\", \"shape\": {:?}, \"ms\": {:.6}, \
                         \"share\": {:.4}, \"gflops\": {:.4}, \"peak_fraction\": {:.4}}}",
                        r.index, r.name, r.kernel, r.shape, r.ms, r.share, r.gflops, r.peak_fraction
                    )
                })
                .collect();
            s.push_str(&format!(", \"profile\": [{}]", rows.join(", ")));
        }
        s.push('}');
        s
    }

    /// The report as human-readable text (with the profile table when profiled).
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "backend {}  threads {}  batch {}  runs {}\n\
             latency  median {:.4} ms  min {:.4} ms  max {:.4} ms\n\
             compute  {:.2} GFLOP/s  peak {:.2} GFLOP/s per thread  share of peak {:.1} %\n\
             compile  {:.2} ms\n",
            self.backend,
            self.threads,
            self.batch,
            self.runs,
            self.latency_ms.median,
            self.latency_ms.min,
            self.latency_ms.max,
            self.gflops,
            self.peak_gflops,
            100.0 * self.peak_fraction,
            self.compile_ms
        );
        if let Some(p) = &self.profile {
            s.push_str(&format!(
                "\n{:>4}  {:<28} {:<9} {:<20} {:>10} {:>7} {:>9} {:>7}\n",
                "step", "op", "kernel", "shape", "ms", "share", "GFLOP/s", "peak"
            ));
            for r in p {
                s.push_str(&format!(
                    "{:>4}  {:<28} {:<9} {:<20} {:>10.4} {:>6.1}% {:>9.2} {:>6.1}%\n",
                    r.index,
                    r.name,
                    r.kernel,
                    format!("{:?}", r.shape),
                    r.ms,
                    100.0 * r.share,
                    r.gflops,
                    100.0 * r.peak_fraction
                ));
            }
            if p.iter().any(|r| r.kernel == "winograd") {
                s.push_str(
                    "GFLOP/s count a direct convolution's multiply-adds; winograd steps do 2.25× \
                     fewer (F(2×2, 3×3)), so their share of peak may pass 100 %.\n",
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn compiled_model_is_send_and_sync() {
        assert_send_sync::<CompiledModel>();
        assert_send_sync::<Engine>();
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
