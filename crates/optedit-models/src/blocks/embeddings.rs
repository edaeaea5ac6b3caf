//! Sinusoidal timestep embedding and its MLP (diffusers `models/embeddings.py`:
//! `get_timestep_embedding`, `Timesteps`, `TimestepEmbedding`).

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::silu;
use burn::tensor::{backend::Backend, Tensor};

use super::linear;

/// `get_timestep_embedding(t, dim, flip_sin_to_cos, downscale_freq_shift)`,
/// max period 10000: `t` `[batch]` (float) to `[batch, dim]`.
pub fn timestep_embedding<B: Backend>(
    t: Tensor<B, 1>,
    dim: usize,
    flip_sin_to_cos: bool,
    freq_shift: f64,
) -> Tensor<B, 2> {
    let half = dim / 2;
    let denom = (half as f64 - freq_shift) as f32;
    let ln = (10000f64).ln() as f32;
    let freqs: Vec<f32> = (0..half)
        .map(|i| ((-ln * i as f32) / denom).exp())
        .collect();
    let freqs = Tensor::<B, 1>::from_data(freqs.as_slice(), &t.device());
    let args = t.unsqueeze_dim::<2>(1) * freqs.unsqueeze_dim::<2>(0);
    let (sin, cos) = (args.clone().sin(), args.cos());
    let emb = if flip_sin_to_cos {
        Tensor::cat(vec![cos, sin], 1)
    } else {
        Tensor::cat(vec![sin, cos], 1)
    };
    if dim % 2 == 1 {
        let b = emb.dims()[0];
        let zeros = Tensor::zeros([b, 1], &emb.device());
        Tensor::cat(vec![emb, zeros], 1)
    } else {
        emb
    }
}

/// Two linear layers with SiLU: the time-embedding MLP.
#[derive(Module, Debug)]
pub struct TimestepEmbedding<B: Backend> {
    /// Input layer.
    pub linear_1: Linear<B>,
    /// Output layer.
    pub linear_2: Linear<B>,
}

impl<B: Backend> TimestepEmbedding<B> {
    /// Builds the module with freshly initialised weights.
    pub fn new(input: usize, dim: usize, device: &B::Device) -> Self {
        Self {
            linear_1: linear(input, dim, true, device),
            linear_2: linear(dim, dim, true, device),
        }
    }

    /// `[batch, input]` to `[batch, dim]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.linear_2.forward(silu(self.linear_1.forward(x)))
    }
}
