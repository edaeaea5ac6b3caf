//! `ResnetBlock2D` (diffusers `models/resnet.py`, `resnet_time_scale_shift = "default"`).

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, Linear};
use burn::tensor::{backend::Backend, Tensor};

use super::{conv_layer, group_norm, linear, norm};
use crate::kernels;
use crate::kernels::{conv2d, silu};

/// Two 3x3 convolutions with group norm and SiLU, an optional time-embedding
/// projection added between them, and a (1x1 convolution) shortcut when the
/// channel count changes.
#[derive(Module, Debug)]
pub struct ResnetBlock2D<B: Backend> {
    /// First norm.
    pub norm1: GroupNorm<B>,
    /// First 3x3 convolution.
    pub conv1: Conv2d<B>,
    /// Projection of the time embedding (absent in the VAE).
    pub time_emb_proj: Option<Linear<B>>,
    /// Second norm.
    pub norm2: GroupNorm<B>,
    /// Second 3x3 convolution.
    pub conv2: Conv2d<B>,
    /// 1x1 shortcut when `in != out`.
    pub conv_shortcut: Option<Conv2d<B>>,
    /// The sum is divided by this (diffusers' `output_scale_factor`).
    pub output_scale_factor: f64,
}

/// Shape of a [`ResnetBlock2D`].
#[derive(Debug, Clone, Copy)]
pub struct ResnetSpec {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Time-embedding width (`None`: no time embedding).
    pub temb_channels: Option<usize>,
    /// Group-norm groups.
    pub groups: usize,
    /// Group-norm epsilon.
    pub eps: f64,
    /// Output scale factor.
    pub output_scale_factor: f64,
}

impl ResnetSpec {
    /// Builds the block with freshly initialised weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> ResnetBlock2D<B> {
        let (i, o) = (self.in_channels, self.out_channels);
        ResnetBlock2D {
            norm1: group_norm(self.groups, i, self.eps, device),
            conv1: conv_layer([i, o], 3, 1, 1, device),
            time_emb_proj: self.temb_channels.map(|t| linear(t, o, true, device)),
            norm2: group_norm(self.groups, o, self.eps, device),
            conv2: conv_layer([o, o], 3, 1, 1, device),
            conv_shortcut: (i != o).then(|| conv_layer([i, o], 1, 1, 0, device)),
            output_scale_factor: self.output_scale_factor,
        }
    }
}

impl<B: Backend> ResnetBlock2D<B> {
    /// `x`: `[batch, in, h, w]`; `temb`: `[batch, temb_channels]` (ignored when
    /// the block has no time projection).
    pub fn forward(&self, x: Tensor<B, 4>, temb: Option<&Tensor<B, 2>>) -> Tensor<B, 4> {
        let mut h = conv2d(&self.conv1, norm::group_norm_silu(&self.norm1, x.clone()));
        if let (Some(proj), Some(temb)) = (&self.time_emb_proj, temb) {
            let t = kernels::linear(proj, silu(temb.clone()));
            h = h + t.unsqueeze_dims::<4>(&[2, 3]);
        }
        let h = conv2d(&self.conv2, norm::group_norm_silu(&self.norm2, h));
        let skip = match &self.conv_shortcut {
            Some(c) => conv2d(c, x),
            None => x,
        };
        let out = skip + h;
        if self.output_scale_factor == 1.0 {
            out
        } else {
            out.div_scalar(self.output_scale_factor)
        }
    }
}
