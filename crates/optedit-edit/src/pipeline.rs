//! [`SdPipeline`]: the models of a diffusers Stable Diffusion folder (SD 1.x,
//! SD 2.x or SDXL), loaded once and shared by the editor and the baselines.

use std::path::{Path, PathBuf};

use burn::module::{AutodiffModule, Module};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use optedit_cond::{ClipTokenizer, PromptEmbeddings, PromptEncoder, SdxlPromptEncoder};
use optedit_models::{
    AutoencoderKL, ClipTextModel, ClipTextModelWithProjection, UNet2DConditionModel,
};
use optedit_schedule::SchedulerConfig;

use crate::error::{EditError, Result};

/// The kind of pipeline a diffusers folder holds, read from the
/// `_class_name` of its `model_index.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PipelineFamily {
    /// `StableDiffusionPipeline`: SD 1.x and 2.x, one CLIP text encoder.
    StableDiffusion,
    /// `StableDiffusionXLPipeline`: SDXL, two text encoders whose pooled
    /// embedding and the size conditions the UNet adds to its time
    /// embedding.
    StableDiffusionXl,
}

impl PipelineFamily {
    /// The families this crate loads, in the order error messages list them.
    pub const ALL: [Self; 2] = [Self::StableDiffusion, Self::StableDiffusionXl];

    /// The diffusers pipeline class (`_class_name`).
    pub fn class_name(self) -> &'static str {
        match self {
            Self::StableDiffusion => "StableDiffusionPipeline",
            Self::StableDiffusionXl => "StableDiffusionXLPipeline",
        }
    }

    /// The family of a diffusers pipeline class; `None` for any other class.
    pub fn from_class_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.class_name() == name)
    }

    /// The family of the pipeline folder `dir`, from `dir/model_index.json`.
    ///
    /// # Errors
    /// [`EditError::ModelIndex`] when the file is missing, unreadable or has
    /// no string `_class_name`; [`EditError::UnsupportedPipeline`] for any
    /// other class. Both name the file.
    pub fn detect(dir: &Path) -> Result<Self> {
        let path = dir.join("model_index.json");
        let bad = |message: String| EditError::ModelIndex {
            path: path.clone(),
            message,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
        let index: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let class = index
            .get("_class_name")
            .and_then(|c| c.as_str())
            .ok_or_else(|| bad("no string `_class_name`".into()))?;
        Self::from_class_name(class).ok_or_else(|| EditError::UnsupportedPipeline {
            path: path.clone(),
            class: class.to_string(),
        })
    }
}

impl std::fmt::Display for PipelineFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.class_name())
    }
}

/// The prompt encoders of a pipeline family.
#[derive(Debug)]
#[non_exhaustive]
pub enum PromptEncoders<B: Backend> {
    /// One tokenizer and CLIP text encoder (SD 1.x, 2.x).
    Clip(PromptEncoder<B>),
    /// SDXL's two tokenizers and text encoders.
    Sdxl(SdxlPromptEncoder<B>),
}

impl<B: Backend> PromptEncoders<B> {
    /// Embeddings of `prompt` and of `negative` (the empty prompt when
    /// `None`; zeros under SDXL's `force_zeros_for_empty_prompt`), with the
    /// pooled embeddings for SDXL.
    pub fn encode_with_negative(
        &self,
        prompt: &str,
        negative: Option<&str>,
    ) -> Result<PromptEmbeddings<B>> {
        Ok(match self {
            Self::Clip(e) => e.encode_with_negative(prompt, negative)?,
            Self::Sdxl(e) => e.encode_with_negative(prompt, negative)?.embeddings(),
        })
    }

    /// The single CLIP encoder of SD 1.x and 2.x; `None` for SDXL.
    pub fn clip(&self) -> Option<&PromptEncoder<B>> {
        match self {
            Self::Clip(e) => Some(e),
            Self::Sdxl(_) => None,
        }
    }

    /// SDXL's encoders; `None` for SD 1.x and 2.x.
    pub fn sdxl(&self) -> Option<&SdxlPromptEncoder<B>> {
        match self {
            Self::Clip(_) => None,
            Self::Sdxl(e) => Some(e),
        }
    }
}

impl<B: AutodiffBackend> PromptEncoders<B> {
    /// The same encoders on the inner (forward-only) backend; shares the
    /// weights.
    pub fn inner(&self) -> PromptEncoders<B::InnerBackend> {
        match self {
            Self::Clip(e) => PromptEncoders::Clip(e.inner()),
            Self::Sdxl(e) => PromptEncoders::Sdxl(e.inner()),
        }
    }
}

/// UNet, VAE, prompt encoders and scheduler config of one diffusers folder
/// of any [`PipelineFamily`]. Parameters are frozen (`no_grad`): gradients
/// flow to the latent only.
///
/// The latent scale is the VAE config's `scaling_factor` (0.18215 for SD
/// 1.x and 2.x, 0.13025 for SDXL). SDXL's VAE config also sets
/// `force_upcast` (run the VAE in float32 when the pipeline is in float16);
/// every model here runs in float32, so it changes nothing.
#[derive(Debug)]
pub struct SdPipeline<B: Backend> {
    /// Which kind of pipeline the folder holds.
    pub family: PipelineFamily,
    /// The noise predictor.
    pub unet: UNet2DConditionModel<B>,
    /// The autoencoder.
    pub vae: AutoencoderKL<B>,
    /// Tokenizers and text encoders.
    pub prompts: PromptEncoders<B>,
    /// The folder's scheduler config, read for DDIM (an SDXL folder's
    /// `EulerDiscreteScheduler` config gives DDIM its betas).
    pub scheduler: SchedulerConfig,
    /// Where the models live.
    pub device: B::Device,
}

impl<B: Backend> SdPipeline<B> {
    /// Loads a diffusers pipeline folder of either family, detected from
    /// its `model_index.json` ([`PipelineFamily::detect`]): `unet/`, `vae/`,
    /// `scheduler/scheduler_config.json`, and `tokenizer/` +
    /// `text_encoder/` (plus `tokenizer_2/` + `text_encoder_2/` for SDXL).
    pub fn load(dir: &Path, device: &B::Device) -> Result<Self> {
        if !dir.is_dir() {
            return Err(EditError::input(
                "model",
                format!("{} is not a folder", dir.display()),
            ));
        }
        let family = PipelineFamily::detect(dir)?;
        let unet = UNet2DConditionModel::load(&dir.join("unet"), device)?.no_grad();
        let vae = AutoencoderKL::load(&dir.join("vae"), device)?.no_grad();
        let tokenizer = ClipTokenizer::from_dir(&dir.join("tokenizer"))?;
        let text = ClipTextModel::load(&dir.join("text_encoder"), device)?.no_grad();
        let prompts = match family {
            PipelineFamily::StableDiffusion => {
                PromptEncoders::Clip(PromptEncoder::new(tokenizer, text, device.clone()))
            }
            PipelineFamily::StableDiffusionXl => PromptEncoders::Sdxl(SdxlPromptEncoder::new(
                (tokenizer, text),
                (
                    ClipTokenizer::from_dir(&dir.join("tokenizer_2"))?,
                    ClipTextModelWithProjection::load(&dir.join("text_encoder_2"), device)?
                        .no_grad(),
                ),
                optedit_cond::sdxl::force_zeros_for_empty_prompt(&model_index(dir))?,
                device.clone(),
            )),
        };
        let scheduler = SchedulerConfig::from_file(dir.join("scheduler/scheduler_config.json"))?;
        Ok(Self {
            family,
            unet,
            vae,
            prompts,
            scheduler,
            device: device.clone(),
        })
    }

    /// Embeddings of `prompt` and of `negative` (the empty prompt when
    /// `None`), with SDXL's pooled embeddings, detached from any autodiff
    /// graph. On an autodiff backend the text encoders still run there;
    /// [`Editor::encode_prompt`](crate::Editor::encode_prompt) runs them on
    /// the inner backend instead, keeping no autodiff bookkeeping.
    pub fn encode_prompt(
        &self,
        prompt: &str,
        negative: Option<&str>,
    ) -> Result<PromptEmbeddings<B>> {
        Ok(self
            .prompts
            .encode_with_negative(prompt, negative)?
            .detach())
    }

    /// `z0 = scaling_factor * mean(E(x))` for an image `[1, 3, H, W]` in `[-1, 1]`.
    pub fn encode_image(&self, image: Tensor<B, 4>) -> Result<Tensor<B, 4>> {
        let dist = self.vae.encode(image)?;
        Ok(dist.mean.mul_scalar(self.vae.scaling_factor()).detach())
    }

    /// `D(z / scaling_factor)`, clamped to `[-1, 1]`.
    pub fn decode_latent(&self, latent: Tensor<B, 4>) -> Result<Tensor<B, 4>> {
        let image = self
            .vae
            .decode(latent.div_scalar(self.vae.scaling_factor()))?;
        Ok(image.clamp(-1.0, 1.0).detach())
    }

    /// Latent size `[h, w]` of an image of `height x width` pixels.
    pub fn latent_size(&self, height: usize, width: usize) -> [usize; 2] {
        let f = self.vae_scale();
        [height / f, width / f]
    }

    /// Down-sampling factor of the VAE (8 for SD).
    pub fn vae_scale(&self) -> usize {
        1usize << (self.vae.config.block_out_channels.len() - 1)
    }
}

impl<B: AutodiffBackend> SdPipeline<B> {
    /// The same models on the inner backend (`B::InnerBackend`), for
    /// forward-only work: inversion, mask estimation, DiffEdit, SDEdit,
    /// sampling, encoding and decoding run there without autodiff
    /// bookkeeping. Shares the weights (no copy); cheap enough to call per
    /// edit. [`Editor`](crate::Editor) does this itself.
    pub fn inner(&self) -> SdPipeline<B::InnerBackend> {
        SdPipeline {
            family: self.family,
            unet: self.unet.valid(),
            vae: self.vae.valid(),
            prompts: self.prompts.inner(),
            scheduler: self.scheduler.clone(),
            device: self.device.clone(),
        }
    }
}

/// `dir/model_index.json`.
fn model_index(dir: &Path) -> PathBuf {
    dir.join("model_index.json")
}
