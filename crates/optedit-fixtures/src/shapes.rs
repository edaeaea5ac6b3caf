//! Shapes of a fixture set, read from its own config files and golden inputs.
//!
//! Fixture sets are made with different image sizes (not necessarily square),
//! text widths, channel counts and block layouts. Tests that build their own
//! inputs (masks, random latents, text contexts, conditioning images) take
//! every size from here instead of from the public set's numbers.

use std::path::Path;

use serde_json::Value;

use crate::{cases_with_prefix, fixtures_dir};

/// Reads a JSON file of the fixture folder (`rel` is relative to it).
pub fn read_json(rel: &str) -> Value {
    read_json_at(&fixtures_dir().join(rel))
}

/// Reads a JSON file; panics naming it if it is missing or malformed.
pub fn read_json_at(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()))
}

/// The unsigned integer `key` of a config; panics naming the key if absent.
pub fn config_usize(config: &Value, key: &str) -> usize {
    config[key]
        .as_u64()
        .unwrap_or_else(|| panic!("config has no whole number {key}: {config}")) as usize
}

/// The length of the list `key` of a config; panics naming the key if absent.
pub fn config_len(config: &Value, key: &str) -> usize {
    config[key]
        .as_array()
        .unwrap_or_else(|| panic!("config has no list {key}: {config}"))
        .len()
}

/// Smallest latent side a UNet or ControlNet config accepts without odd
/// sizes on the way down: every block but the last halves the latent, so
/// `2^(blocks - 1)`.
pub fn latent_multiple(config: &Value) -> usize {
    1 << (config_len(config, "block_out_channels") - 1)
}

/// Shapes of the fixture set's tiny SD pipeline (`tiny-sd/`), its ControlNet
/// (`tiny-controlnet/`) and its input image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureShapes {
    /// Height and width of the test image (`input.image` of the first
    /// `vae_encode*` case, `[1, 3, h, w]`).
    pub image_hw: (usize, usize),
    /// The VAE's down-sampling factor, `2^(blocks - 1)`.
    pub vae_factor: usize,
    /// Height and width of that image's latent.
    pub latent_hw: (usize, usize),
    /// Latent channels the UNet takes (`in_channels`).
    pub latent_channels: usize,
    /// Width of the text context the UNet attends to (`cross_attention_dim`).
    pub context_width: usize,
    /// Width of the text encoder's hidden states (`hidden_size`).
    pub text_width: usize,
    /// Token positions of the text encoder (`max_position_embeddings`).
    pub tokens: usize,
    /// Every latent side the UNet takes is a multiple of this
    /// ([`latent_multiple`] of its config).
    pub unet_multiple: usize,
    /// Channels of the ControlNet's conditioning image.
    pub control_channels: usize,
    /// How many times larger than the latent the ControlNet's conditioning
    /// image is (`2^(conditioning embedding blocks - 1)`).
    pub control_factor: usize,
}

impl FixtureShapes {
    /// Reads the shapes of the fixture folder.
    pub fn read() -> Self {
        let unet = read_json("tiny-sd/unet/config.json");
        let vae = read_json("tiny-sd/vae/config.json");
        let text = read_json("tiny-sd/text_encoder/config.json");
        let control = read_json("tiny-controlnet/config.json");
        let case = cases_with_prefix("vae_encode").remove(0);
        let image = &case
            .inputs
            .get("input.image")
            .unwrap_or_else(|| panic!("{} has no input.image", case.case))
            .shape;
        assert_eq!(image.len(), 4, "{}: input.image {image:?}", case.case);
        let image_hw = (image[2], image[3]);
        let vae_factor = 1 << (config_len(&vae, "block_out_channels") - 1);
        Self {
            image_hw,
            vae_factor,
            latent_hw: (image_hw.0 / vae_factor, image_hw.1 / vae_factor),
            latent_channels: config_usize(&unet, "in_channels"),
            context_width: config_usize(&unet, "cross_attention_dim"),
            text_width: config_usize(&text, "hidden_size"),
            tokens: config_usize(&text, "max_position_embeddings"),
            unet_multiple: latent_multiple(&unet),
            control_channels: config_usize(&control, "conditioning_channels"),
            control_factor: 1 << (config_len(&control, "conditioning_embedding_out_channels") - 1),
        }
    }
}
