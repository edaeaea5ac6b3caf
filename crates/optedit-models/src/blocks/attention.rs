//! diffusers' `Attention` (`models/attention_processor.py`) with the plain
//! scaled-dot-product processor: self- or cross-attention over token
//! sequences, and the VAE's spatial self-attention with its group norm.

use burn::module::Module;
use burn::nn::{GroupNorm, Linear};
use burn::tensor::{backend::Backend, Tensor};

use super::{group_norm, linear, norm};
use crate::kernels;
use crate::kernels::multi_head_attention;

/// Multi-head attention with diffusers' parameter names.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    /// Group norm applied first (VAE spatial attention only).
    pub group_norm: Option<GroupNorm<B>>,
    /// Query projection.
    pub to_q: Linear<B>,
    /// Key projection.
    pub to_k: Linear<B>,
    /// Value projection.
    pub to_v: Linear<B>,
    /// Output projection (`to_out.0` in the files).
    pub to_out: Linear<B>,
    /// Number of heads.
    pub heads: usize,
}

/// Shape of an [`Attention`].
#[derive(Debug, Clone, Copy)]
pub struct AttentionSpec {
    /// Query width (and output width).
    pub query_dim: usize,
    /// Key/value input width (`None`: self-attention).
    pub cross_attention_dim: Option<usize>,
    /// Number of heads.
    pub heads: usize,
    /// Width of one head.
    pub dim_head: usize,
    /// Whether q/k/v have a bias (true in the VAE).
    pub qkv_bias: bool,
    /// Group norm `(groups, eps)` before the attention (VAE).
    pub group_norm: Option<(usize, f64)>,
}

impl AttentionSpec {
    /// Builds the module with freshly initialised weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Attention<B> {
        let inner = self.heads * self.dim_head;
        let kv = self.cross_attention_dim.unwrap_or(self.query_dim);
        Attention {
            group_norm: self
                .group_norm
                .map(|(g, eps)| group_norm(g, self.query_dim, eps, device)),
            to_q: linear(self.query_dim, inner, self.qkv_bias, device),
            to_k: linear(kv, inner, self.qkv_bias, device),
            to_v: linear(kv, inner, self.qkv_bias, device),
            to_out: linear(inner, self.query_dim, true, device),
            heads: self.heads,
        }
    }
}

impl<B: Backend> Attention<B> {
    /// Token attention: `x` `[batch, n, query_dim]`, `context`
    /// `[batch, m, cross_dim]` (`None`: self-attention).
    pub fn forward(&self, x: Tensor<B, 3>, context: Option<&Tensor<B, 3>>) -> Tensor<B, 3> {
        let kv = context.cloned().unwrap_or_else(|| x.clone());
        let q = kernels::linear(&self.to_q, x);
        let k = kernels::linear(&self.to_k, kv.clone());
        let v = kernels::linear(&self.to_v, kv);
        kernels::linear(
            &self.to_out,
            multi_head_attention(q, k, v, self.heads, false),
        )
    }

    /// Spatial self-attention with residual (the VAE mid block):
    /// `x` `[batch, c, h, w]`.
    pub fn forward_spatial(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, c, h, w] = x.dims();
        let normed = match &self.group_norm {
            Some(n) => norm::group_norm(n, x.clone()),
            None => x.clone(),
        };
        let tokens = kernels::transpose(normed.reshape([b, c, h * w]));
        let out = self.forward(tokens, None);
        kernels::transpose(out).reshape([b, c, h, w]) + x
    }
}
