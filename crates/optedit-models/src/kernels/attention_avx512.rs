//! The f32 attention forward pass on AVX-512: each head's keys and values
//! packed once, the two products in register blocks of our own.
//!
//! Why not `gemm` here (as `attention.rs` does elsewhere): attention's
//! products have one small side (a head's width, 40 in SD 1.5's first
//! level), so `gemm` spends its time packing rather than multiplying: it
//! packs the keys again for every tile of queries, and the tile of
//! probabilities for every product with the values. Measured on SD 1.5's
//! 4096-token self-attention (docs/benchmarks.md), this path is the faster
//! one. The arithmetic is that of `attention::forward` (same softmax, same
//! normalisation of the output rows by the sums); only the summation order
//! of the products differs, as between any two matrix-product kernels.
//!
//! Layouts:
//! - keys: strips of [`LANES`] keys; strip `s` holds `dim` rows of 16 key
//!   values, one per head column, so that one load gives a column of
//!   `k^T` for 16 keys. Keys past `m` are zero.
//! - values: `m` rows of the head's `dim` values, padded with zeros to a
//!   multiple of 16 columns.
//! - queries: a tile of rows copied contiguous and scaled by the softmax
//!   scale, padded with zero rows to a multiple of [`MR`] rows; each query
//!   number is broadcast from memory inside the multiply-add.

use std::arch::x86_64::*;

use rayon::prelude::*;

use super::attention::{exp_row, probabilities_row, Spec, TILE_SCORES};
use super::product::Shared;
use super::zeros;

/// Floats in one 512-bit register.
const LANES: usize = 16;
/// Rows of one register block (queries in the score product, probability
/// rows in the value product).
const MR: usize = 8;
/// Register columns (of 16) of one block: 8 x 3 accumulators.
const NB: usize = 3;
/// Query rows per tile (a multiple of [`MR`]).
const TILE_ROWS: usize = 64;

/// Whether this CPU runs this path (AVX-512 F).
pub(crate) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// One head's keys in strips (module header).
struct Keys {
    data: Vec<f32>,
    dim: usize,
    strips: usize,
}

/// One head's values, rows padded to `width` (a multiple of 16).
struct Values {
    data: Vec<f32>,
    width: usize,
}

impl Keys {
    /// Packs keys `j < m` whose column `d` is at `ptr[j * stride + d]`.
    ///
    /// # Safety
    /// The view must lie inside a live buffer.
    unsafe fn pack(ptr: *const f32, stride: usize, m: usize, dim: usize) -> Self {
        let strips = m.div_ceil(LANES);
        let mut data = vec![0.0f32; strips * dim * LANES];
        for j in 0..m {
            let (s, lane) = (j / LANES, j % LANES);
            // SAFETY: row j of the view.
            let row = unsafe { std::slice::from_raw_parts(ptr.add(j * stride), dim) };
            for (d, &x) in row.iter().enumerate() {
                data[(s * dim + d) * LANES + lane] = x;
            }
        }
        Keys { data, dim, strips }
    }
}

impl Values {
    /// Packs values `j < m` whose column `d` is at `ptr[j * stride + d]`.
    ///
    /// # Safety
    /// As [`Keys::pack`].
    unsafe fn pack(ptr: *const f32, stride: usize, m: usize, dim: usize) -> Self {
        let width = dim.div_ceil(LANES) * LANES;
        let mut data = vec![0.0f32; m * width];
        for (j, row) in data.chunks_exact_mut(width).enumerate() {
            // SAFETY: row j of the view.
            let src = unsafe { std::slice::from_raw_parts(ptr.add(j * stride), dim) };
            row[..dim].copy_from_slice(src);
        }
        Values { data, width }
    }
}

/// The register block all products here share: `acc[i][t] = sum over
/// steps p of a[i * a_row + p * a_step] * b[p * b_step + t * b_column..][..16]`,
/// for the `MR` rows of `a` and `N` vectors of `b`: one number of `a`
/// broadcast from memory per row and step, `N` vector loads of `b` per
/// step.
///
/// # Safety
/// AVX-512 F; every view inside its buffer.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn block<const N: usize>(
    a: *const f32,
    (a_row, a_step): (usize, usize),
    b: *const f32,
    (b_step, b_column): (usize, usize),
    steps: usize,
) -> [[__m512; N]; MR] {
    let mut acc = [[_mm512_setzero_ps(); N]; MR];
    for p in 0..steps {
        let mut bv = [_mm512_setzero_ps(); N];
        for (t, bv) in bv.iter_mut().enumerate() {
            // SAFETY: vector t of step p of b.
            *bv = unsafe { _mm512_loadu_ps(b.add(p * b_step + t * b_column)) };
        }
        for (i, acc) in acc.iter_mut().enumerate() {
            // SAFETY: row i, step p of a.
            let av = _mm512_set1_ps(unsafe { *a.add(i * a_row + p * a_step) });
            for (x, &bv) in acc.iter_mut().zip(&bv) {
                *x = _mm512_fmadd_ps(av, bv, *x);
            }
        }
    }
    acc
}

/// Writes (or, when `add`, adds) block `acc` to `dst` (row stride
/// `stride`, vectors 16 apart).
///
/// # Safety
/// AVX-512 F; the rows and vectors inside `dst`'s buffer.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn put<const N: usize>(acc: &[[__m512; N]; MR], dst: *mut f32, stride: usize, add: bool) {
    for (i, acc) in acc.iter().enumerate() {
        for (t, &x) in acc.iter().enumerate() {
            // SAFETY: forwarded from the caller.
            unsafe {
                let at = dst.add(i * stride + t * LANES);
                let x = if add {
                    _mm512_add_ps(_mm512_loadu_ps(at), x)
                } else {
                    x
                };
                _mm512_storeu_ps(at, x);
            }
        }
    }
}

/// `s[i][16 c + l] = q[i] . key(16 (c0 + c) + l)` for the `MR` rows of `q`
/// (row stride `qs`) and `N` strips from strip `c0`, into `s` (row stride
/// `ss`; `s` points at the column of strip `c0`).
///
/// # Safety
/// AVX-512 F; all views inside their buffers.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn score_block<const N: usize>(
    (q, qs): (*const f32, usize),
    keys: &Keys,
    c0: usize,
    s: *mut f32,
    ss: usize,
) {
    let dim = keys.dim;
    let kp = keys.data[c0 * dim * LANES..].as_ptr();
    // SAFETY: strips c0..c0 + N exist; forwarded from the caller.
    unsafe {
        let acc = block::<N>(q, (qs, 1), kp, (LANES, dim * LANES), dim);
        put(&acc, s, ss, false);
    }
}

/// `o[i][16 c + l] (+)= sum_j p[i][j] v[j][16 (c0 + c) + l]` for the `MR`
/// rows of `p` (row stride `ps`, `m` columns) and `N` register columns of
/// the value rows at `vp` (row stride `vs`) from column `c0`, into `o`
/// (row stride `os`), added to it when `add`.
///
/// # Safety
/// AVX-512 F; all views inside their buffers.
#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn value_block<const N: usize>(
    (p, ps, m): (*const f32, usize, usize),
    (vp, vs): (*const f32, usize),
    c0: usize,
    o: *mut f32,
    os: usize,
    add: bool,
) {
    // SAFETY: columns c0..c0 + N exist; forwarded from the caller.
    unsafe {
        let acc = block::<N>(p, (ps, 1), vp.add(c0 * LANES), (vs, LANES), m);
        put(&acc, o.add(c0 * LANES), os, add);
    }
}

/// Scores of a tile of `rows` (a multiple of [`MR`]) queries (row stride
/// `qs`, at least `keys.dim`) against the keys of strips `strips`: `s`
/// has row stride `ss` (at least 16 per strip) and its column 0 is the
/// first key of strip `strips.start`.
///
/// # Safety
/// AVX-512 F; `q` holds `rows` rows and `s` `rows` rows.
#[target_feature(enable = "avx512f")]
unsafe fn scores(
    q: &[f32],
    qs: usize,
    rows: usize,
    keys: &Keys,
    strips: std::ops::Range<usize>,
    s: &mut [f32],
    ss: usize,
) {
    let mut c0 = strips.start;
    while c0 < strips.end {
        let ns = (strips.end - c0).min(NB);
        let column = (c0 - strips.start) * LANES;
        for r0 in (0..rows).step_by(MR) {
            let (qb, sb) = (
                (q[r0 * qs..].as_ptr(), qs),
                s[r0 * ss + column..].as_mut_ptr(),
            );
            // SAFETY: forwarded from the caller; strips c0..c0 + ns exist.
            unsafe {
                match ns {
                    3 => score_block::<3>(qb, keys, c0, sb, ss),
                    2 => score_block::<2>(qb, keys, c0, sb, ss),
                    _ => score_block::<1>(qb, keys, c0, sb, ss),
                }
            }
        }
        c0 += ns;
    }
}

/// `o (+)= p v` for a tile of `rows` (a multiple of [`MR`]) probability
/// rows of `m` numbers (row stride `ps`) and the `m` value rows from row
/// `first` of `values`; `o` has row stride `values.width` and is added to
/// when `add`.
///
/// # Safety
/// AVX-512 F; `p` holds `rows` rows, `values` rows `first..first + m` and
/// `o` `rows x values.width` numbers.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn values_product(
    (p, ps, m): (&[f32], usize, usize),
    rows: usize,
    values: &Values,
    first: usize,
    o: &mut [f32],
    add: bool,
) {
    let columns = values.width / LANES;
    let vp = values.data[first * values.width..].as_ptr();
    let mut c0 = 0;
    while c0 < columns {
        let nv = (columns - c0).min(NB);
        for r0 in (0..rows).step_by(MR) {
            let (pb, ob) = (p[r0 * ps..].as_ptr(), o[r0 * values.width..].as_mut_ptr());
            let (v, os) = ((vp, values.width), values.width);
            // SAFETY: forwarded from the caller; columns c0..c0 + nv exist.
            unsafe {
                match nv {
                    3 => value_block::<3>((pb, ps, m), v, c0, ob, os, add),
                    2 => value_block::<2>((pb, ps, m), v, c0, ob, os, add),
                    _ => value_block::<1>((pb, ps, m), v, c0, ob, os, add),
                }
            }
        }
        c0 += nv;
    }
}

/// A call's score row stride (keys rounded up to 16), padded head width
/// and query rows per tile (as many as keep one tile of scores near
/// [`TILE_SCORES`] numbers, a multiple of [`MR`]).
fn sizes(spec: &Spec) -> (usize, usize, usize) {
    let ss = spec.m.div_ceil(LANES) * LANES;
    let width = spec.dim.div_ceil(LANES) * LANES;
    let rows = (TILE_SCORES / ss.max(1) / MR * MR).clamp(MR, TILE_ROWS);
    (ss, width, rows)
}

/// Output `[batch, n, inner]` and row log-sum-exp `[batch, heads, n]`, as
/// `attention::forward`.
///
/// # Panics
/// When the CPU lacks AVX-512 F ([`available`]).
pub(crate) fn forward(q: &[f32], k: &[f32], v: &[f32], spec: Spec) -> (Vec<f32>, Vec<f32>) {
    assert!(available(), "the AVX-512 attention needs AVX-512 F");
    let Spec {
        batch,
        heads,
        n,
        m,
        dim,
        scale,
        ..
    } = spec;
    let inner = heads * dim;
    let mut out = zeros(batch * n * inner);
    let mut lse = vec![0.0f32; batch * heads * n];
    let (ss, width, rows) = sizes(&spec);
    let tiles = n.div_ceil(rows);
    let (out_ptr, lse_ptr) = (Shared(out.as_mut_ptr()), Shared(lse.as_mut_ptr()));
    let packed: Vec<(Keys, Values)> = (0..batch * heads)
        .into_par_iter()
        .map(|bh| {
            let at = (bh / heads) * m * inner + (bh % heads) * dim;
            // SAFETY: the head's rows lie inside k and v.
            unsafe {
                (
                    Keys::pack(k[at..].as_ptr(), inner, m, dim),
                    Values::pack(v[at..].as_ptr(), inner, m, dim),
                )
            }
        })
        .collect();
    (0..batch * heads * tiles).into_par_iter().for_each_init(
        || {
            (
                vec![0.0f32; rows * dim],
                vec![0.0f32; rows * ss],
                vec![0.0f32; rows * width],
                vec![0.0f32; rows],
            )
        },
        |(qt, s, o, inverses), job| {
            let (bh, tile) = (job / tiles, job % tiles);
            let (b, h) = (bh / heads, bh % heads);
            let (keys, values) = &packed[bh];
            let r0 = tile * rows;
            let r = rows.min(n - r0);
            let padded = r.div_ceil(MR) * MR;
            let head = b * n * inner + h * dim;
            copy_tile(q, (head, inner, dim), (r0, r, padded), scale, qt, dim);
            // SAFETY: the CPU has AVX-512 F (asserted); the buffers hold
            // `padded` rows.
            unsafe { scores(qt, dim, padded, keys, 0..keys.strips, s, ss) };
            for i in 0..padded {
                let row = &mut s[i * ss..i * ss + m];
                if i < r {
                    let (logsumexp, inverse) = exp_row(row, spec.visible(r0 + i));
                    inverses[i] = inverse;
                    // SAFETY: index (b, h, r0 + i) is this job's own.
                    unsafe { *lse_ptr.at(bh * n + r0 + i) = logsumexp };
                } else {
                    row.fill(0.0);
                }
            }
            // SAFETY: as above.
            unsafe { values_product((s, ss, m), padded, values, 0, o, false) };
            for (i, &inverse) in inverses[..r].iter().enumerate() {
                let at = head + (r0 + i) * inner;
                // SAFETY: row r0 + i of this head is this job's own.
                let row = unsafe { std::slice::from_raw_parts_mut(out_ptr.at(at), dim) };
                for (x, &y) in row.iter_mut().zip(&o[i * width..i * width + dim]) {
                    *x = y * inverse;
                }
            }
        },
    );
    (out, lse)
}

/// `acc[j][16 c + l] += sum_i a[i][j] w[i][16 (c0 + c) + l]` for the `MR`
/// columns `j0..j0 + MR` of `a` (`rows` rows, row stride `as_`) and `N`
/// register columns of `w` (row stride `ws`) from column `c0`; `acc` has
/// row stride `ws`. The backward pass's `dV += P^T dO` and `dK += dS^T q`.
///
/// # Safety
/// AVX-512 F; all views inside their buffers.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn transposed_block<const N: usize>(
    (a, as_, rows): (*const f32, usize, usize),
    j0: usize,
    (w, ws): (*const f32, usize),
    c0: usize,
    acc_out: *mut f32,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        let acc = block::<N>(a.add(j0), (1, as_), w.add(c0 * LANES), (ws, LANES), rows);
        put(&acc, acc_out.add(j0 * ws + c0 * LANES), ws, true);
    }
}

/// `acc (cols x ws) += a^T w` for `a` of `rows` rows and `cols` columns (a
/// multiple of [`MR`]; row stride `as_`) and `w` of `rows` rows of `ws`
/// numbers (a multiple of 16).
///
/// # Safety
/// AVX-512 F; the buffers hold the views.
#[target_feature(enable = "avx512f")]
unsafe fn transposed_product(
    a: &[f32],
    as_: usize,
    (rows, cols): (usize, usize),
    w: &[f32],
    ws: usize,
    acc: &mut [f32],
) {
    let columns = ws / LANES;
    let mut c0 = 0;
    while c0 < columns {
        let nv = (columns - c0).min(NB);
        for j0 in (0..cols).step_by(MR) {
            let (ap, wp, op) = (a.as_ptr(), w.as_ptr(), acc.as_mut_ptr());
            // SAFETY: forwarded from the caller.
            unsafe {
                let a = (ap, as_, rows);
                match nv {
                    3 => transposed_block::<3>(a, j0, (wp, ws), c0, op),
                    2 => transposed_block::<2>(a, j0, (wp, ws), c0, op),
                    _ => transposed_block::<1>(a, j0, (wp, ws), c0, op),
                }
            }
        }
        c0 += nv;
    }
}

/// Copies rows `r0..r0 + r` of one head (column `head`, row stride
/// `inner`) of `x`, times `factor`, into `padded` rows of `stride` numbers
/// (zeros after the head's `dim` columns and after row `r`).
#[allow(clippy::too_many_arguments)]
fn copy_tile(
    x: &[f32],
    (head, inner, dim): (usize, usize, usize),
    (r0, r, padded): (usize, usize, usize),
    factor: f32,
    dst: &mut [f32],
    stride: usize,
) {
    for i in 0..padded {
        let row = &mut dst[i * stride..(i + 1) * stride];
        if i < r {
            let at = head + (r0 + i) * inner;
            for (d, &y) in row.iter_mut().zip(&x[at..at + dim]) {
                *d = y * factor;
            }
            row[dim..].fill(0.0);
        } else {
            row.fill(0.0);
        }
    }
}

/// Keys per block of the backward pass: a tile of probabilities and one of
/// their gradients (64 x 512 numbers each) and the block's sums of `dK`
/// and `dV` stay in a core's L2 cache with the block's keys and values,
/// where whole rows of 4096 keys did not (see [`backward`]).
pub(crate) const KEY_BLOCK: usize = 512;

/// A backward worker's buffers: the head's scaled queries, output
/// gradients and dQ sums (rows of the padded width), each row's
/// `rowsum(dO * O)`, a tile of probabilities and of their gradients
/// (rows x keys of a block), and the block's dK and dV sums.
struct Scratch {
    qw: Vec<f32>,
    gw: Vec<f32>,
    dq_sum: Vec<f32>,
    delta: Vec<f32>,
    p: Vec<f32>,
    ds: Vec<f32>,
    dk_sum: Vec<f32>,
    dv_sum: Vec<f32>,
}

/// Gradients `(dq, dk, dv)` of [`forward`], as `attention::backward`
/// (probabilities recomputed from the stored log-sum-exp), one job per
/// `(batch, head)`.
///
/// Within a head the keys are taken in blocks of [`KEY_BLOCK`] (as flash
/// attention's backward pass does, Dao, arXiv 2307.08691): for each block
/// every tile of queries recomputes its probabilities over the block's
/// keys only, adds to the block's `dK` and `dV` sums and to the head's
/// `dQ`, so the working set is a few hundred kilobytes instead of rows
/// over all the keys. Each key's `dK` and `dV` sum over the query tiles
/// in the same order as without blocks; `dQ` sums over the blocks.
///
/// `key_block` is the block size ([`KEY_BLOCK`] outside tests; rounded up
/// to 16).
///
/// # Panics
/// When the CPU lacks AVX-512 F ([`available`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &[f32],
    lse: &[f32],
    grad: &[f32],
    spec: Spec,
    key_block: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert!(available(), "the AVX-512 attention needs AVX-512 F");
    let Spec {
        batch,
        heads,
        n,
        m,
        dim,
        scale,
        ..
    } = spec;
    let inner = heads * dim;
    let mut dq = zeros(batch * n * inner);
    let mut dk = zeros(batch * m * inner);
    let mut dv = zeros(batch * m * inner);
    let (ss, width, rows) = sizes(&spec);
    // Keys per block: a multiple of 16 (whole strips), at most all of them.
    let block_keys = key_block.max(1).div_ceil(LANES).min(ss / LANES).max(1) * LANES;
    // Query rows of the head, padded to whole register blocks.
    let n_pad = n.div_ceil(MR) * MR;
    let (dq_ptr, dk_ptr, dv_ptr) = (
        Shared(dq.as_mut_ptr()),
        Shared(dk.as_mut_ptr()),
        Shared(dv.as_mut_ptr()),
    );
    // One set of buffers per worker, reused across its heads (each is
    // fully written, or cleared, before it is read).
    let scratch = || Scratch {
        qw: vec![0.0f32; n_pad * width],
        gw: vec![0.0f32; n_pad * width],
        dq_sum: vec![0.0f32; n_pad * width],
        delta: vec![0.0f32; n],
        p: vec![0.0f32; rows * block_keys],
        ds: vec![0.0f32; rows * block_keys],
        dk_sum: vec![0.0f32; block_keys * width],
        dv_sum: vec![0.0f32; block_keys * width],
    };
    (0..batch * heads)
        .into_par_iter()
        .for_each_init(scratch, |buffers, bh| {
            let Scratch {
                qw,
                gw,
                dq_sum,
                delta,
                p,
                ds,
                dk_sum,
                dv_sum,
            } = buffers;
            let (b, h) = (bh / heads, bh % heads);
            let (qh, kh) = (b * n * inner + h * dim, b * m * inner + h * dim);
            // SAFETY: the head's rows lie inside k and v.
            let (k_strips, v_strips, k_rows) = unsafe {
                (
                    Keys::pack(k[kh..].as_ptr(), inner, m, dim),
                    Keys::pack(v[kh..].as_ptr(), inner, m, dim),
                    Values::pack(k[kh..].as_ptr(), inner, m, dim),
                )
            };
            // The head's queries (scaled) and output gradients, rows of
            // `width` numbers; its dQ sums; each row's rowsum(dO * O).
            let view = (qh, inner, dim);
            copy_tile(q, view, (0, n, n_pad), scale, qw, width);
            copy_tile(grad, view, (0, n, n_pad), 1.0, gw, width);
            dq_sum.fill(0.0);
            for (i, d) in delta.iter_mut().enumerate() {
                let at = qh + i * inner;
                let (o, g) = (&out[at..at + dim], &grad[at..at + dim]);
                *d = o.iter().zip(g).map(|(a, b)| a * b).sum();
            }
            for k0 in (0..ss).step_by(block_keys) {
                let kb = block_keys.min(ss - k0);
                let strips = k0 / LANES..(k0 + kb) / LANES;
                // Keys of the block that exist (the rest of its last strip is
                // padding, with zero probabilities).
                let present = kb.min(m - k0);
                dk_sum[..kb * width].fill(0.0);
                dv_sum[..kb * width].fill(0.0);
                for r0 in (0..n_pad).step_by(rows) {
                    let padded = rows.min(n_pad - r0);
                    let (q_tile, g_tile) = (&qw[r0 * width..], &gw[r0 * width..]);
                    // SAFETY: AVX-512 F (asserted); the tiles hold `padded`
                    // rows and the score tiles `padded` rows of `kb`.
                    unsafe {
                        scores(q_tile, width, padded, &k_strips, strips.clone(), p, kb);
                        scores(g_tile, width, padded, &v_strips, strips.clone(), ds, kb);
                    }
                    for i in 0..padded {
                        let row = r0 + i;
                        let (pr, dr) =
                            (&mut p[i * kb..(i + 1) * kb], &mut ds[i * kb..(i + 1) * kb]);
                        let (l, d) = if row < n {
                            (lse[bh * n + row], delta[row])
                        } else {
                            (f32::NEG_INFINITY, 0.0)
                        };
                        let visible = spec.visible(row.min(n.saturating_sub(1)));
                        probabilities_row(pr, l, visible.saturating_sub(k0).min(kb));
                        // dS = P * (dP - rowsum(dO * O)); the scale goes with q
                        // (dK) and is applied to dQ at the end.
                        for (x, &pv) in dr.iter_mut().zip(pr.iter()) {
                            *x = pv * (*x - d);
                        }
                    }
                    // SAFETY: as above; k_rows holds rows k0..k0 + present.
                    unsafe {
                        transposed_product(p, kb, (padded, kb), g_tile, width, dv_sum);
                        transposed_product(ds, kb, (padded, kb), q_tile, width, dk_sum);
                        let dq_tile = &mut dq_sum[r0 * width..];
                        values_product((ds, kb, present), padded, &k_rows, k0, dq_tile, true);
                    }
                }
                for j in 0..present {
                    let at = kh + (k0 + j) * inner;
                    // SAFETY: row k0 + j of this head is this job's own.
                    unsafe {
                        let (dk_row, dv_row) = (
                            std::slice::from_raw_parts_mut(dk_ptr.at(at), dim),
                            std::slice::from_raw_parts_mut(dv_ptr.at(at), dim),
                        );
                        dk_row.copy_from_slice(&dk_sum[j * width..j * width + dim]);
                        dv_row.copy_from_slice(&dv_sum[j * width..j * width + dim]);
                    }
                }
            }
            for i in 0..n {
                let at = qh + i * inner;
                // SAFETY: row i of this head is this job's own.
                let row = unsafe { std::slice::from_raw_parts_mut(dq_ptr.at(at), dim) };
                for (x, &y) in row.iter_mut().zip(&dq_sum[i * width..i * width + dim]) {
                    *x = y * scale;
                }
            }
        });
    (dq, dk, dv)
}

#[cfg(test)]
mod tests {
    use super::super::attention;
    use super::*;

    /// Deterministic numbers in [-2, 2).
    fn numbers(len: usize, seed: u32) -> Vec<f32> {
        let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(12_345);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x % 4096) as f32 / 1024.0 - 2.0
            })
            .collect()
    }

    /// `(batch, heads, n, m, dim, causal)`: rows not a multiple of 8 or of
    /// a tile, keys not a multiple of 16 (or of one block), widths of 1 to
    /// 10 registers with partial ones, causal masks with fully masked rows.
    const SHAPES: [(usize, usize, usize, usize, usize, bool); 6] = [
        (2, 3, 77, 77, 40, false),
        (1, 2, 130, 1, 8, false),
        (1, 1, 9, 50, 64, true),
        (2, 1, 5, 3, 80, true),
        (1, 2, 200, 33, 17, false),
        (1, 1, 70, 129, 160, false),
    ];

    fn spec_of(
        (batch, heads, n, m, dim, causal): (usize, usize, usize, usize, usize, bool),
    ) -> Spec {
        Spec {
            batch,
            heads,
            n,
            m,
            dim,
            scale: 1.0 / (dim as f32).sqrt(),
            causal,
        }
    }

    /// The forward pass against the `gemm` path on [`SHAPES`].
    #[test]
    fn matches_the_gemm_forward() {
        if !available() {
            return;
        }
        for (seed, &(batch, heads, n, m, dim, causal)) in SHAPES.iter().enumerate() {
            let spec = spec_of((batch, heads, n, m, dim, causal));
            let seed = seed as u32 * 3;
            let q = numbers(batch * n * heads * dim, seed);
            let k = numbers(batch * m * heads * dim, seed + 1);
            let v = numbers(batch * m * heads * dim, seed + 2);
            let (out, lse) = forward(&q, &k, &v, spec);
            let (want, want_lse) = attention::gemm_forward(&q, &k, &v, spec);
            for (i, (a, b)) in out.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "{spec:?} out[{i}]: {a} vs {b}"
                );
            }
            for (i, (a, b)) in lse.iter().zip(&want_lse).enumerate() {
                let same = a == b || (a - b).abs() <= 1e-5 * (1.0 + b.abs());
                assert!(same, "{spec:?} lse[{i}]: {a} vs {b}");
            }
        }
    }

    /// The backward pass against the `gemm` path on the same shapes, with
    /// the default block of keys and with blocks of 16 and 48 keys (several
    /// blocks per head, a last block shorter than the others, blocks that
    /// end inside a causal row).
    #[test]
    fn backward_matches_the_gemm_backward() {
        if !available() {
            return;
        }
        for (seed, &(batch, heads, n, m, dim, causal)) in SHAPES.iter().enumerate() {
            let spec = spec_of((batch, heads, n, m, dim, causal));
            let seed = seed as u32 * 5 + 1;
            let q = numbers(batch * n * heads * dim, seed);
            let k = numbers(batch * m * heads * dim, seed + 1);
            let v = numbers(batch * m * heads * dim, seed + 2);
            let g = numbers(batch * n * heads * dim, seed + 3);
            let (out, lse) = attention::gemm_forward(&q, &k, &v, spec);
            let want = attention::gemm_backward(&q, &k, &v, &out, &lse, &g, spec);
            for key_block in [KEY_BLOCK, 16, 48] {
                let ours = backward(&q, &k, &v, &out, &lse, &g, spec, key_block);
                for (name, a, b) in [
                    ("dq", &ours.0, &want.0),
                    ("dk", &ours.1, &want.1),
                    ("dv", &ours.2, &want.2),
                ] {
                    assert_eq!(a.len(), b.len());
                    for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                        assert!(
                            (x - y).abs() <= 2e-5 * (1.0 + y.abs()),
                            "{spec:?} blocks of {key_block}: {name}[{i}]: {x} vs {y}"
                        );
                    }
                }
            }
        }
    }
}
