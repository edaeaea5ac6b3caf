//! Fused group normalisation (Wu & He, arXiv 1803.08494), optionally
//! followed by SiLU, forward and backward, on `f32` slices of shape
//! `[N, C, S]` (`S` the spatial size).
//!
//! One job per `(sample, group)`: a pass for the mean, one for the variance
//! (two passes, as `torch.nn.GroupNorm` and the decomposed version compute
//! it, so that a large mean does not cancel digits), one writing the output.
//! The backward pass recomputes the normalised input from the saved mean and
//! reciprocal standard deviation, and the SiLU's input from that.

use rayon::prelude::*;

use super::exp::{dispatch, exp1};
use super::zeros;

/// Shape and options of one group norm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Spec {
    /// Samples.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Spatial size (product of the dimensions after the channel).
    pub s: usize,
    /// Groups (divides `c`).
    pub groups: usize,
    /// Added to the variance.
    pub eps: f32,
    /// Whether SiLU follows the affine transform.
    pub silu: bool,
}

impl Spec {
    fn block(&self) -> usize {
        self.c / self.groups * self.s
    }
}

/// Per `(sample, group)` statistics kept for the backward pass.
#[derive(Debug, Clone)]
pub(crate) struct Stats {
    mean: Vec<f32>,
    rstd: Vec<f32>,
}

#[inline(always)]
fn sum_body(xs: &[f32], shift: f32, square: bool) -> f32 {
    let mut acc = [0.0f32; 16];
    let mut chunks = xs.chunks_exact(16);
    for chunk in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            let d = x - shift;
            *a += if square { d * d } else { d };
        }
    }
    let rest: f32 = chunks
        .remainder()
        .iter()
        .map(|&x| {
            if square {
                (x - shift) * (x - shift)
            } else {
                x - shift
            }
        })
        .sum();
    acc.iter().sum::<f32>() + rest
}

/// `y = (x - mean) * scale + shift`, then SiLU if asked.
#[inline(always)]
fn affine_body(x: &[f32], y: &mut [f32], mean: f32, scale: f32, shift: f32, silu: bool) {
    for (y, &x) in y.iter_mut().zip(x) {
        let v = (x - mean) * scale + shift;
        *y = if silu { v / (1.0 + exp1(-v)) } else { v };
    }
}

/// Gradient at the affine output (through the SiLU if any) and `xhat`.
#[inline(always)]
fn grad1(x: f32, g: f32, mean: f32, rstd: f32, gamma: f32, beta: f32, silu: bool) -> (f32, f32) {
    let xhat = (x - mean) * rstd;
    if !silu {
        return (g, xhat);
    }
    let v = xhat * gamma + beta;
    let s = 1.0 / (1.0 + exp1(-v));
    (g * s * (1.0 + v * (1.0 - s)), xhat)
}

/// The gradient reaching the affine output into `dy`; returns
/// `(sum dy, sum dy * xhat)` over the row.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn row_grad_body(
    x: &[f32],
    g: &[f32],
    dy: &mut [f32],
    mean: f32,
    rstd: f32,
    gamma: f32,
    beta: f32,
    silu: bool,
) -> (f32, f32) {
    let (mut sum, mut dot) = ([0.0f32; 16], [0.0f32; 16]);
    let mut chunks = dy
        .chunks_exact_mut(16)
        .zip(x.chunks_exact(16).zip(g.chunks_exact(16)));
    for (d, (x, g)) in &mut chunks {
        for i in 0..16 {
            let (di, xhat) = grad1(x[i], g[i], mean, rstd, gamma, beta, silu);
            d[i] = di;
            sum[i] += di;
            dot[i] += di * xhat;
        }
    }
    let done = dy.len() / 16 * 16;
    let (mut s, mut t) = (sum.iter().sum::<f32>(), dot.iter().sum::<f32>());
    for i in done..dy.len() {
        let (di, xhat) = grad1(x[i], g[i], mean, rstd, gamma, beta, silu);
        dy[i] = di;
        s += di;
        t += di * xhat;
    }
    (s, t)
}

/// `dx = rstd * (dy * gamma - a - xhat * b)`.
#[inline(always)]
fn input_grad_body(
    x: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    mean: f32,
    rstd: f32,
    gamma: f32,
    a: f32,
    b: f32,
) {
    for ((o, &x), &d) in dx.iter_mut().zip(x).zip(dy) {
        let xhat = (x - mean) * rstd;
        *o = rstd * (d * gamma - a - xhat * b);
    }
}

dispatch!(sum, sum_body, (xs: &[f32], shift: f32, square: bool) -> f32);
dispatch!(affine, affine_body, (x: &[f32], y: &mut [f32], mean: f32, scale: f32, shift: f32, silu: bool) -> ());
dispatch!(row_grad, row_grad_body, (x: &[f32], g: &[f32], dy: &mut [f32], mean: f32, rstd: f32, gamma: f32, beta: f32, silu: bool) -> (f32, f32));
dispatch!(input_grad, input_grad_body, (x: &[f32], dy: &[f32], dx: &mut [f32], mean: f32, rstd: f32, gamma: f32, a: f32, b: f32) -> ());

/// Output and statistics; `gamma`, `beta` of length `c`.
pub(crate) fn forward(x: &[f32], gamma: &[f32], beta: &[f32], spec: Spec) -> (Vec<f32>, Stats) {
    let block = spec.block();
    let per = spec.c / spec.groups;
    let mut y = zeros(x.len());
    let mut stats = vec![(0.0f32, 0.0f32); spec.n * spec.groups];
    y.par_chunks_mut(block)
        .zip(x.par_chunks(block))
        .zip(stats.par_iter_mut())
        .enumerate()
        .for_each(|(job, ((y, x), st))| {
            let len = block as f32;
            let mean = sum(x, 0.0, false) / len;
            let var = sum(x, mean, true) / len;
            let rstd = 1.0 / (var + spec.eps).sqrt();
            *st = (mean, rstd);
            let group = job % spec.groups;
            for (k, (y, x)) in y.chunks_mut(spec.s).zip(x.chunks(spec.s)).enumerate() {
                let ch = group * per + k;
                let scale = rstd * gamma[ch];
                affine(x, y, mean, scale, beta[ch], spec.silu);
            }
        });
    let (mean, rstd) = stats.into_iter().unzip();
    (y, Stats { mean, rstd })
}

/// Gradients `(dx, dgamma, dbeta)` for the output gradient `grad`
/// (`dgamma`, `dbeta` of length `c`).
pub(crate) fn backward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    stats: &Stats,
    grad: &[f32],
    spec: Spec,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let block = spec.block();
    let per = spec.c / spec.groups;
    let mut dx = zeros(x.len());
    // Per (sample, channel) partial sums of dgamma and dbeta.
    let mut partial = vec![(0.0f32, 0.0f32); spec.n * spec.c];
    dx.par_chunks_mut(block)
        .zip(x.par_chunks(block).zip(grad.par_chunks(block)))
        .zip(partial.par_chunks_mut(per))
        .enumerate()
        .for_each_init(
            || vec![0.0f32; block],
            |dy, (job, ((dx, (x, g)), partial))| {
                let group = job % spec.groups;
                let (mean, rstd) = (stats.mean[job], stats.rstd[job]);
                let (mut a, mut b) = (0.0f32, 0.0f32);
                for (k, p) in partial.iter_mut().enumerate() {
                    let ch = group * per + k;
                    let gm = gamma[ch];
                    let bt = beta[ch];
                    let at = k * spec.s..(k + 1) * spec.s;
                    let (sum_dy, dot) = row_grad(
                        &x[at.clone()],
                        &g[at.clone()],
                        &mut dy[at],
                        mean,
                        rstd,
                        gm,
                        bt,
                        spec.silu,
                    );
                    *p = (dot, sum_dy);
                    a += sum_dy * gm;
                    b += dot * gm;
                }
                let len = block as f32;
                let (a, b) = (a / len, b / len);
                for k in 0..per {
                    let gm = gamma[group * per + k];
                    let at = k * spec.s..(k + 1) * spec.s;
                    input_grad(
                        &x[at.clone()],
                        &dy[at.clone()],
                        &mut dx[at],
                        mean,
                        rstd,
                        gm,
                        a,
                        b,
                    );
                }
            },
        );
    let mut dgamma = vec![0.0f32; spec.c];
    let mut dbeta = vec![0.0f32; spec.c];
    for row in partial.chunks(spec.c) {
        for ((dg, db), &(pg, pb)) in dgamma.iter_mut().zip(dbeta.iter_mut()).zip(row) {
            *dg += pg;
            *db += pb;
        }
    }
    (dx, dgamma, dbeta)
}
