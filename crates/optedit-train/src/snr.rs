//! How much of a latent set's coarse structure survives the forward noising
//! at a timestep: the signal-to-noise ratio of block averages.
//!
//! A diffusion model can only be made to take an attribute from its caption
//! where the noisy latent no longer shows it. Averaging a `p x p` block
//! divides the noise variance by `p^2` but keeps the block's mean, so on a
//! small latent the image's mean colour stays readable long after single
//! pixels drown (Hoogeboom et al., arXiv 2301.11093; Lin et al., arXiv
//! 2305.08891, on Stable Diffusion's non-zero terminal SNR). For `x_t =
//! sqrt(a) x_0 + sqrt(1 - a) eps` the ratio of a `p x p` block mean is
//! `a V_p / ((1 - a) / p^2)`, with `V_p` the variance of the clean block
//! means over scenes and block positions (per channel, averaged over
//! channels).

use serde::Serialize;

use crate::demo::LATENT_SIZE;
use crate::error::{Result, TrainError};
use crate::stages::latents::LatentSet;

const CHANNELS: usize = 4;

/// Variance of the clean `block x block` means of `set`, over scenes and
/// block positions, per channel, averaged over the channels.
pub fn block_mean_variance(set: &LatentSet, block: usize) -> Result<f64> {
    if block == 0 || LATENT_SIZE % block != 0 {
        return Err(TrainError::InvalidArgument {
            argument: "block".into(),
            message: format!("must divide the latent size {LATENT_SIZE}, got {block}"),
        });
    }
    if set.is_empty() {
        return Err(TrainError::InvalidArgument {
            argument: "latent set".into(),
            message: "is empty".into(),
        });
    }
    let per_side = LATENT_SIZE / block;
    let plane = LATENT_SIZE * LATENT_SIZE;
    let mut total = 0.0;
    for c in 0..CHANNELS {
        let (mut sum, mut sq, mut n) = (0.0f64, 0.0f64, 0.0f64);
        for s in 0..set.len() {
            let x = &set.latents[(s * CHANNELS + c) * plane..(s * CHANNELS + c + 1) * plane];
            for by in 0..per_side {
                for bx in 0..per_side {
                    let mut m = 0.0f64;
                    for y in by * block..(by + 1) * block {
                        let row =
                            &x[y * LATENT_SIZE + bx * block..y * LATENT_SIZE + (bx + 1) * block];
                        m += row.iter().map(|&v| f64::from(v)).sum::<f64>();
                    }
                    m /= (block * block) as f64;
                    sum += m;
                    sq += m * m;
                    n += 1.0;
                }
            }
        }
        let mean = sum / n;
        total += (sq / n - mean * mean).max(0.0);
    }
    Ok(total / CHANNELS as f64)
}

/// Signal-to-noise ratio of a `block x block` mean at cumulative alpha
/// `alpha_cumprod`, for clean block means of variance `variance`.
pub fn block_snr(variance: f64, block: usize, alpha_cumprod: f64) -> f64 {
    let noise = (1.0 - alpha_cumprod) / (block * block) as f64;
    alpha_cumprod * variance / noise
}

/// One row of [`Variances::rows`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnrRow {
    /// Timestep.
    pub timestep: usize,
    /// Ratio of the whole-image mean (per channel).
    pub image_mean: f64,
    /// Ratio of the means of `block x block` blocks.
    pub block_mean: f64,
}

/// The clean variances of a latent set that the ratios need, computed once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Variances {
    /// Side of the blocks of `block_mean`.
    pub block: usize,
    /// Variance of single latent values.
    pub pixel: f64,
    /// Variance of the whole-image means.
    pub image_mean: f64,
    /// Variance of the `block x block` means.
    pub block_mean: f64,
}

impl Variances {
    /// [`block_mean_variance`] of `set` for single values, the whole image
    /// and `block x block` blocks.
    pub fn of(set: &LatentSet, block: usize) -> Result<Self> {
        Ok(Self {
            block,
            pixel: block_mean_variance(set, 1)?,
            image_mean: block_mean_variance(set, LATENT_SIZE)?,
            block_mean: block_mean_variance(set, block)?,
        })
    }

    /// Shares of the latent variance in the image means and in the block
    /// means, in `[0, 1]`.
    pub fn shares(&self) -> (f64, f64) {
        (self.image_mean / self.pixel, self.block_mean / self.pixel)
    }

    /// [`block_snr`] of the whole-image mean and of the block means at each
    /// of `timesteps`, under the cumulative alphas `alphas_cumprod`.
    pub fn rows(&self, alphas_cumprod: &[f32], timesteps: &[usize]) -> Result<Vec<SnrRow>> {
        timesteps
            .iter()
            .map(|&t| {
                let a = alphas_cumprod
                    .get(t)
                    .ok_or_else(|| TrainError::InvalidArgument {
                        argument: "timestep".into(),
                        message: format!(
                            "{t} is past the schedule's {} steps",
                            alphas_cumprod.len()
                        ),
                    })?;
                let a = f64::from(*a);
                Ok(SnrRow {
                    timestep: t,
                    image_mean: block_snr(self.image_mean, LATENT_SIZE, a),
                    block_mean: block_snr(self.block_mean, self.block, a),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(latents: Vec<f32>) -> LatentSet {
        let n = latents.len() / (CHANNELS * LATENT_SIZE * LATENT_SIZE);
        LatentSet {
            seeds: (0..n as u64).collect(),
            latents,
            scaling_factor: 1.0,
        }
    }

    #[test]
    fn constant_scenes_give_the_variance_of_their_values() {
        let plane = CHANNELS * LATENT_SIZE * LATENT_SIZE;
        let mut x = vec![1.0f32; plane];
        x.extend(vec![-1.0f32; plane]);
        let s = set(x);
        for block in [1, 4, LATENT_SIZE] {
            assert!((block_mean_variance(&s, block).unwrap() - 1.0).abs() < 1e-9);
        }
        // a = 0.5: ratio = V * p^2
        let v = Variances::of(&s, 4).unwrap();
        assert_eq!(v.shares(), (1.0, 1.0));
        let rows = v.rows(&[0.5, 0.5], &[1]).unwrap();
        assert!((rows[0].image_mean - (LATENT_SIZE * LATENT_SIZE) as f64).abs() < 1e-6);
        assert!((rows[0].block_mean - 16.0).abs() < 1e-9);
    }

    #[test]
    fn a_checkerboard_has_no_coarse_signal() {
        let x: Vec<f32> = (0..CHANNELS * LATENT_SIZE * LATENT_SIZE)
            .map(|i| {
                let (y, x) = ((i / LATENT_SIZE) % LATENT_SIZE, i % LATENT_SIZE);
                if (x + y) % 2 == 0 {
                    1.0
                } else {
                    -1.0
                }
            })
            .collect();
        let s = set(x);
        assert!((block_mean_variance(&s, 1).unwrap() - 1.0).abs() < 1e-9);
        assert!(block_mean_variance(&s, 2).unwrap() < 1e-12);
        assert!(block_mean_variance(&s, LATENT_SIZE).unwrap() < 1e-12);
    }

    #[test]
    fn bad_blocks_and_timesteps_are_named() {
        let s = set(vec![0.0; CHANNELS * LATENT_SIZE * LATENT_SIZE]);
        let e = block_mean_variance(&s, 3).unwrap_err().to_string();
        assert!(e.contains("block"), "{e}");
        let e = Variances::of(&s, 4)
            .unwrap()
            .rows(&[0.5], &[7])
            .unwrap_err()
            .to_string();
        assert!(e.contains("timestep") && e.contains('7'), "{e}");
    }
}
