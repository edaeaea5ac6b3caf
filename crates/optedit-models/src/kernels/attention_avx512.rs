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
/// steps p of a[i * a_row + p * a_step] * b[p * b_step + t * b_column ..
/// + 16]`, for the `MR` rows of `a` and `N` vectors of `b`: one number of
/// `a` broadcast from memory per row and step, `N` vector loads of `b` per
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
/// `ss`).
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
        put(&acc, s.add(c0 * LANES), ss, false);
    }
}

/// `o[i][16 c + l] = sum_j p[i][j] v[j][16 (c0 + c) + l]` for the `MR`
/// rows of `p` (row stride `ps`, `m` columns) and `N` register columns of
/// the values from column `c0`, into `o` (row stride `os`).
///
/// # Safety
/// AVX-512 F; all views inside their buffers.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn value_block<const N: usize>(
    (p, ps, m): (*const f32, usize, usize),
    values: &Values,
    c0: usize,
    o: *mut f32,
    os: usize,
) {
    let vp = values.data.as_ptr().wrapping_add(c0 * LANES);
    // SAFETY: columns c0..c0 + N exist; forwarded from the caller.
    unsafe {
        let acc = block::<N>(p, (ps, 1), vp, (values.width, LANES), m);
        put(&acc, o.add(c0 * LANES), os, false);
    }
}

/// Scores of a tile of `rows` (a multiple of [`MR`]) queries (row stride
/// `qs`, at least `keys.dim`) against every key: `s` has row stride
/// `keys.strips * 16`.
///
/// # Safety
/// AVX-512 F; `q` holds `rows` rows and `s` `rows` rows.
#[target_feature(enable = "avx512f")]
unsafe fn scores(q: &[f32], qs: usize, rows: usize, keys: &Keys, s: &mut [f32]) {
    let ss = keys.strips * LANES;
    let mut c0 = 0;
    while c0 < keys.strips {
        let ns = (keys.strips - c0).min(NB);
        for r0 in (0..rows).step_by(MR) {
            let (qb, sb) = ((q[r0 * qs..].as_ptr(), qs), s[r0 * ss..].as_mut_ptr());
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

/// `o = p v` for a tile of `rows` (a multiple of [`MR`]) probability rows
/// of `m` numbers (row stride `ps`); `o` has row stride `values.width`.
///
/// # Safety
/// AVX-512 F; `p` holds `rows` rows and `o` `rows x values.width` numbers.
#[target_feature(enable = "avx512f")]
unsafe fn values_product(
    p: &[f32],
    ps: usize,
    m: usize,
    rows: usize,
    values: &Values,
    o: &mut [f32],
) {
    let columns = values.width / LANES;
    let mut c0 = 0;
    while c0 < columns {
        let nv = (columns - c0).min(NB);
        for r0 in (0..rows).step_by(MR) {
            let (pb, ob) = (p[r0 * ps..].as_ptr(), o[r0 * values.width..].as_mut_ptr());
            let os = values.width;
            // SAFETY: forwarded from the caller; columns c0..c0 + nv exist.
            unsafe {
                match nv {
                    3 => value_block::<3>((pb, ps, m), values, c0, ob, os),
                    2 => value_block::<2>((pb, ps, m), values, c0, ob, os),
                    _ => value_block::<1>((pb, ps, m), values, c0, ob, os),
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
            unsafe { scores(qt, dim, padded, keys, s) };
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
            unsafe { values_product(s, ss, m, padded, values, o) };
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

/// Gradients `(dq, dk, dv)` of [`forward`], as `attention::backward`
/// (probabilities recomputed from the stored log-sum-exp), one job per
/// `(batch, head)`.
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
    let (dq_ptr, dk_ptr, dv_ptr) = (
        Shared(dq.as_mut_ptr()),
        Shared(dk.as_mut_ptr()),
        Shared(dv.as_mut_ptr()),
    );
    (0..batch * heads).into_par_iter().for_each(|bh| {
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
        // Tiles (rows of width numbers): q scaled, dO, dQ; (rows of ss):
        // P, dS; the head's dK and dV sums (ss rows of width).
        let mut qw = vec![0.0f32; rows * width];
        let mut gw = vec![0.0f32; rows * width];
        let mut p = vec![0.0f32; rows * ss];
        let mut ds = vec![0.0f32; rows * ss];
        let mut dq_tile = vec![0.0f32; rows * width];
        let mut dk_sum = vec![0.0f32; ss * width];
        let mut dv_sum = vec![0.0f32; ss * width];
        for r0 in (0..n).step_by(rows) {
            let r = rows.min(n - r0);
            let padded = r.div_ceil(MR) * MR;
            let view = (qh, inner, dim);
            let tile = (r0, r, padded);
            copy_tile(q, view, tile, scale, &mut qw, width);
            copy_tile(grad, view, tile, 1.0, &mut gw, width);
            // SAFETY: AVX-512 F (asserted); the tiles hold `padded` rows.
            unsafe {
                scores(&qw, width, padded, &k_strips, &mut p);
                scores(&gw, width, padded, &v_strips, &mut ds);
            }
            for i in 0..padded {
                let (pr, dr) = (&mut p[i * ss..(i + 1) * ss], &mut ds[i * ss..(i + 1) * ss]);
                let l = if i < r {
                    lse[bh * n + r0 + i]
                } else {
                    f32::NEG_INFINITY
                };
                probabilities_row(pr, l, spec.visible(r0 + i));
                // dS = P * (dP - rowsum(dO * O)); the scale goes with q
                // (dK) and is applied to dQ below.
                let delta: f32 = if i < r {
                    let at = qh + (r0 + i) * inner;
                    let (o, g) = (&out[at..at + dim], &grad[at..at + dim]);
                    o.iter().zip(g).map(|(a, b)| a * b).sum()
                } else {
                    0.0
                };
                for (d, &pv) in dr.iter_mut().zip(pr.iter()) {
                    *d = pv * (*d - delta);
                }
            }
            // SAFETY: as above.
            unsafe {
                transposed_product(&p, ss, (padded, ss), &gw, width, &mut dv_sum);
                transposed_product(&ds, ss, (padded, ss), &qw, width, &mut dk_sum);
                values_product(&ds, ss, m, padded, &k_rows, &mut dq_tile);
            }
            for i in 0..r {
                let at = qh + (r0 + i) * inner;
                // SAFETY: row r0 + i of this head is this job's own.
                let row = unsafe { std::slice::from_raw_parts_mut(dq_ptr.at(at), dim) };
                for (x, &y) in row.iter_mut().zip(&dq_tile[i * width..i * width + dim]) {
                    *x = y * scale;
                }
            }
        }
        for j in 0..m {
            let at = kh + j * inner;
            // SAFETY: row j of this head is this job's own.
            unsafe {
                let (dk_row, dv_row) = (
                    std::slice::from_raw_parts_mut(dk_ptr.at(at), dim),
                    std::slice::from_raw_parts_mut(dv_ptr.at(at), dim),
                );
                dk_row.copy_from_slice(&dk_sum[j * width..j * width + dim]);
                dv_row.copy_from_slice(&dv_sum[j * width..j * width + dim]);
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

    /// The backward pass against the `gemm` path on the same shapes.
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
            let ours = backward(&q, &k, &v, &out, &lse, &g, spec);
            let want = attention::gemm_backward(&q, &k, &v, &out, &lse, &g, spec);
            for (name, a, b) in [
                ("dq", &ours.0, &want.0),
                ("dk", &ours.1, &want.1),
                ("dv", &ours.2, &want.2),
            ] {
                assert_eq!(a.len(), b.len());
                for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                    assert!(
                        (x - y).abs() <= 2e-5 * (1.0 + y.abs()),
                        "{spec:?} {name}[{i}]: {x} vs {y}"
                    );
                }
            }
        }
    }
}
