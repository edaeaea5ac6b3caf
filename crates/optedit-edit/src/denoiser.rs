//! The noise predictor of the edit: UNet plus ControlNet residuals with
//! classifier-free guidance, as diffusers' `StableDiffusionControlNetPipeline`
//! computes it (`[uncond; cond]` batch, ControlNets on both halves), with
//! SDXL's added conditions (pooled text embeddings and size conditions)
//! batched the same way.

use burn::tensor::{backend::Backend, Tensor};
use optedit_cond::{sdxl_add_time_ids, PooledEmbeddings, PromptEmbeddings, SizeConditions};
use optedit_models::{AddedConditions, ControlResiduals, UNet2DConditionModel};

use crate::condition::{repeat_batch, ControlCondition};
use crate::error::{EditError, Result};
use crate::pipeline::SdPipeline;

/// Predicts the model output of a latent under one condition.
#[derive(Debug, Clone)]
pub struct Denoiser<'a, B: Backend> {
    unet: &'a UNet2DConditionModel<B>,
    cond: Tensor<B, 3>,
    uncond: Tensor<B, 3>,
    guidance_scale: f64,
    controls: Vec<ControlCondition<'a, B>>,
    pooled: Option<PooledEmbeddings<B>>,
    vae_scale: usize,
    size_conditions: Option<SizeConditions>,
}

impl<'a, B: Backend> Denoiser<'a, B> {
    /// A denoiser without added conditions (SD 1.x, 2.x); with
    /// `guidance_scale == 1` only the conditional branch runs.
    pub fn new(
        unet: &'a UNet2DConditionModel<B>,
        cond: Tensor<B, 3>,
        uncond: Tensor<B, 3>,
        guidance_scale: f64,
        controls: Vec<ControlCondition<'a, B>>,
    ) -> Self {
        Self {
            unet,
            cond,
            uncond,
            guidance_scale,
            controls,
            pooled: None,
            vae_scale: 1,
            size_conditions: None,
        }
    }

    /// A denoiser of `pipeline`'s UNet under `prompt`: its token embeddings
    /// and, for SDXL, its pooled embeddings with the size conditions of the
    /// latent's image (original size = target size = the latent's size
    /// times the VAE factor, no crop: the default of diffusers' SDXL
    /// img2img and inpainting pipelines).
    pub fn for_prompt(
        pipeline: &'a SdPipeline<B>,
        prompt: &PromptEmbeddings<B>,
        guidance_scale: f64,
        controls: Vec<ControlCondition<'a, B>>,
    ) -> Self {
        Self {
            pooled: prompt.pooled.clone(),
            vae_scale: pipeline.vae_scale(),
            ..Self::new(
                &pipeline.unet,
                prompt.cond.clone(),
                prompt.uncond.clone(),
                guidance_scale,
                controls,
            )
        }
    }

    /// Uses `sizes` as SDXL's size conditions whatever the latent's size
    /// (no effect without pooled embeddings).
    pub fn with_size_conditions(mut self, sizes: SizeConditions) -> Self {
        self.size_conditions = Some(sizes);
        self
    }

    /// The UNet.
    pub fn unet(&self) -> &'a UNet2DConditionModel<B> {
        self.unet
    }

    /// SDXL's added conditions for a batch `x` of `n` latents made of
    /// `b`-sized halves; `None` without pooled embeddings.
    fn added(
        &self,
        x: &Tensor<B, 4>,
        b: usize,
        guided: bool,
    ) -> Result<Option<AddedConditions<B>>> {
        let Some(pooled) = &self.pooled else {
            return Ok(None);
        };
        let [n, _, h, w] = x.dims();
        let text_embeds = if guided {
            Tensor::cat(
                vec![
                    repeat_batch(&pooled.uncond, b),
                    repeat_batch(&pooled.cond, b),
                ],
                0,
            )
        } else {
            repeat_batch(&pooled.cond, b)
        };
        let sizes = self
            .size_conditions
            .unwrap_or_else(|| SizeConditions::uncropped(h * self.vae_scale, w * self.vae_scale));
        let time_ids = sdxl_add_time_ids::<B>(&vec![sizes; n], &x.device())?;
        Ok(Some(AddedConditions {
            text_embeds,
            time_ids,
        }))
    }

    /// Model output for `latent` `[b, c, h, w]` at `timestep`, during
    /// denoising step `step` of `total` (which decides the active ControlNets).
    pub fn predict(
        &self,
        latent: Tensor<B, 4>,
        timestep: usize,
        step: usize,
        total: usize,
    ) -> Result<Tensor<B, 4>> {
        let b = latent.dims()[0];
        let guided = self.guidance_scale != 1.0;
        let (x, ctx) = if guided {
            (
                Tensor::cat(vec![latent.clone(), latent], 0),
                Tensor::cat(
                    vec![repeat_batch(&self.uncond, b), repeat_batch(&self.cond, b)],
                    0,
                ),
            )
        } else {
            (latent, repeat_batch(&self.cond, b))
        };
        let added = self.added(&x, b, guided)?;
        let n = x.dims()[0];
        let device = x.device();
        let t = Tensor::<B, 1>::from_data([timestep as f32].as_slice(), &device);
        let mut residuals: Option<ControlResiduals<B>> = None;
        for (i, c) in self.controls.iter().enumerate() {
            if !c.active(step, total) {
                continue;
            }
            let [ib, ..] = c.image.dims();
            let image = match ib {
                1 => c.image.clone().repeat_dim(0, n),
                m if m == n => c.image.clone(),
                m => {
                    return Err(EditError::input(
                        format!("controls[{i}].image"),
                        format!("batch {m}, expected 1 or {n}"),
                    ))
                }
            };
            // SDXL ControlNets take the UNet's added conditions too.
            let r = c.model.forward_with_conditions(
                x.clone(),
                t.clone(),
                ctx.clone(),
                image,
                c.scale,
                added
                    .as_ref()
                    .filter(|_| c.model.config.added_conditions().is_some()),
            )?;
            residuals = Some(match residuals {
                Some(acc) => acc.add(r),
                None => r,
            });
        }
        let out =
            self.unet
                .forward_with_conditions(x, t, ctx, added.as_ref(), residuals.as_ref())?;
        if guided {
            let mut halves = out.chunk(2, 0);
            let c = halves.pop().expect("two halves");
            let u = halves.pop().expect("two halves");
            Ok(u.clone() + (c - u).mul_scalar(self.guidance_scale))
        } else {
            Ok(out)
        }
    }
}
