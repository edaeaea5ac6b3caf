//! The noise predictor of the edit: UNet plus ControlNet residuals with
//! classifier-free guidance, as diffusers' `StableDiffusionControlNetPipeline`
//! computes it (`[uncond; cond]` batch, ControlNets on both halves), with
//! SDXL's added conditions (pooled text embeddings and size conditions)
//! batched the same way.
//!
//! For gradient steps, [`GuidanceGradient::Conditional`] lets the gradient
//! flow through the conditional branch only: the two branches then run as
//! two calls, the unconditional one on an untracked copy of the latent
//! (detached and no longer requiring a gradient), and the guided
//! prediction keeps its value (`c + (w - 1) (c - u)` with the second `c`
//! and `u` constant) while its Jacobian becomes the conditional branch's;
//! [`GuidanceGradient::Detached`] holds the whole prediction constant
//! ([`GuidanceGradient::Frozen`] too; the edit stages then also reuse it).

use burn::tensor::{backend::Backend, Tensor};
use optedit_cond::{sdxl_add_time_ids, PooledEmbeddings, PromptEmbeddings, SizeConditions};
use optedit_models::{AddedConditions, ControlResiduals, UNet2DConditionModel};

use crate::condition::{repeat_batch, ControlCondition};
use crate::error::{EditError, Result};
use crate::pipeline::SdPipeline;

/// What the gradient of a guided prediction flows through (the gradient
/// steps' [`EditConfig::guidance_gradient`](crate::EditConfig)).
///
/// The guided prediction `u + w (c - u)` has the Jacobian `(1 - w) J_u + w
/// J_c = J_c + (w - 1) (J_c - J_u)`: where the two branches' Jacobians are
/// close (the same network under two prompts), about `J_c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum GuidanceGradient {
    /// Through both branches (the exact gradient; a [`Denoiser`]'s
    /// default, while [`EditConfig`](crate::EditConfig)'s is
    /// [`Frozen`](Self::Frozen)).
    #[default]
    Both,
    /// Through the conditional branch only, with unit weight: the gradient
    /// of `c` alone. The backward pass covers one batch instead of two and
    /// the unconditional branch keeps no graph, while the two branches'
    /// forward passes run as two calls instead of one batch: on a 2-core
    /// CPU an SD 1.5 main-stage gradient step measured 13.4 s against
    /// 16.4 s, peak memory 5.7 against 7.5 GiB (`docs/benchmarks.md`).
    Conditional,
    /// Through neither branch: the prediction is held constant, so a
    /// gradient step differentiates only the DDIM step's direct dependence
    /// on the latent (for epsilon prediction `z_{t-1} = sqrt(abar_prev /
    /// abar_t) z_t + c eps`, a gradient `sqrt(abar_prev / abar_t)` times
    /// the loss's gradient at `z_{t-1}` in
    /// [`LossSpace::Next`](crate::LossSpace); v-prediction has its own
    /// coefficient). A gradient step
    /// then costs one forward call of the batched branches and no backward
    /// pass through the network. Not the method's gradient (which flows
    /// through the UNet and ControlNets): an approximation offered for
    /// speed, measured in `docs/method.md`.
    Detached,
    /// [`Detached`](Self::Detached), and the prediction is computed once per
    /// optimised denoising step, at the latent before its gradient steps:
    /// held constant through all of them and used by the DDIM step itself,
    /// which [`Detached`](Self::Detached) recomputes at the moved latent.
    /// An optimised step then costs one forward call of the batched
    /// branches, as a plain denoising step does; its gradient steps call no
    /// network (a stale prediction by the latent's own move, at most `k`
    /// times `lr` in root mean square). The edit's default since
    /// 2026-12-07: an approximation of the method that on the demo
    /// benchmark edits as often as the exact gradient and keeps the
    /// background closer (`docs/method.md`, "Cheaper edits"). A
    /// [`Denoiser`] with this setting predicts as with
    /// [`Detached`](Self::Detached); the holding is the edit stages'.
    Frozen,
}

impl GuidanceGradient {
    /// Whether the gradient steps hold the prediction constant
    /// ([`Detached`](Self::Detached), [`Frozen`](Self::Frozen)): no
    /// gradient flows through the network, only through the DDIM step.
    pub const fn holds_prediction(self) -> bool {
        matches!(self, Self::Detached | Self::Frozen)
    }
}

crate::words::words!(GuidanceGradient, "guidance gradient", {
    Both => "both",
    Conditional => "conditional",
    Detached => "detached",
    Frozen => "frozen",
});

/// Which halves of classifier-free guidance one network call computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Branches {
    /// The conditional branch alone.
    Conditional,
    /// The unconditional branch alone.
    Unconditional,
    /// `[uncond; cond]` in one batch.
    Both,
}

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
    gradient: GuidanceGradient,
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
            gradient: GuidanceGradient::Both,
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

    /// Lets the gradient of a guided prediction flow through `gradient`
    /// (default [`GuidanceGradient::Both`]). The predicted values are the
    /// same either way, up to float rounding.
    pub fn with_gradient(mut self, gradient: GuidanceGradient) -> Self {
        self.gradient = gradient;
        self
    }

    /// The UNet.
    pub fn unet(&self) -> &'a UNet2DConditionModel<B> {
        self.unet
    }

    /// SDXL's added conditions for a batch `x` of `n` latents made of
    /// `b`-sized `branches`; `None` without pooled embeddings.
    fn added(
        &self,
        x: &Tensor<B, 4>,
        b: usize,
        branches: Branches,
    ) -> Result<Option<AddedConditions<B>>> {
        let Some(pooled) = &self.pooled else {
            return Ok(None);
        };
        let [n, _, h, w] = x.dims();
        let text_embeds = branches.batch(&pooled.uncond, &pooled.cond, b);
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
        // `detach` alone keeps a leaf's `require_grad` (burn's semantics), so
        // the network would still record its graph and run its backward
        // pass into a gradient nobody reads: untrack the copy too.
        let latent = if self.gradient.holds_prediction() {
            latent.detach().set_require_grad(false)
        } else {
            latent
        };
        if self.guidance_scale == 1.0 {
            return self.run(latent, Branches::Conditional, timestep, step, total);
        }
        let w = self.guidance_scale;
        match self.gradient {
            GuidanceGradient::Both | GuidanceGradient::Detached | GuidanceGradient::Frozen => {
                let out = self.run(latent, Branches::Both, timestep, step, total)?;
                let mut halves = out.chunk(2, 0);
                let c = halves.pop().expect("two halves");
                let u = halves.pop().expect("two halves");
                Ok(u.clone() + (c - u).mul_scalar(w))
            }
            GuidanceGradient::Conditional => {
                let u = self.run(
                    latent.clone().detach().set_require_grad(false),
                    Branches::Unconditional,
                    timestep,
                    step,
                    total,
                )?;
                let c = self.run(latent, Branches::Conditional, timestep, step, total)?;
                // u + w (c - u) = c + (w - 1) (c - u), the second term constant.
                Ok(c.clone() + (c.detach() - u).mul_scalar(w - 1.0))
            }
        }
    }

    /// The UNet's output (with the ControlNets' residuals) for `branches`
    /// of `latent`.
    fn run(
        &self,
        latent: Tensor<B, 4>,
        branches: Branches,
        timestep: usize,
        step: usize,
        total: usize,
    ) -> Result<Tensor<B, 4>> {
        let b = latent.dims()[0];
        let guided = self.guidance_scale != 1.0;
        let ctx = branches.batch(&self.uncond, &self.cond, b);
        let x = match branches {
            Branches::Both => Tensor::cat(vec![latent.clone(), latent], 0),
            _ => latent,
        };
        let added = self.added(&x, b, branches)?;
        let n = x.dims()[0];
        let device = x.device();
        let t = Tensor::<B, 1>::from_data([timestep as f32].as_slice(), &device);
        let mut residuals: Option<ControlResiduals<B>> = None;
        for (i, c) in self.controls.iter().enumerate() {
            if !c.active(step, total) {
                continue;
            }
            let [ib, ..] = c.image.dims();
            // A guided prediction takes 1 image or one per sample of
            // `[uncond; cond]`; a branch run alone takes its half.
            let expected = if guided { 2 * b } else { b };
            let image = match (ib, branches) {
                (1, _) => c.image.clone().repeat_dim(0, n),
                (m, Branches::Both) if m == n => c.image.clone(),
                (m, Branches::Conditional) if m == expected => {
                    c.image.clone().narrow(0, expected - b, b)
                }
                (m, Branches::Unconditional) if m == expected => c.image.clone().narrow(0, 0, b),
                (m, _) => {
                    return Err(EditError::input(
                        format!("controls[{i}].image"),
                        format!("batch {m}, expected 1 or {expected}"),
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
        Ok(self
            .unet
            .forward_with_conditions(x, t, ctx, added.as_ref(), residuals.as_ref())?)
    }
}

impl Branches {
    /// The per-branch tensors `uncond` and `cond` (batch 1) repeated to
    /// `b` samples per branch, in batch order.
    fn batch<const D: usize, B: Backend>(
        self,
        uncond: &Tensor<B, D>,
        cond: &Tensor<B, D>,
        b: usize,
    ) -> Tensor<B, D> {
        match self {
            Branches::Conditional => repeat_batch(cond, b),
            Branches::Unconditional => repeat_batch(uncond, b),
            Branches::Both => Tensor::cat(vec![repeat_batch(uncond, b), repeat_batch(cond, b)], 0),
        }
    }
}
