//! `unet/config.json` of a diffusers `UNet2DConditionModel`.

use std::path::Path;

use serde::Deserialize;

use crate::config::defaults::*;
use crate::config::{unsupported, IntOrList};
use crate::error::{ModelError, Result};

/// Number of SDXL size conditions per sample (`time_ids`): original height
/// and width, crop top and left, target height and width.
pub const TIME_IDS: usize = 6;

/// Widths of the added conditions of a `text_time` (SDXL) UNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddedConditionDims {
    /// Width of `text_embeds` (the pooled, projected text embedding).
    pub text_embeds: usize,
    /// Width of the sinusoidal embedding of each of the [`TIME_IDS`] size
    /// conditions (`addition_time_embed_dim`).
    pub time_embed_dim: usize,
}

/// The widths of a `text_time` addition embedding from the config keys
/// `addition_embed_type`, `addition_time_embed_dim` and
/// `projection_class_embeddings_input_dim` (UNet and ControlNet alike);
/// `None` for any other addition or an incomplete one.
pub(crate) fn text_time_dims(
    addition_embed_type: Option<&str>,
    time_embed_dim: Option<usize>,
    input: Option<usize>,
) -> Option<AddedConditionDims> {
    if addition_embed_type != Some("text_time") {
        return None;
    }
    let time_embed_dim = time_embed_dim?;
    Some(AddedConditionDims {
        text_embeds: input?.checked_sub(TIME_IDS * time_embed_dim)?,
        time_embed_dim,
    })
}

/// Checks the keys of a `text_time` addition embedding; `path` names the
/// config file.
pub(crate) fn check_text_time(
    path: &Path,
    time_embed_dim: Option<usize>,
    input: Option<usize>,
) -> Result<()> {
    let missing = |field: &str| ModelError::MissingConfigKey {
        path: path.to_path_buf(),
        field: field.into(),
    };
    let t = time_embed_dim.ok_or_else(|| missing("addition_time_embed_dim"))?;
    let input = input.ok_or_else(|| missing("projection_class_embeddings_input_dim"))?;
    if t == 0 || input <= TIME_IDS * t {
        return Err(unsupported(
            path,
            "projection_class_embeddings_input_dim",
            input,
            &format!(
                "must exceed {TIME_IDS} x addition_time_embed_dim ({t}, nonzero): \
                 the pooled text embedding's width plus the time ids' embeddings"
            ),
        ));
    }
    Ok(())
}

/// The keys of a diffusers `UNet2DConditionModel` config that this
/// implementation reads (unknown keys are ignored). Keys without a default are
/// required; the others default as in diffusers.
#[derive(Debug, Clone, Deserialize)]
pub struct UNet2DConditionConfig {
    /// Latent channels in.
    #[serde(default = "d_4")]
    pub in_channels: usize,
    /// Channels out.
    #[serde(default = "d_4")]
    pub out_channels: usize,
    /// Channels of each resolution level.
    pub block_out_channels: Vec<usize>,
    /// `CrossAttnDownBlock2D` or `DownBlock2D` per level.
    pub down_block_types: Vec<String>,
    /// `UpBlock2D` or `CrossAttnUpBlock2D` per level.
    pub up_block_types: Vec<String>,
    /// Mid block type (only `UNetMidBlock2DCrossAttn`).
    #[serde(default = "d_mid")]
    pub mid_block_type: Option<String>,
    /// Resnets per down block (up blocks have one more).
    #[serde(default = "d_2")]
    pub layers_per_block: usize,
    /// In SD 1.x/2.x this is the number of heads (diffusers' naming bug).
    #[serde(default = "d_heads")]
    pub attention_head_dim: IntOrList,
    /// Number of heads, when set (overrides `attention_head_dim`).
    #[serde(default)]
    pub num_attention_heads: Option<IntOrList>,
    /// Text-embedding width.
    pub cross_attention_dim: usize,
    /// Group-norm groups.
    #[serde(default = "d_32")]
    pub norm_num_groups: usize,
    /// Group-norm epsilon of resnets and the output norm.
    #[serde(default = "d_eps")]
    pub norm_eps: f64,
    /// Linear (SD 2.x) rather than 1x1-conv projections in the transformers.
    #[serde(default)]
    pub use_linear_projection: bool,
    /// Attention scores in f32 (always the case here: weights are f32).
    #[serde(default)]
    pub upcast_attention: bool,
    /// Cosine first in the timestep embedding.
    #[serde(default = "d_true")]
    pub flip_sin_to_cos: bool,
    /// Frequency shift of the timestep embedding.
    #[serde(default)]
    pub freq_shift: f64,
    /// Nominal latent size.
    #[serde(default)]
    pub sample_size: Option<IntOrList>,
    /// Padding of the down-sampling convolutions.
    #[serde(default = "d_1")]
    pub downsample_padding: usize,
    /// Output scale of the mid block's resnets.
    #[serde(default = "d_one")]
    pub mid_block_scale_factor: f64,
    /// Output scale of the other resnets.
    #[serde(default = "d_one")]
    pub resnet_out_scale_factor: f64,
    /// Transformer blocks per attention: one number, or one per down block
    /// (SDXL). The mid block takes the last entry.
    #[serde(default = "d_tlayers")]
    pub transformer_layers_per_block: IntOrList,
    /// Transformer blocks per up block, in up-block order; `null` (the
    /// default) means `transformer_layers_per_block` reversed.
    #[serde(default)]
    pub reverse_transformer_layers_per_block: Option<IntOrList>,
    /// Activation (only `silu`).
    #[serde(default = "d_silu")]
    pub act_fn: String,
    /// Only `positional`.
    #[serde(default = "d_positional")]
    pub time_embedding_type: String,
    /// Only `default`.
    #[serde(default = "d_default")]
    pub resnet_time_scale_shift: String,
    /// Only 3.
    #[serde(default = "d_3")]
    pub conv_in_kernel: usize,
    /// Only 3.
    #[serde(default = "d_3")]
    pub conv_out_kernel: usize,
    /// Must be false.
    #[serde(default)]
    pub center_input_sample: bool,
    /// Must be false.
    #[serde(default)]
    pub dual_cross_attention: bool,
    /// Must be false.
    #[serde(default)]
    pub only_cross_attention: serde_json::Value,
    /// Must be null.
    #[serde(default)]
    pub class_embed_type: Option<String>,
    /// `null`; `text`: the text encoder's hidden states, attention-pooled
    /// (`TextTimeEmbedding`), are added to the time embedding; `text_time`
    /// (SDXL): the pooled text embedding and the sinusoidal embeddings of
    /// the six size conditions (`time_ids`) go through an MLP
    /// (`add_embedding`) that is added to the time embedding.
    #[serde(default)]
    pub addition_embed_type: Option<String>,
    /// Width of the sinusoidal embedding of each `time_ids` entry
    /// (`add_time_proj`; `text_time` only, 256 in SDXL).
    #[serde(default)]
    pub addition_time_embed_dim: Option<usize>,
    /// Input width of `add_embedding` for `text_time`: the pooled text
    /// embedding's width plus `6 * addition_time_embed_dim` (2816 in SDXL).
    #[serde(default)]
    pub projection_class_embeddings_input_dim: Option<usize>,
    /// Heads of the `text` addition embedding's attention pooling.
    #[serde(default = "d_64")]
    pub addition_embed_type_num_heads: usize,
    /// Must be null.
    #[serde(default)]
    pub num_class_embeds: Option<usize>,
    /// Must be null.
    #[serde(default)]
    pub time_cond_proj_dim: Option<usize>,
    /// Must be null.
    #[serde(default)]
    pub encoder_hid_dim: Option<usize>,
    /// Time-embedding width (default `4 * block_out_channels[0]`).
    #[serde(default)]
    pub time_embedding_dim: Option<usize>,
}

/// Checks the options shared by the UNet and ControlNet configs.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_common(
    path: &Path,
    block_out_channels: &[usize],
    down_block_types: &[String],
    norm_num_groups: usize,
    act_fn: &str,
    resnet_time_scale_shift: &str,
    class_embed_type: &Option<String>,
    only_cross_attention: &serde_json::Value,
) -> Result<()> {
    if block_out_channels.is_empty() {
        return Err(unsupported(
            path,
            "block_out_channels",
            block_out_channels,
            "must not be empty",
        ));
    }
    if down_block_types.len() != block_out_channels.len() {
        return Err(unsupported(
            path,
            "down_block_types",
            down_block_types,
            "one type per entry of block_out_channels",
        ));
    }
    for t in down_block_types {
        if t != "CrossAttnDownBlock2D" && t != "DownBlock2D" {
            return Err(unsupported(
                path,
                "down_block_types",
                t,
                "CrossAttnDownBlock2D or DownBlock2D",
            ));
        }
    }
    if let Some(c) = block_out_channels
        .iter()
        .find(|c| norm_num_groups == 0 || *c % norm_num_groups != 0)
    {
        return Err(unsupported(
            path,
            "norm_num_groups",
            norm_num_groups,
            &format!("must divide every block_out_channels entry ({c})"),
        ));
    }
    if act_fn != "silu" {
        return Err(unsupported(path, "act_fn", act_fn, "only silu"));
    }
    if resnet_time_scale_shift != "default" {
        return Err(unsupported(
            path,
            "resnet_time_scale_shift",
            resnet_time_scale_shift,
            "only default",
        ));
    }
    if class_embed_type.is_some() {
        return Err(unsupported(
            path,
            "class_embed_type",
            class_embed_type,
            "class embeddings are not supported",
        ));
    }
    if !matches!(
        only_cross_attention,
        serde_json::Value::Bool(false) | serde_json::Value::Null
    ) {
        return Err(unsupported(
            path,
            "only_cross_attention",
            only_cross_attention,
            "must be false",
        ));
    }
    Ok(())
}

/// Heads per block from `num_attention_heads` or `attention_head_dim`.
pub(crate) fn heads_per_block(
    path: &Path,
    num_attention_heads: &Option<IntOrList>,
    attention_head_dim: &IntOrList,
    n: usize,
) -> Result<Vec<usize>> {
    let (field, v) = match num_attention_heads {
        Some(h) => ("num_attention_heads", h),
        None => ("attention_head_dim", attention_head_dim),
    };
    v.per_block(n)
        .ok_or_else(|| unsupported(path, field, v, "a list must have one entry per block"))
}

impl UNet2DConditionConfig {
    /// Checks that every option is supported; `path` names the file.
    pub fn validate(&self, path: &Path) -> Result<()> {
        check_common(
            path,
            &self.block_out_channels,
            &self.down_block_types,
            self.norm_num_groups,
            &self.act_fn,
            &self.resnet_time_scale_shift,
            &self.class_embed_type,
            &self.only_cross_attention,
        )?;
        self.check_addition(path)?;
        let n = self.block_out_channels.len();
        if self.up_block_types.len() != n {
            return Err(unsupported(
                path,
                "up_block_types",
                &self.up_block_types,
                "one type per entry of block_out_channels",
            ));
        }
        for t in &self.up_block_types {
            if t != "CrossAttnUpBlock2D" && t != "UpBlock2D" {
                return Err(unsupported(
                    path,
                    "up_block_types",
                    t,
                    "CrossAttnUpBlock2D or UpBlock2D",
                ));
            }
        }
        if self.mid_block_type.as_deref() != Some("UNetMidBlock2DCrossAttn") {
            return Err(unsupported(
                path,
                "mid_block_type",
                &self.mid_block_type,
                "only UNetMidBlock2DCrossAttn",
            ));
        }
        if self.time_embedding_type != "positional" {
            return Err(unsupported(
                path,
                "time_embedding_type",
                &self.time_embedding_type,
                "only positional",
            ));
        }
        if self.conv_in_kernel != 3 || self.conv_out_kernel != 3 {
            return Err(unsupported(
                path,
                "conv_in_kernel",
                self.conv_in_kernel,
                "only 3x3 conv_in/conv_out",
            ));
        }
        if self.center_input_sample {
            return Err(unsupported(
                path,
                "center_input_sample",
                true,
                "must be false",
            ));
        }
        if self.dual_cross_attention {
            return Err(unsupported(
                path,
                "dual_cross_attention",
                true,
                "must be false",
            ));
        }
        if self.num_class_embeds.is_some()
            || self.time_cond_proj_dim.is_some()
            || self.encoder_hid_dim.is_some()
        {
            return Err(unsupported(
                path,
                "num_class_embeds/time_cond_proj_dim/encoder_hid_dim",
                "set",
                "must be null",
            ));
        }
        self.heads(path)?;
        self.transformer_layers(path)?;
        self.up_transformer_layers(path)?;
        Ok(())
    }

    /// Whether the text encoder's pooled hidden states are added to the
    /// time embedding (`addition_embed_type = "text"`).
    pub fn text_time_embedding(&self) -> bool {
        self.addition_embed_type.as_deref() == Some("text")
    }

    /// The widths of SDXL's added conditions (`addition_embed_type =
    /// "text_time"`), `None` for other UNets.
    pub fn added_conditions(&self) -> Option<AddedConditionDims> {
        text_time_dims(
            self.addition_embed_type.as_deref(),
            self.addition_time_embed_dim,
            self.projection_class_embeddings_input_dim,
        )
    }

    fn check_addition(&self, path: &Path) -> Result<()> {
        match self.addition_embed_type.as_deref() {
            None => Ok(()),
            Some("text_time") => check_text_time(
                path,
                self.addition_time_embed_dim,
                self.projection_class_embeddings_input_dim,
            ),
            Some("text") => {
                let (w, h) = (self.cross_attention_dim, self.addition_embed_type_num_heads);
                if h == 0 || w % h != 0 {
                    return Err(unsupported(
                        path,
                        "addition_embed_type_num_heads",
                        h,
                        &format!("must divide cross_attention_dim ({w})"),
                    ));
                }
                Ok(())
            }
            Some(other) => Err(unsupported(
                path,
                "addition_embed_type",
                other,
                "only null, \"text\" or \"text_time\" (image conditions are not supported)",
            )),
        }
    }

    /// Heads per down block.
    pub fn heads(&self, path: &Path) -> Result<Vec<usize>> {
        heads_per_block(
            path,
            &self.num_attention_heads,
            &self.attention_head_dim,
            self.block_out_channels.len(),
        )
    }

    /// Transformer blocks per down block.
    pub fn transformer_layers(&self, path: &Path) -> Result<Vec<usize>> {
        let v = &self.transformer_layers_per_block;
        v.per_block(self.block_out_channels.len()).ok_or_else(|| {
            unsupported(
                path,
                "transformer_layers_per_block",
                v,
                "one entry per block",
            )
        })
    }

    /// Transformer blocks per up block, in up-block order:
    /// `reverse_transformer_layers_per_block`, else the down blocks' list
    /// reversed.
    pub fn up_transformer_layers(&self, path: &Path) -> Result<Vec<usize>> {
        match &self.reverse_transformer_layers_per_block {
            Some(v) => v.per_block(self.block_out_channels.len()).ok_or_else(|| {
                unsupported(
                    path,
                    "reverse_transformer_layers_per_block",
                    v,
                    "one entry per block",
                )
            }),
            None => Ok(self.transformer_layers(path)?.into_iter().rev().collect()),
        }
    }

    /// Time-embedding width.
    pub fn time_embed_dim(&self) -> usize {
        self.time_embedding_dim
            .unwrap_or(self.block_out_channels[0] * 4)
    }
}
