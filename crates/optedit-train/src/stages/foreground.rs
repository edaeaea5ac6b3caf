//! Foreground-weighted denoising loss for the diffusion stages.
//!
//! A world scene's objects and figure cover a tenth of the image or less,
//! and an object's shape lives in the few latent pixels along its edge, so
//! under a loss averaged over the whole latent the textured background
//! outweighs them. [`ForegroundMaps`] gives every encoded scene a map of
//! where its objects and figure are, at latent resolution; the UNet and
//! ControlNet stages then weigh each latent pixel's squared error by
//! `1 + weight * map` ([`ForegroundLoss`]). This is the per-pixel loss
//! weighting that subject-driven fine-tuning uses with masks (e.g. the
//! masked loss of DreamBooth trainers), applied to the world's known
//! foreground.

use burn::tensor::{backend::Backend, Tensor, TensorData};
use image::GrayImage;
use optedit_judge::region::dilate;
use rayon::prelude::*;

use super::latents::LatentSet;
use super::text_to_image::weighted_mse;
use crate::demo::{IMAGE_SIZE, LATENT_SIZE};

/// Pixels by which the object masks are dilated before pooling, so that the
/// background just outside an object's edge (which the edge's shape also
/// decides) counts as foreground. The figure's mask is dilated by the world
/// already.
pub const OBJECT_DILATION: u32 = 2;

const PER: usize = LATENT_SIZE * LATENT_SIZE;

/// Foreground coverage of each encoded scene at latent resolution: the
/// fraction of each latent pixel's `4 x 4` image block that lies within an
/// object (dilated by [`OBJECT_DILATION`]) or the figure.
#[derive(Debug, Clone)]
pub struct ForegroundMaps {
    maps: Vec<f32>,
}

impl ForegroundMaps {
    /// Renders the scenes of `seeds` (in parallel) and pools their masks.
    pub fn new(seeds: &[u64]) -> Self {
        let maps = seeds
            .par_iter()
            .flat_map_iter(|&s| {
                let rendered = optedit_world::SceneSpec::sample(s).render();
                let mut union = rendered.figure_mask;
                for mask in &rendered.object_masks {
                    let mask = dilate(mask, OBJECT_DILATION);
                    for (u, m) in union.pixels_mut().zip(mask.pixels()) {
                        u[0] = u[0].max(m[0]);
                    }
                }
                pool(&union)
            })
            .collect();
        Self { maps }
    }

    /// Number of scenes.
    pub fn len(&self) -> usize {
        self.maps.len() / PER
    }

    /// Whether there are no scenes.
    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    /// Mean coverage over all scenes and pixels (the foreground's share of
    /// the image).
    pub fn mean_coverage(&self) -> f64 {
        self.maps.iter().map(|&m| f64::from(m)).sum::<f64>() / self.maps.len().max(1) as f64
    }

    /// The coverage map of scene `i`, `LATENT_SIZE x LATENT_SIZE` row-major.
    pub fn map(&self, i: usize) -> &[f32] {
        &self.maps[i * PER..(i + 1) * PER]
    }

    /// Per-pixel loss weights `1 + weight * map` of scenes `indices`,
    /// `[k, 1, 32, 32]`.
    pub fn weights<B: Backend>(
        &self,
        indices: &[usize],
        weight: f64,
        device: &B::Device,
    ) -> Tensor<B, 4> {
        let w = weight as f32;
        let data: Vec<f32> = indices
            .iter()
            .flat_map(|&i| self.map(i).iter().map(move |&m| 1.0 + w * m))
            .collect();
        Tensor::from_data(
            TensorData::new(data, [indices.len(), 1, LATENT_SIZE, LATENT_SIZE]),
            device,
        )
    }
}

/// Mean of each `f x f` block of a binary (0/255) image mask, `f` the VAE's
/// downsampling factor.
fn pool(mask: &GrayImage) -> Vec<f32> {
    let f = (IMAGE_SIZE / LATENT_SIZE) as u32;
    let area = (f * f) as f32;
    let mut out = Vec::with_capacity(PER);
    for by in 0..LATENT_SIZE as u32 {
        for bx in 0..LATENT_SIZE as u32 {
            let mut inside = 0u32;
            for y in by * f..(by + 1) * f {
                for x in bx * f..(bx + 1) * f {
                    inside += u32::from(mask.get_pixel(x, y)[0] > 127);
                }
            }
            out.push(inside as f32 / area);
        }
    }
    out
}

/// Per-sample mean of the squared error weighted per pixel by `map`
/// (`[n, 1, h, w]`, broadcast over channels), times the per-sample weights
/// `weights` (`[n]`): `[n]`. A map of ones gives
/// [`super::text_to_image::weighted_mse_per_sample`].
pub fn pixel_weighted_mse_per_sample<B: Backend>(
    pred: Tensor<B, 4>,
    target: Tensor<B, 4>,
    weights: Tensor<B, 1>,
    map: Tensor<B, 4>,
) -> Tensor<B, 1> {
    let [n, ..] = pred.dims();
    let per = ((pred - target).powi_scalar(2) * map)
        .reshape([n as i32, -1])
        .mean_dim(1)
        .reshape([n]);
    per * weights
}

/// The loss of a diffusion stage: the min-SNR-weighted MSE, weighted per
/// pixel by the foreground maps when the weight is positive.
#[derive(Debug, Clone)]
pub struct ForegroundLoss {
    maps: Option<ForegroundMaps>,
    weight: f64,
}

impl ForegroundLoss {
    /// Builds the maps of the encoded `set` when `weight` is positive
    /// (announcing their coverage); with 0 the loss is the plain one.
    pub fn new(set: &LatentSet, weight: f64) -> Self {
        let maps = (weight > 0.0).then(|| {
            let maps = ForegroundMaps::new(&set.seeds);
            println!(
                "foreground weight {weight}: objects and figure cover {:.1}% of the latent pixels",
                100.0 * maps.mean_coverage()
            );
            maps
        });
        Self { maps, weight }
    }

    /// The batch's loss: `pred` and `target` `[n, c, h, w]`, per-sample
    /// `weights` `[n]`, `idx` the scenes of the batch in the set.
    pub fn loss<B: Backend>(
        &self,
        pred: Tensor<B, 4>,
        target: Tensor<B, 4>,
        weights: Tensor<B, 1>,
        idx: &[usize],
    ) -> Tensor<B, 1> {
        match &self.maps {
            Some(maps) => {
                let map = maps.weights::<B>(idx, self.weight, &pred.device());
                pixel_weighted_mse_per_sample(pred, target, weights, map).mean()
            }
            None => weighted_mse(pred, target, weights),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::text_to_image::weighted_mse_per_sample;
    use burn::backend::Flex;

    type B = Flex;

    fn seeds() -> Vec<u64> {
        (0..6u64).map(|i| 0x5eed_0000 + i).collect()
    }

    #[test]
    fn maps_cover_objects_and_figure_and_nothing_far_from_them() {
        let seeds = seeds();
        let maps = ForegroundMaps::new(&seeds);
        assert_eq!(maps.len(), seeds.len());
        let f = IMAGE_SIZE / LATENT_SIZE;
        for (i, &s) in seeds.iter().enumerate() {
            let r = optedit_world::SceneSpec::sample(s).render();
            let map = maps.map(i);
            assert!(map.iter().all(|&m| (0.0..=1.0).contains(&m)));
            // every latent pixel whose block holds an object or figure
            // pixel is covered, and every pixel whose block and its
            // neighbours hold none is not
            let inside = |x: usize, y: usize| {
                r.figure_mask.get_pixel(x as u32, y as u32)[0] > 127
                    || r.object_masks
                        .iter()
                        .any(|m| m.get_pixel(x as u32, y as u32)[0] > 127)
            };
            for by in 0..LATENT_SIZE {
                for bx in 0..LATENT_SIZE {
                    let block = |x0: usize, y0: usize, x1: usize, y1: usize| {
                        (y0..y1).any(|y| (x0..x1).any(|x| inside(x, y)))
                    };
                    let m = map[by * LATENT_SIZE + bx];
                    if block(bx * f, by * f, (bx + 1) * f, (by + 1) * f) {
                        assert!(m > 0.0, "scene {s}: block ({bx}, {by}) has foreground");
                    }
                    let (x0, y0) = ((bx * f).saturating_sub(f), (by * f).saturating_sub(f));
                    let (x1, y1) = (
                        ((bx + 2) * f).min(IMAGE_SIZE),
                        ((by + 2) * f).min(IMAGE_SIZE),
                    );
                    if !block(x0, y0, x1, y1) {
                        assert_eq!(m, 0.0, "scene {s}: block ({bx}, {by}) is background");
                    }
                }
            }
            let covered: f32 = map.iter().sum::<f32>() / PER as f32;
            assert!(
                covered > 0.01 && covered < 0.6,
                "scene {s}: coverage {covered}"
            );
        }
    }

    #[test]
    fn pixel_weighted_loss_weighs_the_foreground() {
        let device = Default::default();
        let seeds = seeds();
        let maps = ForegroundMaps::new(&seeds);
        let idx = [0usize, 3];
        let pred = Tensor::<B, 4>::random(
            [2, 4, LATENT_SIZE, LATENT_SIZE],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let target = pred.zeros_like();
        let w = Tensor::<B, 1>::from_data(TensorData::new(vec![0.5f32, 2.0], [2]), &device);
        let plain = weighted_mse_per_sample(pred.clone(), target.clone(), w.clone())
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        // weight 0: the plain loss
        let zero = pixel_weighted_mse_per_sample(
            pred.clone(),
            target.clone(),
            w.clone(),
            maps.weights::<B>(&idx, 0.0, &device),
        )
        .into_data()
        .to_vec::<f32>()
        .unwrap();
        // weight 4, computed by hand from the maps
        let four = pixel_weighted_mse_per_sample(
            pred.clone(),
            target,
            w,
            maps.weights::<B>(&idx, 4.0, &device),
        )
        .into_data()
        .to_vec::<f32>()
        .unwrap();
        let values = pred.clone().into_data().to_vec::<f32>().unwrap();
        for (k, &i) in idx.iter().enumerate() {
            assert!((zero[k] - plain[k]).abs() <= 1e-6 * plain[k].abs().max(1.0));
            let map = maps.map(i);
            let per = 4 * PER;
            let sum: f64 = values[k * per..(k + 1) * per]
                .iter()
                .enumerate()
                .map(|(j, &v)| f64::from(v * v) * (1.0 + 4.0 * f64::from(map[j % PER])))
                .sum();
            let expected = sum / per as f64 * [0.5, 2.0][k];
            assert!(
                (f64::from(four[k]) - expected).abs() < 1e-4 * expected,
                "{} vs {expected}",
                four[k]
            );
            assert!(four[k] > plain[k]);
        }
        // ForegroundLoss: the batch mean of the same, or the plain loss at 0.
        let set = LatentSet {
            seeds: seeds.clone(),
            latents: vec![0.0; seeds.len() * 4 * PER],
            scaling_factor: 1.0,
        };
        let w = Tensor::<B, 1>::from_data(TensorData::new(vec![0.5f32, 2.0], [2]), &device);
        let batch_loss = |weight: f64| {
            ForegroundLoss::new(&set, weight)
                .loss(pred.clone(), pred.zeros_like(), w.clone(), &idx)
                .into_scalar()
        };
        let mean = |v: &[f32]| (v[0] + v[1]) / 2.0;
        assert!((batch_loss(0.0) - mean(&plain)).abs() <= 1e-6 * mean(&plain));
        assert!((batch_loss(4.0) - mean(&four)).abs() <= 1e-5 * mean(&four));
    }
}
