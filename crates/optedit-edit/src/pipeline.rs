//! [`SdPipeline`]: the models of a diffusers Stable Diffusion folder, loaded
//! once and shared by the editor and the baselines.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{backend::Backend, Tensor};
use optedit_cond::{ClipTokenizer, PromptEmbeddings, PromptEncoder};
use optedit_models::{AutoencoderKL, ClipTextModel, UNet2DConditionModel};
use optedit_schedule::SchedulerConfig;

use crate::error::{EditError, Result};

/// UNet, VAE, prompt encoder and scheduler config of one SD 1.x folder.
/// Parameters are frozen (`no_grad`): gradients flow to the latent only.
#[derive(Debug)]
pub struct SdPipeline<B: Backend> {
    /// The noise predictor.
    pub unet: UNet2DConditionModel<B>,
    /// The autoencoder.
    pub vae: AutoencoderKL<B>,
    /// Tokenizer and text encoder.
    pub prompts: PromptEncoder<B>,
    /// The folder's DDIM scheduler config.
    pub scheduler: SchedulerConfig,
    /// Where the models live.
    pub device: B::Device,
}

impl<B: Backend> SdPipeline<B> {
    /// Loads `unet/`, `vae/`, `text_encoder/`, `tokenizer/` and
    /// `scheduler/scheduler_config.json` of a diffusers folder.
    pub fn load(dir: &Path, device: &B::Device) -> Result<Self> {
        if !dir.is_dir() {
            return Err(EditError::input(
                "model",
                format!("{} is not a folder", dir.display()),
            ));
        }
        let unet = UNet2DConditionModel::load(&dir.join("unet"), device)?.no_grad();
        let vae = AutoencoderKL::load(&dir.join("vae"), device)?.no_grad();
        let tokenizer = ClipTokenizer::from_dir(&dir.join("tokenizer"))?;
        let text = ClipTextModel::load(&dir.join("text_encoder"), device)?.no_grad();
        let scheduler = SchedulerConfig::from_file(dir.join("scheduler/scheduler_config.json"))?;
        Ok(Self {
            unet,
            vae,
            prompts: PromptEncoder::new(tokenizer, text, device.clone()),
            scheduler,
            device: device.clone(),
        })
    }

    /// Embeddings of `prompt` and of `negative` (the empty prompt when `None`),
    /// detached from any autodiff graph.
    pub fn encode_prompt(
        &self,
        prompt: &str,
        negative: Option<&str>,
    ) -> Result<PromptEmbeddings<B>> {
        let e = self.prompts.encode_with_negative(prompt, negative)?;
        Ok(PromptEmbeddings {
            cond: e.cond.detach(),
            uncond: e.uncond.detach(),
        })
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
        let f = 1usize << (self.vae.config.block_out_channels.len() - 1);
        [height / f, width / f]
    }

    /// Down-sampling factor of the VAE (8 for SD).
    pub fn vae_scale(&self) -> usize {
        1usize << (self.vae.config.block_out_channels.len() - 1)
    }
}
