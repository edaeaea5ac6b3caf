//! Seeded, backend-independent standard-normal noise: the same seed gives
//! the same numbers on every backend and machine (ChaCha8).

use burn::tensor::{backend::Backend, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// A seeded source of standard-normal tensors.
#[derive(Debug, Clone)]
pub struct NoiseSource {
    rng: ChaCha8Rng,
}

impl NoiseSource {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The next `shape`-sized draw.
    pub fn normal<B: Backend>(&mut self, shape: [usize; 4], device: &B::Device) -> Tensor<B, 4> {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|_| StandardNormal.sample(&mut self.rng))
            .collect();
        Tensor::from_data(TensorData::new(values, shape), device)
    }
}
