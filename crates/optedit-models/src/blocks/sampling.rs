//! `Downsample2D` and `Upsample2D` (diffusers `models/downsampling.py`,
//! `models/upsampling.py`), convolutional variants only.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::{backend::Backend, Int, Tensor};

use super::conv_layer;
use crate::kernels::conv2d;

/// Stride-2 3x3 convolution. `padding = 0` means diffusers' asymmetric
/// `(0, 1, 0, 1)` padding (the VAE encoder).
#[derive(Module, Debug)]
pub struct Downsample2D<B: Backend> {
    /// The convolution.
    pub conv: Conv2d<B>,
}

impl<B: Backend> Downsample2D<B> {
    /// Builds the module with freshly initialised weights.
    pub fn new(channels: usize, out_channels: usize, padding: usize, device: &B::Device) -> Self {
        let conv = if padding == 0 {
            Conv2dConfig::new([channels, out_channels], [3, 3])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(0, 0, 1, 1))
                .init(device)
        } else {
            conv_layer([channels, out_channels], 3, 2, padding, device)
        };
        Self { conv }
    }

    /// `x`: `[batch, c, h, w]` to `[batch, out, h/2, w/2]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        conv2d(&self.conv, x)
    }
}

/// Nearest-neighbour up-sampling followed by a 3x3 convolution.
#[derive(Module, Debug)]
pub struct Upsample2D<B: Backend> {
    /// The convolution.
    pub conv: Conv2d<B>,
}

/// Nearest-neighbour resize with PyTorch's index rule
/// (`src = floor(dst * in / out)`), differentiable on every backend.
pub fn upsample_nearest<B: Backend>(x: Tensor<B, 4>, size: [usize; 2]) -> Tensor<B, 4> {
    let [_, _, h, w] = x.dims();
    if size == [2 * h, 2 * w] {
        return crate::kernels::upsample2x(x);
    }
    let device = x.device();
    let index = |inp: usize, out: usize| {
        let idx: Vec<i64> = (0..out)
            .map(|o| ((o as f64 * inp as f64 / out as f64).floor() as usize).min(inp - 1) as i64)
            .collect();
        Tensor::<B, 1, Int>::from_data(idx.as_slice(), &device)
    };
    x.select(2, index(h, size[0])).select(3, index(w, size[1]))
}

impl<B: Backend> Upsample2D<B> {
    /// Builds the module with freshly initialised weights.
    pub fn new(channels: usize, out_channels: usize, device: &B::Device) -> Self {
        Self {
            conv: conv_layer([channels, out_channels], 3, 1, 1, device),
        }
    }

    /// Up-samples to `size` (default: twice the input) then convolves.
    pub fn forward(&self, x: Tensor<B, 4>, size: Option<[usize; 2]>) -> Tensor<B, 4> {
        let [_, _, h, w] = x.dims();
        let size = size.unwrap_or([2 * h, 2 * w]);
        conv2d(&self.conv, upsample_nearest(x, size))
    }
}
