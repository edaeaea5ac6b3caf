use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::GroupNorm;
use burn::tensor::{backend::Backend, Tensor};

use super::config::AutoencoderKLConfig;
use crate::blocks::attention::{Attention, AttentionSpec};
use crate::blocks::resnet::{ResnetBlock2D, ResnetSpec};
use crate::blocks::sampling::{Downsample2D, Upsample2D};
use crate::blocks::{conv_layer, group_norm, norm};
use crate::config::read_config;
use crate::error::{ModelError, Result};
use crate::kernels::conv2d;
use crate::loader::{find_weights, load_strict};
use crate::names::Library;
use crate::saver::{save_weights, SaveFormat, WeightPrecision};

/// The VAE's group-norm epsilon (fixed in diffusers).
const EPS: f64 = 1e-6;

/// `DownEncoderBlock2D`: resnets and an optional down-sampler.
#[derive(Module, Debug)]
pub struct VaeDownBlock<B: Backend> {
    /// The resnets.
    pub resnets: Vec<ResnetBlock2D<B>>,
    /// Zero or one down-sampler (asymmetric padding).
    pub downsamplers: Vec<Downsample2D<B>>,
}

/// `UpDecoderBlock2D`: resnets and an optional up-sampler.
#[derive(Module, Debug)]
pub struct VaeUpBlock<B: Backend> {
    /// The resnets.
    pub resnets: Vec<ResnetBlock2D<B>>,
    /// Zero or one up-sampler.
    pub upsamplers: Vec<Upsample2D<B>>,
}

/// `UNetMidBlock2D` without time embedding: resnet, (self-attention, resnet).
#[derive(Module, Debug)]
pub struct VaeMidBlock<B: Backend> {
    /// Two resnets.
    pub resnets: Vec<ResnetBlock2D<B>>,
    /// Zero or one spatial self-attention.
    pub attentions: Vec<Attention<B>>,
}

impl<B: Backend> VaeMidBlock<B> {
    fn new(c: usize, groups: usize, attention: bool, device: &B::Device) -> Self {
        let res = || resnet(c, c, groups).init(device);
        Self {
            resnets: vec![res(), res()],
            attentions: if attention {
                vec![AttentionSpec {
                    query_dim: c,
                    cross_attention_dim: None,
                    heads: 1,
                    dim_head: c,
                    qkv_bias: true,
                    group_norm: Some((groups, EPS)),
                }
                .init(device)]
            } else {
                Vec::new()
            },
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut x = self.resnets[0].forward(x, None);
        if let Some(attn) = self.attentions.first() {
            x = attn.forward_spatial(x);
        }
        self.resnets[1].forward(x, None)
    }
}

fn resnet(i: usize, o: usize, groups: usize) -> ResnetSpec {
    ResnetSpec {
        in_channels: i,
        out_channels: o,
        temb_channels: None,
        groups,
        eps: EPS,
        output_scale_factor: 1.0,
    }
}

/// The encoder: image to the moments of the latent distribution.
#[derive(Module, Debug)]
pub struct Encoder<B: Backend> {
    /// Input convolution.
    pub conv_in: Conv2d<B>,
    /// Down levels.
    pub down_blocks: Vec<VaeDownBlock<B>>,
    /// Mid block.
    pub mid_block: VaeMidBlock<B>,
    /// Output norm.
    pub conv_norm_out: GroupNorm<B>,
    /// Output convolution (to `2 * latent_channels`).
    pub conv_out: Conv2d<B>,
}

/// The decoder: latent to image.
#[derive(Module, Debug)]
pub struct Decoder<B: Backend> {
    /// Input convolution.
    pub conv_in: Conv2d<B>,
    /// Mid block.
    pub mid_block: VaeMidBlock<B>,
    /// Up levels.
    pub up_blocks: Vec<VaeUpBlock<B>>,
    /// Output norm.
    pub conv_norm_out: GroupNorm<B>,
    /// Output convolution.
    pub conv_out: Conv2d<B>,
}

/// The latent distribution `N(mean, exp(logvar))` returned by
/// [`AutoencoderKL::encode`]; `logvar` is clamped to `[-30, 20]` as diffusers does.
#[derive(Debug, Clone)]
pub struct DiagonalGaussian<B: Backend> {
    /// Mean, `[batch, latent, h/8, w/8]`.
    pub mean: Tensor<B, 4>,
    /// Clamped log-variance.
    pub logvar: Tensor<B, 4>,
}

impl<B: Backend> DiagonalGaussian<B> {
    /// `exp(0.5 * logvar)`.
    pub fn std(&self) -> Tensor<B, 4> {
        self.logvar.clone().mul_scalar(0.5).exp()
    }

    /// `mean + std * noise`, with caller-supplied standard-normal `noise`.
    pub fn sample(&self, noise: Tensor<B, 4>) -> Tensor<B, 4> {
        self.mean.clone() + self.std() * noise
    }

    /// The mode (the mean).
    pub fn mode(&self) -> Tensor<B, 4> {
        self.mean.clone()
    }
}

/// The KL autoencoder. Field names are diffusers' tensor paths.
#[derive(Module, Debug)]
pub struct AutoencoderKL<B: Backend> {
    /// Encoder.
    pub encoder: Encoder<B>,
    /// Decoder.
    pub decoder: Decoder<B>,
    /// 1x1 convolution on the moments (if `use_quant_conv`).
    pub quant_conv: Option<Conv2d<B>>,
    /// 1x1 convolution on the latent before decoding (if `use_post_quant_conv`).
    pub post_quant_conv: Option<Conv2d<B>>,
    /// The config the model was built from.
    #[module(skip)]
    pub config: AutoencoderKLConfig,
}

impl<B: Backend> AutoencoderKL<B> {
    /// Builds the model from a config with random weights.
    pub fn from_config(config: AutoencoderKLConfig, device: &B::Device) -> Result<Self> {
        config.validate(Path::new("<config>"))?;
        let boc = &config.block_out_channels;
        let n = boc.len();
        let g = config.norm_num_groups;
        let lat = config.latent_channels;
        let last = boc[n - 1];
        let mut out = boc[0];
        let down_blocks = (0..n)
            .map(|i| {
                let inp = out;
                out = boc[i];
                VaeDownBlock {
                    resnets: (0..config.layers_per_block)
                        .map(|j| resnet(if j == 0 { inp } else { out }, out, g).init(device))
                        .collect(),
                    downsamplers: if i + 1 < n {
                        vec![Downsample2D::new(out, out, 0, device)]
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect();
        let encoder = Encoder {
            conv_in: conv_layer([config.in_channels, boc[0]], 3, 1, 1, device),
            down_blocks,
            mid_block: VaeMidBlock::new(last, g, config.mid_block_add_attention, device),
            conv_norm_out: group_norm(g, last, EPS, device),
            conv_out: conv_layer([last, 2 * lat], 3, 1, 1, device),
        };
        let rev: Vec<usize> = boc.iter().rev().copied().collect();
        let mut out = rev[0];
        let up_blocks = (0..n)
            .map(|i| {
                let prev = out;
                out = rev[i];
                VaeUpBlock {
                    resnets: (0..config.layers_per_block + 1)
                        .map(|j| resnet(if j == 0 { prev } else { out }, out, g).init(device))
                        .collect(),
                    upsamplers: if i + 1 < n {
                        vec![Upsample2D::new(out, out, device)]
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect();
        let decoder = Decoder {
            conv_in: conv_layer([lat, last], 3, 1, 1, device),
            mid_block: VaeMidBlock::new(last, g, config.mid_block_add_attention, device),
            up_blocks,
            conv_norm_out: group_norm(g, boc[0], EPS, device),
            conv_out: conv_layer([boc[0], config.out_channels], 3, 1, 1, device),
        };
        Ok(Self {
            encoder,
            decoder,
            quant_conv: config
                .use_quant_conv
                .then(|| conv_layer([2 * lat, 2 * lat], 1, 1, 0, device)),
            post_quant_conv: config
                .use_post_quant_conv
                .then(|| conv_layer([lat, lat], 1, 1, 0, device)),
            config,
        })
    }

    /// Reads a config file and builds the model with random weights.
    pub fn from_config_file(path: &Path, device: &B::Device) -> Result<Self> {
        let config: AutoencoderKLConfig = read_config(path)?;
        config.validate(path)?;
        Self::from_config(config, device)
    }

    /// Loads a diffusers `vae/` folder.
    pub fn load(dir: &Path, device: &B::Device) -> Result<Self> {
        let mut model = Self::from_config_file(&dir.join("config.json"), device)?;
        let weights = find_weights(dir, "diffusion_pytorch_model")?;
        load_strict(&mut model, &weights, Library::Diffusers)?;
        Ok(model)
    }

    /// Writes the weights as `diffusion_pytorch_model.safetensors` in `dir` under their
    /// diffusers names (the inverse of [`load`](Self::load); `config.json` is
    /// the caller's). Returns the file written.
    pub fn save_weights(&self, dir: &Path, precision: WeightPrecision) -> Result<PathBuf> {
        let path = dir.join("diffusion_pytorch_model.safetensors");
        let format = SaveFormat {
            library: Library::Diffusers,
            precision,
            conv_proj: false,
        };
        save_weights(self, &path, format)?;
        Ok(path)
    }

    /// The latent scale (`z = scaling_factor * sample`).
    pub fn scaling_factor(&self) -> f64 {
        self.config.scaling_factor
    }

    /// Encodes an image `[batch, in_channels, h, w]` in `[-1, 1]` (h, w
    /// multiples of `2^(levels-1)`) to the latent distribution.
    pub fn encode(&self, image: Tensor<B, 4>) -> Result<DiagonalGaussian<B>> {
        let [_, c, h, w] = image.dims();
        let factor = 1usize << (self.config.block_out_channels.len() - 1);
        if c != self.config.in_channels || h == 0 || w == 0 || h % factor != 0 || w % factor != 0 {
            return Err(ModelError::InvalidInput {
                argument: "image".into(),
                message: format!(
                    "shape {:?}: expected {} channels and a size that is a positive multiple of {factor}",
                    image.dims(),
                    self.config.in_channels
                ),
            });
        }
        let e = &self.encoder;
        let mut x = conv2d(&e.conv_in, image);
        for block in &e.down_blocks {
            for r in &block.resnets {
                x = r.forward(x, None);
            }
            for d in &block.downsamplers {
                x = d.forward(x);
            }
        }
        x = e.mid_block.forward(x);
        x = conv2d(&e.conv_out, norm::group_norm_silu(&e.conv_norm_out, x));
        if let Some(q) = &self.quant_conv {
            x = conv2d(q, x);
        }
        let mut halves = x.chunk(2, 1);
        let logvar = halves.pop().expect("two halves").clamp(-30.0, 20.0);
        let mean = halves.pop().expect("two halves");
        Ok(DiagonalGaussian { mean, logvar })
    }

    /// Decodes a latent `[batch, latent_channels, h, w]` (already divided by
    /// the scaling factor) to the raw decoder output (not clamped).
    pub fn decode(&self, latent: Tensor<B, 4>) -> Result<Tensor<B, 4>> {
        let [_, c, h, w] = latent.dims();
        if c != self.config.latent_channels || h == 0 || w == 0 {
            return Err(ModelError::InvalidInput {
                argument: "latent".into(),
                message: format!(
                    "shape {:?}: expected {} channels",
                    latent.dims(),
                    self.config.latent_channels
                ),
            });
        }
        let mut x = match &self.post_quant_conv {
            Some(p) => conv2d(p, latent),
            None => latent,
        };
        let d = &self.decoder;
        x = conv2d(&d.conv_in, x);
        x = d.mid_block.forward(x);
        for block in &d.up_blocks {
            for r in &block.resnets {
                x = r.forward(x, None);
            }
            for u in &block.upsamplers {
                x = u.forward(x, None);
            }
        }
        Ok(conv2d(
            &d.conv_out,
            norm::group_norm_silu(&d.conv_norm_out, x),
        ))
    }
}
