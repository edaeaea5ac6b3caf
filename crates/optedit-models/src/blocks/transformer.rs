//! `BasicTransformerBlock`, its GEGLU `FeedForward` and `Transformer2DModel`
//! (diffusers `models/attention.py`, `models/transformers/transformer_2d.py`).

use burn::module::Module;
use burn::nn::{GroupNorm, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{backend::Backend, Tensor};

use super::attention::{Attention, AttentionSpec};
use super::{group_norm, linear, norm};
use crate::kernels;
use crate::kernels::geglu;

/// GEGLU feed-forward: `proj_out(h * gelu(gate))` with `[h, gate] = geglu(x)`.
#[derive(Module, Debug)]
pub struct FeedForward<B: Backend> {
    /// `ff.net.0.proj` in the files: `dim -> 2 * inner`.
    pub geglu: Linear<B>,
    /// `ff.net.2` in the files: `inner -> dim`.
    pub proj_out: Linear<B>,
}

impl<B: Backend> FeedForward<B> {
    /// `x`: `[batch, n, dim]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        kernels::linear(&self.proj_out, geglu(kernels::linear(&self.geglu, x)))
    }
}

/// Self-attention, cross-attention and feed-forward, each pre-normed with a
/// layer norm and added to the residual stream.
#[derive(Module, Debug)]
pub struct BasicTransformerBlock<B: Backend> {
    /// Norm before self-attention.
    pub norm1: LayerNorm<B>,
    /// Self-attention.
    pub attn1: Attention<B>,
    /// Norm before cross-attention.
    pub norm2: LayerNorm<B>,
    /// Cross-attention on the text embedding.
    pub attn2: Attention<B>,
    /// Norm before the feed-forward.
    pub norm3: LayerNorm<B>,
    /// GEGLU feed-forward.
    pub ff: FeedForward<B>,
}

impl<B: Backend> BasicTransformerBlock<B> {
    /// `x`: `[batch, n, dim]`; `context`: `[batch, m, cross_dim]`.
    pub fn forward(&self, x: Tensor<B, 3>, context: &Tensor<B, 3>) -> Tensor<B, 3> {
        let x = self.attn1.forward(self.norm1.forward(x.clone()), None) + x;
        let x = self
            .attn2
            .forward(self.norm2.forward(x.clone()), Some(context))
            + x;
        self.ff.forward(self.norm3.forward(x.clone())) + x
    }
}

/// Spatial transformer: group norm, input projection to tokens, transformer
/// blocks, output projection, residual. With `use_linear_projection = false`
/// the projections are 1x1 convolutions in the files; they are applied here as
/// the equivalent linear layers on the token axis (the loader squeezes them).
#[derive(Module, Debug)]
pub struct Transformer2DModel<B: Backend> {
    /// Group norm (eps 1e-6, as diffusers).
    pub norm: GroupNorm<B>,
    /// Channels to inner width.
    pub proj_in: Linear<B>,
    /// The transformer blocks.
    pub transformer_blocks: Vec<BasicTransformerBlock<B>>,
    /// Inner width back to channels.
    pub proj_out: Linear<B>,
}

/// Shape of a [`Transformer2DModel`].
#[derive(Debug, Clone, Copy)]
pub struct TransformerSpec {
    /// Channels of the feature map.
    pub channels: usize,
    /// Number of heads (`inner = channels`, `dim_head = channels / heads`).
    pub heads: usize,
    /// Text-embedding width.
    pub cross_attention_dim: usize,
    /// Number of transformer blocks.
    pub layers: usize,
    /// Group-norm groups.
    pub groups: usize,
}

impl TransformerSpec {
    /// Builds the module with freshly initialised weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Transformer2DModel<B> {
        let c = self.channels;
        let dim_head = c / self.heads;
        let inner = self.heads * dim_head;
        let ln = || LayerNormConfig::new(inner).with_epsilon(1e-5).init(device);
        let attn = |cross: Option<usize>| {
            AttentionSpec {
                query_dim: inner,
                cross_attention_dim: cross,
                heads: self.heads,
                dim_head,
                qkv_bias: false,
                group_norm: None,
            }
            .init(device)
        };
        let blocks = (0..self.layers)
            .map(|_| BasicTransformerBlock {
                norm1: ln(),
                attn1: attn(None),
                norm2: ln(),
                attn2: attn(Some(self.cross_attention_dim)),
                norm3: ln(),
                ff: FeedForward {
                    geglu: linear(inner, inner * 8, true, device),
                    proj_out: linear(inner * 4, inner, true, device),
                },
            })
            .collect();
        Transformer2DModel {
            norm: group_norm(self.groups, c, 1e-6, device),
            proj_in: linear(c, inner, true, device),
            transformer_blocks: blocks,
            proj_out: linear(inner, c, true, device),
        }
    }
}

impl<B: Backend> Transformer2DModel<B> {
    /// `x`: `[batch, c, h, w]`; `context`: `[batch, m, cross_dim]`.
    pub fn forward(&self, x: Tensor<B, 4>, context: &Tensor<B, 3>) -> Tensor<B, 4> {
        let [b, c, h, w] = x.dims();
        let tokens =
            kernels::transpose(norm::group_norm(&self.norm, x.clone()).reshape([b, c, h * w]));
        let mut t = kernels::linear(&self.proj_in, tokens);
        for block in &self.transformer_blocks {
            t = block.forward(t, context);
        }
        let out = kernels::linear(&self.proj_out, t);
        kernels::transpose(out).reshape([b, c, h, w]) + x
    }
}
