//! Training batches drawn from the procedural world.
//!
//! Every draw is a pure function of `(seed, stage, step)`, so a resumed run
//! sees exactly the data the uninterrupted run would have seen.

use burn::tensor::{backend::Backend, Tensor, TensorData};
use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// SplitMix64 mixing of several words into one seed.
pub fn mix(words: &[u64]) -> u64 {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
    for &w in words {
        h ^= w
            .wrapping_add(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(h << 6)
            .wrapping_add(h >> 2);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h = z ^ (z >> 31);
    }
    h
}

/// A deterministic RNG for one step of one stage.
pub fn step_rng(seed: u64, stage: u64, step: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(&[seed, stage, step as u64]))
}

/// A world seed for training (never a held-out evaluation seed).
pub fn train_scene_seed(rng: &mut ChaCha8Rng) -> u64 {
    optedit_world::scene_seed(optedit_world::Split::Train, rng.random::<u32>() as u64)
}

/// Images as a `[n, 3, h, w]` tensor in `[-1, 1]`.
pub fn images_to_tensor<B: Backend>(images: &[RgbImage], device: &B::Device) -> Tensor<B, 4> {
    let (w, h) = images[0].dimensions();
    let (w, h) = (w as usize, h as usize);
    let mut data = Vec::with_capacity(images.len() * 3 * h * w);
    for img in images {
        let raw = img.as_raw();
        for c in 0..3 {
            data.extend((0..h * w).map(|i| raw[i * 3 + c] as f32 / 127.5 - 1.0));
        }
    }
    Tensor::from_data(TensorData::new(data, [images.len(), 3, h, w]), device)
}

/// Condition images as a `[n, 3, h, w]` tensor in `[0, 1]` (ControlNet input).
pub fn conditions_to_tensor<B: Backend>(images: &[RgbImage], device: &B::Device) -> Tensor<B, 4> {
    images_to_tensor::<B>(images, device)
        .add_scalar(1.0)
        .div_scalar(2.0)
}

/// A `size` x `size` crop at a random position.
pub fn random_crop(image: &RgbImage, size: u32, rng: &mut ChaCha8Rng) -> RgbImage {
    let (w, h) = image.dimensions();
    let x = rng.random_range(0..=w - size);
    let y = rng.random_range(0..=h - size);
    image::imageops::crop_imm(image, x, y, size, size).to_image()
}

/// Standard normal noise from `rng` as a tensor (backend-independent, so a
/// run is reproducible on any backend).
pub fn normal<B: Backend, const D: usize>(
    shape: [usize; D],
    rng: &mut ChaCha8Rng,
    device: &B::Device,
) -> Tensor<B, D> {
    let n: usize = shape.iter().product();
    let dist = rand_distr_normal();
    let data: Vec<f32> = (0..n).map(|_| dist(rng)).collect();
    Tensor::from_data(TensorData::new(data, shape), device)
}

/// Box-Muller standard normal sampler.
fn rand_distr_normal() -> impl Fn(&mut ChaCha8Rng) -> f32 {
    |rng: &mut ChaCha8Rng| {
        let u1: f64 = rng.random::<f64>().max(1e-12);
        let u2: f64 = rng.random::<f64>();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
}
