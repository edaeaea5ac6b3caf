//! 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3)
//! (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks",
//! arXiv 1509.09308), on `f32` slices in `NCHW` layout.
//!
//! Each 2x2 block of outputs is computed from the 4x4 input tile around it:
//! the tile and the 3x3 filter are transformed (`V = Bᵀ d B`, `U = G g Gᵀ`),
//! multiplied element by element, and transformed back (`Y = Aᵀ (U ⊙ V) A`).
//! Summed over input channels, the element-wise products become 16 matrix
//! products `M[ξ] = U[ξ] (co x ci) · V[ξ] (ci x tiles)`, one per element ξ of
//! the 4x4 transform, with 16 multiplications per 4 outputs instead of 36:
//! 2.25x fewer than the im2col product of `conv.rs`, and no 9x im2col copy.
//! The transforms' coefficients are 0, ±1 and ±1/2, exact in binary; F(2x2,
//! 3x3) is the most accurate of Winograd's tilings, and against a direct
//! f64 sum its error measured 0.5 to 2.3x the im2col path's (at most 5e-7
//! of the output's scale over 288 input channels; `conv_tests.rs`).
//!
//! Used for the forward pass and the input gradient (a 3x3 correlation of
//! the output gradient with the flipped, transposed filter) of f32
//! convolutions with enough tiles for the products to pay for the weight
//! transform ([`chosen`]); bf16 keeps the im2col path, whose products run
//! on the bf16 unit. [`set_winograd`] turns it off for the whole process.
//!
//! One transform `U` of a filter serves both passes: the flipped,
//! transposed filter's transform is `U` with its matrices transposed and
//! the transform's rows and columns 0 and 3 swapped (`G J = P G` for the
//! reversal `J` and that swap `P`), read through strides ([`Filter`]). A
//! weight held by a `FlexTensor` (the models' convolutions) is transformed
//! once and kept in `weight_cache.rs`; a bare slice (the unit tests) on
//! every call. Small spatial sizes, where the products save less than a
//! wide layer's transform costs, stay on im2col.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use burn_flex::FlexTensor;
use gemm::Parallelism;
use rayon::prelude::*;

use super::conv::Spec;
use super::product::{product, Shared};
use super::weight_cache::derived;
use super::zeros;

/// Whether [`chosen`] may pick this path: [`set_winograd`].
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Lets f32 3x3 stride-1 convolutions on `Flex` run by Winograd's F(2x2,
/// 3x3) where it is faster than im2col (`true`, the default), or keeps
/// every convolution on im2col (`false`), for the whole process until the
/// next call; returns the previous setting. The two differ only by
/// rounding (the unit tests bound the difference); turning it off gives
/// the summation order of the earlier releases.
pub fn set_winograd(enabled: bool) -> bool {
    ENABLED.swap(enabled, Ordering::Relaxed)
}

/// The current setting of [`set_winograd`].
pub fn winograd() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Fewest 2x2 output tiles (over all samples) for which [`chosen`] takes
/// this path. Transformed on every call, the weight costs as much as the
/// products save at about 128-512 tiles (SD 1.5's 16x16 level at batch 2
/// 17% slower than im2col forward, its 32x32 level 1.7x faster; the `conv`
/// bench), and 256 is the geometric middle. With the transform kept, the
/// 16x16 level at 64 and 128 tiles measured 1.3-2x faster than im2col
/// forward, and 32 tiles (8x8, batch 2) slower; but that level's
/// transforms would keep 1.36 GB more for SD 1.5 (wide layers, small
/// images), and the UNet's forward+backward showed no gain within this
/// VM's noise (8.7 and 10.3 s against 8.3 and 10.4 s), so the bound stays.
/// The unit tests take every shape through it.
const MIN_TILES: usize = if cfg!(test) { 1 } else { 256 };

/// Elements of the 4x4 transform.
const XI: usize = 16;

/// A 3x3 correlation with unit stride: input `[n, ci, h, w]` read at rows
/// `2 ty - pad[0] + r` and columns `2 tx - pad[1] + q` (zero outside),
/// output `[n, co, oh, ow]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Samples.
    pub n: usize,
    /// Input channels.
    pub ci: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub co: usize,
    /// Padding before the first row and column.
    pub pad: [usize; 2],
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl Geometry {
    /// Tile rows and columns (2x2 outputs each).
    fn tiles(&self) -> (usize, usize) {
        (self.oh.div_ceil(2), self.ow.div_ceil(2))
    }
}

/// The geometry of convolution `s`'s forward pass, if it is one this path
/// computes: a 3x3 kernel with unit stride.
pub(crate) fn forward_geometry(s: &Spec) -> Option<Geometry> {
    (s.kh == 3 && s.kw == 3 && s.stride == [1, 1]).then_some(Geometry {
        n: s.n,
        ci: s.ci,
        h: s.h,
        w: s.w,
        co: s.co,
        pad: s.pad,
        oh: s.oh,
        ow: s.ow,
    })
}

/// The geometry of convolution `s`'s input gradient, if this path computes
/// it: the correlation of the output gradient (`co` channels, `oh x ow`)
/// with the flipped, transposed filter, padded by `2 - pad` (so the padding
/// must be at most 2), giving `ci x h x w`.
pub(crate) fn input_geometry(s: &Spec) -> Option<Geometry> {
    let forward = forward_geometry(s)?;
    (s.pad[0] <= 2 && s.pad[1] <= 2).then_some(Geometry {
        ci: s.co,
        h: s.oh,
        w: s.ow,
        co: s.ci,
        pad: [2 - s.pad[0], 2 - s.pad[1]],
        oh: s.h,
        ow: s.w,
        ..forward
    })
}

/// Whether `conv.rs` takes this path for geometry `g`: [`set_winograd`] on,
/// f32 products, and at least [`MIN_TILES`] tiles.
pub(crate) fn chosen(g: &Geometry) -> bool {
    let (th, tw) = g.tiles();
    winograd() && g.n * th * tw >= MIN_TILES && super::precision::active_unit().is_none()
}

/// A convolution weight `[co, ci, 3, 3]` as this path reads it: its
/// values, and the tensor that holds them, if any, whose transform is then
/// kept (`weight_cache.rs`).
#[derive(Clone, Copy)]
pub(crate) struct Weight<'a> {
    /// The weight's elements.
    pub values: &'a [f32],
    /// The tensor whose storage `values` are, for the cache.
    pub owner: Option<&'a FlexTensor>,
}

/// The transform `U` of weight `[co, ci, 3, 3]` (from [`transform_weight`]),
/// from the cache where the weight has an owner.
fn transformed(weight: Weight<'_>, co: usize, ci: usize) -> Arc<Vec<f32>> {
    let make = || transform_weight(weight.values, co, ci);
    match weight.owner {
        // The kind names the shape the transform reads (it is the only
        // derivation kept).
        Some(owner) => derived(owner, weight.values, (co as u64) << 32 | ci as u64, make),
        None => Arc::new(make()),
    }
}

/// The 16 matrices that the products of [`correlate`] take, `rows x cols`
/// each: a weight's transform `U` (`co x ci` matrices), read as it is
/// (the forward pass) or as the transform of the flipped, transposed
/// filter (the input gradient).
struct Filter {
    u: Arc<Vec<f32>>,
    /// The weight's output and input channels.
    co: usize,
    ci: usize,
    flipped: bool,
}

impl Filter {
    /// The filter of weight `[co, ci, 3, 3]`, read as it is or `flipped`.
    fn of(weight: Weight<'_>, co: usize, ci: usize, flipped: bool) -> Self {
        Self {
            u: transformed(weight, co, ci),
            co,
            ci,
            flipped,
        }
    }

    /// Rows of each matrix (the correlation's output channels).
    fn rows(&self) -> usize {
        if self.flipped {
            self.ci
        } else {
            self.co
        }
    }

    /// Matrix `ξ`'s first element and its `(column, row)` strides. The
    /// flipped filter's `U'[4a + b][c][o]` is `U[4 p(a) + p(b)][o][c]`,
    /// `p` swapping 0 and 3.
    fn matrix(&self, xi: usize) -> (*const f32, (isize, isize)) {
        let plane = self.co * self.ci;
        if self.flipped {
            let p = |a: usize| if a == 0 || a == 3 { 3 - a } else { a };
            let src = 4 * p(xi / 4) + p(xi % 4);
            (self.u[src * plane..].as_ptr(), (self.ci as isize, 1))
        } else {
            (self.u[xi * plane..].as_ptr(), (1, self.ci as isize))
        }
    }
}

/// The forward pass of geometry `g` (from [`forward_geometry`]): weight
/// `[co, ci, 3, 3]`, optional bias `[co]`.
pub(crate) fn forward(
    x: &[f32],
    weight: Weight<'_>,
    bias: Option<&[f32]>,
    g: &Geometry,
) -> Vec<f32> {
    correlate(x, &Filter::of(weight, g.co, g.ci, false), bias, g)
}

/// The input gradient of geometry `g` (from [`input_geometry`], whose `ci`
/// is the convolution's output channels): weight `[g.ci, g.co, 3, 3]`,
/// output gradient `grad`.
pub(crate) fn input_grad(weight: Weight<'_>, grad: &[f32], g: &Geometry) -> Vec<f32> {
    correlate(grad, &Filter::of(weight, g.ci, g.co, true), None, g)
}

/// `U[ξ] = G g Gᵀ` for each output channel `o` and input channel `c`, as 16
/// matrices `co x ci` of the weight `[co, ci, 3, 3]`.
fn transform_weight(weight: &[f32], co: usize, ci: usize) -> Vec<f32> {
    let (rows, cols) = (co, ci);
    let plane = rows * cols;
    let mut u = zeros(XI * plane);
    let out = Shared(u.as_mut_ptr());
    // Columns in blocks of `LANES`: the taps of a block are gathered into
    // `taps[k][lane]`, so that the transform runs on whole vectors and each
    // of the 16 results is stored as one contiguous run.
    const LANES: usize = 16;
    (0..rows).into_par_iter().for_each(|r| {
        let mut taps = [[0.0f32; LANES]; 9];
        let mut res = [[0.0f32; LANES]; XI];
        for start in (0..cols).step_by(LANES) {
            let lanes = LANES.min(cols - start);
            for lane in 0..lanes {
                let col = start + lane;
                let src = &weight[(r * ci + col) * 9..][..9];
                for (k, tap) in taps.iter_mut().enumerate() {
                    tap[lane] = src[k];
                }
            }
            // G g (4 x 3) then (G g) Gᵀ (4 x 4), lane by lane.
            for l in 0..LANES {
                let g = |i: usize, j: usize| taps[3 * i + j][l];
                let mut gg = [[0.0f32; 3]; 4];
                for j in 0..3 {
                    let (a, b, c) = (g(0, j), g(1, j), g(2, j));
                    gg[0][j] = a;
                    gg[1][j] = 0.5 * (a + b + c);
                    gg[2][j] = 0.5 * (a - b + c);
                    gg[3][j] = c;
                }
                for (i, [a, b, c]) in gg.into_iter().enumerate() {
                    res[4 * i][l] = a;
                    res[4 * i + 1][l] = 0.5 * (a + b + c);
                    res[4 * i + 2][l] = 0.5 * (a - b + c);
                    res[4 * i + 3][l] = c;
                }
            }
            for (xi, values) in res.iter().enumerate() {
                // SAFETY: job `r` writes row `r` of each of the 16 matrices
                // only.
                let dst = unsafe {
                    std::slice::from_raw_parts_mut(out.at(xi * plane + r * cols + start), lanes)
                };
                dst.copy_from_slice(&values[..lanes]);
            }
        }
    });
    u
}

/// Writes `V[ξ]` (`ci x len` each, side by side in `v`) of the tile rows
/// `rows` of sample `b`, `len = rows.len() * tw`.
fn transform_input(
    x: &[f32],
    g: &Geometry,
    b: usize,
    rows: Range<usize>,
    v: &mut [f32],
    d: &mut [f32],
) {
    let (_, tw) = g.tiles();
    let len = rows.len() * tw;
    let plane = g.ci * len;
    let width = 2 * tw + 2;
    let (d, t) = d.split_at_mut(4 * width);
    for c in 0..g.ci {
        let src = &x[(b * g.ci + c) * g.h * g.w..][..g.h * g.w];
        for (k, ty) in rows.clone().enumerate() {
            // The tile row's four input rows, zero outside the input.
            for (r, row) in d.chunks_exact_mut(width).enumerate() {
                row.fill(0.0);
                let Some(y) = (2 * ty + r).checked_sub(g.pad[0]).filter(|&y| y < g.h) else {
                    continue;
                };
                let line = &src[y * g.w..(y + 1) * g.w];
                // Column q of the row reads input column q - pad.
                let lo = g.pad[1].min(width);
                let hi = (g.w + g.pad[1]).min(width);
                if hi > lo {
                    row[lo..hi].copy_from_slice(&line[..hi - lo]);
                }
            }
            // Bᵀ on the rows: t0 = d0 - d2, t1 = d1 + d2, t2 = d2 - d1,
            // t3 = d1 - d3, each a whole row.
            let (d0, rest) = d.split_at(width);
            let (d1, rest) = rest.split_at(width);
            let (d2, d3) = rest.split_at(width);
            let (t0, rest) = t.split_at_mut(width);
            let (t1, rest) = rest.split_at_mut(width);
            let (t2, t3) = rest.split_at_mut(width);
            for q in 0..width {
                t0[q] = d0[q] - d2[q];
                t1[q] = d1[q] + d2[q];
                t2[q] = d2[q] - d1[q];
                t3[q] = d1[q] - d3[q];
            }
            // B on the columns of each tile, written to V[4 i + j].
            let at = c * len + k * tw;
            for (i, row) in [&*t0, &*t1, &*t2, &*t3].into_iter().enumerate() {
                let (v0, rest) = v[4 * i * plane..].split_at_mut(plane);
                let (v1, rest) = rest.split_at_mut(plane);
                let (v2, v3) = rest.split_at_mut(plane);
                let (v0, v1, v2, v3) = (
                    &mut v0[at..at + tw],
                    &mut v1[at..at + tw],
                    &mut v2[at..at + tw],
                    &mut v3[at..at + tw],
                );
                for tx in 0..tw {
                    let q = &row[2 * tx..2 * tx + 4];
                    v0[tx] = q[0] - q[2];
                    v1[tx] = q[1] + q[2];
                    v2[tx] = q[2] - q[1];
                    v3[tx] = q[1] - q[3];
                }
            }
        }
    }
}

/// `Y = Aᵀ M A` plus the bias for the tile rows `rows` of sample `b`
/// (`M[ξ]` `co x len` each, side by side in `m`), into the output.
fn transform_output(
    m: &[f32],
    bias: Option<&[f32]>,
    g: &Geometry,
    b: usize,
    rows: Range<usize>,
    out: Shared,
    e: &mut [f32],
) {
    let (_, tw) = g.tiles();
    let len = rows.len() * tw;
    let plane = g.co * len;
    let (s, q) = e.split_at_mut(4 * tw);
    for o in 0..g.co {
        let bias = bias.map_or(0.0, |bias| bias[o]);
        for (k, ty) in rows.clone().enumerate() {
            let at = o * len + k * tw;
            let row = |xi: usize| &m[xi * plane + at..][..tw];
            // Aᵀ on the rows: s_j = m0j + m1j + m2j, q_j = m1j - m2j - m3j.
            for j in 0..4 {
                let (m0, m1, m2, m3) = (row(j), row(4 + j), row(8 + j), row(12 + j));
                let (sj, qj) = (&mut s[j * tw..][..tw], &mut q[j * tw..][..tw]);
                for tx in 0..tw {
                    sj[tx] = m0[tx] + m1[tx] + m2[tx];
                    qj[tx] = m1[tx] - m2[tx] - m3[tx];
                }
            }
            // A on the columns, for output rows 2 ty and 2 ty + 1.
            for (dy, e) in [&*s, &*q].into_iter().enumerate() {
                let y = 2 * ty + dy;
                if y >= g.oh {
                    break;
                }
                // SAFETY: the job of tile rows `rows` of sample `b` writes
                // output rows `2 rows.start..2 rows.end` of that sample only.
                let line = unsafe {
                    std::slice::from_raw_parts_mut(out.at(((b * g.co + o) * g.oh + y) * g.ow), g.ow)
                };
                let (e0, e1, e2, e3) = (
                    &e[..tw],
                    &e[tw..2 * tw],
                    &e[2 * tw..3 * tw],
                    &e[3 * tw..4 * tw],
                );
                let (pairs, tail) = line.split_at_mut(g.ow / 2 * 2);
                for (tx, pair) in pairs.chunks_exact_mut(2).enumerate() {
                    pair[0] = bias + e0[tx] + e1[tx] + e2[tx];
                    pair[1] = bias + e1[tx] - e2[tx] - e3[tx];
                }
                if let [last] = tail {
                    let tx = tw - 1;
                    *last = bias + e0[tx] + e1[tx] + e2[tx];
                }
            }
        }
    }
}

/// Most elements of one job's transformed tiles (`16 x channels x tiles`):
/// tile rows are grouped up to it, so that a job's matrices stay in cache.
/// The unit tests use small jobs, so that their shapes cross job
/// boundaries.
const JOB_ELEMS: usize = if cfg!(test) { 1 << 8 } else { 1 << 20 };

/// The correlation of `x` with `filter` (`g.co x g.ci` matrices), plus
/// `bias`: per job (a group of tile rows of one sample) the input
/// transform, the 16 products and the output transform, the jobs on all
/// threads.
fn correlate(x: &[f32], filter: &Filter, bias: Option<&[f32]>, g: &Geometry) -> Vec<f32> {
    debug_assert_eq!(filter.rows(), g.co);
    let (th, tw) = g.tiles();
    // At most the tile rows that fit `JOB_ELEMS`, and few enough that every
    // thread gets a job.
    let threads = rayon::current_num_threads().max(1);
    let per = (JOB_ELEMS / (XI * g.ci.max(g.co) * tw).max(1))
        .min((g.n * th).div_ceil(threads))
        .clamp(1, th.max(1));
    let jobs: Vec<(usize, Range<usize>)> = (0..g.n)
        .flat_map(|b| (0..th).step_by(per).map(move |r| (b, r..(r + per).min(th))))
        .collect();
    let mut out = zeros(g.n * g.co * g.oh * g.ow);
    let dst = Shared(out.as_mut_ptr());
    let scratch = 8 * (2 * tw + 2);
    jobs.into_par_iter().for_each_init(
        || (Vec::new(), Vec::new(), vec![0.0f32; scratch]),
        |(v, m, e), (b, rows)| {
            let len = rows.len() * tw;
            v.resize(XI * g.ci * len, 0.0);
            m.resize(XI * g.co * len, 0.0);
            transform_input(x, g, b, rows.clone(), v, e);
            for xi in 0..XI {
                // SAFETY: product ξ writes matrix ξ of `m` (`co x len`) from
                // the filter's matrix ξ (`co x ci`, inside `filter.u`) and
                // matrix ξ of `v` (`ci x len`).
                unsafe {
                    product(
                        (g.co, len, g.ci),
                        (m[xi * g.co * len..].as_mut_ptr(), (1, len as isize)),
                        false,
                        filter.matrix(xi),
                        (v[xi * g.ci * len..].as_ptr(), (1, len as isize)),
                        1.0,
                        Parallelism::None,
                    );
                }
            }
            transform_output(m, bias, g, b, rows, dst, e);
        },
    );
    out
}
