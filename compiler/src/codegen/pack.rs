//! Packing: weights re-ordered at compile time into the order the kernels read them, and the padded,
//! phase-split copies of activations that convolutions and pools read at run time.
//!
//! **Padded, phase-split planes.** A kernel vectorised over four neighbouring output columns reads,
//! for kernel column `kx`, the input columns `ox·s + kx·d` for four consecutive `ox`. With stride
//! `s > 1` those are `s` apart. Copying each padded row as `s` *phases* — phase `p` holds padded
//! columns `p, p + s, p + 2s, …` — makes them contiguous again: column `ox·s + kx·d` is element
//! `ox + ⌊kx·d / s⌋` of phase `(kx·d) mod s`. The copy also writes the padding (zeros for a conv,
//! −∞ for a max-pool), so the kernels need no bounds checks, and it leaves enough columns and rows
//! that a tail vector's unused lanes read inside the copy.

use super::jit::Emitter;
use cranelift_codegen::ir::Value;

/// The geometry of a padded, phase-split copy of `[h, w]` planes.
#[derive(Debug, Clone, PartialEq)]
pub struct PaddedLayout {
    /// Source rows.
    pub h: usize,
    /// Source columns.
    pub w: usize,
    /// Padding rows above the source.
    pub top: usize,
    /// Padding columns left of the source.
    pub left: usize,
    /// Rows of the copy (source, padding and whatever the kernel's windows reach).
    pub rows: usize,
    /// Number of phases (the horizontal stride).
    pub phases: usize,
    /// Elements per phase (a multiple of 4).
    pub wq: usize,
    /// The padding value.
    pub fill: f32,
}

impl PaddedLayout {
    /// A layout for windows of `(kh, kw)` taps with stride `(sh, sw)` and dilation `(dh, dw)` over
    /// `[h, w]` planes padded by `top`/`left`, producing `oh × ow` outputs computed four columns at a
    /// time (so up to `⌈ow/4⌉·4` columns are read).
    #[allow(clippy::too_many_arguments)]
    pub fn for_windows(
        (h, w): (usize, usize),
        (top, left): (usize, usize),
        (kh, kw): (usize, usize),
        (sh, sw): (usize, usize),
        (dh, dw): (usize, usize),
        (oh, ow): (usize, usize),
        fill: f32,
    ) -> PaddedLayout {
        let rows = (top + h).max((oh - 1) * sh + (kh - 1) * dh + 1);
        let ow_read = ow.div_ceil(4) * 4;
        let wq_windows = ow_read + (kw - 1) * dw / sw;
        let wq_source = (left + w).div_ceil(sw);
        let wq = wq_windows.max(wq_source).div_ceil(4) * 4;
        PaddedLayout {
            h,
            w,
            top,
            left,
            rows,
            phases: sw,
            wq,
            fill,
        }
    }

    /// A layout without phase split (one phase) of `rows × cols` (cols rounded up to 4), for
    /// kernels that gather strided columns themselves (the pools).
    pub fn plain(
        (h, w): (usize, usize),
        (top, left): (usize, usize),
        (rows, cols): (usize, usize),
        fill: f32,
    ) -> PaddedLayout {
        PaddedLayout {
            h,
            w,
            top,
            left,
            rows: rows.max(top + h),
            phases: 1,
            wq: cols.max(left + w).div_ceil(4) * 4,
            fill,
        }
    }

    /// Floats in one padded row (all phases).
    pub fn row_floats(&self) -> usize {
        self.phases * self.wq
    }

    /// Floats in one padded plane (a multiple of 4).
    pub fn plane_floats(&self) -> usize {
        self.rows * self.row_floats()
    }

    /// Byte offset, within a plane, of padded row `r`, padded column `c`.
    pub fn offset(&self, r: usize, c: usize) -> usize {
        4 * ((r * self.phases + c % self.phases) * self.wq + c / self.phases)
    }

    /// Byte offset, within a padded row, of the read for window tap column `kx` (dilation `dw`)
    /// at output column 0: phase `(kx·dw) mod s`, element `⌊kx·dw / s⌋`.
    pub fn tap_offset(&self, kx: usize, dw: usize) -> usize {
        let c = kx * dw;
        4 * ((c % self.phases) * self.wq + c / self.phases)
    }

    /// Emits the copy of one `[h, w]` plane at `src` into the padded plane at `dst`: fills the
    /// plane with the padding value, then copies every source row into place.
    pub fn emit_copy(&self, em: &mut Emitter, src: Value, dst: Value) {
        self.emit_fill(em, dst);
        let (h, w, s) = (self.h as i64, self.w, self.phases);
        let row_bytes = (self.row_floats() * 4) as i64;
        let dst0 = em.add_imm(dst, self.top as i64 * row_bytes);
        em.for_const(0, h, 1, &[src, dst0], &mut |em, _, c| {
            let (src_row, dst_row) = (c[0], c[1]);
            if s == 1 {
                let d = em.add_imm(dst_row, 4 * self.left as i64);
                copy_run(em, src_row, d, w);
            } else {
                for p in 0..s {
                    // Padded columns j·s + p whose source column j·s + p − left lies in 0..w.
                    let j0 = (self.left.saturating_sub(p)).div_ceil(s);
                    let j1 = (self.left + w).saturating_sub(p).div_ceil(s);
                    for_strided_copy(em, src_row, dst_row, p, j0, j1, self);
                }
            }
            let ns = em.add_imm(src_row, 4 * w as i64);
            let nd = em.add_imm(dst_row, row_bytes);
            vec![ns, nd]
        });
    }

    /// Emits the fill of one padded plane at `dst` with the padding value.
    pub fn emit_fill(&self, em: &mut Emitter, dst: Value) {
        let bytes = (self.plane_floats() * 4) as i64;
        let v = em.vconst(self.fill);
        let end = em.add_imm(dst, bytes);
        // Four vectors per iteration: planes are multiples of 4 floats, not of 16, so the last
        // iteration may stop short; the rest is stored one vector at a time.
        let unrolled = bytes / 64 * 64;
        let end4 = em.add_imm(dst, unrolled);
        let after = em.for_range(dst, end4, 64, &[], &mut |em, p, _| {
            for k in 0..4 {
                em.vstore(v, p, 16 * k);
            }
            vec![]
        });
        let _ = after;
        let start = em.add_imm(dst, unrolled);
        em.for_range(start, end, 16, &[], &mut |em, p, _| {
            em.vstore(v, p, 0);
            vec![]
        });
    }
}

/// Copies `n` floats from `src` to `dst` (vectors, then the tail lane by lane).
pub fn copy_run(em: &mut Emitter, src: Value, dst: Value, n: usize) {
    let full = (n / 4) as i64;
    if full > 0 {
        let end = em.add_imm(src, full * 16);
        em.for_range(src, end, 16, &[dst], &mut |em, s, c| {
            let v = em.vload(s, 0);
            em.vstore(v, c[0], 0);
            vec![em.add_imm(c[0], 16)]
        });
    }
    let rem = n % 4;
    if rem > 0 {
        let off = full * 16;
        let v = em.vload_partial(src, off, rem, 0.0);
        em.vstore_partial(v, dst, off, rem);
    }
}

/// Gathers the pixels `(oy·sh, ox·sw)` (`oy < oh`, `ox < ow`) of one `[_, w]` plane at `src` into
/// a compact `oh·ow` run at `dst` (row-major, no padding), whose storage is `plane_floats` floats:
/// a 1×1 conv with stride then reads contiguous pixels, and its copy writes only what it reads. The
/// floats past `oh·ow` (read by a tail vector's unused lanes) are zeroed.
pub fn emit_gather(
    em: &mut Emitter,
    src: Value,
    dst: Value,
    w: usize,
    (oh, ow): (usize, usize),
    (sh, sw): (usize, usize),
    plane_floats: usize,
) {
    if plane_floats > oh * ow && plane_floats >= 4 {
        let z = em.vconst(0.0);
        em.vstore(z, dst, 4 * (plane_floats as i64 - 4));
    }
    // for_strided_copy reads only the source width and the stride from the layout.
    let layout = PaddedLayout {
        h: oh,
        w,
        top: 0,
        left: 0,
        rows: oh,
        phases: sw,
        wq: 0,
        fill: 0.0,
    };
    em.for_const(0, oh as i64, 1, &[src, dst], &mut |em, _, c| {
        if sw == 1 {
            copy_run(em, c[0], c[1], ow);
        } else {
            for_strided_copy(em, c[0], c[1], 0, 0, ow, &layout);
        }
        vec![
            em.add_imm(c[0], 4 * (sh * w) as i64),
            em.add_imm(c[1], 4 * ow as i64),
        ]
    });
}

/// Copies source columns `j·s + p − left` (for `j` in `j0..j1`) of one row into phase `p`,
/// element `j`, of the padded row at `dst_row`.
fn for_strided_copy(
    em: &mut Emitter,
    src_row: Value,
    dst_row: Value,
    p: usize,
    j0: usize,
    j1: usize,
    layout: &PaddedLayout,
) {
    if j1 <= j0 {
        return;
    }
    let s = layout.phases;
    let src_start = j0 * s + p - layout.left;
    let src = em.add_imm(src_row, 4 * src_start as i64);
    let dst = em.add_imm(dst_row, 4 * (p * layout.wq + j0) as i64);
    let count = (j1 - j0) as i64;
    // With stride 2, four elements per iteration as the even lanes of eight neighbours (two
    // loads, one shuffle, one store); the eight must end inside the row, so quads whose eighth
    // float would pass the row's end are left to the lane-by-lane loop below.
    let quads = if s == 2 {
        let in_row = (layout.w as i64 - src_start as i64 - 8).div_euclid(8) + 1;
        in_row.clamp(0, count / 4)
    } else {
        0
    };
    let src_step = 4 * s as i64;
    let [src, dst] = if quads > 0 {
        let end = em.add_imm(dst, quads * 16);
        let out = em.for_range(dst, end, 16, &[src], &mut |em, d, c| {
            let a = em.vload(c[0], 0);
            let b = em.vload(c[0], 16);
            let even = em.even_lanes(a, b);
            em.vstore(even, d, 0);
            vec![em.add_imm(c[0], 4 * src_step)]
        });
        [out[0], end]
    } else {
        [src, dst]
    };
    let count = count - 4 * quads;
    // Whole quads left (any other stride, or stride 2 near the row's end), lane by lane, then
    // the rest one by one.
    let [src, dst] = if count >= 4 {
        let whole = count / 4;
        let end = em.add_imm(dst, whole * 16);
        let out = em.for_range(dst, end, 16, &[src], &mut |em, d, c| {
            for k in 0..4 {
                let v = em.fload(c[0], k * src_step);
                em.fstore(v, d, 4 * k);
            }
            vec![em.add_imm(c[0], 4 * src_step)]
        });
        [out[0], end]
    } else {
        [src, dst]
    };
    for k in 0..count % 4 {
        let v = em.fload(src, k * src_step);
        em.fstore(v, dst, 4 * k);
    }
}

/// Conv weights `[O, Cg, kH, kW]` packed for the register-tiled kernel: per group `g` and block `b`
/// of `ocb` output channels, per input channel, per tap `(ky, kx)`, the block's `ocb` weights
/// side by side (zeros for channels past the group's last):
/// `packed[g][b][ic][ky][kx][j] = w[g·Og + b·ocb + j][ic][ky][kx]`.
pub fn pack_conv_weights(
    w: &[f32],
    [o, cg, kh, kw]: [usize; 4],
    groups: usize,
    ocb: usize,
) -> Vec<f32> {
    let og = o / groups;
    let nob = og.div_ceil(ocb);
    let taps = kh * kw;
    let mut out = vec![0f32; groups * nob * cg * taps * ocb];
    let mut i = 0;
    for g in 0..groups {
        for b in 0..nob {
            for ic in 0..cg {
                for t in 0..taps {
                    for j in 0..ocb {
                        let oc_in_group = b * ocb + j;
                        if oc_in_group < og {
                            let oc = g * og + oc_in_group;
                            out[i] = w[(oc * cg + ic) * taps + t];
                        }
                        i += 1;
                    }
                }
            }
        }
    }
    out
}

/// Linear weights `[M, K]` packed as blocks of `width` outputs: `packed[b][k][j] = w[b·width + j][k]`
/// (zeros past output `M`), so the kernel reads one contiguous run of `width` weights per input.
pub fn pack_linear_weights(w: &[f32], m: usize, k: usize, width: usize) -> Vec<f32> {
    let nb = m.div_ceil(width);
    let mut out = vec![0f32; nb * k * width];
    for b in 0..nb {
        for kk in 0..k {
            for j in 0..width {
                let row = b * width + j;
                if row < m {
                    out[(b * k + kk) * width + j] = w[row * k + kk];
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_packing_orders_blocks_taps_and_channels() {
        // O = 3, Cg = 1, 1×2 kernel, one group, blocks of 2 channels: w[oc][0][0][kx] = 10·oc + kx.
        let w = [0., 1., 10., 11., 20., 21.];
        let p = pack_conv_weights(&w, [3, 1, 1, 2], 1, 2);
        // Block 0: tap 0 → (oc0, oc1) = (0, 10); tap 1 → (1, 11). Block 1: (20, 0), (21, 0).
        assert_eq!(p, vec![0., 10., 1., 11., 20., 0., 21., 0.]);
    }

    #[test]
    fn linear_packing_transposes_blocks() {
        // M = 3, K = 2: w = [[1, 2], [3, 4], [5, 6]]; blocks of 2 outputs.
        let p = pack_linear_weights(&[1., 2., 3., 4., 5., 6.], 3, 2, 2);
        // Block 0: k=0 → (1, 3), k=1 → (2, 4). Block 1: k=0 → (5, 0), k=1 → (6, 0).
        assert_eq!(p, vec![1., 3., 2., 4., 5., 0., 6., 0.]);
    }

    #[test]
    fn stride_two_layout_splits_phases() {
        // 5 columns, left padding 1, a 3-wide window with stride 2 and 2 outputs: padded columns
        // 0..7, phase 0 holds padded 0, 2, 4, 6 and phase 1 holds 1, 3, 5.
        let l = PaddedLayout::for_windows((1, 5), (0, 1), (1, 3), (1, 2), (1, 1), (1, 2), 0.0);
        assert_eq!(l.phases, 2);
        // Tap kx = 2 at output 0 reads padded column 2: phase 0, element 1.
        assert_eq!(l.tap_offset(2, 1), 4);
        // Padded column 3 is phase 1, element 1.
        assert_eq!(l.offset(0, 3), 4 * (l.wq + 1));
        assert_eq!(l.wq % 4, 0);
    }
}
