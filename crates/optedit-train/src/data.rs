//! Training batches drawn from the procedural world.
//!
//! Every draw is a pure function of `(seed, stage, step)`, so a resumed run
//! sees exactly the data the uninterrupted run would have seen.

use burn::tensor::{backend::Backend, Tensor, TensorData};
use image::RgbImage;
use optedit_cond::image::rgb_batch_to_signed_tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use optedit_world::mix;

/// A deterministic RNG for one step of one stage.
pub fn step_rng(seed: u64, stage: u64, step: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(&[seed, stage, step as u64]))
}

/// A world seed for training (never a held-out evaluation seed).
pub fn train_scene_seed(rng: &mut ChaCha8Rng) -> u64 {
    optedit_world::scene_seed(optedit_world::Split::Train, rng.random::<u32>() as u64)
}

/// Condition images as a `[n, 3, h, w]` tensor in `[0, 1]` (ControlNet
/// input), computed as `(signed + 1) / 2` from the signed conversion, as the
/// ControlNets were trained.
pub fn conditions_to_tensor<B: Backend>(images: &[RgbImage], device: &B::Device) -> Tensor<B, 4> {
    rgb_batch_to_signed_tensor::<B, _>(images, device)
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
