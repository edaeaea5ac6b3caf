//! Building blocks shared by the UNet, the ControlNet and the VAE, named after
//! diffusers' `models/resnet.py`, `models/attention.py`,
//! `models/transformers/transformer_2d.py`, `models/downsampling.py`,
//! `models/upsampling.py` and `models/embeddings.py`.

pub mod attention;
pub mod embeddings;
pub mod norm;
pub mod resnet;
pub mod sampling;
pub mod transformer;

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// A parameter set to zeros that stays trainable: `zeros_like` makes a
/// tensor without the gradient flag, so a parameter zeroed with it alone
/// would never train on an autodiff backend.
pub(crate) fn zeroed<B: Backend, const D: usize>(
    param: Param<Tensor<B, D>>,
) -> Param<Tensor<B, D>> {
    param.map(|t| t.zeros_like().require_grad())
}

/// A square convolution with symmetric padding.
pub(crate) fn conv_layer<B: Backend>(
    channels: [usize; 2],
    kernel: usize,
    stride: usize,
    padding: usize,
    device: &B::Device,
) -> Conv2d<B> {
    Conv2dConfig::new(channels, [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .init(device)
}

/// An affine group norm.
pub(crate) fn group_norm<B: Backend>(
    groups: usize,
    channels: usize,
    eps: f64,
    device: &B::Device,
) -> GroupNorm<B> {
    GroupNormConfig::new(groups, channels)
        .with_epsilon(eps)
        .init(device)
}

/// A linear layer.
pub(crate) fn linear<B: Backend>(
    input: usize,
    output: usize,
    bias: bool,
    device: &B::Device,
) -> Linear<B> {
    LinearConfig::new(input, output)
        .with_bias(bias)
        .init(device)
}
