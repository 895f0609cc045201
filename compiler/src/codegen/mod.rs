//! Cranelift code generation: the JIT back end that compiles a [`Plan`] to native code.
//!
//! Every step becomes one or more *phases*, each a native function over independent work items
//! (see [`kiln_runtime::parallel`]); the entry function calls the runtime's parallel-for once per
//! phase, in order. All loop bounds, strides and buffer offsets are constants of the generated code:
//! intermediates sit at the plan's arena offsets (so in-place decisions and the memory plan are
//! honoured exactly), the JIT's own scratch (padded input copies) follows the plan's arena, and
//! weights are packed at compile time into one blob in the order the kernels read them.
//!
//! [`choose_kernel`] is the one place that picks a kernel per step: 3×3 stride-1 convs go to
//! [`winograd`] (F(2×2, 3×3): 2.25× fewer multiply-adds, which f32x4 code needs to go past its FMA
//! peak), other convs to [`conv`]'s direct kernels.
//! Today every step is generated as Cranelift IR ([`StepKernel`]); a variant whose innermost loop
//! calls into a runtime function (as the entry already calls the pool) would slot in there, and
//! would count as a fallback in [`JitStats::fallback_steps`].

pub mod activation;
pub mod bounds;
pub mod conv;
pub mod eltwise;
pub mod jit;
pub mod linear;
pub mod pack;
pub mod peak;
pub mod pool;
pub mod winograd;

use jit::{Base, Capture, Emitter, JitBuilder, JitCode, Listing, Loc};
use kiln_runtime::plan::{BufferId, BufferKind, Plan, Step, ARENA_ALIGN};
use kiln_runtime::{Op, Tensor};
use std::collections::HashMap;

/// What can go wrong generating code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodegenError {
    /// The plan is inconsistent (a bug in whatever built it).
    #[error("invalid plan: {0}")]
    InvalidPlan(String),
    /// The model needs more memory than the configured limit allows; nothing was allocated.
    #[error(
        "{what} needs {needed} bytes, more than the memory limit of {limit} bytes (--memory-limit)"
    )]
    TooLarge {
        /// What the bytes are for.
        what: String,
        /// Bytes needed.
        needed: u64,
        /// The limit.
        limit: u64,
    },
    /// A step the JIT does not support in this form.
    #[error("step {step} ({op}): {msg}")]
    Unsupported {
        /// Step index.
        step: usize,
        /// The op's name.
        op: String,
        /// Why.
        msg: String,
    },
    /// Cranelift rejected the generated code (a bug in the code generator).
    #[error("cranelift: {0}")]
    Cranelift(String),
}

/// The default memory limit (the one budget of [`kiln_runtime::budget`]): 4 GiB.
pub const DEFAULT_MEMORY_LIMIT: u64 = kiln_runtime::budget::DEFAULT_MEMORY_LIMIT;

/// Options of one compilation.
#[derive(Debug, Clone)]
pub struct JitOptions {
    /// What to keep of every generated function (for `--emit clif|asm`).
    pub capture: Capture,
    /// The largest arena + weights size accepted, in bytes.
    pub memory_limit: u64,
    /// Forces one conv tiling scheme on every conv (`None`: chosen per layer). For tests and
    /// experiments; results agree either way.
    pub conv_scheme: Option<conv::ConvScheme>,
}

impl Default for JitOptions {
    fn default() -> Self {
        JitOptions {
            capture: Capture::default(),
            memory_limit: DEFAULT_MEMORY_LIMIT,
            conv_scheme: None,
        }
    }
}

/// Counts for `kiln compile --emit stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitStats {
    /// Steps in the plan.
    pub steps: usize,
    /// Steps generated natively.
    pub native_steps: usize,
    /// Steps that call a reference kernel instead (always 0 today).
    pub fallback_steps: usize,
    /// Native functions generated (phases plus the entry).
    pub functions: usize,
    /// Machine code bytes.
    pub code_bytes: usize,
    /// Packed weight bytes.
    pub weight_bytes: usize,
    /// Arena bytes including the JIT's scratch.
    pub arena_bytes: usize,
    /// Scratch bytes (padded copies), part of `arena_bytes`.
    pub scratch_bytes: usize,
}

/// What a step computes, for profiles.
#[derive(Debug, Clone, PartialEq)]
pub struct StepInfo {
    /// `conv2d+relu+max_pool2d` style name: the op and its epilogue.
    pub name: String,
    /// The result's shape.
    pub shape: Vec<usize>,
    /// Floating-point operations of its convolutions and matrix products (2 per multiply-add of
    /// the direct computation, whichever kernel runs it).
    pub flops: u64,
    /// The kernel that computes it (`"direct"`, `"winograd"`; empty for other ops, and for the
    /// interpreter).
    pub kernel: &'static str,
}

/// A compiled model: native code, packed weights, and the layout of its memory.
#[derive(Debug)]
pub struct JitProgram {
    /// The code.
    pub code: JitCode,
    /// Packed weights and constants (64-byte aligned).
    pub weights: Tensor,
    /// Arena size in bytes (the plan's arena, then the scratch).
    pub arena_bytes: usize,
    /// Shapes of the inputs, in call order.
    pub input_shapes: Vec<Vec<usize>>,
    /// Where each output lives and its shape.
    pub outputs: Vec<(Loc, Vec<usize>)>,
    /// One entry per plan step.
    pub steps: Vec<StepInfo>,
    /// Counts.
    pub stats: JitStats,
}

impl JitProgram {
    /// The captured listings (empty unless asked for).
    pub fn listings(&self) -> &[Listing] {
        &self.code.listings
    }
}

/// The packed-weights blob being built: every region starts on a 64-byte boundary.
#[derive(Debug, Default)]
pub struct Blob {
    data: Vec<f32>,
    raw: HashMap<BufferId, usize>,
}

impl Blob {
    /// Appends `values`, returning their byte offset.
    pub fn push(&mut self, values: &[f32]) -> usize {
        let start = self.data.len().next_multiple_of(16);
        self.data.resize(start, 0.0);
        self.data.extend_from_slice(values);
        // A little slack after every region, so that a vector read of the last elements of a
        // padded table stays inside the blob.
        self.data.extend_from_slice(&[0.0; 4]);
        start * 4
    }
}

/// The kernel chosen for one step.
#[derive(Debug, Clone)]
pub enum StepKernel {
    /// A convolution (with its epilogue).
    Conv(Box<conv::ConvKernel>),
    /// A 3×3 stride-1 convolution by Winograd F(2×2, 3×3) (with its epilogue).
    Winograd(Box<winograd::WinogradKernel>),
    /// A fully connected layer (with its epilogue).
    Linear(linear::LinearKernel),
    /// Max or average pooling.
    Pool(pool::PoolKernel),
    /// Global average pooling.
    GlobalAvg(pool::GlobalAvgKernel),
    /// Element-wise ops: activations, add, batch norm, flatten.
    Eltwise(eltwise::EltwiseKernel),
}

impl StepKernel {
    /// The name `kiln bench --profile` shows for a conv or linear kernel.
    pub fn name(&self) -> &'static str {
        match self {
            StepKernel::Conv(_) | StepKernel::Linear(_) => "direct",
            StepKernel::Winograd(_) => "winograd",
            _ => "",
        }
    }

    /// Weight bytes the kernel packs beyond the at most 2× of its parameters that every other
    /// packing stays within: Winograd's transformed filters (16/9 of the weights, more when the
    /// output channels do not fill its 12-channel blocks).
    fn extra_weight_bytes(&self) -> usize {
        match self {
            StepKernel::Winograd(k) => k.packed_bytes(),
            _ => 0,
        }
    }

    /// Scratch bytes the kernel needs after the plan's arena.
    fn scratch_bytes(&self) -> usize {
        match self {
            StepKernel::Conv(k) => k.scratch_bytes(),
            StepKernel::Winograd(k) => k.scratch_bytes(),
            StepKernel::Pool(k) => k.scratch_bytes(),
            _ => 0,
        }
    }
}

/// Picks the kernel for `step`: the one place that decides how each op is generated.
pub fn choose_kernel(
    plan: &Plan,
    index: usize,
    step: &Step,
    options: &JitOptions,
) -> Result<StepKernel, CodegenError> {
    let shape = |i: usize| plan.buffer(step.inputs[i]).shape.clone();
    let out_shape = plan.buffer(step.output).shape.clone();
    let unsupported = |msg: String| CodegenError::Unsupported {
        step: index,
        op: step.op.name().to_string(),
        msg,
    };
    Ok(match &step.op {
        Op::Conv2d(c) => {
            let (x, w) = (shape(0), shape(1));
            match winograd::WinogradKernel::new(c, &x, &w, &out_shape) {
                Some(k) if conv::ConvScheme::wants_winograd(options.conv_scheme) => {
                    StepKernel::Winograd(Box::new(k))
                }
                _ => {
                    let direct = options
                        .conv_scheme
                        .filter(|s| *s != conv::ConvScheme::Winograd);
                    StepKernel::Conv(Box::new(
                        conv::ConvKernel::new(direct, c, &x, &w, &out_shape)
                            .map_err(unsupported)?,
                    ))
                }
            }
        }
        Op::Linear(l) => StepKernel::Linear(
            linear::LinearKernel::new(l, &shape(0), &shape(1)).map_err(unsupported)?,
        ),
        Op::MaxPool2d(p) => {
            StepKernel::Pool(pool::PoolKernel::max(p, &shape(0), &out_shape).map_err(unsupported)?)
        }
        Op::AvgPool2d(p) => {
            StepKernel::Pool(pool::PoolKernel::avg(p, &shape(0), &out_shape).map_err(unsupported)?)
        }
        Op::GlobalAvgPool2d(_) => {
            StepKernel::GlobalAvg(pool::GlobalAvgKernel::new(&shape(0)).map_err(unsupported)?)
        }
        Op::Activation(_) | Op::Add(_) | Op::BatchNorm2d(_) | Op::Flatten(_) => {
            StepKernel::Eltwise(
                eltwise::EltwiseKernel::new(&step.op, &shape(0)).map_err(unsupported)?,
            )
        }
    })
}

/// Everything a kernel needs while it emits one step.
pub struct StepCx<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// The step's index in the plan (named in errors).
    pub index: usize,
    /// The step.
    pub step: &'a Step,
    /// The blob being packed.
    pub blob: &'a mut Blob,
    /// The module being built.
    pub jb: &'a mut JitBuilder,
    /// Start of the scratch region.
    pub scratch: Loc,
    /// Prefix of this step's function names.
    pub name: String,
    /// The phases emitted so far.
    pub phases: Vec<(cranelift_module::FuncId, u64)>,
}

impl<'a> StepCx<'a> {
    /// An error saying this step cannot be generated, and why.
    pub fn unsupported(&self, msg: &str) -> CodegenError {
        CodegenError::Unsupported {
            step: self.index,
            op: self.step.op.name().to_string(),
            msg: msg.to_string(),
        }
    }

    /// Where buffer `id` lives; a parameter read as data gets a raw copy in the blob.
    pub fn loc(&mut self, id: BufferId) -> Loc {
        let b = self.plan.buffer(id);
        match &b.kind {
            BufferKind::Input { index } => Loc {
                base: Base::Input(*index),
                offset: 0,
            },
            BufferKind::Intermediate { offset } => Loc {
                base: Base::Arena,
                offset: *offset,
            },
            BufferKind::Param(t) => {
                let offset = match self.blob.raw.get(&id) {
                    Some(&o) => o,
                    None => {
                        let o = self.blob.push(t.data());
                        self.blob.raw.insert(id, o);
                        o
                    }
                };
                Loc {
                    base: Base::Weights,
                    offset,
                }
            }
        }
    }

    /// The data of a parameter operand (for packing).
    pub fn param(&self, id: BufferId) -> Option<&'a Tensor> {
        match &self.plan.buffer(id).kind {
            BufferKind::Param(t) => Some(t),
            _ => None,
        }
    }

    /// Packs the bias operand `id` into the blob, zero-padded to `len` floats so that a kernel's tail
    /// block may broadcast past the last channel and stay inside the region; returns its offset.
    pub fn padded_bias(&mut self, id: BufferId, len: usize) -> Result<usize, CodegenError> {
        let bias = self
            .param(id)
            .ok_or_else(|| self.unsupported("the bias must be a parameter"))?;
        let mut v = bias.data().to_vec();
        v.resize(len.max(v.len()), 0.0);
        Ok(self.blob.push(&v))
    }

    /// Emits one phase of `items` work items named `<step>_<suffix>`.
    pub fn phase(
        &mut self,
        suffix: &str,
        items: u64,
        body: &mut dyn FnMut(&mut Emitter, cranelift_codegen::ir::Value),
    ) -> Result<(), CodegenError> {
        let name = format!("{}_{suffix}", self.name);
        let id = self.jb.define_task(&name, body)?;
        self.phases.push((id, items));
        Ok(())
    }
}

/// A step's name for profiles: the op and its epilogue, e.g. `conv2d+add+relu+max_pool2d`.
pub fn step_name(op: &Op) -> String {
    let epi = match op {
        Op::Conv2d(c) => Some(&c.epilogue),
        Op::Linear(l) => Some(&l.epilogue),
        _ => None,
    };
    let mut s = op.name().to_string();
    if let Some(e) = epi {
        if e.residual {
            s.push_str("+add");
        }
        if let Some(a) = &e.activation {
            s.push('+');
            s.push_str(a.name());
        }
        if e.pool.is_some() {
            s.push_str("+max_pool2d");
        }
    }
    s
}

/// Multiply-add flops of a step (2 per multiply-add of its convolution or matrix product).
pub fn step_flops(plan: &Plan, step: &Step) -> u64 {
    let shape = |i: usize| plan.buffer(step.inputs[i]).shape.clone();
    match &step.op {
        Op::Conv2d(c) => {
            let (x, w) = (shape(0), shape(1));
            match c.conv_shape(&x, &w) {
                Ok([n, o, oh, ow]) => 2 * (n * o * oh * ow * w[1] * w[2] * w[3]) as u64,
                Err(_) => 0,
            }
        }
        Op::Linear(_) => {
            let (x, w) = (shape(0), shape(1));
            2 * (x[0] * w[0] * w[1]) as u64
        }
        _ => 0,
    }
}

/// Compiles `plan` to native code.
pub fn compile(plan: &Plan, options: &JitOptions) -> Result<JitProgram, CodegenError> {
    plan.validate().map_err(CodegenError::InvalidPlan)?;
    for (i, s) in plan.steps.iter().enumerate() {
        bounds::check_step(plan, i, s, options.memory_limit)?;
    }
    let kernels = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| choose_kernel(plan, i, s, options))
        .collect::<Result<Vec<_>, _>>()?;
    // Size checks before anything is allocated: the arena with the scratch, and the weights (the
    // packed blob is at most a small factor of the parameters; 2× bounds every packing here).
    let scratch_bytes = kernels
        .iter()
        .map(StepKernel::scratch_bytes)
        .max()
        .unwrap_or(0);
    let plan_arena = plan.arena_bytes.next_multiple_of(ARENA_ALIGN);
    let arena_bytes = plan_arena as u64 + scratch_bytes as u64;
    let param_bytes: u64 = plan
        .buffers
        .iter()
        .filter(|b| matches!(b.kind, BufferKind::Param(_)))
        .map(|b| b.bytes() as u64)
        .sum();
    let extra_bytes: u64 = kernels.iter().map(|k| k.extra_weight_bytes() as u64).sum();
    let limit = options.memory_limit;
    if arena_bytes > limit {
        return Err(CodegenError::TooLarge {
            what: "the arena with the JIT's scratch".into(),
            needed: arena_bytes,
            limit,
        });
    }
    let needed = arena_bytes + 2 * param_bytes + extra_bytes;
    if needed > limit {
        return Err(CodegenError::TooLarge {
            what: "the arena with the packed weights".into(),
            needed,
            limit,
        });
    }
    let mut jb = JitBuilder::new(plan.inputs.len(), options.capture)?;
    let mut blob = Blob::default();
    let scratch = Loc {
        base: Base::Arena,
        offset: plan_arena,
    };
    let mut step_phases = Vec::with_capacity(plan.steps.len());
    let mut infos = Vec::with_capacity(plan.steps.len());
    for (i, (step, kernel)) in plan.steps.iter().zip(&kernels).enumerate() {
        let mut cx = StepCx {
            plan,
            index: i,
            step,
            blob: &mut blob,
            jb: &mut jb,
            scratch,
            name: format!("s{i}_{}", step.op.name()),
            phases: Vec::new(),
        };
        match kernel {
            StepKernel::Conv(k) => k.emit(&mut cx)?,
            StepKernel::Winograd(k) => k.emit(&mut cx)?,
            StepKernel::Linear(k) => k.emit(&mut cx)?,
            StepKernel::Pool(k) => k.emit(&mut cx)?,
            StepKernel::GlobalAvg(k) => k.emit(&mut cx)?,
            StepKernel::Eltwise(k) => k.emit(&mut cx)?,
        }
        step_phases.push(cx.phases);
        infos.push(StepInfo {
            name: step_name(&step.op),
            shape: plan.buffer(step.output).shape.clone(),
            flops: step_flops(plan, step),
            kernel: kernel.name(),
        });
    }
    let all: Vec<_> = step_phases.iter().flatten().copied().collect();
    let entry = jb.define_entry(&all)?;
    let functions = all.len() + 1;
    let code = jb.finish(entry, step_phases)?;
    // Outputs: intermediates in the arena, or (rarely) an input or a parameter returned as is.
    let mut outputs = Vec::new();
    let mut raw_cx_blob = blob;
    for &o in &plan.outputs {
        let b = plan.buffer(o);
        let loc = match &b.kind {
            BufferKind::Input { index } => Loc {
                base: Base::Input(*index),
                offset: 0,
            },
            BufferKind::Intermediate { offset } => Loc {
                base: Base::Arena,
                offset: *offset,
            },
            BufferKind::Param(t) => match raw_cx_blob.raw.get(&o) {
                Some(&off) => Loc {
                    base: Base::Weights,
                    offset: off,
                },
                None => Loc {
                    base: Base::Weights,
                    offset: raw_cx_blob.push(t.data()),
                },
            },
        };
        outputs.push((loc, b.shape.clone()));
    }
    let weights = Tensor::from_vec(raw_cx_blob.data.clone(), &[raw_cx_blob.data.len()])
        .map_err(|e| CodegenError::InvalidPlan(e.to_string()))?;
    let stats = JitStats {
        steps: plan.steps.len(),
        native_steps: plan.steps.len(),
        fallback_steps: 0,
        functions,
        code_bytes: code.code_bytes,
        weight_bytes: weights.numel() * 4,
        arena_bytes: arena_bytes as usize,
        scratch_bytes,
    };
    Ok(JitProgram {
        code,
        weights,
        arena_bytes: arena_bytes as usize,
        input_shapes: plan
            .inputs
            .iter()
            .map(|&i| plan.buffer(i).shape.clone())
            .collect(),
        outputs,
        steps: infos,
        stats,
    })
}
