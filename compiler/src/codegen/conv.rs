//! The convolution kernel: register-tiled f32x4 FMA with pre-packed weights and the whole epilogue
//! (bias, residual add, activation) applied in registers before the single store.
//!
//! **Tiling.** Two schemes, chosen per layer ([`ConvScheme`]):
//! - *rows* — a tile is `ocb` output channels × `pv` vectors of 4 neighbouring columns of one
//!   output row (`ocb·pv` accumulators). Per input channel and tap it loads `pv` input vectors —
//!   contiguous even for strided convs, thanks to the phase-split padded copy
//!   ([`PaddedLayout`]) — and issues `ocb·pv` FMAs, each with its own broadcast weight (x86-64's
//!   FMA forms overwrite a multiplicand, so the broadcast must be single-use; it then folds into
//!   `vbroadcastss xmm, [mem]`). The tile shape comes from a small cost model ([`choose_tile`]).
//! - *pixels* — for small images whose rows waste lanes (7 or 14 columns fill 8 or 16), a tile is
//!   up to 12 output pixels in row-major order, crossing rows, × 4 channels in one vector: per tap
//!   one weight vector and one broadcast input per pixel. No lane is wasted; the epilogue
//!   scatters the 4 channels. Every tile is unrolled with constant offsets; unpadded convs read
//!   the input in place (no copy at all).
//!
//! The loop over input channels is the only loop inside a tile (fully unrolled when the layer has
//! at most 32 taps in all, e.g. a stem conv on RGB); taps are unrolled with constant offsets. It
//! does two channels per iteration, the second with its FMAs in reverse order, which keeps the
//! accumulators in place without register copies (see `ChannelFn`).
//!
//! **Strided 1×1 convs** (unpadded, no fused pool) copy only the pixels they read into a compact
//! plane ([`emit_gather`]) and then run as a stride-1 conv over one flat row of `oh·ow` pixels.
//!
//! **Phases.** Below a batch of 4: `pad` (padded copies; with a fused pool that pads, the pool's
//! scratch planes are filled with −∞), then `conv` over work items (image, group, channel block,
//! band of rows), then `pool` for a fused max-pool, which stores the activated result into a
//! padded scratch plane and lets the [`pool`](super::pool) kernel read it. From a batch of 4 on,
//! one phase with one image per work item does all three, so the image's copy is still in cache
//! when its tiles read it.
//!
//! A fused 2×2/2 max-pool of a 3×3 stride-1 conv is applied in registers by the
//! [`winograd`](super::winograd) kernel, whose 2×2 output tile is exactly one window. Here (other
//! convs, or a direct scheme forced) it goes through the scratch plane: a tile of 3 channels ×
//! 2 rows × 8 columns pooling in registers was measured at 69 % of peak on SimpleCNN's conv1
//! against 80 % for 12×1 row tiles plus the pool phase (a third more loads per FMA, and a
//! NaN-propagating max per channel).
//!
//! Taps in the padding multiply zeros (the reference skips them: the same sum unless a weight is
//! ±∞ or NaN).

use super::jit::{Base, Emitter, Loc};
use super::pack::{emit_gather, pack_conv_weights, PaddedLayout};
use super::pool::{plane_ptr, PoolGeom};
use super::{activation, CodegenError, StepCx};
use cranelift_codegen::ir::{InstBuilder, Value};
use kiln_runtime::ops::{Conv2d, Epilogue};

/// Work items a conv aims for (so that a few threads balance), when rows allow.
const TARGET_ITEMS: usize = 16;

/// From this batch size on, a conv is one phase with one image per work item.
const PER_IMAGE_BATCH: usize = 4;

/// Most output pixels per tile of the pixel scheme (12 accumulators, the weight vector and one
/// broadcast fit the 16 registers).
const PIXEL_TILE: usize = 12;

/// Largest image the pixel scheme unrolls, in output pixels × kernel taps (14×14 with 3×3, or
/// 28×28 with 1×1 and stride 2).
const PIXEL_MAX: usize = 2304;

/// Largest image (output pixels) the pixel scheme is chosen for by default: on larger ones every
/// channel block re-reads the whole input from L2 (measured slower than row tiles on 28×28).
const PIXEL_IMAGE: usize = 256;

/// Convolutions with at most this many taps over all input channels unroll the channel loop.
const UNROLL_TAPS: usize = 32;

/// Layers with up to this many packed weight bytes (the L2 of one core here) prefetch all their
/// weights at once, larger ones block by block (see `emit_weight_prefetch`).
const PREFETCH_WEIGHTS: usize = 1 << 20;

/// The register budget: 16 xmm registers, one kept free for the compiler.
const REGISTERS: usize = 15;

/// Emits one input channel's taps: `(emitter, input pointer, weight pointer, accumulators,
/// reverse)`. The FMAs of every other tap run in reverse accumulator order, and `reverse` flips
/// that. Why: each FMA's result takes the register of its broadcast (the x86-64 forms overwrite a
/// multiplicand) and the next broadcast takes the register the old accumulator freed, so one pass
/// over the accumulators moves each into its neighbour's register; a loop-carried accumulator
/// then costs a register copy per iteration (one per FMA in a 1×1 conv). A reverse pass moves
/// them back, so a loop body of two channels, the second reversed, needs no copies.
type ChannelFn<'c> = dyn Fn(&mut Emitter, Value, Value, &mut [Value], bool) + 'c;

/// The two ways of tiling a convolution's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvScheme {
    /// `ocb` channels × `pv` vectors of 4 neighbouring columns of one row.
    Rows,
    /// Up to 12 output pixels (crossing rows) × 4 channels in one vector.
    Pixels,
    /// Winograd F(2×2, 3×3) on every conv it applies to (3×3, stride 1, …), the default direct
    /// tiling on the others: the same choice as no forced scheme, named for `--conv-kernel`.
    Winograd,
}

impl ConvScheme {
    /// Whether a conv Winograd applies to should use it, given the forced scheme (if any): yes
    /// unless a direct scheme is forced. Measured against both direct schemes on 3×3 stride-1
    /// convs from 3 → 8 to 64 → 12 channels and 7×7 to 112×112 images, Winograd was as fast or
    /// faster on every one (1.0–1.7×; SimpleCNN's conv1, 3 → 32: 1.15×).
    pub fn wants_winograd(scheme: Option<ConvScheme>) -> bool {
        !matches!(scheme, Some(ConvScheme::Rows | ConvScheme::Pixels))
    }
}

/// A fused max-pool: its geometry and the padded layout the conv stores into.
#[derive(Debug, Clone)]
struct FusedPool {
    geom: PoolGeom,
    layout: PaddedLayout,
    /// Whether padding cells must be filled with −∞ before the conv stores.
    fill: bool,
}

/// A convolution step, planned.
#[derive(Debug, Clone)]
pub struct ConvKernel {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    groups: usize,
    cg: usize,
    og: usize,
    kh: usize,
    kw: usize,
    stride: [usize; 2],
    dilation: [usize; 2],
    oh: usize,
    ow: usize,
    bias: bool,
    epilogue: Epilogue,
    layout: PaddedLayout,
    /// Output channels per register tile.
    pub ocb: usize,
    /// Vectors (of 4 columns) per register tile.
    pub pv: usize,
    nob: usize,
    bands: usize,
    rows_per_band: usize,
    pool: Option<FusedPool>,
    /// The pixel scheme's tiles (output pixels `(oy, ox)`), when it is chosen over row tiles.
    pixel_tiles: Option<Vec<Vec<(usize, usize)>>>,
    /// The tiles read the input itself (pixel scheme without padding: every read is one scalar
    /// inside the image), so there is no padded copy.
    direct: bool,
    /// Bias and activation are applied after the fused pool instead of before: they commute with
    /// the max (adding a constant and relu/leaky_relu are monotone, rounding included), and the
    /// pool has a quarter of the conv's outputs.
    late_epilogue: bool,
    /// A 1×1 conv with stride (no padding, no fused pool) gathers its strided pixels into a compact
    /// copy and runs as a stride-1 conv over one flat row of `oh·ow` pixels; this is the original
    /// geometry, which the copy reads.
    gather: Option<Gather>,
}

/// The original geometry of a gathered 1×1 conv: source `[h, w]`, output `[oh, ow]`, stride.
#[derive(Debug, Clone)]
struct Gather {
    w: usize,
    h: usize,
    oh: usize,
    ow: usize,
    stride: [usize; 2],
}

/// Estimated cycles per tap of a tile of `c` channels × `p` vectors: FMA throughput (2 per cycle),
/// loads (a broadcast per FMA plus `p` input vectors, 2 per cycle) and FMA latency (4 cycles per
/// dependent accumulator). Measured on ResNet-18's 3×3 layers, the best tiles ranked as this
/// model ranks them: 12×1 < 6×2 < 4×3 < 3×4 (cycles per FMA).
fn tile_cost(c: usize, p: usize) -> f64 {
    let fma = (c * p) as f64 / 2.0;
    let loads = (c * p + p) as f64 / 2.0;
    fma.max(loads).max(4.0)
}

/// Picks `(ocb, pv)` for `og` output channels per group and `ow` output columns: the tile shape
/// minimising the cost of all full and tail tiles of one row, within the register budget.
pub fn choose_tile(og: usize, ow: usize) -> (usize, usize) {
    let vr = ow.div_ceil(4).max(1);
    let mut best = (f64::INFINITY, 1, 1);
    for pv in 1..=4.min(vr) {
        for ocb in 1..=12.min(og.max(1)) {
            if ocb * pv + pv >= REGISTERS {
                continue;
            }
            let (nob, tc) = (og / ocb, og % ocb);
            let (nt, tv) = (vr / pv, vr % pv);
            let row = |c: usize| {
                nt as f64 * tile_cost(c, pv) + if tv > 0 { tile_cost(c, tv) } else { 0.0 }
            };
            let cost = nob as f64 * row(ocb) + if tc > 0 { row(tc) } else { 0.0 };
            let better = cost < best.0 - 1e-9
                || ((cost - best.0).abs() <= 1e-9 && ocb * pv > best.1 * best.2);
            if better {
                best = (cost, ocb, pv);
            }
        }
    }
    (best.1, best.2)
}

/// The pixel scheme: tiles of up to [`PIXEL_TILE`] output pixels in row-major order, crossing rows,
/// times 4 output channels in one vector. Chosen (when a group has at least 4 output channels and
/// the unrolled tiles stay small: at most [`PIXEL_MAX`] pixel-taps) for images whose rows waste
/// vector lanes (7 or 14 columns fill 8 or 16 lanes), and for unpadded convs, which it reads in
/// place (no padded copy; the row scheme's vector reads would need one).
fn pixel_tiles(
    scheme: Option<ConvScheme>,
    og: usize,
    (oh, ow): (usize, usize),
    taps: usize,
    unpadded: bool,
) -> Option<Vec<Vec<(usize, usize)>>> {
    let lane_use = ow as f64 / (ow.div_ceil(4) * 4) as f64;
    let fits = og >= 4 && oh * ow * taps <= PIXEL_MAX;
    let wanted = match scheme {
        Some(ConvScheme::Rows) => false,
        Some(ConvScheme::Pixels) => og >= 4,
        None | Some(ConvScheme::Winograd) => {
            fits && oh * ow <= PIXEL_IMAGE && (lane_use < 0.95 || unpadded)
        }
    };
    if !wanted || oh * ow == 0 {
        return None;
    }
    let pixels = oh * ow;
    let tiles = pixels.div_ceil(PIXEL_TILE);
    let per = pixels.div_ceil(tiles);
    let all: Vec<(usize, usize)> = (0..pixels).map(|i| (i / ow, i % ow)).collect();
    Some(all.chunks(per).map(<[_]>::to_vec).collect())
}

impl ConvKernel {
    /// Plans the conv of `input` by `weight` giving `out` (the pool's shape if one is fused), with
    /// the tiling `scheme` if one is forced (tests cover both on every shape).
    pub fn new(
        scheme: Option<ConvScheme>,
        attrs: &Conv2d,
        input: &[usize],
        weight: &[usize],
        out: &[usize],
    ) -> Result<ConvKernel, String> {
        let [n, o, oh, ow] = attrs.conv_shape(input, weight).map_err(|e| e.to_string())?;
        let (c, h, w) = (input[1], input[2], input[3]);
        let (cg, kh, kw) = (weight[1], weight[2], weight[3]);
        let groups = attrs.groups;
        let og = o / groups;
        let p = attrs.padding;
        // A strided 1×1 conv reads a quarter (stride 2) of its input, scattered: gather those
        // pixels once into a compact plane, then every tile reads contiguous floats. The output
        // plane is contiguous too, so the conv runs over one flat row (no lanes wasted on short
        // rows). A fused pool needs the 2-D output, so it keeps the general path.
        let gather = (kh == 1
            && kw == 1
            && p == Default::default()
            && attrs.stride != [1, 1]
            && attrs.epilogue.pool.is_none())
        .then_some(Gather {
            h,
            w,
            oh,
            ow,
            stride: attrs.stride,
        });
        let (h, w, oh, ow, stride, dilation) = match &gather {
            Some(_) => (1, oh * ow, 1, oh * ow, [1, 1], [1, 1]),
            None => (h, w, oh, ow, attrs.stride, attrs.dilation),
        };
        let layout = PaddedLayout::for_windows(
            (h, w),
            (p.top, p.left),
            (kh, kw),
            (stride[0], stride[1]),
            (dilation[0], dilation[1]),
            (oh, ow),
            0.0,
        );
        let (ocb, pv) = choose_tile(og, ow);
        let unpadded = p == Default::default() && gather.is_none();
        let pixel_tiles = pixel_tiles(scheme, og, (oh, ow), kh * kw, unpadded);
        let (ocb, pv) = if pixel_tiles.is_some() {
            (4, 1)
        } else {
            (ocb, pv)
        };
        // The pixel scheme broadcasts single floats, so it needs no phase split: without padding
        // it reads the input in place, otherwise a plain padded copy (vector copies).
        let direct = pixel_tiles.is_some() && unpadded;
        let layout = match &pixel_tiles {
            None => layout,
            Some(_) if direct => PaddedLayout {
                h,
                w,
                top: 0,
                left: 0,
                rows: h,
                phases: 1,
                wq: w,
                fill: 0.0,
            },
            Some(_) => PaddedLayout::plain(
                (h, w),
                (p.top, p.left),
                (
                    (oh - 1) * stride[0] + (kh - 1) * dilation[0] + 1,
                    (ow - 1) * stride[1] + (kw - 1) * dilation[1] + 1,
                ),
                0.0,
            ),
        };
        let nob = og.div_ceil(ocb);
        let items = n * groups * nob;
        let bands = if pixel_tiles.is_some() {
            1
        } else {
            TARGET_ITEMS.div_ceil(items.max(1)).clamp(1, oh.max(1))
        };
        let rows_per_band = oh.div_ceil(bands).max(1);
        let bands = oh.div_ceil(rows_per_band).max(1);
        let pool = match &attrs.epilogue.pool {
            None => None,
            Some(mp) => {
                let geom = PoolGeom {
                    max: true,
                    kernel: mp.kernel,
                    stride: mp.stride,
                    dilation: mp.dilation,
                    out: [out[2], out[3]],
                };
                let pp = mp.padding;
                let layout = geom.layout(oh, ow, pp.top, pp.left);
                // Without padding or ceil_mode every cell a valid window reads is a conv result; the
                // cells only tail lanes read may hold stale values, and those lanes are dropped.
                let fill = pp != Default::default() || mp.ceil_mode;
                Some(FusedPool { geom, layout, fill })
            }
        };
        let late_epilogue = pool.is_some()
            && !attrs.epilogue.residual
            && activation::commutes_with_max(attrs.epilogue.activation.as_ref());
        Ok(ConvKernel {
            n,
            c,
            h,
            w,
            o,
            groups,
            cg,
            og,
            kh,
            kw,
            stride,
            dilation,
            oh,
            ow,
            bias: attrs.bias,
            epilogue: attrs.epilogue.clone(),
            layout,
            ocb,
            pv,
            nob,
            bands,
            rows_per_band,
            pool,
            pixel_tiles,
            direct,
            late_epilogue,
            gather,
        })
    }

    fn in_plane_bytes(&self) -> usize {
        self.layout.plane_floats() * 4
    }

    /// Packed weight bytes of one block of `ocb` output channels.
    fn block_weight_bytes(&self) -> usize {
        self.cg * self.kh * self.kw * self.ocb * 4
    }

    /// Packed weight bytes of the whole layer.
    fn weight_bytes(&self) -> usize {
        self.groups * self.nob * self.block_weight_bytes()
    }

    fn pool_scratch_offset(&self) -> usize {
        if self.direct {
            return 0;
        }
        (self.n * self.c * self.in_plane_bytes()).next_multiple_of(64)
    }

    /// Scratch bytes: the padded input, then (with a fused pool) the padded conv result.
    pub fn scratch_bytes(&self) -> usize {
        let pool = self
            .pool
            .as_ref()
            .map_or(0, |p| self.n * self.o * p.layout.plane_floats() * 4);
        self.pool_scratch_offset() + pool
    }

    /// Emits the step's phases.
    pub fn emit(&self, cx: &mut StepCx) -> Result<(), CodegenError> {
        let step = cx.step;
        let weight = cx
            .param(step.inputs[1])
            .ok_or_else(|| cx.unsupported("the weight must be a parameter"))?;
        let packed = pack_conv_weights(
            weight.data(),
            [self.o, self.cg, self.kh, self.kw],
            self.groups,
            self.ocb,
        );
        let w_off = cx.blob.push(&packed);
        let mut next = 2;
        let b_off = if self.bias {
            next += 1;
            Some(cx.padded_bias(step.inputs[2], self.o + self.ocb)?)
        } else {
            None
        };
        let residual = if self.epilogue.residual {
            Some(cx.loc(step.inputs[next]))
        } else {
            None
        };
        let x = cx.loc(step.inputs[0]);
        let out = cx.loc(step.output);
        let scratch = cx.scratch;
        let pool_scratch = scratch.offset_by(self.pool_scratch_offset());

        let at = Addrs {
            w_off,
            b_off,
            residual,
            out,
            pool_scratch,
        };
        // Where the tiles read: the padded copy, or the input itself.
        let src = if self.direct { x } else { scratch };
        let in_planes = if self.direct { 0 } else { self.n * self.c };
        let fill_planes = match &self.pool {
            Some(p) if p.fill => self.n * self.o,
            _ => 0,
        };
        if self.n >= PER_IMAGE_BATCH {
            // One phase, one image per item: its padded copy is still in cache when its tiles
            // read it (a separate pad phase over a large batch would spill it to memory).
            return cx.phase("conv", self.n as u64, &mut |em, ni| {
                self.emit_image(em, ni, x, fill_planes > 0, &at, src);
            });
        }

        // Phase 1: padded copies (and the pool scratch's −∞ fill).
        if in_planes + fill_planes > 0 {
            cx.phase("pad", (in_planes + fill_planes) as u64, &mut |em, item| {
                if in_planes == 0 {
                    self.emit_fill_pool_plane(em, &at, item);
                } else if fill_planes == 0 {
                    self.emit_copy_plane(em, x, scratch, item);
                } else {
                    let limit = em.iconst(in_planes as i64);
                    let is_copy = em.b.ins().icmp(
                        cranelift_codegen::ir::condcodes::IntCC::SignedLessThan,
                        item,
                        limit,
                    );
                    let blocks = em.if_begin(is_copy);
                    self.emit_copy_plane(em, x, scratch, item);
                    em.if_otherwise(&blocks);
                    let k = em.add_imm(item, -(in_planes as i64));
                    self.emit_fill_pool_plane(em, &at, k);
                    em.if_end(blocks);
                }
            })?;
        }

        // Phase 2: the tiles.
        let items = self.n * self.groups * self.nob * self.bands;
        cx.phase("conv", items as u64, &mut |em, item| {
            let (rest, band) = em.divmod_imm(item, self.bands as i64);
            let (rest, ob) = em.divmod_imm(rest, self.nob as i64);
            let (ni, gi) = em.divmod_imm(rest, self.groups as i64);
            let row0 = em.mul_imm(band, self.rows_per_band as i64);
            let row_end = if self.bands == 1 {
                em.iconst(self.oh as i64)
            } else {
                let e = em.add_imm(row0, self.rows_per_band as i64);
                em.min_imm(e, self.oh as i64)
            };
            self.emit_block(em, [ni, gi, ob], row0, row_end, src, &at);
        })?;

        // Phase 3: the fused pool.
        if self.pool.is_some() {
            cx.phase("pool", (self.n * self.o) as u64, &mut |em, item| {
                self.emit_pool_plane(em, &at, item);
            })?;
        }
        Ok(())
    }

    /// Copies input plane `item` (image · C + channel) into its padded scratch plane.
    fn emit_copy_plane(&self, em: &mut Emitter, x: Loc, scratch: Loc, item: Value) {
        let dst = plane_ptr(em, scratch, item, self.in_plane_bytes() as i64);
        if let Some(g) = &self.gather {
            let src = plane_ptr(em, x, item, (g.h * g.w * 4) as i64);
            let [sh, sw] = g.stride;
            let floats = self.layout.plane_floats();
            emit_gather(em, src, dst, g.w, (g.oh, g.ow), (sh, sw), floats);
            return;
        }
        let src = plane_ptr(em, x, item, (self.h * self.w * 4) as i64);
        self.layout.emit_copy(em, src, dst);
    }

    /// Fills pool scratch plane `k` (image · O + channel) with −∞.
    fn emit_fill_pool_plane(&self, em: &mut Emitter, at: &Addrs, k: Value) {
        if let Some(p) = &self.pool {
            let dst = plane_ptr(em, at.pool_scratch, k, (p.layout.plane_floats() * 4) as i64);
            p.layout.emit_fill(em, dst);
        }
    }

    /// Pools scratch plane `k` (image · O + channel) into the output.
    fn emit_pool_plane(&self, em: &mut Emitter, at: &Addrs, k: Value) {
        if let Some(p) = &self.pool {
            let [ph, pw] = p.geom.out;
            let src = plane_ptr(em, at.pool_scratch, k, (p.layout.plane_floats() * 4) as i64);
            let dst = plane_ptr(em, at.out, k, (ph * pw * 4) as i64);
            // The late epilogue: this plane's channel bias, then the activation.
            let bias = match at.b_off {
                Some(off) if self.late_epilogue => {
                    let (_, oc) = em.divmod_imm(k, self.o as i64);
                    let b = plane_ptr(
                        em,
                        Loc {
                            base: Base::Weights,
                            offset: off,
                        },
                        oc,
                        4,
                    );
                    Some(em.splat_load(b, 0))
                }
                _ => None,
            };
            let act = self.epilogue.activation.filter(|_| self.late_epilogue);
            p.geom
                .emit_plane(em, &p.layout, src, dst, None, &mut |em, v| {
                    let v = match bias {
                        Some(b) => em.b.ins().fadd(v, b),
                        None => v,
                    };
                    match &act {
                        Some(a) => activation::emit(em, a, v),
                        None => v,
                    }
                });
        }
    }

    /// The whole step for image `ni`: copies, every block, the pool.
    fn emit_image(&self, em: &mut Emitter, ni: Value, x: Loc, fill: bool, at: &Addrs, src: Loc) {
        if !self.direct {
            let first = em.mul_imm(ni, self.c as i64);
            let end = em.add_imm(first, self.c as i64);
            em.for_range(first, end, 1, &[], &mut |em, plane, _| {
                self.emit_copy_plane(em, x, src, plane);
                vec![]
            });
        }
        let first_out = em.mul_imm(ni, self.o as i64);
        let end_out = em.add_imm(first_out, self.o as i64);
        if fill {
            em.for_range(first_out, end_out, 1, &[], &mut |em, k, _| {
                self.emit_fill_pool_plane(em, at, k);
                vec![]
            });
        }
        let row0 = em.iconst(0);
        let row_end = em.iconst(self.oh as i64);
        let blocks = (self.groups * self.nob) as i64;
        em.for_const(0, blocks, 1, &[], &mut |em, blk, _| {
            let (gi, ob) = em.divmod_imm(blk, self.nob as i64);
            self.emit_block(em, [ni, gi, ob], row0, row_end, src, at);
            vec![]
        });
        if self.pool.is_some() {
            em.for_range(first_out, end_out, 1, &[], &mut |em, k, _| {
                self.emit_pool_plane(em, at, k);
                vec![]
            });
        }
    }

    /// Pointers of image `ni`, group `gi`, channel block `ob`: input planes, packed weights, bias,
    /// residual and destination planes.
    fn block_ptrs(
        &self,
        em: &mut Emitter,
        [ni, gi, ob]: [Value; 3],
        scratch: Loc,
        at: &Addrs,
    ) -> ItemPtrs {
        // Input planes of this image and group.
        let plane0 = em.mul_imm(ni, self.c as i64);
        let gc = em.mul_imm(gi, self.cg as i64);
        let plane0 = em.b.ins().iadd(plane0, gc);
        let x_plane = plane_ptr(em, scratch, plane0, self.in_plane_bytes() as i64);
        // Packed weights of this group and block.
        let blk = em.mul_imm(gi, self.nob as i64);
        let blk = em.b.ins().iadd(blk, ob);
        let w_blk = plane_ptr(
            em,
            Loc {
                base: Base::Weights,
                offset: at.w_off,
            },
            blk,
            (self.cg * self.kh * self.kw * self.ocb * 4) as i64,
        );
        // First output channel of the block, and the output plane index (image, channel).
        let oc0 = em.mul_imm(gi, self.og as i64);
        let obc = em.mul_imm(ob, self.ocb as i64);
        let oc0 = em.b.ins().iadd(oc0, obc);
        let oplane = em.mul_imm(ni, self.o as i64);
        let oplane = em.b.ins().iadd(oplane, oc0);
        let b_ptr = at.b_off.map(|o| {
            plane_ptr(
                em,
                Loc {
                    base: Base::Weights,
                    offset: o,
                },
                oc0,
                4,
            )
        });
        let out_plane_bytes = (self.oh * self.ow * 4) as i64;
        let res_plane = at
            .residual
            .map(|r| plane_ptr(em, r, oplane, out_plane_bytes));
        let dst_plane = match &self.pool {
            None => plane_ptr(em, at.out, oplane, out_plane_bytes),
            Some(p) => plane_ptr(
                em,
                at.pool_scratch,
                oplane,
                (p.layout.plane_floats() * 4) as i64,
            ),
        };
        ItemPtrs {
            x_plane,
            w_blk,
            b_ptr,
            res_plane,
            dst_plane,
        }
    }

    /// Rows `row0..row_end` of image `ni`, group `gi`, channel block `ob`.
    fn emit_block(
        &self,
        em: &mut Emitter,
        [ni, gi, ob]: [Value; 3],
        row0: Value,
        row_end: Value,
        scratch: Loc,
        at: &Addrs,
    ) {
        let ptrs = self.block_ptrs(em, [ni, gi, ob], scratch, at);
        self.emit_weight_prefetch(em, [ni, gi, ob], row0, ptrs.w_blk);
        let tail = self.og % self.ocb;
        if let Some(tiles) = &self.pixel_tiles {
            let emit_all = |em: &mut Emitter, nc: usize| {
                for tile in tiles {
                    self.emit_pixel_tile(em, &ptrs, tile, nc);
                }
            };
            if tail == 0 {
                emit_all(em, self.ocb);
            } else {
                let is_tail = em.eq_imm(ob, self.nob as i64 - 1);
                let blocks = em.if_begin(is_tail);
                emit_all(em, tail);
                em.if_otherwise(&blocks);
                emit_all(em, self.ocb);
                em.if_end(blocks);
            }
            let _ = (row0, row_end);
            return;
        }
        if tail == 0 {
            self.emit_rows(em, row0, row_end, self.ocb, &ptrs);
        } else {
            let is_tail = em.eq_imm(ob, self.nob as i64 - 1);
            let blocks = em.if_begin(is_tail);
            self.emit_rows(em, row0, row_end, tail, &ptrs);
            em.if_otherwise(&blocks);
            self.emit_rows(em, row0, row_end, self.ocb, &ptrs);
            em.if_end(blocks);
        }
    }

    /// Software prefetch of weights (Cranelift has no prefetch instruction: plain loads whose
    /// values go unused). Between two runs the rest of a network evicts a layer's weights from
    /// L2, and the hardware prefetcher does not run ahead across channel blocks, so each block
    /// would start by waiting for its weights. A layer whose weights fit L2 loads them all
    /// when its first work item starts; a larger one loads the next block's while a block runs.
    /// Measured on ResNet-18 at batch 1: the last 1×1 downsample 74 % → 78 % of peak, the
    /// stride-2 3×3 convs of layers 3 and 4: 81 % → 84 % and 76 % → 82 %.
    fn emit_weight_prefetch(
        &self,
        em: &mut Emitter,
        [ni, gi, ob]: [Value; 3],
        row0: Value,
        w_blk: Value,
    ) {
        let sweep = |em: &mut Emitter, from: Value, bytes: usize| {
            em.for_const(0, (bytes / 64) as i64, 1, &[from], &mut |em, _, c| {
                em.touch(c[0], 0);
                vec![em.add_imm(c[0], 64)]
            });
        };
        if self.weight_bytes() <= PREFETCH_WEIGHTS {
            // The first work item is image 0, group 0, block 0, rows from 0: all zero.
            let any = em.b.ins().bor(ni, gi);
            let any = em.b.ins().bor(any, ob);
            let any = em.b.ins().bor(any, row0);
            let first = em.eq_imm(any, 0);
            let blocks = em.if_begin(first);
            sweep(em, w_blk, self.weight_bytes());
            em.if_otherwise(&blocks);
            em.if_end(blocks);
        } else {
            // The next block's weights (the last block re-reads its own, staying in bounds).
            let last = em.eq_imm(ob, self.nob as i64 - 1);
            let zero = em.iconst(0);
            let block = em.iconst(self.block_weight_bytes() as i64);
            let ahead = em.b.ins().select(last, zero, block);
            let next = em.b.ins().iadd(w_blk, ahead);
            sweep(em, next, self.block_weight_bytes());
        }
    }

    /// Rows `row0..row_end` of a block of `nc` channels.
    fn emit_rows(&self, em: &mut Emitter, row0: Value, row_end: Value, nc: usize, p: &ItemPtrs) {
        let in_row = (self.layout.row_floats() * 4) as i64;
        let tile_px = self.pv * 4;
        let full_tiles = self.ow / tile_px;
        let rem = self.ow % tile_px;
        em.for_range(row0, row_end, 1, &[], &mut |em, oy, _| {
            let xoff = em.mul_imm(oy, self.stride[0] as i64 * in_row);
            let xrow = em.b.ins().iadd(p.x_plane, xoff);
            let row = RowPtrs {
                xrow,
                oy,
                res_row: p.res_plane.map(|r| {
                    let o = em.mul_imm(oy, 4 * self.ow as i64);
                    em.b.ins().iadd(r, o)
                }),
            };
            if full_tiles > 0 {
                em.for_const(
                    0,
                    (full_tiles * tile_px * 4) as i64,
                    (tile_px * 4) as i64,
                    &[],
                    &mut |em, ox0b, _| {
                        self.emit_tile(em, p, &row, nc, self.pv, ox0b, 4);
                        vec![]
                    },
                );
            }
            if rem > 0 {
                let ox0b = em.iconst((full_tiles * tile_px * 4) as i64);
                let pvt = rem.div_ceil(4);
                let last = rem - (pvt - 1) * 4;
                self.emit_tile(em, p, &row, nc, pvt, ox0b, last);
            }
            vec![]
        });
    }

    /// One register tile: `nc` channels × `pvt` vectors starting at column byte offset `ox0b`; the
    /// last vector has `last` valid lanes.
    #[allow(clippy::too_many_arguments)]
    fn emit_tile(
        &self,
        em: &mut Emitter,
        p: &ItemPtrs,
        row: &RowPtrs,
        nc: usize,
        pvt: usize,
        ox0b: Value,
        last: usize,
    ) {
        let in_row = self.layout.row_floats() * 4;
        let [dh, dw] = self.dilation;
        let taps = self.kh * self.kw;
        let ocb = self.ocb;
        // Column `ox` of phase-split row `r` is element `ox` of the phase: ox0b bytes further.
        let xp0 = em.b.ins().iadd(row.xrow, ox0b);
        let zero = em.vconst(0.0);
        let mut carried = vec![xp0, p.w_blk];
        carried.extend(std::iter::repeat_n(zero, nc * pvt));
        // One input channel: every tap, unrolled, with constant offsets from `xp` and `wp`.
        let channel = |em: &mut Emitter, xp: Value, wp: Value, acc: &mut [Value], rev: bool| {
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let off = (ky * dh * in_row + self.layout.tap_offset(kx, dw)) as i64;
                    let xs: Vec<Value> = (0..pvt)
                        .map(|v| em.vload(xp, off + 16 * v as i64))
                        .collect();
                    let t = ky * self.kw + kx;
                    // Accumulator k is channel k / pvt, vector k % pvt; the order alternates
                    // (see `ChannelFn`).
                    let rev = rev ^ (t % 2 == 1);
                    for k in 0..nc * pvt {
                        let k = if rev { nc * pvt - 1 - k } else { k };
                        let (j, v) = (k / pvt, k % pvt);
                        // A fresh broadcast per FMA: x64 has only the 213/132 forms, whose
                        // destination is a multiplicand, so the broadcast must be single-use
                        // (it then also folds into `vbroadcastss xmm, [mem]`).
                        let wv = em.splat_load(wp, ((t * ocb + j) * 4) as i64);
                        let a = &mut acc[k];
                        *a = em.b.ins().fma(wv, xs[v], *a);
                    }
                }
            }
        };
        let w_step = (taps * ocb * 4) as i64;
        let after = self.channel_loop(em, xp0, p.w_blk, carried[2..].to_vec(), w_step, &channel);
        let acc = &after[2..];
        // Epilogue, in registers, then one store per vector.
        let plane_out = (self.oh * self.ow * 4) as i64;
        let res = row.res_row.map(|r| em.b.ins().iadd(r, ox0b));
        let dst = self.dst_row(em, p.dst_plane, row.oy, ox0b);
        for j in 0..nc {
            let bias = match p.b_ptr {
                Some(b) if !self.late_epilogue => Some(em.splat_load(b, 4 * j as i64)),
                _ => None,
            };
            for v in 0..pvt {
                let lanes = if v + 1 == pvt { last } else { 4 };
                let mut r = acc[j * pvt + v];
                if !self.late_epilogue {
                    if let Some(bv) = bias {
                        r = em.b.ins().fadd(r, bv);
                    }
                    if let Some(rp) = res {
                        let off = j as i64 * plane_out + 16 * v as i64;
                        let rv = em.vload_partial(rp, off, lanes, 0.0);
                        r = em.b.ins().fadd(r, rv);
                    }
                    if let Some(a) = &self.epilogue.activation {
                        r = activation::emit(em, a, r);
                    }
                }
                self.store(em, &dst, r, j, v, lanes);
            }
        }
    }

    /// Runs `channel` (one input channel's taps, accumulating into `acc`) over every input channel
    /// of the group: fully unrolled when there are few taps in all, else a loop. Returns `[xp, wp, accumulators…]` after the last channel.
    fn channel_loop(
        &self,
        em: &mut Emitter,
        xp0: Value,
        wp0: Value,
        acc0: Vec<Value>,
        w_step: i64,
        channel: &ChannelFn,
    ) -> Vec<Value> {
        let taps = self.kh * self.kw;
        let plane_bytes = self.in_plane_bytes() as i64;
        if self.cg * taps <= UNROLL_TAPS {
            // Few taps in all (a stem conv on RGB): no loop, no loop-carried accumulators.
            let mut acc = acc0;
            for ic in 0..self.cg as i64 {
                let xp = em.add_imm(xp0, ic * plane_bytes);
                let wp = em.add_imm(wp0, ic * w_step);
                channel(em, xp, wp, &mut acc, false);
            }
            let mut all = vec![xp0, wp0];
            all.extend(acc);
            return all;
        }
        let mut carried = vec![xp0, wp0];
        carried.extend(acc0);
        // Two channels per iteration, the second one's FMAs in reverse order (see `ChannelFn`):
        // the accumulators end the iteration in the registers they started it in.
        let per = if self.cg.is_multiple_of(2) { 2 } else { 1 };
        em.for_const(0, (self.cg / per) as i64, 1, &carried, &mut |em, _, c| {
            let (xp, wp) = (c[0], c[1]);
            let mut acc: Vec<Value> = c[2..].to_vec();
            for k in 0..per {
                let xk = em.add_imm(xp, k as i64 * plane_bytes);
                let wk = em.add_imm(wp, k as i64 * w_step);
                channel(em, xk, wk, &mut acc, k % 2 == 1);
            }
            let per = per as i64;
            let mut next = vec![
                em.add_imm(xp, per * plane_bytes),
                em.add_imm(wp, per * w_step),
            ];
            next.extend(acc);
            next
        })
    }

    /// One tile of the pixel scheme: the listed output pixels × 4 channels (`nc` of them valid);
    /// each accumulator holds 4 channels of one pixel.
    fn emit_pixel_tile(&self, em: &mut Emitter, p: &ItemPtrs, tile: &[(usize, usize)], nc: usize) {
        let [sh, sw] = self.stride;
        let [dh, dw] = self.dilation;
        let taps = self.kh * self.kw;
        let zero = em.vconst(0.0);
        let channel = |em: &mut Emitter, xp: Value, wp: Value, acc: &mut [Value], rev: bool| {
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let t = ky * self.kw + kx;
                    // The 4 channels' weights of this tap, kept in a register for the tile.
                    let wv = em.vload(wp, (t * 16) as i64);
                    // Pixel order alternates (see `ChannelFn`).
                    let rev = rev ^ (t % 2 == 1);
                    for k in 0..tile.len() {
                        let i = if rev { tile.len() - 1 - k } else { k };
                        let (oy, ox) = tile[i];
                        let off = self.layout.offset(oy * sh + ky * dh, ox * sw + kx * dw);
                        // Single-use broadcast: the FMA's destroyed multiplicand (see emit_tile).
                        let x = em.splat_load(xp, off as i64);
                        acc[i] = em.b.ins().fma(x, wv, acc[i]);
                    }
                }
            }
        };
        let w_step = (taps * 16) as i64;
        let acc0 = vec![zero; tile.len()];
        let acc = self.channel_loop(em, p.x_plane, p.w_blk, acc0, w_step, &channel)[2..].to_vec();
        let out_plane = (self.oh * self.ow * 4) as i64;
        let bias = match p.b_ptr {
            Some(b) if !self.late_epilogue => Some(em.vload(b, 0)),
            _ => None,
        };
        for (&(oy, ox), &a) in tile.iter().zip(&acc) {
            let mut r = a;
            if let Some(bv) = bias {
                r = em.b.ins().fadd(r, bv);
            }
            let pix = ((oy * self.ow + ox) * 4) as i64;
            if let Some(rp) = p.res_plane {
                let mut rv = em.vconst(0.0);
                for j in 0..nc {
                    let s = em.fload(rp, j as i64 * out_plane + pix);
                    rv = em.b.ins().insertlane(rv, s, j as u8);
                }
                r = em.b.ins().fadd(r, rv);
            }
            if let Some(a) = self
                .epilogue
                .activation
                .as_ref()
                .filter(|_| !self.late_epilogue)
            {
                r = activation::emit(em, a, r);
            }
            let (dst_plane, dst_pix) = match &self.pool {
                None => (out_plane, pix),
                Some(pl) => {
                    let l = &pl.layout;
                    (
                        (l.plane_floats() * 4) as i64,
                        (((oy + l.top) * l.wq + ox + l.left) * 4) as i64,
                    )
                }
            };
            for j in 0..nc {
                let s = em.b.ins().extractlane(r, j as u8);
                em.fstore(s, p.dst_plane, j as i64 * dst_plane + dst_pix);
            }
        }
    }

    /// Where a tile's results go: the output row, or the fused pool's padded row.
    fn dst_row(&self, em: &mut Emitter, dst_plane: Value, oy: Value, ox0b: Value) -> DstRow {
        match &self.pool {
            None => {
                let o = em.mul_imm(oy, 4 * self.ow as i64);
                let r = em.b.ins().iadd(dst_plane, o);
                DstRow(em.b.ins().iadd(r, ox0b))
            }
            Some(p) => {
                // The pool's padded plane has one phase: the tile's vectors stay contiguous.
                let l = &p.layout;
                let r = em.add_imm(oy, l.top as i64);
                let ro = em.mul_imm(r, (l.row_floats() * 4) as i64);
                let row = em.b.ins().iadd(dst_plane, ro);
                let base = em.b.ins().iadd(row, ox0b);
                DstRow(em.add_imm(base, 4 * l.left as i64))
            }
        }
    }

    /// Stores vector `v` of channel `j` (its first `lanes` lanes).
    fn store(&self, em: &mut Emitter, dst: &DstRow, r: Value, j: usize, v: usize, lanes: usize) {
        let plane = match &self.pool {
            None => self.oh * self.ow * 4,
            Some(p) => p.layout.plane_floats() * 4,
        };
        let off = (j * plane) as i64 + 16 * v as i64;
        em.vstore_partial(r, dst.0, off, lanes);
    }
}

/// Compile-time places of the step's operands.
struct Addrs {
    w_off: usize,
    b_off: Option<usize>,
    residual: Option<Loc>,
    out: Loc,
    pool_scratch: Loc,
}

/// Per-item pointers.
struct ItemPtrs {
    x_plane: Value,
    w_blk: Value,
    b_ptr: Option<Value>,
    res_plane: Option<Value>,
    dst_plane: Value,
}

/// Per-row pointers.
struct RowPtrs {
    xrow: Value,
    oy: Value,
    res_row: Option<Value>,
}

/// A tile's destination: `base + 16·v` is vector `v` of the block's first channel (the output
/// row, or the fused pool's padded row).
struct DstRow(Value);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_fit_the_register_budget() {
        for og in [1, 3, 16, 32, 64, 512] {
            for ow in [1, 2, 7, 14, 16, 32, 56, 112] {
                let (ocb, pv) = choose_tile(og, ow);
                assert!(ocb * pv + pv < REGISTERS, "og {og} ow {ow}: {ocb}×{pv}");
                assert!(ocb <= og.max(1) && pv <= ow.div_ceil(4));
            }
        }
    }

    #[test]
    fn wide_layers_get_at_least_eight_accumulators() {
        // FMA latency 4 × 2 ports: fewer than 8 independent accumulators cannot reach the peak.
        for (og, ow) in [(64, 16), (32, 32), (128, 28), (512, 7)] {
            let (ocb, pv) = choose_tile(og, ow);
            assert!(ocb * pv >= 8, "og {og} ow {ow}: {ocb}×{pv}");
        }
    }
}
