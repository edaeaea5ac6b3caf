use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::{backend::Backend, Tensor};

use super::config::ControlNetConfig;
use crate::blocks::embeddings::{timestep_embedding, TimestepEmbedding};
use crate::blocks::{conv_layer, zeroed};
use crate::config::read_config;
use crate::error::{ModelError, Result};
use crate::kernels::{conv2d, silu};
use crate::loader::{find_weights, load_strict};
use crate::names::Library;
use crate::saver::{save_weights, SaveFormat, WeightPrecision};
use crate::unet::blocks::{DownBlock, MidBlock};
use crate::unet::{
    text_time_embedding, AddedConditions, ControlResiduals, UNet2DConditionModel, TIME_IDS,
};
use burn_store::{ModuleSnapshot, PathFilter};

/// The small convolutional encoder that brings the condition image (8x the
/// latent size) down to the latent size and `block_out_channels[0]` channels.
#[derive(Module, Debug)]
pub struct ControlNetConditioningEmbedding<B: Backend> {
    /// Input convolution.
    pub conv_in: Conv2d<B>,
    /// Pairs of (3x3, 3x3 stride-2) convolutions.
    pub blocks: Vec<Conv2d<B>>,
    /// Output convolution (zero-initialised in training).
    pub conv_out: Conv2d<B>,
}

impl<B: Backend> ControlNetConditioningEmbedding<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut x = silu(conv2d(&self.conv_in, x));
        for conv in &self.blocks {
            x = silu(conv2d(conv, x));
        }
        conv2d(&self.conv_out, x)
    }
}

/// The ControlNet. Field names are diffusers' tensor paths.
#[derive(Module, Debug)]
pub struct ControlNetModel<B: Backend> {
    /// Input convolution of the latent.
    pub conv_in: Conv2d<B>,
    /// Time-embedding MLP.
    pub time_embedding: TimestepEmbedding<B>,
    /// The `text_time` MLP of SDXL ControlNets (diffusers' `add_embedding`),
    /// as in the UNet.
    pub add_time_embedding: Option<TimestepEmbedding<B>>,
    /// Condition-image encoder.
    pub controlnet_cond_embedding: ControlNetConditioningEmbedding<B>,
    /// Down levels (a copy of the UNet's).
    pub down_blocks: Vec<DownBlock<B>>,
    /// 1x1 "zero" convolutions, one per skip tensor.
    pub controlnet_down_blocks: Vec<Conv2d<B>>,
    /// Mid block.
    pub mid_block: MidBlock<B>,
    /// 1x1 "zero" convolution on the mid block output.
    pub controlnet_mid_block: Conv2d<B>,
    /// The config the model was built from.
    #[module(skip)]
    pub config: ControlNetConfig,
}

impl<B: Backend> ControlNetModel<B> {
    /// Builds the model from a config with random weights.
    pub fn from_config(config: ControlNetConfig, device: &B::Device) -> Result<Self> {
        let path = Path::new("<config>");
        config.validate(path)?;
        let spec = config.down_path(path)?;
        let boc = &config.block_out_channels;
        let emb = &config.conditioning_embedding_out_channels;
        let blocks = emb
            .windows(2)
            .flat_map(|w| {
                [
                    conv_layer([w[0], w[0]], 3, 1, 1, device),
                    conv_layer([w[0], w[1]], 3, 2, 1, device),
                ]
            })
            .collect();
        let mut zero = vec![conv_layer([boc[0], boc[0]], 1, 1, 0, device)];
        for (i, &c) in boc.iter().enumerate() {
            for _ in 0..config.layers_per_block {
                zero.push(conv_layer([c, c], 1, 1, 0, device));
            }
            if i + 1 < boc.len() {
                zero.push(conv_layer([c, c], 1, 1, 0, device));
            }
        }
        let last = *boc.last().expect("non-empty");
        Ok(Self {
            conv_in: conv_layer([config.in_channels, boc[0]], 3, 1, 1, device),
            time_embedding: TimestepEmbedding::new(boc[0], boc[0] * 4, device),
            add_time_embedding: config.added_conditions().map(|dims| {
                TimestepEmbedding::new(
                    dims.text_embeds + TIME_IDS * dims.time_embed_dim,
                    boc[0] * 4,
                    device,
                )
            }),
            controlnet_cond_embedding: ControlNetConditioningEmbedding {
                conv_in: conv_layer([config.conditioning_channels, emb[0]], 3, 1, 1, device),
                blocks,
                conv_out: conv_layer([*emb.last().expect("non-empty"), boc[0]], 3, 1, 1, device),
            },
            down_blocks: spec.down_blocks(device),
            controlnet_down_blocks: zero,
            mid_block: spec.mid_block(device),
            controlnet_mid_block: conv_layer([last, last], 1, 1, 0, device),
            config,
        })
    }

    /// Reads a config file and builds the model with random weights.
    pub fn from_config_file(path: &Path, device: &B::Device) -> Result<Self> {
        let config: ControlNetConfig = read_config(path)?;
        config.validate(path)?;
        Self::from_config(config, device)
    }

    /// Loads a diffusers ControlNet folder (`config.json`,
    /// `diffusion_pytorch_model[.fp16].safetensors`).
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
            conv_proj: !self.config.use_linear_projection,
        };
        save_weights(self, &path, format)?;
        Ok(path)
    }

    /// Builds a ControlNet whose encoder (`conv_in`, `time_embedding`,
    /// `down_blocks`, `mid_block`) is a copy of `unet`'s and whose output
    /// convolutions are zero, so that it starts as a no-op: the initialisation
    /// of Zhang et al. (arXiv 2302.05543, section 3.2). `config` must describe
    /// the same encoder as the UNet's config (checked tensor by tensor).
    pub fn from_unet(
        unet: &UNet2DConditionModel<B>,
        config: ControlNetConfig,
        device: &B::Device,
    ) -> Result<Self> {
        let mut model = Self::from_config(config, device)?;
        let filter = PathFilter::new()
            .with_regex(r"^(conv_in|time_embedding|add_time_embedding|down_blocks|mid_block)\.");
        let snapshots = unet.collect(Some(filter), None, false);
        let expected = snapshots.len();
        let result = model.apply(snapshots, None, None, false);
        if let Some(err) = result.errors.first() {
            return Err(ModelError::InvalidInput {
                argument: "config".into(),
                message: format!("the ControlNet encoder does not match the UNet: {err}"),
            });
        }
        if result.applied.len() != expected {
            return Err(ModelError::InvalidInput {
                argument: "config".into(),
                message: format!(
                    "copied {} of the UNet's {expected} encoder tensors",
                    result.applied.len()
                ),
            });
        }
        Ok(model.zero_output_convs())
    }

    /// Sets every zero convolution (`controlnet_down_blocks.*`,
    /// `controlnet_mid_block`) to zero weights and biases. They stay
    /// trainable: on an autodiff backend they take gradients.
    pub fn zero_output_convs(mut self) -> Self {
        fn zero<B: Backend>(conv: Conv2d<B>) -> Conv2d<B> {
            let weight = zeroed(conv.weight);
            let bias = conv.bias.map(zeroed);
            Conv2d {
                weight,
                bias,
                ..conv
            }
        }
        self.controlnet_down_blocks = self.controlnet_down_blocks.into_iter().map(zero).collect();
        self.controlnet_mid_block = zero(self.controlnet_mid_block);
        self
    }

    /// Residuals for the UNet, already multiplied by `conditioning_scale`:
    /// `sample` `[batch, in, h, w]`, `timestep` `[1]` or `[batch]`,
    /// `encoder_hidden_states` `[batch, tokens, dim]`, `controlnet_cond`
    /// `[batch, conditioning_channels, 8h, 8w]` in `[0, 1]`. An SDXL
    /// (`text_time`) ControlNet needs its added conditions: call
    /// [`forward_with_conditions`](Self::forward_with_conditions).
    pub fn forward(
        &self,
        sample: Tensor<B, 4>,
        timestep: Tensor<B, 1>,
        encoder_hidden_states: Tensor<B, 3>,
        controlnet_cond: Tensor<B, 4>,
        conditioning_scale: f64,
    ) -> Result<ControlResiduals<B>> {
        self.forward_with_conditions(
            sample,
            timestep,
            encoder_hidden_states,
            controlnet_cond,
            conditioning_scale,
            None,
        )
    }

    /// [`forward`](Self::forward) with SDXL's added conditions
    /// (`added_cond_kwargs`: pooled text embedding and size conditions),
    /// required by a `text_time` ControlNet and refused by any other
    /// ([`ModelError::MissingConditions`], [`ModelError::InvalidInput`]).
    pub fn forward_with_conditions(
        &self,
        sample: Tensor<B, 4>,
        timestep: Tensor<B, 1>,
        encoder_hidden_states: Tensor<B, 3>,
        controlnet_cond: Tensor<B, 4>,
        conditioning_scale: f64,
        added: Option<&AddedConditions<B>>,
    ) -> Result<ControlResiduals<B>> {
        let [batch, channels, h, w] = sample.dims();
        let [cb, cc, ch, cw] = controlnet_cond.dims();
        if channels != self.config.in_channels {
            return Err(ModelError::InvalidInput {
                argument: "sample".into(),
                message: format!(
                    "{channels} channels, the ControlNet takes {}",
                    self.config.in_channels
                ),
            });
        }
        let factor = 1usize << (self.config.conditioning_embedding_out_channels.len() - 1);
        if cb != batch
            || cc != self.config.conditioning_channels
            || ch != h * factor
            || cw != w * factor
        {
            return Err(ModelError::InvalidInput {
                argument: "controlnet_cond".into(),
                message: format!(
                    "shape {:?}, expected [{batch}, {}, {}, {}]",
                    controlnet_cond.dims(),
                    self.config.conditioning_channels,
                    h * factor,
                    w * factor
                ),
            });
        }
        let [eb, _, ed] = encoder_hidden_states.dims();
        if eb != batch || ed != self.config.cross_attention_dim {
            return Err(ModelError::InvalidInput {
                argument: "encoder_hidden_states".into(),
                message: format!(
                    "shape {:?}, expected [{batch}, tokens, {}]",
                    encoder_hidden_states.dims(),
                    self.config.cross_attention_dim
                ),
            });
        }
        let cond = if self.config.controlnet_conditioning_channel_order == "bgr" {
            controlnet_cond.flip([1])
        } else {
            controlnet_cond
        };
        let t = crate::unet::model_batch_timesteps(timestep, batch)?;
        let mut temb = self.time_embedding.forward(timestep_embedding(
            t,
            self.config.block_out_channels[0],
            self.config.flip_sin_to_cos,
            self.config.freq_shift,
        ));
        if let Some(aug) = text_time_embedding(
            "ControlNet",
            self.add_time_embedding.as_ref(),
            self.config.added_conditions(),
            self.config.addition_embed_type.as_deref(),
            added,
            batch,
            (self.config.flip_sin_to_cos, self.config.freq_shift),
        )? {
            temb = temb + aug;
        }
        let context = encoder_hidden_states;
        let mut x = conv2d(&self.conv_in, sample) + self.controlnet_cond_embedding.forward(cond);
        let mut skips = vec![x.clone()];
        for block in &self.down_blocks {
            let (out, s) = block.forward(x, &temb, &context);
            x = out;
            skips.extend(s);
        }
        x = self.mid_block.forward(x, &temb, &context);
        let finish = |t: Tensor<B, 4>| {
            let t = if self.config.global_pool_conditions {
                t.mean_dim(2).mean_dim(3)
            } else {
                t
            };
            t.mul_scalar(conditioning_scale)
        };
        let down = skips
            .into_iter()
            .zip(&self.controlnet_down_blocks)
            .map(|(s, conv)| finish(conv2d(conv, s)))
            .collect();
        let mid = finish(conv2d(&self.controlnet_mid_block, x));
        Ok(ControlResiduals { down, mid })
    }
}
