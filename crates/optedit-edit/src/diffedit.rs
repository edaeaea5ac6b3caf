//! DiffEdit mask estimation (Couairon et al., "DiffEdit: Diffusion-based
//! semantic image editing with mask guidance", arXiv 2210.11427), step for
//! step as diffusers' `StableDiffusionDiffEditPipeline.generate_mask`: the
//! random draws are passed in, so a run with diffusers' draws reproduces its
//! mask exactly.

use burn::tensor::{backend::Backend, ElementConversion, Tensor};
use optedit_cond::{PooledEmbeddings, PromptEmbeddings};
use optedit_schedule::DdimScheduler;

use crate::condition::EditCondition;
use crate::denoiser::Denoiser;
use crate::error::{EditError, Result};
use crate::pipeline::SdPipeline;

/// Parameters of the mask estimation (diffusers' names and defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiffEditMaskConfig {
    /// Noise draws averaged into one map (`num_maps_per_mask`, default 10).
    pub num_maps: usize,
    /// Noise level of the encoding (`mask_encode_strength`, default 0.5).
    pub strength: f64,
    /// Clamp ratio `r`: the map is clamped to `[0, r * mean]` and normalised
    /// (`mask_thresholding_ratio`, default 3).
    pub threshold_ratio: f64,
    /// Steps of the schedule the encode timestep is taken from (default 50).
    pub num_inference_steps: usize,
}

impl Default for DiffEditMaskConfig {
    fn default() -> Self {
        Self {
            num_maps: 10,
            strength: 0.5,
            threshold_ratio: 3.0,
            num_inference_steps: 50,
        }
    }
}

/// The random tensors `generate_mask` draws, in draw order, each
/// `[num_maps, latent_channels, h, w]`.
#[derive(Debug, Clone)]
pub struct MaskDraws<B: Backend> {
    /// Noise of `latent_dist.sample()` (mean + std * noise).
    pub vae_noise: Tensor<B, 4>,
    /// Noise of `scheduler.add_noise`.
    pub add_noise: Tensor<B, 4>,
}

/// The estimate and its intermediate values.
#[derive(Debug, Clone)]
pub struct MaskEstimate<B: Backend> {
    /// The timestep the latents were noised to.
    pub encode_timestep: usize,
    /// The noised latents fed to the UNet, `[num_maps, c, h, w]`.
    pub noisy_latents: Tensor<B, 4>,
    /// `mean over maps and channels |eps_target - eps_source|`, `[1, h, w]`.
    pub guidance_map: Tensor<B, 3>,
    /// The binary mask `[1, h, w]`.
    pub mask: Tensor<B, 3>,
}

/// Estimates the edit mask of `image` (`[1, 3, H, W]` in `[-1, 1]`) between
/// the `source` prompt and the `target` condition (its ControlNets included),
/// both with classifier-free guidance `guidance_scale`.
pub fn estimate_mask<B: Backend>(
    pipeline: &SdPipeline<B>,
    image: Tensor<B, 4>,
    source: &PromptEmbeddings<B>,
    target: &EditCondition<'_, B>,
    guidance_scale: f64,
    config: &DiffEditMaskConfig,
    draws: MaskDraws<B>,
) -> Result<MaskEstimate<B>> {
    let n = config.num_maps;
    if n == 0 {
        return Err(EditError::input("num_maps", "must be at least 1"));
    }
    if !(config.strength > 0.0 && config.strength <= 1.0) {
        return Err(EditError::input(
            "strength",
            format!("{} must be in (0, 1]", config.strength),
        ));
    }
    if !(config.threshold_ratio > 0.0) {
        return Err(EditError::input("threshold_ratio", "must be positive"));
    }
    if image.dims()[0] != 1 {
        return Err(EditError::input("image", "one image at a time"));
    }
    // diffusers encodes `n` copies of the image; the copies' moments are
    // identical, so encode once and repeat them.
    let one = pipeline.vae.encode(image)?;
    let dist = optedit_models::DiagonalGaussian {
        mean: one.mean.repeat_dim(0, n),
        logvar: one.logvar.repeat_dim(0, n),
    };
    if draws.vae_noise.dims() != dist.mean.dims() || draws.add_noise.dims() != dist.mean.dims() {
        return Err(EditError::input(
            "draws",
            format!("noise shapes must be {:?}", dist.mean.dims()),
        ));
    }
    let latents = dist
        .sample(draws.vae_noise)
        .mul_scalar(pipeline.vae.scaling_factor());
    let mut scheduler = DdimScheduler::new(pipeline.scheduler.clone())?;
    scheduler.set_timesteps(config.num_inference_steps)?;
    let steps = scheduler.timesteps().len();
    let init = ((steps as f64 * config.strength) as usize).min(steps);
    let t = scheduler.timesteps()[(steps - init).min(steps - 1)];
    let noisy = scheduler.add_noise(latents, draws.add_noise, &[t])?;

    // diffusers batches the embeddings as [source, negative, target, negative]
    // but unpacks the predictions as [negative, source, negative, target], so
    // its "guided" predictions are `cond + w * (uncond - cond)`. That is
    // reproduced here (roles swapped in the denoiser): with equal negative
    // prompts the map is `(w - 1) |eps_t - eps_s|` instead of `w |...|`, the
    // same mask after normalisation, and the same numbers as diffusers.
    // SDXL's pooled embeddings are swapped with the token embeddings.
    let swapped = |p: &PromptEmbeddings<B>| PromptEmbeddings {
        cond: p.uncond.clone(),
        uncond: p.cond.clone(),
        pooled: p.pooled.as_ref().map(|q| PooledEmbeddings {
            cond: q.uncond.clone(),
            uncond: q.cond.clone(),
        }),
    };
    let src = Denoiser::for_prompt(pipeline, &swapped(source), guidance_scale, Vec::new());
    let tgt = Denoiser::for_prompt(
        pipeline,
        &swapped(&target.prompt),
        guidance_scale,
        target.controls.clone(),
    );
    let eps_src = src.predict(noisy.clone(), t, 0, 1)?;
    let eps_tgt = tgt.predict(noisy.clone(), t, 0, 1)?;
    let [_, c, h, w] = eps_src.dims();
    let map = (eps_tgt - eps_src)
        .abs()
        .reshape([1, n * c, h, w])
        .mean_dim(1)
        .reshape([1, h, w]);
    let clamp = map.clone().mean().into_scalar().elem::<f64>() * config.threshold_ratio;
    let normalised = map.clone().clamp(0.0, clamp).div_scalar(clamp);
    let mask = normalised.greater_elem(0.5).float();
    Ok(MaskEstimate {
        encode_timestep: t,
        noisy_latents: noisy,
        guidance_map: map,
        mask,
    })
}
