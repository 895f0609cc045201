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
//! f64) and packed in the order the kernel reads it; at run time, per work item (an image and a band
//! of tile rows):
//! 1. *input transform*: `V[ξ][c][t] = (Bᵀ d B)[ξ]` for the band's tiles `t`, four neighbouring tiles
//!    per vector; the padded copy is phase-split by column parity, so the four tiles' columns
//!    (2 apart) are contiguous loads;
//! 2. per block of `ocb` output channels: for each of the 16 positions `ξ`, the matrix product
//!    `M[ξ][k][t] = Σ_c U[ξ][k][c] · V[ξ][c][t]`, register-tiled like the direct kernel
//!    (`ocb` channels × one vector of tiles, a single-use broadcast weight per FMA);
//! 3. *output transform* `Y = Aᵀ M A` per channel and vector of four tiles, then the epilogue in
//!    registers: bias, residual add and activation on the interleaved output rows, or, with a
//!    fused 2×2/2 max-pool, the maximum of each tile's four outputs (a tile is exactly one pool
//!    window), then bias and activation on the pooled vector when they commute with the max.
//!
//! Differences from the direct sum: rounding (the transforms add up to 9 terms before and after
//! the products; measured error in the tests), and an infinite input gives NaN where the direct sum
//! gives ±∞ (∞ − ∞ inside the transforms); finite inputs and NaN behave as the reference.

use super::jit::{Base, Emitter, Loc};
use super::pack::PaddedLayout;
use super::pool::{nan_max, plane_ptr};
use super::{activation, CodegenError, StepCx};
use cranelift_codegen::ir::{InstBuilder, Value};
use kiln_runtime::ops::{Activation, Conv2d, Epilogue};

/// Output channels per register tile of the matrix product (12 accumulators, one input vector and
/// a broadcast fit the 16 registers; the direct kernel measured this shape best).
const OCB: usize = 12;

/// Work items a step aims for (so that a few threads balance).
const TARGET_ITEMS: usize = 16;

/// Bytes of the transformed input a band may take before it is split into more bands (a band's
/// `V` is re-read once per channel block, so it should stay in L2).
const BAND_BYTES: usize = 96 << 10;

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
    /// Tiles per band row, rounded up to whole vectors.
    twp: usize,
    /// Tile rows per band, bands per image, bands per work item.
    rpb: usize,
    bands: usize,
    per_item: usize,
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
            || oh == 0
            || ow == 0
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
        let twp = tw.div_ceil(4) * 4;
        // Bands: enough work items for the threads, small enough that a band's V stays in cache.
        let row_bytes = 16 * c * twp * 4;
        let by_cache = (BAND_BYTES / row_bytes.max(1)).clamp(1, th);
        let by_items = th.div_ceil(TARGET_ITEMS.div_ceil(n)).max(1);
        let rpb = by_cache.min(by_items);
        let bands = th.div_ceil(rpb);
        // Items: at most TARGET_ITEMS per image's worth of bands; an item runs its bands in turn,
        // reusing one scratch slot.
        let items_per_image = TARGET_ITEMS.div_ceil(n).clamp(1, bands);
        let per_item = bands.div_ceil(items_per_image);
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
        let monotone = match epilogue.activation {
            None | Some(Activation::Relu) => true,
            Some(Activation::LeakyRelu { negative_slope }) => negative_slope >= 0.0,
            Some(_) => false,
        };
        Some(WinogradKernel {
            n,
            c,
            h,
            w,
            o,
            oh,
            ow,
            th,
            twp,
            rpb,
            bands,
            per_item,
            bias: attrs.bias,
            late_epilogue: pool && monotone,
            epilogue,
            pool,
            layout,
        })
    }

    /// Tiles per band.
    fn tb(&self) -> usize {
        self.rpb * self.twp
    }

    /// Work items: per image, groups of `per_item` bands.
    fn items(&self) -> usize {
        self.n * self.bands.div_ceil(self.per_item)
    }

    fn in_plane_bytes(&self) -> usize {
        self.layout.plane_floats() * 4
    }

    /// Bytes between two positions ξ of V (`[16][c][tb]`).
    fn v_xi(&self) -> usize {
        self.c * self.tb() * 4
    }

    /// Bytes between two positions ξ of M (`[16][ocb][tb]`).
    fn m_xi(&self) -> usize {
        OCB * self.tb() * 4
    }

    fn slot_bytes(&self) -> usize {
        (16 * self.v_xi()).next_multiple_of(64) + (16 * self.m_xi()).next_multiple_of(64)
    }

    fn slots_offset(&self) -> usize {
        (self.n * self.c * self.in_plane_bytes()).next_multiple_of(64)
    }

    /// Scratch bytes: the padded input planes, then one V and M slot per work item.
    pub fn scratch_bytes(&self) -> usize {
        self.slots_offset() + self.items() * self.slot_bytes()
    }

    /// The filter transform `U = G g Gᵀ`, packed `[ξ][block][c][ocb]` (channels past `o` zero).
    fn pack_weights(&self, g: &[f32]) -> Vec<f32> {
        let nob = self.o.div_ceil(OCB);
        let mut u = vec![0f32; 16 * nob * self.c * OCB];
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
            slots: cx.scratch.offset_by(self.slots_offset()),
        };
        let (plane_in, plane_pad) = ((self.h * self.w * 4) as i64, self.in_plane_bytes() as i64);
        cx.phase("pad", (self.n * self.c) as u64, &mut |em, item| {
            let src = plane_ptr(em, x, item, plane_in);
            let dst = plane_ptr(em, at.padded, item, plane_pad);
            self.layout.emit_copy(em, src, dst);
        })?;
        let groups = self.bands.div_ceil(self.per_item);
        cx.phase("winograd", self.items() as u64, &mut |em, item| {
            let (ni, grp) = em.divmod_imm(item, groups as i64);
            let slot = plane_ptr(em, at.slots, item, self.slot_bytes() as i64);
            let first = em.mul_imm(grp, self.per_item as i64);
            let end = em.add_imm(first, self.per_item as i64);
            let end = em.min_imm(end, self.bands as i64);
            em.for_range(first, end, 1, &[], &mut |em, band, _| {
                self.emit_band(em, &at, ni, band, slot);
                vec![]
            });
        })
    }

    /// Band `band` of image `ni`, using the scratch slot at `slot`.
    fn emit_band(&self, em: &mut Emitter, at: &Addrs, ni: Value, band: Value, slot: Value) {
        let ty0 = em.mul_imm(band, self.rpb as i64);
        let v = slot;
        let m = em.add_imm(slot, (16 * self.v_xi()).next_multiple_of(64) as i64);
        self.emit_input_transform(em, at, ni, ty0, v);
        let nob = self.o / OCB;
        if nob > 0 {
            em.for_const(0, nob as i64, 1, &[], &mut |em, kb, _| {
                self.emit_block(em, at, [ni, ty0, kb], v, m, OCB);
                vec![]
            });
        }
        let tail = self.o % OCB;
        if tail > 0 {
            let kb = em.iconst(nob as i64);
            self.emit_block(em, at, [ni, ty0, kb], v, m, tail);
        }
    }

    /// `V = Bᵀ d B` for every input channel and tile of the band starting at tile row `ty0`.
    fn emit_input_transform(&self, em: &mut Emitter, at: &Addrs, ni: Value, ty0: Value, v: Value) {
        let row_bytes = (self.layout.row_floats() * 4) as i64;
        let plane0 = em.mul_imm(ni, self.c as i64);
        let x0 = plane_ptr(em, at.padded, plane0, self.in_plane_bytes() as i64);
        let band_off = em.mul_imm(ty0, 2 * row_bytes);
        let x0 = em.b.ins().iadd(x0, band_off);
        let tb4 = (self.tb() * 4) as i64;
        let v_xi = self.v_xi() as i64;
        let taps: Vec<i64> = (0..4)
            .map(|j| self.layout.tap_offset(j, 1) as i64)
            .collect();
        let plane = self.in_plane_bytes() as i64;
        em.for_const(0, self.c as i64, 1, &[x0, v], &mut |em, _, cur| {
            let (xp, vp) = (cur[0], cur[1]);
            for r in 0..self.rpb {
                for tv in 0..self.twp / 4 {
                    let src = 2 * r as i64 * row_bytes + 16 * tv as i64;
                    let dst = ((r * self.twp + 4 * tv) * 4) as i64;
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
        let vecs = (self.tb() / 4) as i64;
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
        let tb4 = (self.tb() * 4) as i64;
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
        let mj = em.add_imm(m, (j * self.tb() * 4) as i64);
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
        let r_off = em.mul_imm(r, (self.twp * 4) as i64);
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
