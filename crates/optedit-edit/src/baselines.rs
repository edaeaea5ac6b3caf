//! The baselines the paper compares with, built from the same stages:
//! DiffEdit (Couairon et al., arXiv 2210.11427: estimated mask, DDIM
//! inversion, masked blending with the inversion while denoising) and SDEdit
//! (Meng et al., arXiv 2108.01073: noise to a strength, denoise under the
//! edit condition).

use std::time::Duration;

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use optedit_cond::PromptEmbeddings;

use crate::condition::EditCondition;
use crate::editor::Editor;
use crate::error::{EditError, Result};
use crate::graph::release_graphs;
use crate::mask::{MaskContext, MaskSource};
use crate::noise::NoiseSource;
use crate::progress::{Progress, Stage, Timer};
use crate::stages;
use crate::trajectory::StepTrajectory;

/// What a baseline produced.
#[derive(Debug, Clone)]
pub struct BaselineOutput<B: AutodiffBackend> {
    /// The edited image `[1, 3, H, W]` in `[-1, 1]`.
    pub image: Tensor<B, 4>,
    /// The edited clean latent.
    pub latent: Tensor<B, 4>,
    /// The mask (DiffEdit), `[1, 1, h, w]`.
    pub mask: Option<Tensor<B, 4>>,
    /// Wall time of each stage.
    pub timings: Vec<(Stage, Duration)>,
}

impl<B: AutodiffBackend> Editor<'_, B> {
    /// DiffEdit: mask from `mask_source` (normally
    /// [`EstimatedMask`](crate::EstimatedMask)), inversion under `source` from
    /// `config.strength`, then denoising under `condition` where, after every
    /// step, the latent outside the mask is replaced by the inversion's.
    pub fn diffedit(
        &self,
        image: Tensor<B, 4>,
        source: &PromptEmbeddings<B>,
        condition: &EditCondition<'_, B>,
        mask_source: &mut dyn MaskSource<B>,
        progress: &mut dyn Progress,
    ) -> Result<BaselineOutput<B>> {
        condition.validate()?;
        let mut timer = Timer::new();
        let z0 = self.encode(image.clone())?;
        timer.lap(Stage::Encode);
        let inversion = self.invert(z0, source, progress)?;
        timer.lap(Stage::Invert);
        let ctx = MaskContext {
            pipeline: self.pipeline(),
            image: &image,
            source,
            target: condition,
            guidance_scale: self.config().guidance_scale,
            seed: self.config().seed,
        };
        let mask = mask_source.mask(&ctx)?;
        release_graphs::<B>(&self.pipeline().device);
        timer.lap(Stage::Mask);
        let out = self.denoise_blended(&inversion, &mask, condition, progress)?;
        timer.lap(Stage::Denoise);
        let latent = out.last().clone();
        let image = self.decode(latent.clone())?;
        timer.lap(Stage::Decode);
        Ok(BaselineOutput {
            image,
            latent,
            mask: Some(mask),
            timings: timer.timings,
        })
    }

    /// DiffEdit's denoising loop on its own: from the inversion's first
    /// latent, blending with the inversion outside `mask` after every step.
    pub fn denoise_blended(
        &self,
        inversion: &StepTrajectory<B>,
        mask: &Tensor<B, 4>,
        condition: &EditCondition<'_, B>,
        progress: &mut dyn Progress,
    ) -> Result<StepTrajectory<B>> {
        stages::check_inversion(inversion, self.scheduler(), self.config())?;
        let [_, _, h, w] = inversion.first().dims();
        if mask.dims() != [1, 1, h, w] {
            return Err(EditError::input(
                "mask",
                format!("shape {:?}, expected [1, 1, {h}, {w}]", mask.dims()),
            ));
        }
        stages::denoise(
            self.scheduler(),
            self.config(),
            Stage::Denoise,
            &self.edit_denoiser(condition),
            inversion.first().clone(),
            inversion.start,
            None,
            Some(stages::Blend {
                mask,
                reference: inversion,
            }),
            progress,
        )
    }

    /// SDEdit: `z0` noised with seeded noise to the level of
    /// `config.strength`, then denoised under `condition`.
    pub fn sdedit(
        &self,
        image: Tensor<B, 4>,
        condition: &EditCondition<'_, B>,
        progress: &mut dyn Progress,
    ) -> Result<BaselineOutput<B>> {
        condition.validate()?;
        let mut timer = Timer::new();
        let z0 = self.encode(image)?;
        timer.lap(Stage::Encode);
        let start = self.config().start_step();
        let t = self.scheduler().timesteps()[start];
        let noise = NoiseSource::new(self.config().seed).normal(z0.dims(), &self.pipeline().device);
        let zt = self.scheduler().add_noise(z0, noise, &[t])?;
        let out = stages::denoise(
            self.scheduler(),
            self.config(),
            Stage::Denoise,
            &self.edit_denoiser(condition),
            zt,
            start,
            None,
            None,
            progress,
        )?;
        timer.lap(Stage::Denoise);
        let latent = out.last().clone();
        let image = self.decode(latent.clone())?;
        timer.lap(Stage::Decode);
        Ok(BaselineOutput {
            image,
            latent,
            mask: None,
            timings: timer.timings,
        })
    }
}
