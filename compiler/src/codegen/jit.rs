//! The Cranelift JIT: module setup, the [`Emitter`] every kernel file writes its CLIF through, the
//! entry function that calls the runtime's parallel-for once per phase, finalizing, and the
//! [`JitCode`] that keeps the module alive while its function pointers can be called.
//!
//! Code shape rules that decide speed (measured, see `shared/CRANELIFT_NOTES.md`): `opt_level=none`
//! (the e-graph pass re-places pure `splat`/`fma` chains and spills), top-tested loops (a header
//! block with the loop's parameters does the compare; code after the loop reads the header's
//! parameters, so a loaded value keeps its single use and folds into the instruction using it), and
//! every bound, stride and offset an immediate.

use super::CodegenError;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{F32, F32X4, I32X4, I64, I8X16};
use cranelift_codegen::ir::{
    AbiParam, BlockArg, Endianness, InstBuilder, MemFlagsData, Signature, UserFuncName, Value,
};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Linkage, Module};
use kiln_runtime::parallel::{kiln_parallel_for, Task, ThreadPool, PARALLEL_FOR_SYMBOL};
use std::sync::Mutex;

/// The compiled model's entry: runs every phase of every step, in order, through the pool.
/// `ctx` is the context table: `[arena, weights, input 0, input 1, …]` base addresses.
/// Unsafe to call: the table must hold valid, large-enough buffers (see `CompiledModel`).
pub type EntryFn = unsafe extern "C" fn(ctx: *const usize, pool: &ThreadPool);

/// Where a base address comes from in the context table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Base {
    /// The arena: intermediates (at the plan's offsets) and the JIT's scratch after them.
    Arena,
    /// The packed weights and constants, owned by the compiled model.
    Weights,
    /// The caller's `i`-th input (read only).
    Input(usize),
}

impl Base {
    /// The slot of this base in the context table.
    pub fn slot(self) -> usize {
        match self {
            Base::Arena => 0,
            Base::Weights => 1,
            Base::Input(i) => 2 + i,
        }
    }
}

/// A place in memory: a base and a byte offset from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Loc {
    /// Which base address.
    pub base: Base,
    /// Bytes from it.
    pub offset: usize,
}

impl Loc {
    /// The place `bytes` further on.
    pub fn offset_by(self, bytes: usize) -> Loc {
        Loc {
            base: self.base,
            offset: self.offset + bytes,
        }
    }
}

/// What to keep of every generated function for inspection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capture {
    /// The Cranelift IR text.
    pub clif: bool,
    /// Cranelift's disassembly of the machine code.
    pub asm: bool,
}

/// One generated function, as text, for `--emit clif` / `--emit asm`.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// The function's name (`step3_conv2d_compute`, `entry`, …).
    pub name: String,
    /// The CLIF, if captured.
    pub clif: Option<String>,
    /// The disassembly, if captured.
    pub asm: Option<String>,
}

/// Memory flags of every access: in bounds by construction (`notrap`); `aligned` is only a promise
/// Cranelift uses to fold a load into the instruction reading it, and x86-64 encodes vector memory
/// operands with VEX, for which misalignment is harmless.
pub fn flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// The native ISA for this machine with the settings that decided speed.
pub fn native_isa() -> Result<OwnedTargetIsa, CodegenError> {
    let mut b = settings::builder();
    let set = |b: &mut settings::Builder, k: &str, v: &str| {
        b.set(k, v)
            .map_err(|e| CodegenError::Cranelift(format!("setting {k}={v}: {e}")))
    };
    set(&mut b, "opt_level", "none")?;
    set(&mut b, "use_colocated_libcalls", "false")?;
    set(&mut b, "is_pic", "false")?;
    // The verifier costs compile time; debug builds (and so the tests) keep it.
    set(
        &mut b,
        "enable_verifier",
        if cfg!(debug_assertions) {
            "true"
        } else {
            "false"
        },
    )?;
    let isa = cranelift_native::builder()
        .map_err(|e| CodegenError::Cranelift(format!("host not supported: {e}")))?
        .finish(settings::Flags::new(b))
        .map_err(|e| CodegenError::Cranelift(e.to_string()))?;
    Ok(isa)
}

/// Builds the functions of one module.
pub struct JitBuilder {
    module: JITModule,
    ctx: Context,
    fctx: FunctionBuilderContext,
    capture: Capture,
    listings: Vec<Listing>,
    n_inputs: usize,
    parallel_for: FuncId,
    next_name: u32,
    code_bytes: usize,
}

impl JitBuilder {
    /// A fresh module for a model with `n_inputs` inputs.
    pub fn new(n_inputs: usize, capture: Capture) -> Result<JitBuilder, CodegenError> {
        let mut jb = JITBuilder::with_isa(native_isa()?, default_libcall_names());
        let pf: unsafe extern "C" fn(&ThreadPool, Task, *const u8, u64) = kiln_parallel_for;
        jb.symbol(PARALLEL_FOR_SYMBOL, pf as *const u8);
        let mut module = JITModule::new(jb);
        let mut sig = module.make_signature();
        for _ in 0..4 {
            sig.params.push(AbiParam::new(I64));
        }
        let parallel_for = module
            .declare_function(PARALLEL_FOR_SYMBOL, Linkage::Import, &sig)
            .map_err(cranelift_err)?;
        let ctx = module.make_context();
        Ok(JitBuilder {
            module,
            ctx,
            fctx: FunctionBuilderContext::new(),
            capture,
            listings: Vec::new(),
            n_inputs,
            parallel_for,
            next_name: 0,
            code_bytes: 0,
        })
    }

    fn signature(&self, params: usize) -> Signature {
        let mut sig = self.module.make_signature();
        for _ in 0..params {
            sig.params.push(AbiParam::new(I64));
        }
        sig
    }

    /// Defines a [`Task`]: `fn(ctx, begin, end)` running `body` for every work item in
    /// `begin..end` (the item index is an `i64` value).
    pub fn define_task(
        &mut self,
        name: &str,
        body: &mut dyn FnMut(&mut Emitter, Value),
    ) -> Result<FuncId, CodegenError> {
        let sig = self.signature(3);
        let n_inputs = self.n_inputs;
        self.define(name, sig, &mut |b, params| {
            let mut em = Emitter::new(b, params[0], n_inputs);
            let (begin, end) = (params[1], params[2]);
            em.for_range(begin, end, 1, &[], &mut |em, item, _| {
                body(em, item);
                vec![]
            });
        })
    }

    /// Defines the entry function: one parallel-for per phase, in order.
    pub fn define_entry(&mut self, phases: &[(FuncId, u64)]) -> Result<FuncId, CodegenError> {
        let sig = self.signature(2);
        let pf = self.parallel_for;
        let tasks: Vec<(FuncId, u64)> = phases.to_vec();
        let mut refs = Vec::new();
        // Function references must be declared in the function being built; collect the ids first.
        let module = &mut self.module;
        let func = &mut self.ctx.func;
        let pf_ref = module.declare_func_in_func(pf, func);
        for &(id, items) in &tasks {
            refs.push((module.declare_func_in_func(id, func), items));
        }
        self.define("entry", sig, &mut |b, params| {
            let (ctx, pool) = (params[0], params[1]);
            for &(fref, items) in &refs {
                let addr = b.ins().func_addr(I64, fref);
                let n = b.ins().iconst(I64, items as i64);
                b.ins().call(pf_ref, &[pool, addr, ctx, n]);
            }
        })
    }

    /// Declares and defines a function whose body `build` emits after the entry block (whose
    /// parameters it receives); the final `return` is added here.
    fn define(
        &mut self,
        name: &str,
        sig: Signature,
        build: &mut dyn FnMut(&mut FunctionBuilder, &[Value]),
    ) -> Result<FuncId, CodegenError> {
        let full_name = name.to_string();
        let id = self
            .module
            .declare_function(&full_name, Linkage::Local, &sig)
            .map_err(cranelift_err)?;
        self.next_name += 1;
        self.ctx.func.signature = sig;
        self.ctx.func.name = UserFuncName::user(0, id.as_u32());
        {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            let entry = b.create_block();
            b.append_block_params_for_function_params(entry);
            b.switch_to_block(entry);
            let params = b.block_params(entry).to_vec();
            build(&mut b, &params);
            b.ins().return_(&[]);
            b.seal_all_blocks();
            b.finalize(self.module.target_config());
        }
        let clif = self
            .capture
            .clif
            .then(|| self.ctx.func.display().to_string());
        self.ctx.set_disasm(self.capture.asm);
        self.module
            .define_function(id, &mut self.ctx)
            .map_err(|e| CodegenError::Cranelift(format!("{full_name}: {e:?}")))?;
        if let Some(code) = self.ctx.compiled_code() {
            self.code_bytes += code.code_buffer().len();
        }
        let asm = if self.capture.asm {
            self.ctx.compiled_code().and_then(|c| c.vcode.clone())
        } else {
            None
        };
        if self.capture.clif || self.capture.asm {
            self.listings.push(Listing {
                name: full_name,
                clif,
                asm,
            });
        }
        self.module.clear_context(&mut self.ctx);
        Ok(id)
    }

    /// Finalizes the module and returns the callable code.
    pub fn finish(
        mut self,
        entry: FuncId,
        step_phases: Vec<Vec<(FuncId, u64)>>,
    ) -> Result<JitCode, CodegenError> {
        self.module.finalize_definitions().map_err(cranelift_err)?;
        let entry_ptr = self.module.get_finalized_function(entry);
        // SAFETY: `entry` was defined by `define_entry` with the signature (i64 ctx, i64 pool) and
        // no results, which is `EntryFn` in the platform's C convention (pointers and references
        // are i64 on x86-64); the module that owns the code moves into the returned `JitCode`
        // together with the pointer, and is never freed while it lives.
        let entry_fn = unsafe { std::mem::transmute::<*const u8, EntryFn>(entry_ptr) };
        let mut steps = Vec::with_capacity(step_phases.len());
        for phases in step_phases {
            let mut v = Vec::with_capacity(phases.len());
            for (id, items) in phases {
                let p = self.module.get_finalized_function(id);
                // SAFETY: every phase was defined by `define_task` with the signature
                // (i64 ctx, i64 begin, i64 end) and no results, which is `Task`; the code lives as
                // long as the module, which `JitCode` owns (see above).
                let task = unsafe { std::mem::transmute::<*const u8, Task>(p) };
                v.push((task, items));
            }
            steps.push(v);
        }
        Ok(JitCode {
            module: Mutex::new(Some(self.module)),
            entry: entry_fn,
            steps,
            listings: self.listings,
            code_bytes: self.code_bytes,
        })
    }
}

fn cranelift_err(e: cranelift_module::ModuleError) -> CodegenError {
    CodegenError::Cranelift(format!("{e:?}"))
}

/// Finalized native code: the entry function, each step's phases (for profiling one step at a time)
/// and the module that owns the memory they live in. The function pointers never leave this crate
/// and are only used while the `JitCode` is borrowed, so freeing the code on drop is sound.
pub struct JitCode {
    /// Kept so that the code stays mapped; the mutex makes the (Send, not Sync) module shareable
    /// between threads. `None` only during drop.
    module: Mutex<Option<JITModule>>,
    entry: EntryFn,
    steps: Vec<Vec<(Task, u64)>>,
    /// Captured listings.
    pub listings: Vec<Listing>,
    /// Machine code size in bytes.
    pub code_bytes: usize,
}

impl JitCode {
    /// The entry function (valid while `self` is borrowed).
    pub(crate) fn entry(&self) -> EntryFn {
        self.entry
    }

    /// Per plan step, its phases: a task and its number of work items (valid while `self` is
    /// borrowed).
    pub(crate) fn steps(&self) -> &[Vec<(Task, u64)>] {
        &self.steps
    }
}

impl Drop for JitCode {
    fn drop(&mut self) {
        let module = self
            .module
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(m) = module {
            // SAFETY: the code's only pointers are `entry` and `steps`, private to this crate and
            // used only through `&self` borrows (a run borrows the model that owns this value), so
            // none is executing or callable once `drop` runs.
            unsafe { m.free_memory() };
        }
    }
}

impl std::fmt::Debug for JitCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitCode")
            .field("steps", &self.steps.len())
            .field("code_bytes", &self.code_bytes)
            .finish()
    }
}

/// A loop body: `(emitter, induction variable, carried values) -> next carried values`.
pub type LoopBody<'a, 'b, 'c> = dyn FnMut(&mut Emitter<'a, 'b>, Value, &[Value]) -> Vec<Value> + 'c;

/// Writes one function's body: typed helpers over a [`FunctionBuilder`] for addresses, f32x4 loads
/// and stores (whole and partial), constants and top-tested loops.
pub struct Emitter<'a, 'b> {
    /// The underlying builder, for instructions without a helper.
    pub b: &'a mut FunctionBuilder<'b>,
    bases: Vec<Value>,
}

impl<'a, 'b> Emitter<'a, 'b> {
    fn new(b: &'a mut FunctionBuilder<'b>, ctx: Value, n_inputs: usize) -> Self {
        // Load every base once, in the entry block, so that they dominate the whole body.
        let bases = (0..2 + n_inputs)
            .map(|slot| b.ins().load(I64, flags(), ctx, (slot * 8) as i32))
            .collect();
        Emitter { b, bases }
    }

    /// An `i64` constant.
    pub fn iconst(&mut self, v: i64) -> Value {
        self.b.ins().iconst(I64, v)
    }

    /// `x + c` on `i64`.
    pub fn add_imm(&mut self, x: Value, c: i64) -> Value {
        if c == 0 {
            x
        } else {
            self.b.ins().iadd_imm_s(x, c)
        }
    }

    /// `x · c` on `i64`.
    pub fn mul_imm(&mut self, x: Value, c: i64) -> Value {
        if c == 1 {
            x
        } else {
            self.b.ins().imul_imm_s(x, c)
        }
    }

    /// `x / c` and `x mod c` for a non-negative `x` and `c ≥ 1`.
    pub fn divmod_imm(&mut self, x: Value, c: i64) -> (Value, Value) {
        if c == 1 {
            let zero = self.iconst(0);
            return (x, zero);
        }
        let q = self.b.ins().udiv_imm_u(x, c);
        let qc = self.b.ins().imul_imm_s(q, c);
        let r = self.b.ins().isub(x, qc);
        (q, r)
    }

    /// The address of a place.
    pub fn addr(&mut self, loc: Loc) -> Value {
        let base = self.bases[loc.base.slot()];
        self.add_imm(base, loc.offset as i64)
    }

    /// `ptr + offset` for a byte offset that may not fit a 32-bit displacement.
    fn split(&mut self, ptr: Value, offset: i64) -> (Value, i32) {
        match i32::try_from(offset) {
            Ok(o) => (ptr, o),
            Err(_) => (self.add_imm(ptr, offset), 0),
        }
    }

    /// Loads an f32x4 at `ptr + offset` bytes.
    pub fn vload(&mut self, ptr: Value, offset: i64) -> Value {
        let (p, o) = self.split(ptr, offset);
        self.b.ins().load(F32X4, flags(), p, o)
    }

    /// Stores an f32x4 at `ptr + offset` bytes.
    pub fn vstore(&mut self, v: Value, ptr: Value, offset: i64) {
        let (p, o) = self.split(ptr, offset);
        self.b.ins().store(flags(), v, p, o);
    }

    /// Loads one f32.
    pub fn fload(&mut self, ptr: Value, offset: i64) -> Value {
        let (p, o) = self.split(ptr, offset);
        self.b.ins().load(F32, flags(), p, o)
    }

    /// Stores one f32.
    pub fn fstore(&mut self, v: Value, ptr: Value, offset: i64) {
        let (p, o) = self.split(ptr, offset);
        self.b.ins().store(flags(), v, p, o);
    }

    /// Loads the cache line at `ptr + offset` without using the value: a software prefetch
    /// (Cranelift has no prefetch instruction). The load may trap in Cranelift's eyes, which keeps
    /// it although its result is unused; `ptr + offset` must be readable.
    pub fn touch(&mut self, ptr: Value, offset: i64) {
        let (p, o) = self.split(ptr, offset);
        self.b
            .ins()
            .load(cranelift_codegen::ir::types::I32, MemFlagsData::new(), p, o);
    }

    /// One f32 loaded and broadcast to four lanes.
    pub fn splat_load(&mut self, ptr: Value, offset: i64) -> Value {
        let s = self.fload(ptr, offset);
        self.b.ins().splat(F32X4, s)
    }

    /// `[c, c, c, c]`.
    pub fn vconst(&mut self, c: f32) -> Value {
        let s = self.b.ins().f32const(c);
        self.b.ins().splat(F32X4, s)
    }

    /// `[c, c, c, c]` as i32x4.
    pub fn iconst4(&mut self, c: i32) -> Value {
        let s = self
            .b
            .ins()
            .iconst(cranelift_codegen::ir::types::I32, i64::from(c));
        self.b.ins().splat(I32X4, s)
    }

    /// The first `lanes` (1..=4) floats at `ptr + offset`, the other lanes `fill`: never touches
    /// memory past the last lane asked for.
    pub fn vload_partial(&mut self, ptr: Value, offset: i64, lanes: usize, fill: f32) -> Value {
        if lanes >= 4 {
            return self.vload(ptr, offset);
        }
        let mut v = self.vconst(fill);
        for lane in 0..lanes {
            let s = self.fload(ptr, offset + 4 * lane as i64);
            v = self.b.ins().insertlane(v, s, lane as u8);
        }
        v
    }

    /// Stores the first `lanes` (1..=4) lanes of `v` at `ptr + offset`.
    pub fn vstore_partial(&mut self, v: Value, ptr: Value, offset: i64, lanes: usize) {
        if lanes >= 4 {
            return self.vstore(v, ptr, offset);
        }
        for lane in 0..lanes {
            let s = self.b.ins().extractlane(v, lane as u8);
            self.fstore(s, ptr, offset + 4 * lane as i64);
        }
    }

    /// Reinterprets a 128-bit vector's bits as another lane type.
    pub fn bitcast(&mut self, to: cranelift_codegen::ir::Type, v: Value) -> Value {
        let f = MemFlagsData::new().with_endianness(Endianness::Little);
        self.b.ins().bitcast(to, f, v)
    }

    /// `mask ? a : b` lane by lane, where `mask` is the (all-ones / all-zeros) result of a vector
    /// compare.
    pub fn select_mask(&mut self, mask: Value, a: Value, b: Value) -> Value {
        let m = self.bitcast(F32X4, mask);
        self.b.ins().bitselect(m, a, b)
    }

    /// A bitwise op between an f32x4 and an integer lane mask.
    pub fn and_bits(&mut self, v: Value, bits: u32) -> Value {
        let m = self.iconst4(bits as i32);
        let m = self.bitcast(F32X4, m);
        self.b.ins().band(v, m)
    }

    /// Lanes `[a0, a2, b0, b2]` (the even lanes of the eight floats `a ++ b`).
    pub fn even_lanes(&mut self, a: Value, b: Value) -> Value {
        self.shuffle32(a, b, [0, 2, 4, 6])
    }

    /// A 32-bit-lane shuffle of two f32x4 (lanes 0–3 from `a`, 4–7 from `b`).
    pub fn shuffle32(&mut self, a: Value, b: Value, lanes: [u8; 4]) -> Value {
        let bytes: Vec<u8> = lanes
            .iter()
            .flat_map(|&l| (0..4).map(move |k| l * 4 + k))
            .collect();
        let imm = self.b.func.dfg.immediates.push(bytes.into());
        let a8 = self.bitcast(I8X16, a);
        let b8 = self.bitcast(I8X16, b);
        let s = self.b.ins().shuffle(a8, b8, imm);
        self.bitcast(F32X4, s)
    }

    /// Sum of the four lanes, as an f32 (((l0 + l1) + (l2 + l3))).
    pub fn hsum(&mut self, v: Value) -> Value {
        let l: Vec<Value> = (0..4).map(|i| self.b.ins().extractlane(v, i)).collect();
        let a = self.b.ins().fadd(l[0], l[1]);
        let c = self.b.ins().fadd(l[2], l[3]);
        self.b.ins().fadd(a, c)
    }

    /// A top-tested loop `for i in (start..end).step_by(step)` over `i64` values, carrying `carried`
    /// values: `body(em, i, current)` returns their next values. Returns their values after the
    /// loop (the header's parameters, so that nothing the body loads gets a second use).
    pub fn for_range(
        &mut self,
        start: Value,
        end: Value,
        step: i64,
        carried: &[Value],
        body: &mut LoopBody<'a, 'b, '_>,
    ) -> Vec<Value> {
        let header = self.b.create_block();
        let body_block = self.b.create_block();
        let exit = self.b.create_block();
        self.b.append_block_param(header, I64);
        for &c in carried {
            let ty = self.b.func.dfg.value_type(c);
            self.b.append_block_param(header, ty);
        }
        let mut args: Vec<BlockArg> = vec![BlockArg::Value(start)];
        args.extend(carried.iter().map(|&c| BlockArg::Value(c)));
        self.b.ins().jump(header, &args);
        self.b.switch_to_block(header);
        let params = self.b.block_params(header).to_vec();
        let i = params[0];
        let cond = self.b.ins().icmp(IntCC::SignedLessThan, i, end);
        self.b.ins().brif(cond, body_block, &[], exit, &[]);
        self.b.switch_to_block(body_block);
        let next = body(self, i, &params[1..]);
        let i_next = self.add_imm(i, step);
        let mut args: Vec<BlockArg> = vec![BlockArg::Value(i_next)];
        args.extend(next.iter().map(|&c| BlockArg::Value(c)));
        self.b.ins().jump(header, &args);
        self.b.switch_to_block(exit);
        params[1..].to_vec()
    }

    /// [`for_range`](Self::for_range) with constant bounds.
    pub fn for_const(
        &mut self,
        start: i64,
        end: i64,
        step: i64,
        carried: &[Value],
        body: &mut LoopBody<'a, 'b, '_>,
    ) -> Vec<Value> {
        let s = self.iconst(start);
        let e = self.iconst(end);
        self.for_range(s, e, step, carried, body)
    }

    /// `if cond { then } else { otherwise }`, for side effects only.
    pub fn if_else(
        &mut self,
        cond: Value,
        then: &mut dyn FnMut(&mut Self),
        otherwise: &mut dyn FnMut(&mut Self),
    ) {
        let t = self.b.create_block();
        let e = self.b.create_block();
        let join = self.b.create_block();
        self.b.ins().brif(cond, t, &[], e, &[]);
        self.b.switch_to_block(t);
        then(self);
        self.b.ins().jump(join, &[]);
        self.b.switch_to_block(e);
        otherwise(self);
        self.b.ins().jump(join, &[]);
        self.b.switch_to_block(join);
    }

    /// Starts `if cond { … } else { … }` written imperatively: the builder is now in the `then`
    /// block; call [`if_otherwise`](Self::if_otherwise) and then [`if_end`](Self::if_end).
    pub fn if_begin(&mut self, cond: Value) -> IfBlocks {
        let t = self.b.create_block();
        let e = self.b.create_block();
        let join = self.b.create_block();
        self.b.ins().brif(cond, t, &[], e, &[]);
        self.b.switch_to_block(t);
        IfBlocks { otherwise: e, join }
    }

    /// Ends the `then` part and continues in the `else` block.
    pub fn if_otherwise(&mut self, blocks: &IfBlocks) {
        self.b.ins().jump(blocks.join, &[]);
        self.b.switch_to_block(blocks.otherwise);
    }

    /// Ends the `else` part and continues after the `if`.
    pub fn if_end(&mut self, blocks: IfBlocks) {
        self.b.ins().jump(blocks.join, &[]);
        self.b.switch_to_block(blocks.join);
    }

    /// `a == c` for an i64 value and a constant.
    pub fn eq_imm(&mut self, a: Value, c: i64) -> Value {
        self.b.ins().icmp_imm_s(IntCC::Equal, a, c)
    }

    /// `min(a, c)` for an i64 value and a constant.
    pub fn min_imm(&mut self, a: Value, c: i64) -> Value {
        let cv = self.iconst(c);
        let lt = self.b.ins().icmp(IntCC::SignedLessThan, a, cv);
        self.b.ins().select(lt, a, cv)
    }
}

/// The blocks of an imperative `if`/`else` (see [`Emitter::if_begin`]).
pub struct IfBlocks {
    otherwise: cranelift_codegen::ir::Block,
    join: cranelift_codegen::ir::Block,
}

/// Builds a standalone function outside any model (the FMA peak loop): `build` gets a builder
/// positioned in the entry block and the function's parameters; returns the finalized module and
/// the function's address.
pub fn standalone(
    params: usize,
    build: &mut dyn FnMut(&mut FunctionBuilder, &[Value]),
) -> Result<(Mutex<JITModule>, *const u8), CodegenError> {
    let mut jb = JitBuilder::new(0, Capture::default())?;
    let sig = jb.signature(params);
    let id = jb.define("standalone", sig, build)?;
    jb.module.finalize_definitions().map_err(cranelift_err)?;
    let ptr = jb.module.get_finalized_function(id);
    Ok((Mutex::new(jb.module), ptr))
}
