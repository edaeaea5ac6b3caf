use std::path::Path;

use serde::Deserialize;

use crate::config::defaults::*;
use crate::config::{unsupported, IntOrList};
use crate::error::Result;
use crate::unet::blocks::DownPath;
use crate::unet::config::{
    check_common, check_text_time, heads_per_block, text_time_dims, AddedConditionDims,
};

/// The keys of a diffusers `ControlNetModel` config that this implementation
/// reads (unknown keys are ignored; keys without a default are required).
#[derive(Debug, Clone, Deserialize)]
pub struct ControlNetConfig {
    /// Latent channels in.
    #[serde(default = "d_4")]
    pub in_channels: usize,
    /// Channels of the condition image.
    #[serde(default = "d_3")]
    pub conditioning_channels: usize,
    /// Channels of the condition-embedding convolutions.
    #[serde(default = "d_cond")]
    pub conditioning_embedding_out_channels: Vec<usize>,
    /// `rgb` or `bgr` (the condition image is flipped for `bgr`).
    #[serde(default = "d_rgb")]
    pub controlnet_conditioning_channel_order: String,
    /// Average the residuals over space (shuffle-style ControlNets).
    #[serde(default)]
    pub global_pool_conditions: bool,
    /// Channels of each resolution level.
    pub block_out_channels: Vec<usize>,
    /// `CrossAttnDownBlock2D` or `DownBlock2D` per level.
    pub down_block_types: Vec<String>,
    /// Only `UNetMidBlock2DCrossAttn`.
    #[serde(default = "d_mid")]
    pub mid_block_type: Option<String>,
    /// Resnets per level.
    #[serde(default = "d_2")]
    pub layers_per_block: usize,
    /// Number of heads (diffusers' naming), int or per block.
    #[serde(default = "d_heads")]
    pub attention_head_dim: IntOrList,
    /// Number of heads, when set.
    #[serde(default)]
    pub num_attention_heads: Option<IntOrList>,
    /// Text-embedding width.
    pub cross_attention_dim: usize,
    /// Group-norm groups.
    #[serde(default = "d_32")]
    pub norm_num_groups: usize,
    /// Group-norm epsilon.
    #[serde(default = "d_eps")]
    pub norm_eps: f64,
    /// Linear projections in the transformers.
    #[serde(default)]
    pub use_linear_projection: bool,
    /// Attention in f32 (always the case here).
    #[serde(default)]
    pub upcast_attention: bool,
    /// Cosine first in the timestep embedding.
    #[serde(default = "d_true")]
    pub flip_sin_to_cos: bool,
    /// Frequency shift of the timestep embedding.
    #[serde(default)]
    pub freq_shift: f64,
    /// Padding of the down-sampling convolutions.
    #[serde(default = "d_1")]
    pub downsample_padding: usize,
    /// Output scale of the mid block's resnets.
    #[serde(default = "d_one")]
    pub mid_block_scale_factor: f64,
    /// Transformer blocks per attention.
    #[serde(default = "d_tlayers")]
    pub transformer_layers_per_block: IntOrList,
    /// Only `silu`.
    #[serde(default = "d_silu")]
    pub act_fn: String,
    /// Only `default`.
    #[serde(default = "d_default")]
    pub resnet_time_scale_shift: String,
    /// Must be null.
    #[serde(default)]
    pub class_embed_type: Option<String>,
    /// Null, or `text_time` (SDXL ControlNets: pooled text embedding and
    /// size conditions added to the time embedding, as in the UNet).
    #[serde(default)]
    pub addition_embed_type: Option<String>,
    /// Width of each size condition's sinusoidal embedding (`text_time`).
    #[serde(default)]
    pub addition_time_embed_dim: Option<usize>,
    /// Input width of the `text_time` MLP (`add_embedding`).
    #[serde(default)]
    pub projection_class_embeddings_input_dim: Option<usize>,
    /// Must be false.
    #[serde(default)]
    pub only_cross_attention: serde_json::Value,
}

impl ControlNetConfig {
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
        match self.addition_embed_type.as_deref() {
            None => {}
            Some("text_time") => check_text_time(
                path,
                self.addition_time_embed_dim,
                self.projection_class_embeddings_input_dim,
            )?,
            Some(_) => {
                return Err(unsupported(
                    path,
                    "addition_embed_type",
                    &self.addition_embed_type,
                    "null or \"text_time\" (SDXL)",
                ))
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
        if !matches!(
            self.controlnet_conditioning_channel_order.as_str(),
            "rgb" | "bgr"
        ) {
            return Err(unsupported(
                path,
                "controlnet_conditioning_channel_order",
                &self.controlnet_conditioning_channel_order,
                "rgb or bgr",
            ));
        }
        if self.conditioning_embedding_out_channels.is_empty() {
            return Err(unsupported(
                path,
                "conditioning_embedding_out_channels",
                "[]",
                "must not be empty",
            ));
        }
        self.down_path(path)?;
        Ok(())
    }

    /// The widths of SDXL's added conditions (`text_time`); `None` for
    /// SD 1.x / 2.x ControlNets.
    pub fn added_conditions(&self) -> Option<AddedConditionDims> {
        text_time_dims(
            self.addition_embed_type.as_deref(),
            self.addition_time_embed_dim,
            self.projection_class_embeddings_input_dim,
        )
    }

    pub(crate) fn down_path(&self, path: &Path) -> Result<DownPath> {
        let n = self.block_out_channels.len();
        let tl = &self.transformer_layers_per_block;
        Ok(DownPath {
            block_out_channels: self.block_out_channels.clone(),
            cross_attention: self
                .down_block_types
                .iter()
                .map(|t| t == "CrossAttnDownBlock2D")
                .collect(),
            layers_per_block: self.layers_per_block,
            heads: heads_per_block(path, &self.num_attention_heads, &self.attention_head_dim, n)?,
            transformer_layers: tl.per_block(n).ok_or_else(|| {
                unsupported(
                    path,
                    "transformer_layers_per_block",
                    tl,
                    "one entry per block",
                )
            })?,
            groups: self.norm_num_groups,
            eps: self.norm_eps,
            cross_attention_dim: self.cross_attention_dim,
            temb_dim: self.block_out_channels[0] * 4,
            downsample_padding: self.downsample_padding,
            resnet_scale: 1.0,
            mid_scale: self.mid_block_scale_factor,
        })
    }
}
