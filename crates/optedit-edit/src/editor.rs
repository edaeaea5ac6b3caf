//! [`Editor`]: the whole method — encode, invert, mask, guidance trajectory,
//! optimisation, decode — on one [`SdPipeline`].

use std::time::Duration;

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
use optedit_cond::{PromptEmbeddings, SizeConditions};
use optedit_schedule::DdimScheduler;

use crate::condition::{ControlCondition, EditCondition};
use crate::config::EditConfig;
use crate::denoiser::Denoiser;
use crate::error::{EditError, Result};
use crate::loss::Objective;
use crate::mask::{MaskContext, MaskSource};
use crate::noise::NoiseSource;
use crate::optimizer::LatentOptimizer;
use crate::pipeline::SdPipeline;
use crate::progress::{emit, Progress, ProgressEvent, Stage, Timer};
use crate::stages;
use optedit_schedule::Trajectory;

/// Everything an edit produced, by any method: the whole method
/// ([`Editor::edit`]), DiffEdit ([`Editor::diffedit`]) or SDEdit
/// ([`Editor::sdedit`]).
#[derive(Debug, Clone)]
pub struct EditOutput<B: AutodiffBackend> {
    /// The edited image `[1, 3, H, W]` in `[-1, 1]`.
    pub image: Tensor<B, 4>,
    /// The edited clean latent.
    pub latent: Tensor<B, 4>,
    /// The mask used, `[1, 1, h, w]` at latent resolution (`None` for
    /// SDEdit, which uses none).
    pub mask: Option<Tensor<B, 4>>,
    /// The DDIM inversion (the method's preservation targets, DiffEdit's
    /// blending reference; `None` for SDEdit).
    pub inversion: Option<Trajectory<B>>,
    /// The guidance trajectory, when one was made (the method at
    /// lambda < 1): complete when it had to be or
    /// [`EditConfig::guidance_to_end`] asked for it, else only as far as
    /// the main stage read it ([`EditConfig::guidance_steps`]).
    pub guidance: Option<Trajectory<B>>,
    /// Wall time of each stage.
    pub timings: Vec<(Stage, Duration)>,
    /// Whether the mask was empty, so that the result is the plain DDIM
    /// reconstruction (nothing was allowed to change).
    pub mask_empty: bool,
}

/// Makes a fresh latent optimiser for one optimised stage.
pub type OptimizerFactory<'p, B> =
    dyn Fn() -> Box<dyn LatentOptimizer<<B as AutodiffBackend>::InnerBackend>> + 'p;

/// Runs optimisation-based edits with one pipeline and one config.
pub struct Editor<'p, B: AutodiffBackend> {
    pipeline: &'p SdPipeline<B>,
    /// The same models on the inner backend, for forward-only work.
    forward: SdPipeline<B::InnerBackend>,
    config: EditConfig,
    scheduler: DdimScheduler,
    optimizer: Option<Box<OptimizerFactory<'p, B>>>,
    size_conditions: Option<SizeConditions>,
}

impl<B: AutodiffBackend> std::fmt::Debug for Editor<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Editor")
            .field("config", &self.config)
            .field("scheduler", &self.scheduler)
            .field("size_conditions", &self.size_conditions)
            .field(
                "optimizer",
                &if self.optimizer.is_some() {
                    "custom".to_string()
                } else {
                    self.config.optimizer.to_string()
                },
            )
            .finish_non_exhaustive()
    }
}

impl<'p, B: AutodiffBackend> Editor<'p, B> {
    /// Checks `config` and prepares the schedule.
    pub fn new(pipeline: &'p SdPipeline<B>, config: EditConfig) -> Result<Self> {
        config.validate()?;
        let mut scheduler = DdimScheduler::new(pipeline.scheduler.clone())?;
        scheduler.set_timesteps(config.num_steps)?;
        Ok(Self {
            pipeline,
            forward: pipeline.inner(),
            config,
            scheduler,
            optimizer: None,
            size_conditions: None,
        })
    }

    /// Gives an SDXL pipeline's UNet these size conditions in every stage
    /// of this editor (inversion, guidance, optimisation, DiffEdit's and
    /// SDEdit's denoising) instead of the image's own size uncropped, which
    /// is the default, as in diffusers' SDXL img2img and inpainting
    /// pipelines. DiffEdit's mask estimation ([`crate::EstimatedMask`])
    /// keeps the default. No effect on SD 1.x and 2.x.
    pub fn with_size_conditions(mut self, sizes: SizeConditions) -> Self {
        self.size_conditions = Some(sizes);
        self
    }

    /// The size conditions set by [`Editor::with_size_conditions`].
    pub fn size_conditions(&self) -> Option<SizeConditions> {
        self.size_conditions
    }

    /// A denoiser of this editor's pipeline under `prompt`, with its size
    /// conditions.
    fn denoiser<'c, C: Backend>(
        &self,
        pipeline: &'c SdPipeline<C>,
        prompt: &PromptEmbeddings<C>,
        guidance_scale: f64,
        controls: Vec<ControlCondition<'c, C>>,
    ) -> Denoiser<'c, C> {
        let d = Denoiser::for_prompt(pipeline, prompt, guidance_scale, controls);
        match self.size_conditions {
            Some(sizes) => d.with_size_conditions(sizes),
            None => d,
        }
    }

    /// The forward-only denoiser of the source prompt (already on the inner
    /// backend) at the inversion's guidance scale.
    fn forward_source_denoiser<'c>(
        &'c self,
        source: &PromptEmbeddings<B::InnerBackend>,
    ) -> Denoiser<'c, B::InnerBackend> {
        self.denoiser(
            &self.forward,
            source,
            self.config.inversion_guidance_scale,
            Vec::new(),
        )
    }

    /// The forward-only denoiser of `condition` (already on the inner
    /// backend) at the edit's guidance scale.
    pub(crate) fn forward_edit_denoiser<'c>(
        &'c self,
        condition: &EditCondition<'c, B::InnerBackend>,
    ) -> Denoiser<'c, B::InnerBackend> {
        self.denoiser(
            &self.forward,
            &condition.prompt,
            self.config.guidance_scale,
            condition.controls.clone(),
        )
    }

    /// Uses the optimisers `make` makes (a fresh one for each optimised
    /// stage: guidance and main) instead of `config.optimizer`.
    pub fn with_optimizer(
        mut self,
        make: impl Fn() -> Box<dyn LatentOptimizer<B::InnerBackend>> + 'p,
    ) -> Self {
        self.optimizer = Some(Box::new(make));
        self
    }

    /// A fresh optimiser for one optimised stage: the custom one, or the
    /// config's kind.
    fn new_optimizer(&self) -> Box<dyn LatentOptimizer<B::InnerBackend>> {
        match &self.optimizer {
            Some(make) => make(),
            None => self.config.optimizer.build(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EditConfig {
        &self.config
    }

    /// The DDIM schedule.
    pub fn scheduler(&self) -> &DdimScheduler {
        &self.scheduler
    }

    /// The pipeline.
    pub fn pipeline(&self) -> &'p SdPipeline<B> {
        self.pipeline
    }

    /// The pipeline's models on the inner backend, where the editor runs
    /// every forward-only stage ([`SdPipeline::inner`]).
    pub fn forward_pipeline(&self) -> &SdPipeline<B::InnerBackend> {
        &self.forward
    }

    /// Embeddings of `prompt` and `negative` (see
    /// [`SdPipeline::encode_prompt`]), computed on the inner backend, so no
    /// autodiff bookkeeping is kept.
    pub fn encode_prompt(
        &self,
        prompt: &str,
        negative: Option<&str>,
    ) -> Result<PromptEmbeddings<B>> {
        Ok(PromptEmbeddings::from_inner(
            self.forward.encode_prompt(prompt, negative)?,
        ))
    }

    /// The edit mask `mask_source` gives for `image`, source and condition
    /// (asked on the inner backend), as an untracked tensor of `B`.
    pub fn mask(
        &self,
        image: &Tensor<B, 4>,
        source: &PromptEmbeddings<B>,
        condition: &EditCondition<'_, B>,
        mask_source: &mut dyn MaskSource<B::InnerBackend>,
    ) -> Result<Tensor<B, 4>> {
        let image = image.clone().inner();
        let source = source.inner();
        let nets = condition.inner_nets();
        let target = condition.inner(&nets);
        let ctx = MaskContext {
            pipeline: &self.forward,
            image: &image,
            source: &source,
            target: &target,
            guidance_scale: self.config.guidance_scale,
            seed: self.config.seed,
        };
        Ok(Tensor::from_inner(mask_source.mask(&ctx)?))
    }

    /// The denoiser of the source condition (inversion guidance scale).
    pub fn source_denoiser(&self, source: &PromptEmbeddings<B>) -> Denoiser<'p, B> {
        self.denoiser(
            self.pipeline,
            source,
            self.config.inversion_guidance_scale,
            Vec::new(),
        )
    }

    /// The denoiser of the edit condition (guidance scale `w`) that the
    /// gradient steps differentiate, through
    /// [`EditConfig::guidance_gradient`].
    pub fn edit_denoiser<'s>(&'s self, condition: &EditCondition<'s, B>) -> Denoiser<'s, B> {
        self.denoiser(
            self.pipeline,
            &condition.prompt,
            self.config.guidance_scale,
            condition.controls.clone(),
        )
        .with_gradient(self.config.guidance_gradient)
    }

    /// Stage 1: `z0` of an image `[1, 3, H, W]` in `[-1, 1]`.
    pub fn encode(&self, image: Tensor<B, 4>) -> Result<Tensor<B, 4>> {
        let [b, c, h, w] = image.dims();
        let f = self.pipeline.vae_scale();
        if b != 1 || c != 3 || h == 0 || w == 0 || h % f != 0 || w % f != 0 {
            return Err(EditError::input(
                "image",
                format!(
                    "shape {:?}: expected [1, 3, H, W] with H, W positive multiples of {f}",
                    image.dims()
                ),
            ));
        }
        let z0 = self.forward.encode_image(image.inner())?;
        Ok(Tensor::from_inner(z0))
    }

    /// Stage 1b: the inversion trajectory of `z0` under `source`.
    pub fn invert(
        &self,
        z0: Tensor<B, 4>,
        source: &PromptEmbeddings<B>,
        progress: &mut dyn Progress,
    ) -> Result<Trajectory<B>> {
        let source = source.inner();
        let denoiser = self.forward_source_denoiser(&source);
        stages::invert(
            &denoiser,
            &self.scheduler,
            &self.config,
            z0.inner(),
            progress,
        )
    }

    /// Stage 3: the guidance trajectory (random noise from the config's
    /// seed), optimised on `objective`'s guidance-stage terms.
    pub fn guidance(
        &self,
        z0: Tensor<B, 4>,
        inversion: &Trajectory<B>,
        mask: &Tensor<B, 4>,
        condition: &EditCondition<'_, B>,
        objective: &Objective<'_, B>,
        progress: &mut dyn Progress,
    ) -> Result<Trajectory<B>> {
        let noise = NoiseSource::new(self.config.seed).normal(z0.dims(), &self.pipeline.device);
        let mut optimizer = self.new_optimizer();
        let nets = condition.inner_nets();
        let forward = condition.inner(&nets);
        stages::guidance_trajectory(
            &self.forward_edit_denoiser(&forward),
            &self.edit_denoiser(condition),
            &self.scheduler,
            &self.config,
            z0.inner(),
            noise,
            inversion,
            mask,
            objective,
            optimizer.as_mut(),
            progress,
        )
    }

    /// Stage 4: the main optimisation with `objective`'s main-stage terms;
    /// returns the trajectory.
    pub fn optimise(
        &self,
        inversion: &Trajectory<B>,
        guidance: Option<&Trajectory<B>>,
        mask: &Tensor<B, 4>,
        condition: &EditCondition<'_, B>,
        objective: &Objective<'_, B>,
        progress: &mut dyn Progress,
    ) -> Result<Trajectory<B>> {
        let mut optimizer = self.new_optimizer();
        let nets = condition.inner_nets();
        let forward = condition.inner(&nets);
        stages::optimise(
            &self.forward_edit_denoiser(&forward),
            &self.edit_denoiser(condition),
            &self.scheduler,
            &self.config,
            inversion,
            guidance,
            mask,
            objective,
            optimizer.as_mut(),
            progress,
        )
    }

    /// Plain DDIM reconstruction: from the inversion's first latent, denoised
    /// under the source condition (with the inversion's guidance scale) and
    /// no optimisation. What an edit returns when its mask is empty.
    pub fn reconstruct(
        &self,
        inversion: &Trajectory<B>,
        source: &PromptEmbeddings<B>,
        progress: &mut dyn Progress,
    ) -> Result<Trajectory<B>> {
        stages::check_inversion(inversion, &self.scheduler, &self.config)?;
        let source = source.inner();
        let denoiser = self.forward_source_denoiser(&source);
        stages::denoise(
            &self.scheduler,
            &self.config,
            Stage::Denoise,
            &denoiser,
            inversion.first().clone().inner(),
            inversion.start..inversion.num_steps(),
            None,
            None,
            progress,
        )
    }

    /// Stage 5: decodes a clean latent to an image in `[-1, 1]`.
    pub fn decode(&self, latent: Tensor<B, 4>) -> Result<Tensor<B, 4>> {
        let image = self.forward.decode_latent(latent.inner())?;
        Ok(Tensor::from_inner(image))
    }

    /// The whole method with the default objective
    /// `lambda * L_pres + (1 - lambda) * L_guid` (measured in the config's
    /// [`EditConfig::loss_space`], the preservation loss weighted
    /// [`EditConfig::preservation_inside`] inside the mask).
    pub fn edit(
        &self,
        image: Tensor<B, 4>,
        source: &PromptEmbeddings<B>,
        condition: &EditCondition<'_, B>,
        mask: &mut dyn MaskSource<B::InnerBackend>,
        progress: &mut dyn Progress,
    ) -> Result<EditOutput<B>> {
        let objective = Objective::method_with(
            self.config.lambda,
            self.config.loss_space,
            self.config.preservation_inside,
        );
        self.edit_with_objective(image, source, condition, mask, &objective, progress)
    }

    /// The whole method with a custom objective (e.g. the default terms plus
    /// a user loss), whose terms reach the stages they are added to
    /// ([`Objective::with_in`]).
    pub fn edit_with_objective(
        &self,
        image: Tensor<B, 4>,
        source: &PromptEmbeddings<B>,
        condition: &EditCondition<'_, B>,
        mask_source: &mut dyn MaskSource<B::InnerBackend>,
        objective: &Objective<'_, B>,
        progress: &mut dyn Progress,
    ) -> Result<EditOutput<B>> {
        condition.validate()?;
        let mut timer = Timer::new();

        let z0 = self.encode(image.clone())?;
        emit(progress, event(Stage::Encode, 1, 1))?;
        timer.lap(Stage::Encode);

        let inversion = self.invert(z0.clone(), source, progress)?;
        timer.lap(Stage::Invert);

        let mask = self.mask(&image, source, condition, mask_source)?;
        let [_, _, lh, lw] = z0.dims();
        if mask.dims() != [1, 1, lh, lw] {
            return Err(EditError::input(
                "mask",
                format!("shape {:?}, expected [1, 1, {lh}, {lw}]", mask.dims()),
            ));
        }
        emit(progress, event(Stage::Mask, 1, 1))?;
        timer.lap(Stage::Mask);

        // Nothing may change: the answer is the reconstruction.
        let empty = mask.clone().inner().max().into_scalar().elem::<f64>() <= 0.0;
        if empty {
            let recon = self.reconstruct(&inversion, source, progress)?;
            timer.lap(Stage::Optimise);
            let latent = recon.last().clone();
            let decoded = self.decode(latent.clone())?;
            emit(progress, event(Stage::Decode, 1, 1))?;
            timer.lap(Stage::Decode);
            return Ok(EditOutput {
                image: decoded,
                latent,
                mask: Some(mask),
                inversion: Some(inversion),
                guidance: None,
                timings: timer.timings,
                mask_empty: true,
            });
        }

        let guidance = if self.config.lambda < 1.0 {
            Some(self.guidance(z0, &inversion, &mask, condition, objective, progress)?)
        } else {
            None
        };
        timer.lap(Stage::Guidance);

        let result = self.optimise(
            &inversion,
            guidance.as_ref(),
            &mask,
            condition,
            objective,
            progress,
        )?;
        timer.lap(Stage::Optimise);

        let latent = result.last().clone();
        let mut decoded = self.decode(latent.clone())?;
        if self.config.paste_back {
            decoded = Tensor::from_inner(paste_back(
                decoded.inner(),
                image.inner(),
                &mask.clone().inner(),
                self.pipeline.vae_scale(),
            ));
        }
        emit(progress, event(Stage::Decode, 1, 1))?;
        timer.lap(Stage::Decode);
        Ok(EditOutput {
            image: decoded,
            latent,
            mask: Some(mask),
            inversion: Some(inversion),
            guidance,
            timings: timer.timings,
            mask_empty: false,
        })
    }
}

fn event(stage: Stage, step: usize, total: usize) -> ProgressEvent {
    ProgressEvent {
        stage,
        step,
        total,
        timestep: None,
        loss: None,
    }
}

/// `M * edited + (1 - M) * original` with the latent mask up-sampled
/// (nearest) to pixels.
pub fn paste_back<B: burn::tensor::backend::Backend>(
    edited: Tensor<B, 4>,
    original: Tensor<B, 4>,
    mask: &Tensor<B, 4>,
    factor: usize,
) -> Tensor<B, 4> {
    let [_, _, h, w] = mask.dims();
    let m =
        optedit_models::blocks::sampling::upsample_nearest(mask.clone(), [h * factor, w * factor]);
    edited * m.clone() + original * m.neg().add_scalar(1.0)
}
