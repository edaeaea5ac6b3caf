//! Tiled scaled-dot-product attention on `f32` slices, forward and backward.
//!
//! Tensors keep the projections' token-major layout `[batch, tokens, heads *
//! dim]`: a head is a strided view (row stride `heads * dim`), so there is no
//! split into `[batch, heads, tokens, dim]` and back. Work is split over
//! `(batch, head, query tile)` for the forward pass and over `(batch, head)`
//! for the backward pass, and each job holds one tile of scores (at most
//! [`TILE_SCORES`] numbers), never the whole `n x m` matrix: the backward pass
//! recomputes the probabilities from the stored row log-sum-exp, as flash
//! attention does (Dao et al., arXiv 2205.14135). Matrix products are the
//! kernels' (`product.rs`: f32 through `gemm`, or bf16), with each head's
//! keys and values prepared once for all its query tiles; the softmax is
//! that of burn's `attention_fallback` (maximum subtracted, fully masked
//! rows give zeros), except that the forward pass divides the output rows
//! by the sums instead of the rows of probabilities (as flash attention
//! does). In f32 on a CPU with AVX-512, [`forward`] and [`backward`] hand
//! the same work to `attention_avx512.rs`, whose products are register
//! blocks of its own (`gemm` re-packs the keys for every tile there).

use super::exp;
use super::product::{nested, prepare, product, product_with, Right, Shared};
use super::zeros;
use rayon::prelude::*;

/// Query rows per tile: enough rows to amortise the packing of `k` and `v`
/// inside `gemm`, few enough for a tile of scores to stay in cache (64 was
/// fastest at 1024 and 4096 keys on the benchmark machine).
const TILE_ROWS: usize = 64;
/// Most scores one job holds at a time (fewer rows for very long keys).
pub(crate) const TILE_SCORES: usize = 1 << 19;

/// Shape and options of one attention call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Spec {
    /// Batch size.
    pub batch: usize,
    /// Number of heads.
    pub heads: usize,
    /// Query tokens.
    pub n: usize,
    /// Key/value tokens.
    pub m: usize,
    /// Width of one head.
    pub dim: usize,
    /// Multiplier of `q . k`.
    pub scale: f32,
    /// Causal mask aligned at the bottom-right corner (burn's convention).
    pub causal: bool,
}

impl Spec {
    fn inner(&self) -> usize {
        self.heads * self.dim
    }

    fn tile_rows(&self) -> usize {
        (TILE_SCORES / self.m.max(1))
            .clamp(1, TILE_ROWS)
            .min(self.n.max(1))
    }

    /// Number of keys query row `row` may see.
    pub(super) fn visible(&self, row: usize) -> usize {
        if self.causal {
            (row as isize + 1 + self.m as isize - self.n as isize).clamp(0, self.m as isize)
                as usize
        } else {
            self.m
        }
    }

    /// Offset of head `h` of batch item `b` in a `[batch, tokens, inner]`
    /// buffer with `tokens` rows.
    fn head(&self, b: usize, h: usize, tokens: usize) -> usize {
        b * tokens * self.inner() + h * self.dim
    }
}

/// Output `[batch, n, inner]` and row log-sum-exp `[batch, heads, n]` of
/// `softmax(scale * q k^T) v` per head: in f32 on a CPU with AVX-512 the
/// register blocks of `attention_avx512.rs`, otherwise (and in bf16)
/// [`gemm_forward`].
pub(crate) fn forward(q: &[f32], k: &[f32], v: &[f32], spec: Spec) -> (Vec<f32>, Vec<f32>) {
    #[cfg(target_arch = "x86_64")]
    if super::precision::active_unit().is_none() && super::attention_avx512::available() {
        return super::attention_avx512::forward(q, k, v, spec);
    }
    gemm_forward(q, k, v, spec)
}

/// [`forward`] through the kernels' products (`gemm` in f32, or bf16).
pub(crate) fn gemm_forward(q: &[f32], k: &[f32], v: &[f32], spec: Spec) -> (Vec<f32>, Vec<f32>) {
    let Spec {
        batch,
        heads,
        n,
        m,
        dim,
        ..
    } = spec;
    let inner = spec.inner() as isize;
    let mut out = zeros(batch * n * spec.inner());
    let mut lse = vec![0.0f32; batch * heads * n];
    let rows = spec.tile_rows();
    let tiles = n.div_ceil(rows);
    let jobs = batch * heads * tiles;
    let parallelism = nested(jobs);
    let (out_ptr, lse_ptr) = (Shared(out.as_mut_ptr()), Shared(lse.as_mut_ptr()));
    // Each head's k^T (dim x m) and v (m x dim), prepared once for all its
    // query tiles (packed when the products run in bf16).
    let heads_rhs: Vec<(Right, Right)> = (0..batch * heads)
        .into_par_iter()
        .map(|bh| {
            let (b, h) = (bh / heads, bh % heads);
            let k_head = k[spec.head(b, h, m)..].as_ptr();
            let v_head = v[spec.head(b, h, m)..].as_ptr();
            // SAFETY: the head views stay inside k and v, which outlive
            // the loop below.
            unsafe {
                (
                    prepare((dim, m), (k_head, (inner, 1)), false),
                    prepare((m, dim), (v_head, (1, inner)), false),
                )
            }
        })
        .collect();
    (0..jobs).into_par_iter().for_each_init(
        || (vec![0.0f32; rows * m], vec![0.0f32; rows]),
        |(scores, inverses), job| {
            let (bh, tile) = (job / tiles, job % tiles);
            let (b, h) = (bh / heads, bh % heads);
            let r0 = tile * rows;
            let r = rows.min(n - r0);
            let q_tile = q[spec.head(b, h, n) + r0 * spec.inner()..].as_ptr();
            let (k_head, v_head) = &heads_rhs[bh];
            let s = scores.as_mut_ptr();
            // SAFETY: the views stay inside q, k, v, the score buffer and
            // this job's rows and head columns of out.
            unsafe {
                product_with(
                    r,
                    (s, (1, m as isize)),
                    false,
                    (q_tile, (1, inner)),
                    k_head,
                    spec.scale,
                    parallelism,
                );
            }
            for i in 0..r {
                let row = &mut scores[i * m..(i + 1) * m];
                let (logsumexp, inverse) = exp_row(row, spec.visible(r0 + i));
                inverses[i] = inverse;
                // SAFETY: index (b, h, r0 + i) is this job's own.
                unsafe { *lse_ptr.at((b * heads + h) * n + r0 + i) = logsumexp };
            }
            // SAFETY: as above; the destination rows belong to this job.
            unsafe {
                product_with(
                    r,
                    (
                        out_ptr.at(spec.head(b, h, n) + r0 * spec.inner()),
                        (1, inner),
                    ),
                    false,
                    (scores.as_ptr(), (1, m as isize)),
                    v_head,
                    1.0,
                    parallelism,
                );
            }
            // The rows of exponentials were not normalised: the output
            // rows are (`dim` numbers each instead of `m`).
            for (i, &inverse) in inverses[..r].iter().enumerate() {
                let at = spec.head(b, h, n) + (r0 + i) * spec.inner();
                // SAFETY: row r0 + i of this head is this job's own.
                let row = unsafe { std::slice::from_raw_parts_mut(out_ptr.at(at), dim) };
                row.iter_mut().for_each(|x| *x *= inverse);
            }
        },
    );
    (out, lse)
}

/// The exponentials `exp(x - max)` of the first `visible` entries of `row`
/// in place (the rest set to zero), unnormalised; returns the log-sum-exp
/// (`-inf` for a fully masked row) and the inverse of the sum (0 for a
/// fully masked row), by which the caller scales the product with the
/// values: softmax's normalisation then costs `dim` multiplications per
/// row instead of `m`.
pub(super) fn exp_row(row: &mut [f32], visible: usize) -> (f32, f32) {
    let (seen, masked) = row.split_at_mut(visible);
    masked.fill(0.0);
    let max = exp::max(seen);
    if seen.is_empty() || max == f32::NEG_INFINITY {
        seen.fill(0.0);
        return (f32::NEG_INFINITY, 0.0);
    }
    let sum = exp::exp_sum(seen, max).max(f32::MIN_POSITIVE);
    (max + sum.ln(), 1.0 / sum)
}

/// The probabilities of a row of scores from its stored log-sum-exp `lse`,
/// in place: `exp(x - lse)` for the first `visible` entries, zeros after
/// them (and everywhere for a fully masked row, `lse` = `-inf`).
pub(super) fn probabilities_row(row: &mut [f32], lse: f32, visible: usize) {
    let visible = if lse == f32::NEG_INFINITY { 0 } else { visible };
    let (seen, masked) = row.split_at_mut(visible);
    exp::exp_sum(seen, lse);
    masked.fill(0.0);
}

/// Gradients `(dq, dk, dv)` of [`forward`] for the output gradient `grad`:
/// in f32 on a CPU with AVX-512 the register blocks of
/// `attention_avx512.rs`, otherwise (and in bf16) [`gemm_backward`].
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
    #[cfg(target_arch = "x86_64")]
    if super::precision::active_unit().is_none() && super::attention_avx512::available() {
        use super::attention_avx512::{backward, KEY_BLOCK};
        return backward(q, k, v, out, lse, grad, spec, KEY_BLOCK);
    }
    gemm_backward(q, k, v, out, lse, grad, spec)
}

/// [`backward`] through the kernels' products (`gemm` in f32, or bf16).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_backward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &[f32],
    lse: &[f32],
    grad: &[f32],
    spec: Spec,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let Spec {
        batch,
        heads,
        n,
        m,
        dim,
        scale,
        ..
    } = spec;
    let width = spec.inner();
    let inner = width as isize;
    let mut dq = zeros(batch * n * width);
    let mut dk = zeros(batch * m * width);
    let mut dv = zeros(batch * m * width);
    let rows = spec.tile_rows();
    let jobs = batch * heads;
    let parallelism = nested(jobs);
    let (dq_ptr, dk_ptr, dv_ptr) = (
        Shared(dq.as_mut_ptr()),
        Shared(dk.as_mut_ptr()),
        Shared(dv.as_mut_ptr()),
    );
    (0..jobs).into_par_iter().for_each_init(
        || (vec![0.0f32; rows * m], vec![0.0f32; rows * m]),
        |(p, dp), bh| {
            let (b, h) = (bh / heads, bh % heads);
            let (qh, kh) = (spec.head(b, h, n), spec.head(b, h, m));
            let (k_head, v_head) = (k[kh..].as_ptr(), v[kh..].as_ptr());
            // The head's k^T, v^T (dim x m) and k (m x dim), prepared once
            // for all its query tiles (packed when the products run in
            // bf16).
            // SAFETY: the head views stay inside k and v, which outlive
            // the loop below.
            let (k_t, v_t, k_rows) = unsafe {
                (
                    prepare((dim, m), (k_head, (inner, 1)), false),
                    prepare((dim, m), (v_head, (inner, 1)), false),
                    prepare((m, dim), (k_head, (1, inner)), false),
                )
            };
            for r0 in (0..n).step_by(rows) {
                let r = rows.min(n - r0);
                let at = qh + r0 * width;
                let (q_t, dout_t) = (q[at..].as_ptr(), grad[at..].as_ptr());
                // SAFETY: all views lie inside their buffers; dq, dk, dv are
                // written only in this job's head columns.
                unsafe {
                    // Scores again, then probabilities from the stored lse.
                    product_with(
                        r,
                        (p.as_mut_ptr(), (1, m as isize)),
                        false,
                        (q_t, (1, inner)),
                        &k_t,
                        scale,
                        parallelism,
                    );
                }
                for i in 0..r {
                    let row = &mut p[i * m..(i + 1) * m];
                    let l = lse[(b * heads + h) * n + r0 + i];
                    probabilities_row(row, l, spec.visible(r0 + i));
                }
                unsafe {
                    // dV += P^T dO
                    product(
                        (m, dim, r),
                        (dv_ptr.at(kh), (1, inner)),
                        true,
                        (p.as_ptr(), (m as isize, 1)),
                        (dout_t, (1, inner)),
                        1.0,
                        parallelism,
                    );
                    // dP = dO V^T
                    product_with(
                        r,
                        (dp.as_mut_ptr(), (1, m as isize)),
                        false,
                        (dout_t, (1, inner)),
                        &v_t,
                        1.0,
                        parallelism,
                    );
                }
                // dS = P * (dP - rowsum(dO * O)), times the scale.
                for i in 0..r {
                    let o = &out[at + i * width..at + i * width + dim];
                    let g = &grad[at + i * width..at + i * width + dim];
                    let delta: f32 = o.iter().zip(g).map(|(a, b)| a * b).sum();
                    let (pr, dpr) = (&p[i * m..(i + 1) * m], &mut dp[i * m..(i + 1) * m]);
                    for (d, &pv) in dpr.iter_mut().zip(pr) {
                        *d = pv * (*d - delta) * scale;
                    }
                }
                unsafe {
                    // dQ = dS K
                    product_with(
                        r,
                        (dq_ptr.at(at), (1, inner)),
                        false,
                        (dp.as_ptr(), (1, m as isize)),
                        &k_rows,
                        1.0,
                        parallelism,
                    );
                    // dK += dS^T Q
                    product(
                        (m, dim, r),
                        (dk_ptr.at(kh), (1, inner)),
                        true,
                        (dp.as_ptr(), (m as isize, 1)),
                        (q_t, (1, inner)),
                        1.0,
                        parallelism,
                    );
                }
            }
        },
    );
    (dq, dk, dv)
}
