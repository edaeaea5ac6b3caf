//! 2-D convolution (groups 1, dilation 1) on `f32` slices in `NCHW` layout,
//! forward and backward, as matrix products through the `gemm` crate. The
//! forward pass and input gradient of large f32 3x3 stride-1 convolutions
//! go to `winograd.rs` instead ([`forward`], [`input_grad`]).
//!
//! The weight `[co, ci, kh, kw]` already is the `co x (ci kh kw)` matrix of
//! the product, so it is never rearranged in f32; in bf16 it is packed once
//! per call for every tile (`product::prepare_left`). Per sample, a tile of output rows
//! is lowered to columns (im2col: row `(c, i, j)` of the column matrix holds
//! input plane `c` shifted by kernel offset `(i, j)`, with zeros for the
//! padding), and the product writes straight into the output rows; a 1x1
//! convolution without stride or padding uses the input itself as the column
//! matrix. The backward pass forms the weight gradient from the same columns
//! (`dW += dY . col^T`), and the input gradient by the transposed product
//! (`dcol = W^T . dY`) scattered back onto the input planes (col2im), one job
//! per input channel, so that no two jobs add to the same element. burn 0.21's
//! `Flex` instead copies the input to `NHWC` and the weight to a new layout on
//! every call, computes the input gradient with a transposed convolution and
//! the weight gradient with a convolution over transposed copies.

use std::ops::Range;

use gemm::Parallelism;
use rayon::prelude::*;

use super::product::{nested, prepare, prepare_left, product, product_prepared, Left, Shared};
use super::winograd::{self, Weight};
use super::zeros;

/// Most elements of one job's column matrix (16 MiB): tiles of output rows
/// are sized to it, so that the weight is packed for products of at least
/// this many columns. The unit tests use small tiles, so that their small
/// shapes cross tile boundaries.
const COL_ELEMS: usize = if cfg!(test) { 1 << 9 } else { 1 << 22 };

/// Shape and options of one convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spec {
    /// Samples.
    pub n: usize,
    /// Input channels.
    pub ci: usize,
    /// Input height and width.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub co: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Strides (rows, columns).
    pub stride: [usize; 2],
    /// Padding before the first row and column (the padding after them only
    /// sets the output size).
    pub pad: [usize; 2],
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl Spec {
    /// Rows of the column matrix (`ci kh kw`).
    fn k(&self) -> usize {
        self.ci * self.kh * self.kw
    }

    fn hw(&self) -> usize {
        self.h * self.w
    }

    fn ohw(&self) -> usize {
        self.oh * self.ow
    }

    /// Whether the input is its own column matrix.
    fn pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.stride == [1, 1]
            && self.pad == [0, 0]
            && (self.oh, self.ow) == (self.h, self.w)
    }

    /// The tiles of output rows of one sample.
    fn tiles(&self) -> Vec<Range<usize>> {
        let rows = if self.pointwise() {
            self.oh
        } else {
            (COL_ELEMS / (self.k() * self.ow).max(1)).clamp(1, self.oh.max(1))
        };
        (0..self.oh)
            .step_by(rows)
            .map(|r| r..(r + rows).min(self.oh))
            .collect()
    }

    /// Every `(sample, tile)` job.
    fn jobs(&self) -> Vec<(usize, Range<usize>)> {
        let tiles = self.tiles();
        (0..self.n)
            .flat_map(|b| tiles.iter().map(move |t| (b, t.clone())))
            .collect()
    }
}

/// Output positions `lo..hi` (of `len`) whose input column `o * stride + j -
/// pad` lies inside `0..w`.
fn valid(len: usize, w: usize, j: usize, stride: usize, pad: usize) -> (usize, usize) {
    let hi = if w + pad > j {
        ((w + pad - j - 1) / stride + 1).min(len)
    } else {
        0
    };
    (pad.saturating_sub(j).div_ceil(stride).min(hi), hi)
}

/// The input row read by output row `oy` at kernel row `i`, if inside.
fn input_row(s: &Spec, oy: usize, i: usize) -> Option<usize> {
    (oy * s.stride[0] + i)
        .checked_sub(s.pad[0])
        .filter(|&y| y < s.h)
}

/// Runs `job` on each `(index, chunk)`, on all threads when `parallel`.
fn each<T: Send>(
    chunks: impl IndexedParallelIterator<Item = T>,
    parallel: bool,
    job: impl Fn((usize, T)) + Send + Sync,
) {
    if parallel {
        chunks.enumerate().for_each(job);
    } else {
        chunks.enumerate().with_min_len(usize::MAX).for_each(job);
    }
}

/// Fills `col` (`k x total`, `total` the jobs' output positions side by
/// side) with the columns of each job `(sample, output rows)` of `x`
/// (`n x ci x h x w`), one task per row when `parallel`.
fn im2col(x: &[f32], s: &Spec, jobs: &[(usize, Range<usize>)], col: &mut [f32], parallel: bool) {
    let total: usize = jobs.iter().map(|(_, rows)| rows.len() * s.ow).sum();
    let (kk, hw) = (s.kh * s.kw, s.hw());
    each(
        col[..s.k() * total].par_chunks_mut(total),
        parallel,
        |(r, dst)| {
            let (c, i, j) = (r / kk, r % kk / s.kw, r % s.kw);
            let (lo, hi) = valid(s.ow, s.w, j, s.stride[1], s.pad[1]);
            let mut segs = dst.chunks_exact_mut(s.ow);
            for (b, rows) in jobs {
                let plane = &x[(b * s.ci + c) * hw..][..hw];
                // `rows` first: `zip` polls its left side first, and a segment
                // taken after the rows end would be lost to the next job.
                for (oy, seg) in rows.clone().zip(segs.by_ref()) {
                    let Some(y) = input_row(s, oy, i) else {
                        seg.fill(0.0);
                        continue;
                    };
                    let line = &plane[y * s.w..(y + 1) * s.w];
                    seg[..lo].fill(0.0);
                    seg[hi..].fill(0.0);
                    if s.stride[1] == 1 && hi > lo {
                        let start = lo + j - s.pad[1];
                        seg[lo..hi].copy_from_slice(&line[start..start + hi - lo]);
                    } else {
                        for (o, v) in seg[lo..hi].iter_mut().enumerate() {
                            *v = line[(lo + o) * s.stride[1] + j - s.pad[1]];
                        }
                    }
                }
            }
        },
    );
}

/// Adds `col` (`k x p` for the output rows `rows`) onto one sample's input
/// gradient `dx` (`ci x h x w`), one job per channel.
fn col2im(col: &[f32], s: &Spec, rows: &Range<usize>, dx: &mut [f32], parallel: bool) {
    let p = rows.len() * s.ow;
    let kk = s.kh * s.kw;
    each(dx.par_chunks_mut(s.hw()), parallel, |(c, plane)| {
        for r in c * kk..(c + 1) * kk {
            let (i, j) = (r % kk / s.kw, r % s.kw);
            let (lo, hi) = valid(s.ow, s.w, j, s.stride[1], s.pad[1]);
            let src = &col[r * p..(r + 1) * p];
            for (seg, oy) in src.chunks_exact(s.ow).zip(rows.clone()) {
                let Some(y) = input_row(s, oy, i) else {
                    continue;
                };
                let line = &mut plane[y * s.w..(y + 1) * s.w];
                if s.stride[1] == 1 && hi > lo {
                    let start = lo + j - s.pad[1];
                    let dst = &mut line[start..start + hi - lo];
                    dst.iter_mut().zip(&seg[lo..hi]).for_each(|(a, g)| *a += g);
                } else {
                    for (o, &g) in seg[lo..hi].iter().enumerate() {
                        line[(lo + o) * s.stride[1] + j - s.pad[1]] += g;
                    }
                }
            }
        }
    });
}

/// The column matrix of sample `b`'s output rows `rows`: a pointer and its
/// strides, built in `col` unless the input is its own column matrix.
fn columns(
    x: &[f32],
    s: &Spec,
    b: usize,
    rows: &Range<usize>,
    col: &mut Vec<f32>,
    parallel: bool,
) -> (*const f32, usize) {
    let sample = &x[b * s.ci * s.hw()..(b + 1) * s.ci * s.hw()];
    if s.pointwise() {
        (sample[rows.start * s.w..].as_ptr(), s.hw())
    } else {
        let p = rows.len() * s.ow;
        col.resize(s.k() * p, 0.0);
        im2col(x, s, &[(b, rows.clone())], col, parallel);
        (col.as_ptr(), p)
    }
}

/// Output `[n, co, oh, ow]` of input `x` `[n, ci, h, w]`, weight `[co, ci,
/// kh, kw]` and optional bias `[co]`: through `winograd.rs` where it is
/// faster (see [`winograd::chosen`]), otherwise [`im2col_forward`].
pub(crate) fn forward(x: &[f32], weight: Weight<'_>, bias: Option<&[f32]>, s: Spec) -> Vec<f32> {
    match winograd::forward_geometry(&s).filter(winograd::chosen) {
        Some(g) => winograd::forward(x, weight, bias, &g),
        None => im2col_forward(x, weight.values, bias, s),
    }
}

/// [`forward`] by im2col tiles and matrix products.
pub(crate) fn im2col_forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, s: Spec) -> Vec<f32> {
    let (k, ohw) = (s.k(), s.ohw());
    let mut out = zeros(s.n * s.co * ohw);
    if let Some(bias) = bias {
        out.par_chunks_mut(ohw.max(1))
            .enumerate()
            .for_each(|(i, plane)| plane.fill(bias[i % s.co]));
    }
    let jobs = s.jobs();
    let parallelism = nested(jobs.len());
    let nested_jobs = matches!(parallelism, Parallelism::Rayon(_));
    let out_ptr = Shared(out.as_mut_ptr());
    // The weight (`co x k`) is prepared once for every job.
    // SAFETY: the weight outlives the jobs.
    let weight = unsafe { prepare_left((s.co, k), (weight.as_ptr(), (1, k as isize)), true) };
    jobs.par_iter().for_each_init(Vec::new, |col, (b, rows)| {
        let (rhs, row_stride) = columns(x, &s, *b, rows, col, nested_jobs);
        let dst = out_ptr.at(b * s.co * ohw + rows.start * s.ow);
        // SAFETY: the job writes output rows `rows` of sample `b` only
        // (row stride `ohw`), and the column view is `k x len` with row
        // stride `row_stride`, alive until the product returns.
        unsafe {
            let rhs = prepare(
                (k, rows.len() * s.ow),
                (rhs, (1, row_stride as isize)),
                nested_jobs,
            );
            product_prepared(
                (dst, (1, ohw as isize)),
                bias.is_some(),
                &weight,
                &rhs,
                parallelism,
            );
        }
    });
    out
}

/// Gradients of input, weight and bias from the output gradient `grad`,
/// each computed only when `want` asks for it.
pub(crate) fn backward(
    x: &[f32],
    weight: Weight<'_>,
    grad: &[f32],
    s: Spec,
    want: [bool; 3],
) -> [Option<Vec<f32>>; 3] {
    let dx = want[0].then(|| input_grad(weight, grad, s));
    let dw = want[1].then(|| weight_grad(x, grad, s));
    let db = want[2].then(|| {
        let ohw = s.ohw();
        (0..s.co)
            .into_par_iter()
            .map(|c| {
                (0..s.n)
                    .map(|b| grad[(b * s.co + c) * ohw..][..ohw].iter().sum::<f32>())
                    .sum()
            })
            .collect()
    });
    [dx, dw, db]
}

/// Consecutive jobs gathered side by side, each group at most `limit`
/// columns (and at least one job), so that the weight gradient's products
/// are long even where one job is short (SD 1.5's 8x8 level).
fn groups(s: &Spec, limit: usize) -> Vec<Vec<(usize, Range<usize>)>> {
    let mut groups: Vec<Vec<(usize, Range<usize>)>> = Vec::new();
    let mut total = 0;
    for (b, rows) in s.jobs() {
        let len = rows.len() * s.ow;
        match groups.last_mut() {
            Some(group) if total + len <= limit => group.push((b, rows)),
            _ => {
                groups.push(vec![(b, rows)]);
                total = 0;
            }
        }
        total += len;
    }
    groups
}

/// Fills `dy` (`co x total`) with the output gradient of `group` and `col`
/// (`k x total`) with its columns; returns `total`.
fn gather(
    x: &[f32],
    grad: &[f32],
    s: &Spec,
    group: &[(usize, Range<usize>)],
    (dy, col): (&mut Vec<f32>, &mut Vec<f32>),
    parallel: bool,
) -> usize {
    let total: usize = group.iter().map(|(_, rows)| rows.len() * s.ow).sum();
    let ohw = s.ohw();
    dy.resize(s.co * total, 0.0);
    each(dy.par_chunks_mut(total), parallel, |(c, dst)| {
        let mut at = 0;
        for (b, rows) in group {
            let len = rows.len() * s.ow;
            let src = &grad[(b * s.co + c) * ohw + rows.start * s.ow..][..len];
            dst[at..at + len].copy_from_slice(src);
            at += len;
        }
    });
    col.resize(s.k() * total, 0.0);
    im2col(x, s, group, col, parallel);
    total
}

/// `dW = sum over groups of dY_group . col_group^T`. Where one partial
/// gradient per thread is small (at most two column matrices), each thread sums
/// the products of its own share of the groups, and the partial sums are
/// added at the end; otherwise (SD 1.5's wide levels, where a partial
/// gradient is up to 59 MB) each group's product is split by output
/// channel over the threads (disjoint rows of `dW`).
fn weight_grad(x: &[f32], grad: &[f32], s: Spec) -> Vec<f32> {
    let k = s.k();
    let threads = rayon::current_num_threads().max(1);
    let limit = (COL_ELEMS / k).max(1);
    // `dw (rows x k) += dy (rows x total) . col^T (total x k)`.
    let accumulate = |dw: &mut [f32], dy: &[f32], col: &[f32], total: usize| {
        // SAFETY: `dw` is `rows x k`, `dy` at least `rows x total`, and the
        // transposed column matrix `total x k`.
        unsafe {
            product(
                (dw.len() / k, k, total),
                (dw.as_mut_ptr(), (1, k as isize)),
                true,
                (dy.as_ptr(), (1, total as isize)),
                (col.as_ptr(), (total as isize, 1)),
                1.0,
                Parallelism::None,
            );
        }
    };
    if s.co * k <= 2 * COL_ELEMS {
        // As many groups as fit the limit, rounded up to a multiple of the
        // threads and evened out, so that the threads get equal shares.
        let total = s.n * s.ohw();
        let count = total.div_ceil(limit).max(threads).div_ceil(threads) * threads;
        let groups = groups(&s, total.div_ceil(count));
        let per = groups.len().div_ceil(threads);
        let partials: Vec<Vec<f32>> = groups
            .par_chunks(per)
            .map(|part| {
                let mut dw = vec![0.0f32; s.co * k];
                let (mut dy, mut col) = (Vec::new(), Vec::new());
                for group in part {
                    let total = gather(x, grad, &s, group, (&mut dy, &mut col), false);
                    accumulate(&mut dw, &dy, &col, total);
                }
                dw
            })
            .collect();
        // Added in a fixed order, so that the result does not depend on
        // which thread finished first.
        let mut parts = partials.into_iter();
        let mut dw = parts.next().unwrap_or_else(|| vec![0.0; s.co * k]);
        for part in parts {
            dw.iter_mut().zip(&part).for_each(|(a, b)| *a += b);
        }
        return dw;
    }
    let mut dw = vec![0.0f32; s.co * k];
    let (mut dy, mut col) = (Vec::new(), Vec::new());
    let block = s.co.div_ceil(threads);
    for group in &groups(&s, limit) {
        let total = gather(x, grad, &s, group, (&mut dy, &mut col), true);
        let (dy, col) = (&dy, &col);
        dw.par_chunks_mut(block * k)
            .enumerate()
            .for_each(|(i, dw_block)| accumulate(dw_block, &dy[i * block * total..], col, total));
    }
    dw
}

/// `dX`: Winograd's correlation of `dY` with the flipped, transposed
/// filter where [`winograd::chosen`] takes it, otherwise
/// [`im2col_input_grad`].
fn input_grad(weight: Weight<'_>, grad: &[f32], s: Spec) -> Vec<f32> {
    match winograd::input_geometry(&s).filter(winograd::chosen) {
        Some(g) => winograd::input_grad(weight, grad, &g),
        None => im2col_input_grad(weight.values, grad, s),
    }
}

/// Elements of one job's columns in [`channel_blocks`]: small enough to
/// stay in a core's cache from its product to its col2im (256 KiB; 1 MiB
/// measured no better on SD 1.5's 16x16 level).
const BLOCK_ELEMS: usize = if cfg!(test) { 1 << 6 } else { 1 << 16 };

/// The input gradient of output rows `rows` of one sample (`grad_b`, `co x
/// oh x ow`) added to its planes `dx_b` with an f32 weight view `w_t` (`k x
/// co`): per block of input channels, their rows of `dcol = W^T . dY_tile`
/// then their col2im, the blocks on all threads. One product of all `k`
/// rows writes a column matrix larger than the cache (SD 1.5's 16x16
/// level: 11.8 MB) and reads it back for col2im; that made the input
/// gradient 1.4-1.7x its forward convolution (`conv` bench, `*_input_grad`:
/// 2 x 1280 x 16 x 16 forward and input gradient 123-136 ms before, 113-117
/// ms with the blocks, the forward alone 51-54 ms).
fn channel_blocks(w_t: &Left, grad_b: &[f32], s: &Spec, rows: &Range<usize>, dx_b: &mut [f32]) {
    let (kk, p, ohw) = (s.kh * s.kw, rows.len() * s.ow, s.ohw());
    let channels = (BLOCK_ELEMS / (kk * p).max(1)).max(1);
    // SAFETY: the gradient tile `co x p` with row stride `ohw` is inside
    // `grad_b` and outlives the jobs.
    let rhs = unsafe {
        prepare(
            (s.co, p),
            (grad_b[rows.start * s.ow..].as_ptr(), (1, ohw as isize)),
            false,
        )
    };
    dx_b.par_chunks_mut(channels * s.hw())
        .enumerate()
        .for_each_init(Vec::new, |col, (j, planes)| {
            let c0 = j * channels;
            let count = planes.len() / s.hw();
            let lhs = w_t
                .rows(c0 * kk..(c0 + count) * kk)
                .unwrap_or_else(|| unreachable!("checked by the caller: an f32 view"));
            col.resize(count * kk * p, 0.0);
            // SAFETY: `col` is `(count kk) x p`; `lhs` rows of the weight
            // view, `rhs` the gradient tile, both alive.
            unsafe {
                product_prepared(
                    (col.as_mut_ptr(), (1, p as isize)),
                    false,
                    &lhs,
                    &rhs,
                    Parallelism::None,
                );
            }
            col2im(col, s, rows, planes, false);
        });
}

/// [`input_grad`] per sample and tile: `dcol = W^T . dY_tile` added back
/// onto the input planes (col2im; the products write `dX` directly for a
/// pointwise convolution).
pub(crate) fn im2col_input_grad(weight: &[f32], grad: &[f32], s: Spec) -> Vec<f32> {
    let (k, ohw, sample) = (s.k(), s.ohw(), s.ci * s.hw());
    let mut dx = zeros(s.n * sample);
    let parallelism = nested(s.n);
    let nested_jobs = matches!(parallelism, Parallelism::Rayon(_));
    let tiles = s.tiles();
    // The transposed weight (`k x co`; `ci x co` for a pointwise
    // convolution, whose k is ci) is prepared once for every sample and
    // tile.
    // SAFETY: the weight outlives the jobs.
    let w_t = unsafe { prepare_left((k, s.co), (weight.as_ptr(), (k as isize, 1)), true) };
    each(
        dx.par_chunks_mut(sample.max(1)),
        !nested_jobs,
        |(b, dx_b)| {
            let grad_b = &grad[b * s.co * ohw..(b + 1) * s.co * ohw];
            if s.pointwise() {
                // SAFETY: `dx_b` is `ci x hw`, the gradient `co x hw`.
                unsafe {
                    let rhs = prepare(
                        (s.co, ohw),
                        (grad_b.as_ptr(), (1, ohw as isize)),
                        nested_jobs,
                    );
                    product_prepared(
                        (dx_b.as_mut_ptr(), (1, ohw as isize)),
                        false,
                        &w_t,
                        &rhs,
                        parallelism,
                    );
                }
                return;
            }
            let mut col = Vec::new();
            for rows in &tiles {
                let p = rows.len() * s.ow;
                if matches!(w_t, Left::View(..)) {
                    channel_blocks(&w_t, grad_b, &s, rows, dx_b);
                    continue;
                }
                col.resize(k * p, 0.0);
                // SAFETY: `col` is `k x p`, the gradient tile `co x p` with
                // row stride `ohw`.
                unsafe {
                    let rhs = prepare(
                        (s.co, p),
                        (grad_b[rows.start * s.ow..].as_ptr(), (1, ohw as isize)),
                        nested_jobs,
                    );
                    product_prepared(
                        (col.as_mut_ptr(), (1, p as isize)),
                        false,
                        &w_t,
                        &rhs,
                        parallelism,
                    );
                }
                col2im(&col, &s, rows, dx_b, nested_jobs);
            }
        },
    );
    dx
}
