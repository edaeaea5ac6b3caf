//! The demo model's architecture: diffusers / transformers configs of a small
//! Stable-Diffusion-topology model for 128x128 world scenes.
//!
//! | part           | shape                                                        |
//! |----------------|--------------------------------------------------------------|
//! | VAE            | 3 levels (16, 32, 64 channels): 128x128x3 ↔ 32x32x4 (f = 4)  |
//! | text encoder   | CLIP, 2 layers, width 64, 4 heads, the real CLIP vocabulary  |
//! | UNet           | 3 levels (32, 64, 128), cross-attention on levels 2-3 + mid  |
//! | ControlNets    | copies of the UNet encoder; condition 128x128 → 32x32        |
//! | scheduler      | SD 1.5's DDIM (scaled-linear betas 0.00085-0.012, 1000 steps)|
//!
//! The factor 4 VAE (SD uses 8) keeps 4096 latent values for 49152 pixels,
//! which the reconstruction target (≥ 28 dB) needs at this size; the UNet on
//! 32x32 latents costs about 0.5 GFLOP per forward.

use serde_json::{json, Value};

/// Image side in pixels.
pub const IMAGE_SIZE: usize = 128;
/// Latent side (`IMAGE_SIZE / 4`).
pub const LATENT_SIZE: usize = 32;
/// Width of the text encoder (= the UNet's `cross_attention_dim`).
pub const TEXT_WIDTH: usize = 64;

/// `vae/config.json` (the scaling factor is filled in after training).
pub fn vae_config(scaling_factor: f64) -> Value {
    json!({
        "_class_name": "AutoencoderKL",
        "_diffusers_version": "0.30.0",
        "act_fn": "silu",
        "block_out_channels": [16, 32, 64],
        "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
        "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": 4,
        "layers_per_block": 1,
        "norm_num_groups": 8,
        "sample_size": IMAGE_SIZE,
        "scaling_factor": scaling_factor,
        "force_upcast": false,
        "mid_block_add_attention": true,
        "use_quant_conv": true,
        "use_post_quant_conv": true
    })
}

/// `text_encoder/config.json`.
pub fn text_encoder_config() -> Value {
    json!({
        "architectures": ["CLIPTextModel"],
        "model_type": "clip_text_model",
        "attention_dropout": 0.0,
        "bos_token_id": 49406,
        "eos_token_id": 49407,
        "pad_token_id": 1,
        "dropout": 0.0,
        "hidden_act": "quick_gelu",
        "hidden_size": TEXT_WIDTH,
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "intermediate_size": 4 * TEXT_WIDTH,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": 77,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "projection_dim": TEXT_WIDTH,
        "torch_dtype": "float32",
        "vocab_size": 49408
    })
}

/// The encoder fields shared by the UNet and the ControlNets.
fn encoder_fields() -> Value {
    json!({
        "act_fn": "silu",
        "attention_head_dim": 4,
        "block_out_channels": [32, 64, 128],
        "cross_attention_dim": TEXT_WIDTH,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "downsample_padding": 1,
        "flip_sin_to_cos": true,
        "freq_shift": 0,
        "in_channels": 4,
        "layers_per_block": 1,
        "mid_block_type": "UNetMidBlock2DCrossAttn",
        "norm_eps": 1e-05,
        "norm_num_groups": 8,
        "only_cross_attention": false,
        "upcast_attention": false,
        "use_linear_projection": true,
        "resnet_time_scale_shift": "default",
        "transformer_layers_per_block": 1
    })
}

fn merge(mut base: Value, extra: Value) -> Value {
    if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
        b.extend(e);
    }
    base
}

/// `unet/config.json`.
pub fn unet_config() -> Value {
    merge(
        encoder_fields(),
        json!({
            "_class_name": "UNet2DConditionModel",
            "_diffusers_version": "0.30.0",
            "center_input_sample": false,
            "out_channels": 4,
            "sample_size": LATENT_SIZE,
            "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
            "time_embedding_type": "positional"
        }),
    )
}

/// `controlnet-*/config.json` (RGB condition at the image size).
pub fn controlnet_config() -> Value {
    merge(
        encoder_fields(),
        json!({
            "_class_name": "ControlNetModel",
            "_diffusers_version": "0.30.0",
            "conditioning_channels": 3,
            "conditioning_embedding_out_channels": [16, 32, 64],
            "controlnet_conditioning_channel_order": "rgb",
            "global_pool_conditions": false
        }),
    )
}

/// `scheduler/scheduler_config.json`: SD 1.5's.
pub fn scheduler_config() -> Value {
    json!({
        "_class_name": "DDIMScheduler",
        "_diffusers_version": "0.30.0",
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "beta_start": 0.00085,
        "clip_sample": false,
        "num_train_timesteps": 1000,
        "prediction_type": "epsilon",
        "set_alpha_to_one": false,
        "steps_offset": 1,
        "timestep_spacing": "leading",
        "trained_betas": null
    })
}

/// `model_index.json` of the pipeline folder.
pub fn model_index() -> Value {
    json!({
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": "0.30.0",
        "feature_extractor": [null, null],
        "requires_safety_checker": false,
        "safety_checker": [null, null],
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"]
    })
}
