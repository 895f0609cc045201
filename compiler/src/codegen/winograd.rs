//! Winograd F(2×2, 3×3) convolution: 3×3, stride 1 convs with 2.25× fewer multiply-adds than the
//! direct kernel (16 instead of 36 per 2×2 output tile and channel pair).
//!
//! Why: on x86-64 Cranelift emits f32x4 at best, so a direct conv tops out near the f32x4 FMA
//! peak; only fewer flops make it faster. F(2,3) is the variant whose transforms use only the
//! coefficients ±1 and ½, so its rounding error stays near the direct sum's and a NaN reaches
//! exactly the outputs whose windows hold it (see the tests).
//!
//! With `d` a 4×4 input patch, `g` a 3×3 filter and `Y` the 2×2 output tile:
//! `Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A`. The filter transform `U = G g Gᵀ` is done at compile time (in
//! f64) and packed in the order the kernel reads it. At run time the output's 2×2 tiles are cut
//! into *bands* of tile rows, numbered row after row without gaps (`t = r·tw + tx`, so 7 tiles a
//! row waste no lanes), and for each band:
//! 1. *input transform*: `V[ξ][c][t] = (Bᵀ d B)[ξ]`, four neighbouring tiles per vector; the padded
//!    copy is phase-split by column parity, so the four tiles' columns (2 apart) are contiguous;
//! 2. per block of 12 output channels: for each of the 16 positions `ξ`, the matrix product
//!    `M[ξ][k][t] = Σ_c U[ξ][k][c] · V[ξ][c][t]`, register-tiled like the direct kernel
//!    (12 channels × one vector of tiles, a single-use broadcast weight per FMA);
//! 3. *output transform* `Y = Aᵀ M A` per channel and vector of four tiles, then the epilogue in
//!    registers: bias, residual add and activation on the interleaved output rows, or, with a
//!    fused 2×2/2 max-pool, the maximum of each tile's four outputs (a tile is exactly one pool
//!    window), then bias and activation on the pooled vector when they commute with the max.
//!
//! **Work split** (measured on SimpleCNN and ResNet-18): bands are as large as L2 allows for V
//! (re-read once per channel block), and smaller when U is small enough to re-read per band
//! from L2, until there are enough of them for the threads. When U is large (ResNet-18's last
//! layers: 16 MiB) a band is the whole image, and the threads split its channel blocks instead;
//! the input transform is then a phase of its own writing one V per band that every channel
//! group reads (transforming it once per group measured 30 % slower).
//!
//! Differences from the direct sum: rounding (the transforms add up to 9 terms before and after
//! the products; measured error in the tests), and an infinite input or weight gives NaN where
//! the direct sum gives ±∞ (∞ − ∞ inside the transforms). With finite weights, NaN inputs reach
//! exactly the outputs they reach in the reference; a NaN weight makes its whole output channel
//! NaN, as in the direct kernel (which also multiplies the padding's zeros).

use super::jit::{Base, Emitter, Loc};
use super::pack::PaddedLayout;
use super::pool::{nan_max, plane_ptr};
use super::{activation, CodegenError, StepCx};
use cranelift_codegen::ir::{InstBuilder, Value};
use kiln_runtime::ops::{Conv2d, Epilogue};

/// Output channels per register tile of the matrix product (12 accumulators, one input vector and
/// a broadcast fit the 16 registers; the direct kernel measured this shape best).
const OCB: usize = 12;

/// Units of work a step aims for (so that a few threads balance): bands of images, and when those
/// are too few, groups of output-channel blocks of a band.
const TARGET_UNITS: usize = 16;

/// Fewest units before a band's output channels are split into groups.
const MIN_UNITS: usize = 8;

/// Transformed filters up to this size are re-read per band from L2 (see `BAND_BYTES`).
const U_CACHED: usize = 512 << 10;

/// Most work items of a step: each has a scratch slot of its own, so this bounds the scratch.
const MAX_ITEMS: usize = 16;

/// Fewest channel blocks a group of a band takes, so that a unit's matrix products stay long next
/// to its fixed costs (loop setup, the output transform's pointers).
const MIN_BLOCKS_PER_GROUP: usize = 2;

/// Bytes of the transformed input a band may take: its `V` is re-read once per channel block, so
/// it should stay in L2 (1 MiB per core here). Bands as large as that read the transformed
/// filters (`16·C·O` floats: 16 MiB on ResNet-18's last layers) from memory fewer times.
const BAND_BYTES: usize = 1024 << 10;

/// `G` of F(2,3): the filter transform `U = G g Gᵀ`.
const G: [[f64; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];

/// A Winograd convolution step, planned.
#[derive(Debug, Clone)]
pub struct WinogradKernel {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    oh: usize,
    ow: usize,
    /// Tile rows and tile columns (`⌈oh/2⌉`, `⌈ow/2⌉`).
    th: usize,
    tw: usize,
    /// Tile rows per band, bands per image.
    rpb: usize,
    bands: usize,
    /// Groups of channel blocks per band, blocks per group.
    kgroups: usize,
    blocks_per_group: usize,
    /// Units (image, band, channel group) per work item.
    per_item: usize,
    /// With channel groups, the input transform is a phase of its own, over (image, band, chunk
    /// of input channels), writing one V per band that every group reads; else each unit
    /// transforms its band's input into its item's slot, where it stays in cache.
    shared_v: bool,
    /// Input channels per work item of that phase.
    c_chunk: usize,
    bias: bool,
    epilogue: Epilogue,
    /// A fused 2×2/2 max-pool (one pool window per tile).
    pool: bool,
    /// Bias and activation after the pool (they commute with the max).
    late_epilogue: bool,
    layout: PaddedLayout,
}

impl WinogradKernel {
    /// Plans the conv of `input` by `weight` giving `out` (the pool's shape if one is fused), or
    /// `None` when F(2,3) does not apply: a kernel other than 3×3, stride or dilation other than 1,
    /// groups, or a fused pool other than an unpadded 2×2/2 whose windows are whole tiles.
    pub fn new(
        attrs: &Conv2d,
        input: &[usize],
        weight: &[usize],
        out: &[usize],
    ) -> Option<WinogradKernel> {
        let [n, o, oh, ow] = attrs.conv_shape(input, weight).ok()?;
        let (c, h, w) = (input[1], input[2], input[3]);
        if weight[2..] != [3, 3]
            || attrs.stride != [1, 1]
            || attrs.dilation != [1, 1]
            || attrs.groups != 1
            || [n, c, o, oh, ow].contains(&0)
        {
            return None;
        }
        let epilogue = attrs.epilogue.clone();
        let pool = match &epilogue.pool {
            None => false,
            Some(mp) => {
                let whole_tiles = mp.kernel == [2, 2]
                    && mp.stride == [2, 2]
                    && mp.dilation == [1, 1]
                    && mp.padding == Default::default()
                    && out.get(2..4) == Some(&[oh / 2, ow / 2][..]);
                if !whole_tiles || epilogue.residual || oh < 2 || ow < 2 {
                    return None;
                }
                true
            }
        };
        let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
        // Bands as large as the cache allows (see BAND_BYTES), as even as possible.
        let row_bytes = 16 * c * tw * 4;
        let nob = o.div_ceil(OCB);
        let mut bands = th.div_ceil((BAND_BYTES / row_bytes.max(1)).clamp(1, th));
        // Transformed filters that stay in L2 cost little to re-read per band: then smaller bands
        // make the work items (more bands are cheaper than channel groups, which need a phase of
        // their own for the input transform).
        if 16 * c * nob * OCB * 4 <= U_CACHED {
            bands = bands.max(TARGET_UNITS.div_ceil(n).min(th));
        }
        let rpb = th.div_ceil(bands);
        let bands = th.div_ceil(rpb);
        // Too few bands for the threads: split each band's output channels into groups.
        let kgroups = if n * bands >= MIN_UNITS {
            1
        } else {
            TARGET_UNITS
                .div_ceil(n * bands)
                .min((nob / MIN_BLOCKS_PER_GROUP).max(1))
        };
        let blocks_per_group = nob.div_ceil(kgroups);
        let kgroups = nob.div_ceil(blocks_per_group);
        let units = n * bands * kgroups;
        let shared_v = kgroups > 1;
        let per_item = if shared_v {
            1
        } else {
            units.div_ceil(MAX_ITEMS)
        };
        let c_chunk = c.div_ceil(TARGET_UNITS.div_ceil(n * bands));
        let twp = tw.div_ceil(4) * 4;
        let p = attrs.padding;
        let layout = PaddedLayout::for_windows(
            (h, w),
            (p.top, p.left),
            (4, 4),
            (2, 2),
            (1, 1),
            (bands * rpb, twp),
            0.0,
        );
        Some(WinogradKernel {
            n,
            c,
            h,
            w,
            o,
            oh,
            ow,
            th,
            tw,
            rpb,
            bands,
            kgroups,
            blocks_per_group,
            per_item,
            shared_v,
            c_chunk,
            bias: attrs.bias,
            late_epilogue: pool && activation::commutes_with_max(epilogue.activation.as_ref()),
            epilogue,
            pool,
            layout,
        })
    }

    /// Tile vectors of a row, rounded up (the last one may hold the next row's first tiles).
    fn twp(&self) -> usize {
        self.tw.div_ceil(4) * 4
    }

    /// Floats per channel of one position of V and M: the band's tiles, row after row without
    /// gaps (`t = r·tw + tx`), with room for the last row's vectors to run past its end.
    fn tbs(&self) -> usize {
        let flat = (self.rpb * self.tw).div_ceil(4) * 4;
        let last = (self.rpb - 1) * self.tw + self.twp();
        flat.max(last).div_ceil(4) * 4
    }

    /// Units of work: (image, band, channel group).
    fn units(&self) -> usize {
        self.n * self.bands * self.kgroups
    }

    /// Work items: runs of `per_item` units.
    fn items(&self) -> usize {
        self.units().div_ceil(self.per_item)
    }

    fn in_plane_bytes(&self) -> usize {
        self.layout.plane_floats() * 4
    }

    /// Bytes between two positions ξ of V (`[16][c][tb]`).
    fn v_xi(&self) -> usize {
        self.c * self.tbs() * 4
    }

    /// Bytes between two positions ξ of M (`[16][ocb][tb]`).
    fn m_xi(&self) -> usize {
        OCB * self.tbs() * 4
    }

    /// Bytes of one band's V.
    fn v_bytes(&self) -> usize {
        (16 * self.v_xi()).next_multiple_of(64)
    }

    /// Bytes of a work item's slot: its M, and its V unless V is shared.
    fn slot_bytes(&self) -> usize {
        let v = if self.shared_v { 0 } else { self.v_bytes() };
        v + (16 * self.m_xi()).next_multiple_of(64)
    }

    /// Where the shared Vs start (after the padded input), and the slots (after them).
    fn shared_offset(&self) -> usize {
        (self.n * self.c * self.in_plane_bytes()).next_multiple_of(64)
    }

    fn slots_offset(&self) -> usize {
        let shared = if self.shared_v {
            self.n * self.bands * self.v_bytes()
        } else {
            0
        };
        self.shared_offset() + shared
    }

    /// Scratch bytes: the padded input planes, the shared Vs, then one slot per work item.
    pub fn scratch_bytes(&self) -> usize {
        self.slots_offset() + self.items() * self.slot_bytes()
    }

    /// Bytes of the packed filter transform.
    pub fn packed_bytes(&self) -> usize {
        16 * self.o.div_ceil(OCB) * self.c * OCB * 4
    }

    /// The filter transform `U = G g Gᵀ`, packed `[ξ][block][c][ocb]` (channels past `o` zero).
    fn pack_weights(&self, g: &[f32]) -> Vec<f32> {
        let nob = self.o.div_ceil(OCB);
        let mut u = vec![0f32; self.packed_bytes() / 4];
        for k in 0..self.o {
            for ci in 0..self.c {
                let f = &g[(k * self.c + ci) * 9..][..9];
                // Gg (4×3), then (Gg)Gᵀ (4×4).
                let mut gg = [[0f64; 3]; 4];
                for (a, row) in gg.iter_mut().enumerate() {
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = (0..3).map(|i| G[a][i] * f64::from(f[i * 3 + j])).sum();
                    }
                }
                for (a, ga) in gg.iter().enumerate() {
                    for (b, gb) in G.iter().enumerate() {
                        let v: f64 = (0..3).map(|j| ga[j] * gb[j]).sum();
                        let xi = a * 4 + b;
                        let (blk, j) = (k / OCB, k % OCB);
                        u[((xi * nob + blk) * self.c + ci) * OCB + j] = v as f32;
                    }
                }
            }
        }
        u
    }

    /// Emits the step's phases: the padded copies, then the work items.
    pub fn emit(&self, cx: &mut StepCx) -> Result<(), CodegenError> {
        let step = cx.step;
        let weight = cx
            .param(step.inputs[1])
            .ok_or_else(|| cx.unsupported("the weight must be a parameter"))?;
        let u_off = cx.blob.push(&self.pack_weights(weight.data()));
        let mut next = 2;
        let b_off = if self.bias {
            next += 1;
            Some(cx.padded_bias(step.inputs[2], self.o.div_ceil(OCB) * OCB)?)
        } else {
            None
        };
        let residual = self.epilogue.residual.then(|| cx.loc(step.inputs[next]));
        let x = cx.loc(step.inputs[0]);
        let at = Addrs {
            u: Loc {
                base: Base::Weights,
                offset: u_off,
            },
            bias: b_off.map(|offset| Loc {
                base: Base::Weights,
                offset,
            }),
            residual,
            out: cx.loc(step.output),
            padded: cx.scratch,
            shared: cx.scratch.offset_by(self.shared_offset()),
            slots: cx.scratch.offset_by(self.slots_offset()),
        };
        let (plane_in, plane_pad) = ((self.h * self.w * 4) as i64, self.in_plane_bytes() as i64);
        cx.phase("pad", (self.n * self.c) as u64, &mut |em, item| {
            let src = plane_ptr(em, x, item, plane_in);
            let dst = plane_ptr(em, at.padded, item, plane_pad);
            self.layout.emit_copy(em, src, dst);
        })?;
        if self.shared_v {
            let chunks = self.c.div_ceil(self.c_chunk);
            let items = self.n * self.bands * chunks;
            cx.phase("transform", items as u64, &mut |em, item| {
                let (band_index, chunk) = em.divmod_imm(item, chunks as i64);
                let (ni, band) = em.divmod_imm(band_index, self.bands as i64);
                let ty0 = em.mul_imm(band, self.rpb as i64);
                let v = plane_ptr(em, at.shared, band_index, self.v_bytes() as i64);
                let c0 = em.mul_imm(chunk, self.c_chunk as i64);
                let c1 = em.add_imm(c0, self.c_chunk as i64);
                let c1 = em.min_imm(c1, self.c as i64);
                self.emit_input_transform(em, &at, [ni, ty0, c0, c1], v);
            })?;
        }
        cx.phase("winograd", self.items() as u64, &mut |em, item| {
            let slot = plane_ptr(em, at.slots, item, self.slot_bytes() as i64);
            let first = em.mul_imm(item, self.per_item as i64);
            let end = em.add_imm(first, self.per_item as i64);
            let end = em.min_imm(end, self.units() as i64);
            em.for_range(first, end, 1, &[], &mut |em, unit, _| {
                self.emit_unit(em, &at, unit, slot);
                vec![]
            });
        })
    }

    /// Unit `unit` (image, band, channel group), using its work item's scratch slot.
    fn emit_unit(&self, em: &mut Emitter, at: &Addrs, unit: Value, slot: Value) {
        let (rest, kg) = em.divmod_imm(unit, self.kgroups as i64);
        let (ni, band) = em.divmod_imm(rest, self.bands as i64);
        let ty0 = em.mul_imm(band, self.rpb as i64);
        let (v, m) = if self.shared_v {
            let v = plane_ptr(em, at.shared, rest, self.v_bytes() as i64);
            (v, slot)
        } else {
            let m = em.add_imm(slot, self.v_bytes() as i64);
            let (c0, c1) = (em.iconst(0), em.iconst(self.c as i64));
            self.emit_input_transform(em, at, [ni, ty0, c0, c1], slot);
            (slot, m)
        };
        // The group's whole blocks, then (in the last group) the block of the remaining channels.
        let full = self.o / OCB;
        let kb0 = em.mul_imm(kg, self.blocks_per_group as i64);
        let kb1 = em.add_imm(kb0, self.blocks_per_group as i64);
        let kb1 = em.min_imm(kb1, full as i64);
        em.for_range(kb0, kb1, 1, &[], &mut |em, kb, _| {
            self.emit_block(em, at, [ni, ty0, kb], v, m, OCB);
            vec![]
        });
        let tail = self.o % OCB;
        if tail > 0 {
            let last = em.eq_imm(kg, self.kgroups as i64 - 1);
            let blocks = em.if_begin(last);
            let kb = em.iconst(full as i64);
            self.emit_block(em, at, [ni, ty0, kb], v, m, tail);
            em.if_otherwise(&blocks);
            em.if_end(blocks);
        }
    }

    /// `V = Bᵀ d B` for every input channel and tile of the band starting at tile row `ty0`.
    fn emit_input_transform(
        &self,
        em: &mut Emitter,
        at: &Addrs,
        [ni, ty0, c0, c1]: [Value; 4],
        v: Value,
    ) {
        let row_bytes = (self.layout.row_floats() * 4) as i64;
        let plane0 = em.mul_imm(ni, self.c as i64);
        let plane0 = em.b.ins().iadd(plane0, c0);
        let x0 = plane_ptr(em, at.padded, plane0, self.in_plane_bytes() as i64);
        let band_off = em.mul_imm(ty0, 2 * row_bytes);
        let x0 = em.b.ins().iadd(x0, band_off);
        let tb4 = (self.tbs() * 4) as i64;
        let v_off = em.mul_imm(c0, tb4);
        let v = em.b.ins().iadd(v, v_off);
        let v_xi = self.v_xi() as i64;
        let taps: Vec<i64> = (0..4)
            .map(|j| self.layout.tap_offset(j, 1) as i64)
            .collect();
        let plane = self.in_plane_bytes() as i64;
        em.for_range(c0, c1, 1, &[x0, v], &mut |em, _, cur| {
            let (xp, vp) = (cur[0], cur[1]);
            // Rows in order: a row's last vector may run into the next row's first tiles, which
            // the next row then overwrites.
            for r in 0..self.rpb {
                for tv in 0..self.twp() / 4 {
                    let src = 2 * r as i64 * row_bytes + 16 * tv as i64;
                    let dst = ((r * self.tw + 4 * tv) * 4) as i64;
                    let d = |em: &mut Emitter, i: usize, j: usize| {
                        em.vload(xp, src + i as i64 * row_bytes + taps[j])
                    };
                    // Row a of Bᵀd from two input rows, then row a of (Bᵀd)B.
                    for a in 0..4 {
                        let t: Vec<Value> = (0..4)
                            .map(|j| {
                                let (p, q) = match a {
                                    0 => (d(em, 0, j), d(em, 2, j)),
                                    1 => (d(em, 1, j), d(em, 2, j)),
                                    2 => (d(em, 2, j), d(em, 1, j)),
                                    _ => (d(em, 1, j), d(em, 3, j)),
                                };
                                if a == 1 {
                                    em.b.ins().fadd(p, q)
                                } else {
                                    em.b.ins().fsub(p, q)
                                }
                            })
                            .collect();
                        let row = [
                            em.b.ins().fsub(t[0], t[2]),
                            em.b.ins().fadd(t[1], t[2]),
                            em.b.ins().fsub(t[2], t[1]),
                            em.b.ins().fsub(t[1], t[3]),
                        ];
                        for (b, val) in row.into_iter().enumerate() {
                            em.vstore(val, vp, (a * 4 + b) as i64 * v_xi + dst);
                        }
                    }
                }
            }
            vec![em.add_imm(xp, plane), em.add_imm(vp, tb4)]
        });
    }

    /// Channel block `kb` (`nc` channels) of the band: the 16 matrix products into M, then the
    /// output transform and epilogue of each channel.
    fn emit_block(
        &self,
        em: &mut Emitter,
        at: &Addrs,
        [ni, ty0, kb]: [Value; 3],
        v: Value,
        m: Value,
        nc: usize,
    ) {
        let nob = self.o.div_ceil(OCB) as i64;
        let u0 = em.addr(at.u);
        let u_blk = (self.c * OCB * 4) as i64;
        let vecs = (self.rpb * self.tw).div_ceil(4) as i64;
        em.for_const(0, 16, 1, &[], &mut |em, xi, _| {
            // U[ξ][kb], V[ξ], M[ξ].
            let blk = em.mul_imm(xi, nob);
            let blk = em.b.ins().iadd(blk, kb);
            let up = em.mul_imm(blk, u_blk);
            let up = em.b.ins().iadd(u0, up);
            let vo = em.mul_imm(xi, self.v_xi() as i64);
            let vp = em.b.ins().iadd(v, vo);
            let mo = em.mul_imm(xi, self.m_xi() as i64);
            let mp = em.b.ins().iadd(m, mo);
            em.for_const(0, vecs * 16, 16, &[], &mut |em, off, _| {
                let vt = em.b.ins().iadd(vp, off);
                let mt = em.b.ins().iadd(mp, off);
                self.emit_product(em, up, vt, mt, nc);
                vec![]
            });
            vec![]
        });
        for j in 0..nc {
            self.emit_output_transform(em, at, [ni, ty0, kb], m, j);
        }
    }

    /// One register tile of the product: `nc` channels × one vector of 4 tiles, summed over the
    /// input channels, stored to M.
    fn emit_product(&self, em: &mut Emitter, up: Value, vt: Value, mt: Value, nc: usize) {
        let tb4 = (self.tbs() * 4) as i64;
        let u_c = (OCB * 4) as i64;
        let channel = |em: &mut Emitter, vp: Value, wp: Value, acc: &mut [Value], rev: bool| {
            let x = em.vload(vp, 0);
            for k in 0..nc {
                let j = if rev { nc - 1 - k } else { k };
                // A fresh broadcast per FMA: x64's FMA forms overwrite a multiplicand (see conv).
                let wv = em.splat_load(wp, 4 * j as i64);
                acc[j] = em.b.ins().fma(wv, x, acc[j]);
            }
        };
        let zero = em.vconst(0.0);
        let mut carried = vec![vt, up];
        carried.extend(std::iter::repeat_n(zero, nc));
        // Two channels per iteration, the second in reverse order: the accumulators end each
        // iteration in the registers they started it in (see conv's `ChannelFn`).
        let per = if self.c.is_multiple_of(2) { 2 } else { 1 };
        let after = em.for_const(0, (self.c / per) as i64, 1, &carried, &mut |em, _, cur| {
            let (vp, wp) = (cur[0], cur[1]);
            let mut acc = cur[2..].to_vec();
            for k in 0..per {
                let vk = em.add_imm(vp, k as i64 * tb4);
                let wk = em.add_imm(wp, k as i64 * u_c);
                channel(em, vk, wk, &mut acc, k % 2 == 1);
            }
            let mut next = vec![
                em.add_imm(vp, per as i64 * tb4),
                em.add_imm(wp, per as i64 * u_c),
            ];
            next.extend(acc);
            next
        });
        for (j, &a) in after[2..].iter().enumerate() {
            em.vstore(a, mt, j as i64 * tb4);
        }
    }

    /// `Y = Aᵀ M A` and the epilogue for channel `j` of block `kb`, every tile of the band.
    fn emit_output_transform(
        &self,
        em: &mut Emitter,
        at: &Addrs,
        [ni, ty0, kb]: [Value; 3],
        m: Value,
        j: usize,
    ) {
        let k = em.mul_imm(kb, OCB as i64);
        let k = em.add_imm(k, j as i64);
        let plane = em.mul_imm(ni, self.o as i64);
        let plane = em.b.ins().iadd(plane, k);
        let (ph, pw) = (self.oh / 2, self.ow / 2);
        let out_plane = if self.pool {
            ph * pw
        } else {
            self.oh * self.ow
        };
        let dst = plane_ptr(em, at.out, plane, (out_plane * 4) as i64);
        let res = at
            .residual
            .map(|r| plane_ptr(em, r, plane, (out_plane * 4) as i64));
        let bias = at.bias.map(|b| {
            let p = plane_ptr(em, b, k, 4);
            em.splat_load(p, 0)
        });
        let mj = em.add_imm(m, (j * self.tbs() * 4) as i64);
        let cx = OutCx { dst, res, bias, mj };
        // Tile rows whose outputs are all stored: both rows of a tile, or its pool window.
        let full_rows = self.oh / 2;
        let end = em.add_imm(ty0, self.rpb as i64);
        let end = em.min_imm(end, full_rows as i64);
        em.for_range(ty0, end, 1, &[], &mut |em, ty, _| {
            self.emit_tile_row(em, &cx, ty0, ty, 2);
            vec![]
        });
        if !self.pool && self.oh % 2 == 1 {
            // The last tile row has one output row; it belongs to the last band.
            let last = (self.th - 1) as i64;
            let band_of_last = last / self.rpb as i64 * self.rpb as i64;
            let is_last = em.eq_imm(ty0, band_of_last);
            let blocks = em.if_begin(is_last);
            let ty = em.iconst(last);
            self.emit_tile_row(em, &cx, ty0, ty, 1);
            em.if_otherwise(&blocks);
            em.if_end(blocks);
        }
    }

    /// One tile row `ty` (of the band starting at `ty0`) of one channel: `rows` output rows per tile.
    fn emit_tile_row(&self, em: &mut Emitter, cx: &OutCx, ty0: Value, ty: Value, rows: usize) {
        let r = em.b.ins().isub(ty, ty0);
        let r_off = em.mul_imm(r, (self.tw * 4) as i64);
        let mrow = em.b.ins().iadd(cx.mj, r_off);
        // Output columns per vector of 4 tiles: 8, or 4 pooled.
        let cols = if self.pool { 4 } else { 8 };
        let width = if self.pool { self.ow / 2 } else { self.ow };
        let out_rows = if self.pool { 1 } else { 2 };
        let row_bytes = (width * 4) as i64;
        let orow = em.mul_imm(ty, out_rows * row_bytes);
        let drow = em.b.ins().iadd(cx.dst, orow);
        let rrow = cx.res.map(|p| em.b.ins().iadd(p, orow));
        let full = width / cols;
        let row = TileRow {
            mrow,
            drow,
            rrow,
            row_bytes,
            rows,
        };
        if full > 0 {
            em.for_const(0, full as i64, 1, &[], &mut |em, tv, _| {
                self.emit_tile_vector(em, cx, &row, tv, cols);
                vec![]
            });
        }
        if width % cols > 0 {
            let tv = em.iconst(full as i64);
            self.emit_tile_vector(em, cx, &row, tv, width % cols);
        }
    }

    /// Four tiles (tile vector `tv` of the row): output transform, epilogue and stores of the
    /// first `valid` output columns.
    fn emit_tile_vector(
        &self,
        em: &mut Emitter,
        cx: &OutCx,
        row: &TileRow,
        tv: Value,
        valid: usize,
    ) {
        let m_xi = self.m_xi() as i64;
        let moff = em.mul_imm(tv, 16);
        let mp = em.b.ins().iadd(row.mrow, moff);
        // Aᵀ M: s0 = m0 + m1 + m2, s1 = m1 − m2 − m3, per column b.
        let mut s0 = Vec::with_capacity(4);
        let mut s1 = Vec::with_capacity(4);
        for b in 0..4 {
            let mv: Vec<Value> = (0..4)
                .map(|a| em.vload(mp, (a * 4 + b) as i64 * m_xi))
                .collect();
            let t = em.b.ins().fadd(mv[0], mv[1]);
            s0.push(em.b.ins().fadd(t, mv[2]));
            let t = em.b.ins().fsub(mv[1], mv[2]);
            s1.push(em.b.ins().fsub(t, mv[3]));
        }
        // (Aᵀ M) A: y_p0 = s_p0 + s_p1 + s_p2, y_p1 = s_p1 − s_p2 − s_p3; y is [y00, y01, y10, y11].
        let mut y = Vec::with_capacity(4);
        for sp in [s0, s1] {
            let t = em.b.ins().fadd(sp[0], sp[1]);
            y.push(em.b.ins().fadd(t, sp[2]));
            let t = em.b.ins().fsub(sp[1], sp[2]);
            y.push(em.b.ins().fsub(t, sp[3]));
        }
        let act = self.epilogue.activation;
        let early = |em: &mut Emitter, v: Value| {
            let v = match cx.bias {
                Some(b) => em.b.ins().fadd(v, b),
                None => v,
            };
            match &act {
                Some(a) => activation::emit(em, a, v),
                None => v,
            }
        };
        if self.pool {
            // The pool window of each tile, taps in the reference's order.
            let ys: Vec<Value> = if self.late_epilogue {
                y
            } else {
                y.into_iter().map(|v| early(em, v)).collect()
            };
            let mut p = nan_max(em, ys[0], ys[1]);
            p = nan_max(em, p, ys[2]);
            p = nan_max(em, p, ys[3]);
            if self.late_epilogue {
                p = early(em, p);
            }
            let off = em.mul_imm(tv, 16);
            let d = em.b.ins().iadd(row.drow, off);
            em.vstore_partial(p, d, 0, valid);
            return;
        }
        let off = em.mul_imm(tv, 32);
        let d = em.b.ins().iadd(row.drow, off);
        let rp = row.rrow.map(|p| em.b.ins().iadd(p, off));
        for q in 0..row.rows {
            let (y0, y1) = (y[2 * q], y[2 * q + 1]);
            // Interleave the tiles' two columns back into output order.
            let halves = [
                em.shuffle32(y0, y1, [0, 4, 1, 5]),
                em.shuffle32(y0, y1, [2, 6, 3, 7]),
            ];
            for (hf, v) in halves.into_iter().enumerate() {
                let lanes = valid.saturating_sub(4 * hf).min(4);
                if lanes == 0 {
                    continue;
                }
                let off = q as i64 * row.row_bytes + 16 * hf as i64;
                let mut v = match cx.bias {
                    Some(b) => em.b.ins().fadd(v, b),
                    None => v,
                };
                if let Some(r) = rp {
                    let rv = em.vload_partial(r, off, lanes, 0.0);
                    v = em.b.ins().fadd(v, rv);
                }
                if let Some(a) = &act {
                    v = activation::emit(em, a, v);
                }
                em.vstore_partial(v, d, off, lanes);
            }
        }
    }
}

/// Compile-time places of the step's operands and scratch.
struct Addrs {
    u: Loc,
    bias: Option<Loc>,
    residual: Option<Loc>,
    out: Loc,
    padded: Loc,
    shared: Loc,
    slots: Loc,
}

/// Per-channel pointers of the output transform.
struct OutCx {
    dst: Value,
    res: Option<Value>,
    bias: Option<Value>,
    /// M of this channel (`ξ = 0`, first tile of the band).
    mj: Value,
}

/// Per-tile-row pointers.
struct TileRow {
    mrow: Value,
    drow: Value,
    rrow: Option<Value>,
    row_bytes: i64,
    rows: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_runtime::ops::{Activation, MaxPool2d, Padding2d};

    fn conv(pad: usize, pool: bool) -> Conv2d {
        Conv2d {
            stride: [1, 1],
            padding: Padding2d::symmetric(pad, pad),
            dilation: [1, 1],
            groups: 1,
            bias: true,
            epilogue: Epilogue {
                residual: false,
                activation: Some(Activation::Relu),
                pool: pool.then(|| MaxPool2d {
                    kernel: [2, 2],
                    stride: [2, 2],
                    padding: Padding2d::default(),
                    dilation: [1, 1],
                    ceil_mode: false,
                }),
            },
        }
    }

    fn plan(x: [usize; 4], o: usize, pool: bool) -> WinogradKernel {
        let out = if pool {
            [x[0], o, x[2] / 2, x[3] / 2]
        } else {
            [x[0], o, x[2], x[3]]
        };
        WinogradKernel::new(&conv(1, pool), &x, &[o, x[1], 3, 3], &out).expect("applies")
    }

    #[test]
    fn work_is_split_as_the_cache_and_threads_want() {
        // SimpleCNN's conv2 at batch 1: small filters (16·32·72 floats = 147 KiB), so one band
        // per tile row (8) and no channel groups.
        let k = plan([1, 32, 16, 16], 64, true);
        assert_eq!((k.bands, k.rpb, k.kgroups, k.shared_v), (8, 1, 1, false));
        // ResNet-18's last 3×3 convs: 16 MiB of filters, a 7×7 image; one band (read once), its
        // 43 channel blocks split into groups over a shared V.
        let k = plan([1, 512, 7, 7], 512, false);
        assert_eq!((k.bands, k.rpb), (1, 4));
        assert!(k.shared_v && k.kgroups >= 8, "{k:?}");
        // The hand-picked case of `jit_random.rs`: 3 bands, 5 blocks in 2 groups.
        let k = plan([1, 24, 6, 6], 60, false);
        assert_eq!((k.bands, k.kgroups, k.shared_v), (3, 2, true));
        // A batch of 32 gives enough units without groups; at most MAX_ITEMS slots.
        let k = plan([32, 32, 16, 16], 64, true);
        assert!(!k.shared_v && k.items() <= MAX_ITEMS, "{k:?}");
    }

    #[test]
    fn tiles_of_a_band_are_numbered_without_gaps() {
        // ResNet-18's layer-3 convs: 14×14 outputs, 7×7 tiles; V of a tile row is
        // 16·256·7·4 B = 112 KiB, so all 7 rows make one band (U = 4.1 MiB is not re-read).
        // Its 49 tiles take 13 vectors (52 floats per channel), not 7 rows × 2 vectors (56);
        // the last row's second vector ends at 6·7 + 8 = 50 ≤ 52.
        let k = plan([1, 256, 14, 14], 256, false);
        assert_eq!((k.tw, k.rpb, k.bands), (7, 7, 1));
        assert_eq!(k.tbs(), 52);
    }

    #[test]
    fn filter_transform_is_g_g_gt() {
        // All-ones 3×3 filter: (G g Gᵀ)[a][b] = s_a · s_b with s = the row sums of G =
        // [1, 1.5, 0.5, 1]; so U[1][1] = 2.25, U[1][2] = 0.75, U[2][2] = 0.25, U[0][3] = 1.
        let k = plan([1, 1, 4, 4], 1, false);
        let u = k.pack_weights(&[1.0; 9]);
        let at = |a: usize, b: usize| u[(a * 4 + b) * OCB];
        let s = [1.0, 1.5, 0.5, 1.0];
        for a in 0..4 {
            for b in 0..4 {
                assert_eq!(at(a, b), s[a] * s[b], "U[{a}][{b}]");
            }
        }
        // A filter with one tap, g[0][0] = 1: U = G[:,0] G[:,0]ᵀ, G[:,0] = [1, ½, ½, 0].
        let mut g = [0.0; 9];
        g[0] = 1.0;
        let u = k.pack_weights(&g);
        let col = [1.0, 0.5, 0.5, 0.0];
        for a in 0..4 {
            for b in 0..4 {
                assert_eq!(u[(a * 4 + b) * OCB], col[a] * col[b], "U[{a}][{b}]");
            }
        }
    }

    #[test]
    fn applies_only_where_f23_computes_the_conv() {
        let x = [1, 8, 8, 8];
        let w = [8, 8, 3, 3];
        let out = [1, 8, 8, 8];
        let mut c = conv(1, false);
        assert!(WinogradKernel::new(&c, &x, &w, &out).is_some());
        c.stride = [2, 2];
        assert!(WinogradKernel::new(&c, &x, &w, &[1, 8, 4, 4]).is_none());
        let mut c = conv(1, false);
        c.dilation = [2, 2];
        assert!(WinogradKernel::new(&c, &x, &w, &[1, 8, 6, 6]).is_none());
        let mut c = conv(1, false);
        c.groups = 2;
        assert!(WinogradKernel::new(&c, &x, &[8, 4, 3, 3], &out).is_none());
        // 5×5 kernels, and a pool whose windows are not the tiles (3×3/2).
        let c = conv(2, false);
        assert!(WinogradKernel::new(&c, &x, &[8, 8, 5, 5], &out).is_none());
        let mut c = conv(1, true);
        if let Some(p) = c.epilogue.pool.as_mut() {
            p.kernel = [3, 3];
        }
        assert!(WinogradKernel::new(&c, &x, &w, &[1, 8, 3, 3]).is_none());
    }
}
