use std::path::Path;

use serde::Deserialize;

use crate::config::defaults::*;
use crate::config::unsupported;
use crate::error::Result;

/// The keys of a diffusers `AutoencoderKL` config that this implementation
/// reads (unknown keys are ignored; keys without a default are required).
#[derive(Debug, Clone, Deserialize)]
pub struct AutoencoderKLConfig {
    /// Image channels in.
    #[serde(default = "d_3")]
    pub in_channels: usize,
    /// Image channels out.
    #[serde(default = "d_3")]
    pub out_channels: usize,
    /// Channels per level.
    pub block_out_channels: Vec<usize>,
    /// `DownEncoderBlock2D` per level.
    #[serde(default)]
    pub down_block_types: Vec<String>,
    /// `UpDecoderBlock2D` per level.
    #[serde(default)]
    pub up_block_types: Vec<String>,
    /// Resnets per encoder level (decoder levels have one more).
    #[serde(default = "d_1")]
    pub layers_per_block: usize,
    /// Latent channels.
    #[serde(default = "d_4")]
    pub latent_channels: usize,
    /// Group-norm groups.
    #[serde(default = "d_32")]
    pub norm_num_groups: usize,
    /// Latent scale (`z = scaling_factor * sample`).
    #[serde(default = "d_scale")]
    pub scaling_factor: f64,
    /// Latent shift (SD 3 style; must be null here).
    #[serde(default)]
    pub shift_factor: Option<f64>,
    /// Whether `quant_conv` exists.
    #[serde(default = "d_true")]
    pub use_quant_conv: bool,
    /// Whether `post_quant_conv` exists.
    #[serde(default = "d_true")]
    pub use_post_quant_conv: bool,
    /// Whether the mid blocks have self-attention.
    #[serde(default = "d_true")]
    pub mid_block_add_attention: bool,
    /// Activation (only `silu`).
    #[serde(default = "d_silu")]
    pub act_fn: String,
}

impl AutoencoderKLConfig {
    /// Checks that every option is supported; `path` names the file.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let n = self.block_out_channels.len();
        if n == 0 {
            return Err(unsupported(
                path,
                "block_out_channels",
                &self.block_out_channels,
                "must not be empty",
            ));
        }
        for (field, types, want) in [
            (
                "down_block_types",
                &self.down_block_types,
                "DownEncoderBlock2D",
            ),
            ("up_block_types", &self.up_block_types, "UpDecoderBlock2D"),
        ] {
            if !types.is_empty() && types.len() != n {
                return Err(unsupported(
                    path,
                    field,
                    types,
                    "one type per entry of block_out_channels",
                ));
            }
            if let Some(t) = types.iter().find(|t| *t != want) {
                return Err(unsupported(path, field, t, &format!("only {want}")));
            }
        }
        if let Some(c) = self
            .block_out_channels
            .iter()
            .find(|c| self.norm_num_groups == 0 || *c % self.norm_num_groups != 0)
        {
            return Err(unsupported(
                path,
                "norm_num_groups",
                self.norm_num_groups,
                &format!("must divide every block_out_channels entry ({c})"),
            ));
        }
        if self.act_fn != "silu" {
            return Err(unsupported(path, "act_fn", &self.act_fn, "only silu"));
        }
        if self.shift_factor.is_some_and(|s| s != 0.0) {
            return Err(unsupported(
                path,
                "shift_factor",
                self.shift_factor,
                "SD 1.x/2.x VAEs have no shift",
            ));
        }
        Ok(())
    }
}
