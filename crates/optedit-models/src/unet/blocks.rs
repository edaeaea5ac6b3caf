//! The UNet's resolution levels: `CrossAttnDownBlock2D` / `DownBlock2D`,
//! `UNetMidBlock2DCrossAttn`, `CrossAttnUpBlock2D` / `UpBlock2D`
//! (diffusers `models/unets/unet_2d_blocks.py`). One struct covers the plain
//! and the cross-attention variant: the plain one has no `attentions`.

use burn::module::Module;
use burn::tensor::{backend::Backend, Tensor};

use crate::blocks::resnet::{ResnetBlock2D, ResnetSpec};
use crate::blocks::sampling::{Downsample2D, Upsample2D};
use crate::blocks::transformer::{Transformer2DModel, TransformerSpec};

/// A down level: resnets (each followed by a transformer when cross-attention
/// is on) and an optional stride-2 down-sampler.
#[derive(Module, Debug)]
pub struct DownBlock<B: Backend> {
    /// The resnets.
    pub resnets: Vec<ResnetBlock2D<B>>,
    /// One transformer per resnet (empty for `DownBlock2D`).
    pub attentions: Vec<Transformer2DModel<B>>,
    /// Zero or one down-sampler.
    pub downsamplers: Vec<Downsample2D<B>>,
}

impl<B: Backend> DownBlock<B> {
    /// Returns the output and the skip tensors (one per resnet and sampler).
    pub fn forward(
        &self,
        mut x: Tensor<B, 4>,
        temb: &Tensor<B, 2>,
        context: &Tensor<B, 3>,
    ) -> (Tensor<B, 4>, Vec<Tensor<B, 4>>) {
        let mut skips = Vec::with_capacity(self.resnets.len() + 1);
        for (i, resnet) in self.resnets.iter().enumerate() {
            x = resnet.forward(x, Some(temb));
            if let Some(attn) = self.attentions.get(i) {
                x = attn.forward(x, context);
            }
            skips.push(x.clone());
        }
        for down in &self.downsamplers {
            x = down.forward(x);
            skips.push(x.clone());
        }
        (x, skips)
    }
}

/// The mid block: resnet, then (transformer, resnet) pairs.
#[derive(Module, Debug)]
pub struct MidBlock<B: Backend> {
    /// `1 + attentions.len()` resnets.
    pub resnets: Vec<ResnetBlock2D<B>>,
    /// The transformers.
    pub attentions: Vec<Transformer2DModel<B>>,
}

impl<B: Backend> MidBlock<B> {
    /// Runs the block.
    pub fn forward(
        &self,
        x: Tensor<B, 4>,
        temb: &Tensor<B, 2>,
        context: &Tensor<B, 3>,
    ) -> Tensor<B, 4> {
        let mut x = self.resnets[0].forward(x, Some(temb));
        for (attn, resnet) in self.attentions.iter().zip(&self.resnets[1..]) {
            x = attn.forward(x, context);
            x = resnet.forward(x, Some(temb));
        }
        x
    }
}

/// An up level: resnets on the concatenation with the skip tensors (each
/// followed by a transformer when cross-attention is on), then an optional
/// up-sampler.
#[derive(Module, Debug)]
pub struct UpBlock<B: Backend> {
    /// The resnets.
    pub resnets: Vec<ResnetBlock2D<B>>,
    /// One transformer per resnet (empty for `UpBlock2D`).
    pub attentions: Vec<Transformer2DModel<B>>,
    /// Zero or one up-sampler.
    pub upsamplers: Vec<Upsample2D<B>>,
}

impl<B: Backend> UpBlock<B> {
    /// Consumes one skip tensor per resnet from the end of `skips`;
    /// `upsample_size` forces the up-sampler's output size.
    pub fn forward(
        &self,
        mut x: Tensor<B, 4>,
        skips: &mut Vec<Tensor<B, 4>>,
        temb: &Tensor<B, 2>,
        context: &Tensor<B, 3>,
        upsample_size: Option<[usize; 2]>,
    ) -> Tensor<B, 4> {
        for (i, resnet) in self.resnets.iter().enumerate() {
            let skip = skips.pop().expect("one skip tensor per up resnet");
            x = resnet.forward(Tensor::cat(vec![x, skip], 1), Some(temb));
            if let Some(attn) = self.attentions.get(i) {
                x = attn.forward(x, context);
            }
        }
        for up in &self.upsamplers {
            x = up.forward(x, upsample_size);
        }
        x
    }
}

/// Everything needed to build the down path and mid block, shared by the
/// UNet and the ControlNet (which copies the UNet's encoder).
#[derive(Debug, Clone)]
pub(crate) struct DownPath {
    pub block_out_channels: Vec<usize>,
    pub cross_attention: Vec<bool>,
    pub layers_per_block: usize,
    pub heads: Vec<usize>,
    pub transformer_layers: Vec<usize>,
    pub groups: usize,
    pub eps: f64,
    pub cross_attention_dim: usize,
    pub temb_dim: usize,
    pub downsample_padding: usize,
    pub resnet_scale: f64,
    pub mid_scale: f64,
}

impl DownPath {
    fn resnet(&self, i: usize, o: usize, scale: f64) -> ResnetSpec {
        ResnetSpec {
            in_channels: i,
            out_channels: o,
            temb_channels: Some(self.temb_dim),
            groups: self.groups,
            eps: self.eps,
            output_scale_factor: scale,
        }
    }

    pub(crate) fn transformer(
        &self,
        channels: usize,
        heads: usize,
        layers: usize,
    ) -> TransformerSpec {
        TransformerSpec {
            channels,
            heads,
            cross_attention_dim: self.cross_attention_dim,
            layers,
            groups: self.groups,
        }
    }

    pub(crate) fn down_blocks<B: Backend>(&self, device: &B::Device) -> Vec<DownBlock<B>> {
        let n = self.block_out_channels.len();
        let mut out_ch = self.block_out_channels[0];
        (0..n)
            .map(|i| {
                let in_ch = out_ch;
                out_ch = self.block_out_channels[i];
                let resnets = (0..self.layers_per_block)
                    .map(|j| {
                        let c = if j == 0 { in_ch } else { out_ch };
                        self.resnet(c, out_ch, self.resnet_scale).init(device)
                    })
                    .collect();
                let attentions = if self.cross_attention[i] {
                    (0..self.layers_per_block)
                        .map(|_| {
                            self.transformer(out_ch, self.heads[i], self.transformer_layers[i])
                                .init(device)
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                let downsamplers = if i + 1 < n {
                    vec![Downsample2D::new(
                        out_ch,
                        out_ch,
                        self.downsample_padding,
                        device,
                    )]
                } else {
                    Vec::new()
                };
                DownBlock {
                    resnets,
                    attentions,
                    downsamplers,
                }
            })
            .collect()
    }

    pub(crate) fn mid_block<B: Backend>(&self, device: &B::Device) -> MidBlock<B> {
        let c = *self.block_out_channels.last().expect("non-empty");
        let heads = *self.heads.last().expect("non-empty");
        let layers = *self.transformer_layers.last().expect("non-empty");
        MidBlock {
            resnets: (0..2)
                .map(|_| self.resnet(c, c, self.mid_scale).init(device))
                .collect(),
            attentions: vec![self.transformer(c, heads, layers).init(device)],
        }
    }

    /// The up path: `cross_attention` and `layers` (transformer blocks per
    /// attention) are given per up block, in up-block order.
    pub(crate) fn up_blocks<B: Backend>(
        &self,
        cross_attention: &[bool],
        layers: &[usize],
        device: &B::Device,
    ) -> Vec<UpBlock<B>> {
        let rev: Vec<usize> = self.block_out_channels.iter().rev().copied().collect();
        let rev_heads: Vec<usize> = self.heads.iter().rev().copied().collect();
        let n = rev.len();
        let mut out_ch = rev[0];
        (0..n)
            .map(|i| {
                let prev_out = out_ch;
                out_ch = rev[i];
                let in_ch = rev[(i + 1).min(n - 1)];
                let num = self.layers_per_block + 1;
                let resnets = (0..num)
                    .map(|j| {
                        let skip = if j == num - 1 { in_ch } else { out_ch };
                        let res_in = if j == 0 { prev_out } else { out_ch };
                        self.resnet(res_in + skip, out_ch, self.resnet_scale)
                            .init(device)
                    })
                    .collect();
                let attentions = if cross_attention[i] {
                    (0..num)
                        .map(|_| {
                            self.transformer(out_ch, rev_heads[i], layers[i])
                                .init(device)
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                let upsamplers = if i + 1 < n {
                    vec![Upsample2D::new(out_ch, out_ch, device)]
                } else {
                    Vec::new()
                };
                UpBlock {
                    resnets,
                    attentions,
                    upsamplers,
                }
            })
            .collect()
    }
}
