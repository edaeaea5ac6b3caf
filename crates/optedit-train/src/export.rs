//! Assembling the demo pipeline folder in the diffusers layout, which
//! `optedit_edit::SdPipeline::load` (and diffusers itself) reads:
//!
//! ```text
//! model_index.json
//! scheduler/scheduler_config.json
//! tokenizer/{vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json}
//! text_encoder/{config.json, model.safetensors}
//! unet/{config.json, diffusion_pytorch_model.safetensors}
//! vae/{config.json, diffusion_pytorch_model.safetensors}
//! controlnet-pose/{config.json, diffusion_pytorch_model.safetensors}
//! controlnet-canny/{config.json, diffusion_pytorch_model.safetensors}
//! controlnet-scribble/, controlnet-layout/   (the same files)
//! classifier/model.safetensors        (optedit's evaluation classifier)
//! ```

use std::path::Path;

use burn::tensor::backend::Backend;
use optedit_judge::classifier::AttributeClassifier;
use optedit_models::{AutoencoderKL, ControlNetModel, WeightPrecision};
use serde_json::Value;

use crate::conditions::ControlKind;
use crate::demo;
use crate::error::{io, Result};
use crate::stages::text_to_image::TextToImage;

/// Files of a CLIP tokenizer folder.
pub const TOKENIZER_FILES: [&str; 4] = [
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "tokenizer_config.json",
];

fn write_json(path: &Path, value: &Value) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let text = serde_json::to_string_pretty(value).expect("serialisable") + "\n";
    std::fs::write(path, text).map_err(io(path))
}

/// The trained parts of the pipeline.
pub struct DemoParts<'a, B: Backend> {
    /// The autoencoder.
    pub vae: &'a AutoencoderKL<B>,
    /// Its measured latent scale.
    pub scaling_factor: f64,
    /// UNet and text encoder.
    pub text_to_image: &'a TextToImage<B>,
    /// Trained ControlNets.
    pub controlnets: Vec<(ControlKind, &'a ControlNetModel<B>)>,
    /// The evaluation classifier.
    pub classifier: Option<&'a AttributeClassifier<B>>,
}

/// Writes the pipeline folder `out` (f16 weights: half the size, and the
/// loader casts them back to f32).
pub fn export<B: Backend>(
    out: &Path,
    parts: &DemoParts<'_, B>,
    tokenizer_dir: &Path,
) -> Result<()> {
    let p = WeightPrecision::F16;
    write_json(&out.join("model_index.json"), &demo::model_index())?;
    write_json(
        &out.join("scheduler/scheduler_config.json"),
        &demo::scheduler_config(),
    )?;
    let tok = out.join("tokenizer");
    std::fs::create_dir_all(&tok).map_err(io(&tok))?;
    for name in TOKENIZER_FILES {
        let src = tokenizer_dir.join(name);
        if src.exists() {
            std::fs::copy(&src, tok.join(name)).map_err(io(&src))?;
        }
    }
    write_json(
        &out.join("text_encoder/config.json"),
        &demo::text_encoder_config(),
    )?;
    parts
        .text_to_image
        .text_encoder
        .save_weights(&out.join("text_encoder"), p)?;
    write_json(
        &out.join("unet/config.json"),
        &parts.text_to_image.unet_config,
    )?;
    parts
        .text_to_image
        .unet
        .save_weights(&out.join("unet"), p)?;
    write_json(
        &out.join("vae/config.json"),
        &demo::vae_config(parts.scaling_factor),
    )?;
    parts
        .vae
        .save_weights(&out.join("vae"), WeightPrecision::F32)?;
    for (kind, net) in &parts.controlnets {
        let dir = out.join(kind.folder());
        write_json(&dir.join("config.json"), &demo::controlnet_config())?;
        net.save_weights(&dir, p)?;
    }
    if let Some(c) = parts.classifier {
        let dir = out.join("classifier");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        c.save(&dir.join("model.safetensors"))?;
    }
    Ok(())
}
