//! Sinusoidal timestep embedding and its MLP, and the pooled text embedding
//! some UNets add to it (diffusers `models/embeddings.py`:
//! `get_timestep_embedding`, `Timesteps`, `TimestepEmbedding`,
//! `AttentionPooling`, `TextTimeEmbedding`).

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{backend::Backend, Distribution, Tensor};

use super::{linear, zeroed};
use crate::kernels;
use crate::kernels::multi_head_attention;
use crate::kernels::silu;

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
        kernels::linear(&self.linear_2, silu(kernels::linear(&self.linear_1, x)))
    }
}

/// diffusers' `AttentionPooling` (from DeepFloyd IF): one query, the mean of
/// the tokens plus a learned position vector, attends over that query and
/// all the tokens; the heads' outputs are concatenated (no output
/// projection).
#[derive(Module, Debug)]
pub struct AttentionPooling<B: Backend> {
    /// The query token's position vector, `[1, width]`.
    pub positional_embedding: Param<Tensor<B, 2>>,
    /// Key projection.
    pub k_proj: Linear<B>,
    /// Query projection.
    pub q_proj: Linear<B>,
    /// Value projection.
    pub v_proj: Linear<B>,
    /// Number of heads (divides the width).
    pub heads: usize,
}

impl<B: Backend> AttentionPooling<B> {
    /// Builds the module with freshly initialised weights.
    pub fn new(heads: usize, width: usize, device: &B::Device) -> Self {
        let position = Tensor::random(
            [1, width],
            Distribution::Normal(0.0, 1.0 / (width as f64).sqrt()),
            device,
        );
        Self {
            positional_embedding: Param::from_tensor(position),
            k_proj: linear(width, width, true, device),
            q_proj: linear(width, width, true, device),
            v_proj: linear(width, width, true, device),
            heads,
        }
    }

    /// `[batch, tokens, width]` to `[batch, width]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 2> {
        let [b, _, width] = x.dims();
        let position = self.positional_embedding.val().unsqueeze_dim::<3>(0);
        let class_token = x.clone().mean_dim(1) + position;
        let tokens = Tensor::cat(vec![class_token.clone(), x], 1);
        let q = kernels::linear(&self.q_proj, class_token);
        let k = kernels::linear(&self.k_proj, tokens.clone());
        let v = kernels::linear(&self.v_proj, tokens);
        multi_head_attention(q, k, v, self.heads, false).reshape([b, width])
    }
}

/// diffusers' `TextTimeEmbedding` (`addition_embed_type = "text"`): the
/// text encoder's hidden states, pooled by attention into one vector of the
/// time-embedding width, which the UNet adds to its time embedding.
#[derive(Module, Debug)]
pub struct TextTimeEmbedding<B: Backend> {
    /// Norm of the tokens.
    pub norm1: LayerNorm<B>,
    /// Attention pooling over the tokens.
    pub pool: AttentionPooling<B>,
    /// Projection to the time-embedding width.
    pub proj: Linear<B>,
    /// Norm of the result.
    pub norm2: LayerNorm<B>,
}

impl<B: Backend> TextTimeEmbedding<B> {
    /// Builds the module with freshly initialised weights: tokens of width
    /// `encoder_dim`, output of width `time_embed_dim`.
    pub fn new(
        encoder_dim: usize,
        time_embed_dim: usize,
        heads: usize,
        device: &B::Device,
    ) -> Self {
        let ln = |d: usize| LayerNormConfig::new(d).with_epsilon(1e-5).init(device);
        Self {
            norm1: ln(encoder_dim),
            pool: AttentionPooling::new(heads, encoder_dim, device),
            proj: linear(encoder_dim, time_embed_dim, true, device),
            norm2: ln(time_embed_dim),
        }
    }

    /// Sets the output norm's scale and shift to zero (they stay
    /// trainable), so the embedding adds nothing to the time embedding
    /// until training opens it: a UNet it is grafted onto predicts exactly
    /// what it did.
    pub fn zero_output(mut self) -> Self {
        self.norm2.gamma = zeroed(self.norm2.gamma);
        self.norm2.beta = self.norm2.beta.map(zeroed);
        self
    }

    /// `[batch, tokens, encoder_dim]` to `[batch, time_embed_dim]`.
    pub fn forward(&self, hidden_states: Tensor<B, 3>) -> Tensor<B, 2> {
        let pooled = self.pool.forward(self.norm1.forward(hidden_states));
        self.norm2.forward(self.proj.forward(pooled))
    }
}
