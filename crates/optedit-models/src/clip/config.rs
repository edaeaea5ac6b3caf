use std::path::Path;

use serde::Deserialize;

use crate::config::defaults::*;
use crate::config::unsupported;
use crate::error::Result;

/// The keys of a transformers `CLIPTextConfig` that this implementation reads
/// (unknown keys are ignored; keys without a default are required).
#[derive(Debug, Clone, Deserialize)]
pub struct ClipTextConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Number of heads.
    pub num_attention_heads: usize,
    /// Number of positions.
    #[serde(default = "d_77")]
    pub max_position_embeddings: usize,
    /// `quick_gelu` (SD 1.x) or `gelu` (SD 2.x).
    #[serde(default = "d_act")]
    pub hidden_act: String,
    /// Layer-norm epsilon.
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
    /// End-of-text id; the legacy value 2 means "pool at the argmax id".
    #[serde(default = "d_eos")]
    pub eos_token_id: i64,
    /// Output width of `text_projection` (`CLIPTextModelWithProjection`
    /// only; 1280 in SDXL's `text_encoder_2`).
    #[serde(default = "d_512")]
    pub projection_dim: usize,
}

impl ClipTextConfig {
    /// Checks that every option is supported; `path` names the file.
    pub fn validate(&self, path: &Path) -> Result<()> {
        if !matches!(self.hidden_act.as_str(), "quick_gelu" | "gelu") {
            return Err(unsupported(
                path,
                "hidden_act",
                &self.hidden_act,
                "quick_gelu or gelu",
            ));
        }
        if self.num_attention_heads == 0 || self.hidden_size % self.num_attention_heads != 0 {
            return Err(unsupported(
                path,
                "num_attention_heads",
                self.num_attention_heads,
                "must divide hidden_size",
            ));
        }
        if self.num_hidden_layers == 0 {
            return Err(unsupported(
                path,
                "num_hidden_layers",
                0,
                "at least one layer",
            ));
        }
        Ok(())
    }
}
