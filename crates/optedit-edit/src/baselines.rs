//! The baselines the paper compares with, built from the same stages:
//! DiffEdit (Couairon et al., arXiv 2210.11427: estimated mask, DDIM
//! inversion, masked blending with the inversion while denoising) and SDEdit
//! (Meng et al., arXiv 2108.01073: noise to a strength, denoise under the
//! edit condition).

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};
use optedit_cond::PromptEmbeddings;

use crate::condition::EditCondition;
use crate::editor::{EditOutput, Editor};
use crate::error::{EditError, Result};
use crate::mask::MaskSource;
use crate::method::Method;
use crate::noise::NoiseSource;
use crate::progress::{Progress, Stage, Timer};
use crate::stages;
use optedit_schedule::Trajectory;

impl<B: AutodiffBackend> Editor<'_, B> {
    /// Edits `image` with `method`: [`Editor::edit`], [`Editor::diffedit`]
    /// or [`Editor::sdedit`] (which uses neither `source` nor
    /// `mask_source`). One output type for all of them.
    pub fn edit_with(
        &self,
        method: Method,
        image: Tensor<B, 4>,
        source: &PromptEmbeddings<B>,
        condition: &EditCondition<'_, B>,
        mask_source: &mut dyn MaskSource<B::InnerBackend>,
        progress: &mut dyn Progress,
    ) -> Result<EditOutput<B>> {
        match method {
            Method::Optimise => self.edit(image, source, condition, mask_source, progress),
            Method::DiffEdit => self.diffedit(image, source, condition, mask_source, progress),
            Method::SdEdit => self.sdedit(image, condition, progress),
        }
    }

    /// DiffEdit: mask from `mask_source` (normally
    /// [`EstimatedMask`](crate::EstimatedMask)), inversion under `source` from
    /// `config.strength`, then denoising under `condition` where, after every
    /// step, the latent outside the mask is replaced by the inversion's.
    pub fn diffedit(
        &self,
        image: Tensor<B, 4>,
        source: &PromptEmbeddings<B>,
        condition: &EditCondition<'_, B>,
        mask_source: &mut dyn MaskSource<B::InnerBackend>,
        progress: &mut dyn Progress,
    ) -> Result<EditOutput<B>> {
        condition.validate()?;
        let mut timer = Timer::new();
        let z0 = self.encode(image.clone())?;
        timer.lap(Stage::Encode);
        let inversion = self.invert(z0, source, progress)?;
        timer.lap(Stage::Invert);
        let mask = self.mask(&image, source, condition, mask_source)?;
        let mask_empty = mask.clone().inner().max().into_scalar().elem::<f64>() <= 0.0;
        timer.lap(Stage::Mask);
        let out = self.denoise_blended(&inversion, &mask, condition, progress)?;
        timer.lap(Stage::Denoise);
        let latent = out.last().clone();
        let image = self.decode(latent.clone())?;
        timer.lap(Stage::Decode);
        Ok(EditOutput {
            image,
            latent,
            mask: Some(mask),
            inversion: Some(inversion),
            guidance: None,
            timings: timer.timings,
            mask_empty,
        })
    }

    /// DiffEdit's denoising loop on its own: from the inversion's first
    /// latent, blending with the inversion outside `mask` after every step.
    pub fn denoise_blended(
        &self,
        inversion: &Trajectory<B>,
        mask: &Tensor<B, 4>,
        condition: &EditCondition<'_, B>,
        progress: &mut dyn Progress,
    ) -> Result<Trajectory<B>> {
        stages::check_inversion(inversion, self.scheduler(), self.config())?;
        let [_, _, h, w] = inversion.first().dims();
        if mask.dims() != [1, 1, h, w] {
            return Err(EditError::input(
                "mask",
                format!("shape {:?}, expected [1, 1, {h}, {w}]", mask.dims()),
            ));
        }
        let nets = condition.inner_nets();
        let forward = condition.inner(&nets);
        stages::denoise(
            self.scheduler(),
            self.config(),
            Stage::Denoise,
            &self.forward_edit_denoiser(&forward),
            inversion.first().clone().inner(),
            inversion.start..inversion.num_steps(),
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
    ) -> Result<EditOutput<B>> {
        condition.validate()?;
        let mut timer = Timer::new();
        let z0 = self.encode(image)?;
        timer.lap(Stage::Encode);
        let start = self.config().start_step();
        let t = self.scheduler().timesteps()[start];
        let noise = NoiseSource::new(self.config().seed).normal(z0.dims(), &self.pipeline().device);
        let zt = self.scheduler().add_noise(z0.inner(), noise, &[t])?;
        let nets = condition.inner_nets();
        let forward = condition.inner(&nets);
        let out = stages::denoise(
            self.scheduler(),
            self.config(),
            Stage::Denoise,
            &self.forward_edit_denoiser(&forward),
            zt,
            start..self.config().num_steps,
            None,
            None,
            progress,
        )?;
        timer.lap(Stage::Denoise);
        let latent = out.last().clone();
        let image = self.decode(latent.clone())?;
        timer.lap(Stage::Decode);
        Ok(EditOutput {
            image,
            latent,
            mask: None,
            inversion: None,
            guidance: None,
            timings: timer.timings,
            mask_empty: false,
        })
    }
}
