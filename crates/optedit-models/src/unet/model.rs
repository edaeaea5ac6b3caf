use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::GroupNorm;
use burn::tensor::{backend::Backend, Tensor};

use super::blocks::{DownBlock, DownPath, MidBlock, UpBlock};
use super::config::{AddedConditionDims, UNet2DConditionConfig, TIME_IDS};
use crate::blocks::embeddings::{timestep_embedding, TextTimeEmbedding, TimestepEmbedding};
use crate::blocks::{conv_layer, group_norm, norm};
use crate::config::read_config;
use crate::error::{ModelError, Result};
use crate::kernels::conv2d;
use crate::loader::{find_weights, load_strict};
use crate::names::Library;
use crate::saver::{save_weights, SaveFormat, WeightPrecision};

/// Residuals a ControlNet adds to the UNet: one per skip tensor of the down
/// path (`down_block_additional_residuals`) and one for the mid block output
/// (`mid_block_additional_residual`). Several ControlNets add up.
#[derive(Debug, Clone)]
pub struct ControlResiduals<B: Backend> {
    /// One tensor per down-path skip tensor, in order.
    pub down: Vec<Tensor<B, 4>>,
    /// Added to the mid block output.
    pub mid: Tensor<B, 4>,
}

impl<B: Backend> ControlResiduals<B> {
    /// Elementwise sum of two sets of residuals (multi-ControlNet).
    pub fn add(self, other: Self) -> Self {
        Self {
            down: self
                .down
                .into_iter()
                .zip(other.down)
                .map(|(a, b)| a + b)
                .collect(),
            mid: self.mid + other.mid,
        }
    }
}

/// SDXL's added conditions (diffusers' `added_cond_kwargs`), which a
/// `text_time` UNet embeds and adds to its time embedding.
#[derive(Debug, Clone)]
pub struct AddedConditions<B: Backend> {
    /// The pooled, projected text embedding of the second text encoder,
    /// `[batch, width]` (`text_embeds`).
    pub text_embeds: Tensor<B, 2>,
    /// The size conditions, `[batch, 6]`: original height and width, crop
    /// top and left, target height and width (`time_ids`).
    pub time_ids: Tensor<B, 2>,
}

/// The conditional UNet. Field names are diffusers' tensor paths.
#[derive(Module, Debug)]
pub struct UNet2DConditionModel<B: Backend> {
    /// Input convolution.
    pub conv_in: Conv2d<B>,
    /// Time-embedding MLP.
    pub time_embedding: TimestepEmbedding<B>,
    /// Pooled text embedding added to the time embedding
    /// (`addition_embed_type = "text"`; `None` in SD 1.x).
    pub add_embedding: Option<TextTimeEmbedding<B>>,
    /// The MLP over the pooled text embedding and the embedded size
    /// conditions (`addition_embed_type = "text_time"`, SDXL; diffusers'
    /// `add_embedding`, renamed here because `text` uses that name for
    /// another module); `None` otherwise.
    pub add_time_embedding: Option<TimestepEmbedding<B>>,
    /// Down levels.
    pub down_blocks: Vec<DownBlock<B>>,
    /// Mid block.
    pub mid_block: MidBlock<B>,
    /// Up levels.
    pub up_blocks: Vec<UpBlock<B>>,
    /// Output norm.
    pub conv_norm_out: GroupNorm<B>,
    /// Output convolution.
    pub conv_out: Conv2d<B>,
    /// The config the model was built from.
    #[module(skip)]
    pub config: UNet2DConditionConfig,
}

impl UNet2DConditionConfig {
    pub(crate) fn down_path(&self, path: &Path) -> Result<DownPath> {
        Ok(DownPath {
            block_out_channels: self.block_out_channels.clone(),
            cross_attention: self
                .down_block_types
                .iter()
                .map(|t| t == "CrossAttnDownBlock2D")
                .collect(),
            layers_per_block: self.layers_per_block,
            heads: self.heads(path)?,
            transformer_layers: self.transformer_layers(path)?,
            groups: self.norm_num_groups,
            eps: self.norm_eps,
            cross_attention_dim: self.cross_attention_dim,
            temb_dim: self.time_embed_dim(),
            downsample_padding: self.downsample_padding,
            resnet_scale: self.resnet_out_scale_factor,
            mid_scale: self.mid_block_scale_factor,
        })
    }
}

/// Broadcasts a `[1]` timestep to the batch; checks a `[batch]` one.
pub(crate) fn batch_timesteps<B: Backend>(t: Tensor<B, 1>, batch: usize) -> Result<Tensor<B, 1>> {
    match t.dims()[0] {
        1 => Ok(t.expand([batch])),
        n if n == batch => Ok(t),
        n => Err(ModelError::InvalidInput {
            argument: "timestep".into(),
            message: format!("{n} timesteps for a batch of {batch}; give one or one per sample"),
        }),
    }
}

impl<B: Backend> UNet2DConditionModel<B> {
    /// Builds the model from a config with random weights (e.g. full-size
    /// benchmarks from `sd15-configs/unet/config.json`).
    pub fn from_config(config: UNet2DConditionConfig, device: &B::Device) -> Result<Self> {
        let path = Path::new("<config>");
        config.validate(path)?;
        let spec = config.down_path(path)?;
        let c0 = config.block_out_channels[0];
        let up_cross: Vec<bool> = config
            .up_block_types
            .iter()
            .map(|t| t == "CrossAttnUpBlock2D")
            .collect();
        Ok(Self {
            conv_in: conv_layer([config.in_channels, c0], 3, 1, 1, device),
            time_embedding: TimestepEmbedding::new(c0, config.time_embed_dim(), device),
            add_embedding: config.text_time_embedding().then(|| {
                TextTimeEmbedding::new(
                    config.cross_attention_dim,
                    config.time_embed_dim(),
                    config.addition_embed_type_num_heads,
                    device,
                )
            }),
            add_time_embedding: config.added_conditions().map(|dims| {
                TimestepEmbedding::new(
                    dims.text_embeds + TIME_IDS * dims.time_embed_dim,
                    config.time_embed_dim(),
                    device,
                )
            }),
            down_blocks: spec.down_blocks(device),
            mid_block: spec.mid_block(device),
            up_blocks: spec.up_blocks(&up_cross, &config.up_transformer_layers(path)?, device),
            conv_norm_out: group_norm(config.norm_num_groups, c0, config.norm_eps, device),
            conv_out: conv_layer([c0, config.out_channels], 3, 1, 1, device),
            config,
        })
    }

    /// Reads a config file and builds the model with random weights.
    pub fn from_config_file(path: &Path, device: &B::Device) -> Result<Self> {
        let config: UNet2DConditionConfig = read_config(path)?;
        config.validate(path)?;
        Self::from_config(config, device)
    }

    /// Loads a diffusers `unet/` folder (`config.json` and
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

    /// Predicts the noise (or v / x0, per the scheduler's prediction type):
    /// `sample` `[batch, in, h, w]`, `timestep` `[1]` or `[batch]` (float),
    /// `encoder_hidden_states` `[batch, tokens, cross_attention_dim]`.
    ///
    /// A `text_time` (SDXL) UNet needs its added conditions: call
    /// [`forward_with_conditions`](Self::forward_with_conditions); here it is
    /// a [`ModelError::MissingConditions`].
    pub fn forward(
        &self,
        sample: Tensor<B, 4>,
        timestep: Tensor<B, 1>,
        encoder_hidden_states: Tensor<B, 3>,
    ) -> Result<Tensor<B, 4>> {
        self.forward_with_residuals(sample, timestep, encoder_hidden_states, None)
    }

    /// [`forward`](Self::forward) with ControlNet residuals added to the skip
    /// tensors and to the mid block output.
    pub fn forward_with_residuals(
        &self,
        sample: Tensor<B, 4>,
        timestep: Tensor<B, 1>,
        encoder_hidden_states: Tensor<B, 3>,
        residuals: Option<&ControlResiduals<B>>,
    ) -> Result<Tensor<B, 4>> {
        self.forward_with_conditions(sample, timestep, encoder_hidden_states, None, residuals)
    }

    /// [`forward_with_residuals`](Self::forward_with_residuals) with SDXL's
    /// added conditions (`added_cond_kwargs`): required by a `text_time`
    /// UNet ([`ModelError::MissingConditions`] without them), refused by the
    /// others. `text_embeds` and `time_ids` have one row per sample, or one
    /// row for the whole batch.
    pub fn forward_with_conditions(
        &self,
        sample: Tensor<B, 4>,
        timestep: Tensor<B, 1>,
        encoder_hidden_states: Tensor<B, 3>,
        added: Option<&AddedConditions<B>>,
        residuals: Option<&ControlResiduals<B>>,
    ) -> Result<Tensor<B, 4>> {
        let [batch, channels, h, w] = sample.dims();
        self.check_inputs(channels, h, w, batch, &encoder_hidden_states)?;
        let mut temb = self.time_emb(timestep, batch)?;
        if let Some(add) = &self.add_embedding {
            temb = temb + add.forward(encoder_hidden_states.clone());
        }
        if let Some(aug) = self.added_emb(added, batch)? {
            temb = temb + aug;
        }
        let context = encoder_hidden_states;

        let mut x = conv2d(&self.conv_in, sample);
        let mut skips = vec![x.clone()];
        for block in &self.down_blocks {
            let (out, s) = block.forward(x, &temb, &context);
            x = out;
            skips.extend(s);
        }
        if let Some(res) = residuals {
            if res.down.len() != skips.len() {
                return Err(ModelError::InvalidInput {
                    argument: "down_block_additional_residuals".into(),
                    message: format!(
                        "{} tensors, the UNet has {} skip tensors",
                        res.down.len(),
                        skips.len()
                    ),
                });
            }
            for (i, (s, r)) in skips.iter_mut().zip(&res.down).enumerate() {
                if s.dims() != r.dims() {
                    return Err(ModelError::InvalidInput {
                        argument: format!("down_block_additional_residuals[{i}]"),
                        message: format!("shape {:?}, expected {:?}", r.dims(), s.dims()),
                    });
                }
                *s = s.clone() + r.clone();
            }
        }
        x = self.mid_block.forward(x, &temb, &context);
        if let Some(res) = residuals {
            if res.mid.dims() != x.dims() {
                return Err(ModelError::InvalidInput {
                    argument: "mid_block_additional_residual".into(),
                    message: format!("shape {:?}, expected {:?}", res.mid.dims(), x.dims()),
                });
            }
            x = x + res.mid.clone();
        }
        for block in &self.up_blocks {
            let consumed = block.resnets.len();
            let size = (skips.len() > consumed).then(|| {
                let d = skips[skips.len() - consumed - 1].dims();
                [d[2], d[3]]
            });
            x = block.forward(x, &mut skips, &temb, &context, size);
        }
        Ok(conv2d(
            &self.conv_out,
            norm::group_norm_silu(&self.conv_norm_out, x),
        ))
    }

    fn check_inputs(
        &self,
        channels: usize,
        h: usize,
        w: usize,
        batch: usize,
        context: &Tensor<B, 3>,
    ) -> Result<()> {
        if channels != self.config.in_channels {
            return Err(ModelError::InvalidInput {
                argument: "sample".into(),
                message: format!(
                    "{channels} channels, the UNet takes {}",
                    self.config.in_channels
                ),
            });
        }
        if h == 0 || w == 0 {
            return Err(ModelError::InvalidInput {
                argument: "sample".into(),
                message: "empty spatial size".into(),
            });
        }
        let [cb, _, cd] = context.dims();
        if cb != batch || cd != self.config.cross_attention_dim {
            return Err(ModelError::InvalidInput {
                argument: "encoder_hidden_states".into(),
                message: format!(
                    "shape {:?}, expected [{batch}, tokens, {}]",
                    context.dims(),
                    self.config.cross_attention_dim
                ),
            });
        }
        Ok(())
    }

    /// The `text_time` embedding of the added conditions
    /// ([`text_time_embedding`]).
    fn added_emb(
        &self,
        added: Option<&AddedConditions<B>>,
        batch: usize,
    ) -> Result<Option<Tensor<B, 2>>> {
        text_time_embedding(
            "UNet",
            self.add_time_embedding.as_ref(),
            self.config.added_conditions(),
            self.config.addition_embed_type.as_deref(),
            added,
            batch,
            (self.config.flip_sin_to_cos, self.config.freq_shift),
        )
    }

    fn time_emb(&self, timestep: Tensor<B, 1>, batch: usize) -> Result<Tensor<B, 2>> {
        let t = batch_timesteps(timestep, batch)?;
        let emb = timestep_embedding(
            t,
            self.config.block_out_channels[0],
            self.config.flip_sin_to_cos,
            self.config.freq_shift,
        );
        Ok(self.time_embedding.forward(emb))
    }
}

/// The `text_time` embedding of SDXL's added conditions (diffusers'
/// `get_aug_embed`, the same in `UNet2DConditionModel` and
/// `ControlNetModel`): each size condition embedded sinusoidally
/// (`add_time_proj`, with the model's `flip_sin_to_cos` / `freq_shift`),
/// flattened per sample after the text embedding, through `add_embedding`
/// (`mlp`). `None` for a model without the addition given no conditions;
/// `model` names the model in errors.
pub(crate) fn text_time_embedding<B: Backend>(
    model: &str,
    mlp: Option<&TimestepEmbedding<B>>,
    dims: Option<AddedConditionDims>,
    addition_embed_type: Option<&str>,
    added: Option<&AddedConditions<B>>,
    batch: usize,
    (flip_sin_to_cos, freq_shift): (bool, f64),
) -> Result<Option<Tensor<B, 2>>> {
    let (mlp, dims, added) = match (mlp, dims, added) {
        (None, _, None) => return Ok(None),
        (None, _, Some(_)) => {
            return Err(ModelError::InvalidInput {
                argument: "added_conditions".into(),
                message: format!(
                    "the {model}'s addition_embed_type is {addition_embed_type:?}, not \"text_time\": it takes no text_embeds / time_ids"
                ),
            })
        }
        (Some(_), _, None) => {
            return Err(ModelError::MissingConditions {
                addition_embed_type: "text_time".into(),
                needed: "text_embeds and time_ids".into(),
            })
        }
        (Some(mlp), Some(dims), Some(added)) => (mlp, dims, added),
        (Some(_), None, Some(_)) => {
            return Err(ModelError::InvalidInput {
                argument: "added_conditions".into(),
                message: format!(
                    "the {model} has an add_embedding MLP but its config is not a complete \"text_time\" one"
                ),
            })
        }
    };
    let rows = |argument: &str, t: &Tensor<B, 2>, width: usize| -> Result<Tensor<B, 2>> {
        match t.dims() {
            [1, w] if w == width => Ok(t.clone().expand([batch, width])),
            [b, w] if b == batch && w == width => Ok(t.clone()),
            d => Err(ModelError::InvalidInput {
                argument: argument.into(),
                message: format!("shape {d:?}, expected [{batch}, {width}] (or [1, {width}])"),
            }),
        }
    };
    let text = rows("text_embeds", &added.text_embeds, dims.text_embeds)?;
    let ids = rows("time_ids", &added.time_ids, TIME_IDS)?;
    let time = timestep_embedding(
        ids.reshape([batch * TIME_IDS]),
        dims.time_embed_dim,
        flip_sin_to_cos,
        freq_shift,
    )
    .reshape([batch, TIME_IDS * dims.time_embed_dim]);
    Ok(Some(mlp.forward(Tensor::cat(vec![text, time], 1))))
}
