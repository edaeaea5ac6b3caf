//! The stages of the method (`docs/method.md`): encode and invert, guidance
//! trajectory by random-noise encoding, main optimisation, decode. Each runs
//! on its own; [`Editor::edit`](crate::Editor::edit) chains them.
//!
//! Forward-only work (inversion, every plain denoising step, blending) runs
//! on the inner backend `B::InnerBackend` with a forward [`Denoiser`] built
//! from [`SdPipeline::inner`](crate::SdPipeline::inner): it registers
//! nothing in the autodiff graph, so nothing needs releasing. Only the
//! gradient steps run on the autodiff backend `B`, whose `backward` frees
//! their graph. Trajectories are handed back as untracked `B` tensors
//! (`Tensor::from_inner`, no copy).

use std::ops::Range;

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
use optedit_schedule::{DdimInverseScheduler, DdimScheduler};

use crate::config::EditConfig;
use crate::denoiser::{Denoiser, GuidanceGradient};
use crate::error::{EditError, Result};
use crate::loss::{LossInputs, Objective};
use crate::optimizer::LatentOptimizer;
use crate::progress::{emit, LossValues, Progress, ProgressEvent, Stage};
use optedit_schedule::Trajectory;

/// What the optimiser needs at each optimised step.
pub(crate) struct Optimisation<'o, 'l, B: AutodiffBackend> {
    /// The noise predictor the gradient flows through.
    pub denoiser: &'o Denoiser<'o, B>,
    pub objective: &'o Objective<'l, B>,
    pub mask: &'o Tensor<B, 4>,
    pub preservation: &'o Trajectory<B>,
    pub guidance: Option<&'o Trajectory<B>>,
    pub optimizer: &'o mut dyn LatentOptimizer<B::InnerBackend>,
}

/// DiffEdit's masked blending with the inversion while denoising.
pub(crate) struct Blend<'o, B: AutodiffBackend> {
    pub mask: &'o Tensor<B, 4>,
    pub reference: &'o Trajectory<B>,
}

fn scalar<B: Backend>(t: &Tensor<B, 1>) -> f64 {
    t.clone().into_scalar().elem::<f64>()
}

/// Fails with [`EditError::Diverged`] if `latent` holds a NaN or infinity.
fn check_latent<B: Backend>(
    latent: &Tensor<B, 4>,
    stage: Stage,
    step: usize,
    timestep: usize,
) -> Result<()> {
    let s = scalar(&latent.clone().abs().sum());
    if s.is_finite() {
        Ok(())
    } else {
        Err(EditError::Diverged {
            stage,
            step,
            timestep,
            what: "latent magnitude".into(),
            value: s,
        })
    }
}

/// The shared denoising loop: from `start_latent` over the denoising steps
/// `steps` (to the clean latent when they run to the schedule's end),
/// optionally optimising the first `t_u` steps and/or blending with a
/// reference trajectory. `denoiser` (forward only) takes the plain
/// steps on the inner backend; the optimisation's own denoiser takes the
/// gradient steps. Returns the whole trajectory.
#[allow(clippy::too_many_arguments)]
pub(crate) fn denoise<B: AutodiffBackend>(
    scheduler: &DdimScheduler,
    config: &EditConfig,
    stage: Stage,
    denoiser: &Denoiser<'_, B::InnerBackend>,
    start_latent: Tensor<B::InnerBackend, 4>,
    steps: Range<usize>,
    mut optimisation: Option<Optimisation<'_, '_, B>>,
    blend: Option<Blend<'_, B>>,
    progress: &mut dyn Progress,
) -> Result<Trajectory<B>> {
    let timesteps = scheduler.timesteps().to_vec();
    let n = timesteps.len();
    let start = steps.start;
    let total = steps.len();
    let mut z = start_latent;
    let mut latents = vec![Tensor::from_inner(z.clone())];
    let blend = blend.map(|b| (b.mask.clone().inner(), b.reference));
    for (done, j) in steps.enumerate() {
        let t = timesteps[j];
        let optimised = optimisation
            .as_mut()
            .filter(|_| config.gradient_steps(stage, j) > 0);
        // `Frozen`: one prediction per step, at the latent before its
        // gradient steps, held through them and for the step itself.
        let held = match optimised {
            Some(_) if config.guidance_gradient == GuidanceGradient::Frozen => {
                Some(denoiser.predict(z.clone(), t, j, n)?)
            }
            _ => None,
        };
        if let Some(opt) = optimised {
            z = optimise_step(
                scheduler,
                config,
                stage,
                z,
                held.clone(),
                j,
                n,
                opt,
                progress,
            )?;
        }
        let eps = match held {
            Some(eps) => eps,
            None => denoiser.predict(z.clone(), t, j, n)?,
        };
        let mut next = scheduler.step(eps, t, z, 0.0, None)?.prev_sample;
        if let Some((m, reference)) = &blend {
            let kept = reference.at(j + 1).clone().inner();
            next = next * m.clone() + kept * m.clone().neg().add_scalar(1.0);
        }
        check_latent(&next, stage, j, t)?;
        z = next;
        latents.push(Tensor::from_inner(z.clone()));
        emit(
            progress,
            ProgressEvent {
                stage,
                step: done + 1,
                total,
                timestep: Some(t),
                loss: None,
            },
        )?;
    }
    Ok(Trajectory {
        timesteps,
        start,
        latents,
        eps: Vec::new(),
    })
}

/// [`EditConfig::gradient_steps`] gradient steps of `stage` on the latent
/// at denoising step `j` (held on the inner backend); the autodiff graph of
/// each step is freed by its `backward` before the next. With a `held`
/// prediction ([`GuidanceGradient::Frozen`]) no step calls the network.
#[allow(clippy::too_many_arguments)]
fn optimise_step<B: AutodiffBackend>(
    scheduler: &DdimScheduler,
    config: &EditConfig,
    stage: Stage,
    mut inner: Tensor<B::InnerBackend, 4>,
    held: Option<Tensor<B::InnerBackend, 4>>,
    j: usize,
    n: usize,
    opt: &mut Optimisation<'_, '_, B>,
    progress: &mut dyn Progress,
) -> Result<Tensor<B::InnerBackend, 4>> {
    let t = scheduler.timesteps()[j];
    let start = config.start_step();
    // The schedule runs over the first t_u steps; later steps keep its
    // last rate.
    let total = config.t_u.min(n - start).max(1);
    let lr = config
        .lr_schedule
        .rate(config.lr, (j - start).min(total - 1), total);
    let stage_steps = match stage {
        Stage::Guidance => config.guidance_steps().len(),
        _ => n - start,
    };
    opt.optimizer.reset();
    for iteration in 0..config.gradient_steps(stage, j) {
        let z = Tensor::<B, 4>::from_inner(inner.clone()).require_grad();
        let eps = match &held {
            Some(eps) => Tensor::from_inner(eps.clone()),
            None => opt.denoiser.predict(z.clone(), t, j, n)?,
        };
        let out = scheduler.step(eps, t, z.clone(), 0.0, None)?;
        let inputs = LossInputs {
            stage,
            step: j,
            timestep: t,
            z_t: &z,
            next: &out.prev_sample,
            pred_original: &out.pred_original_sample,
            mask: opt.mask,
            preservation_target: opt.preservation.at(j + 1),
            guidance_target: opt.guidance.and_then(|g| g.get(j + 1)),
            preservation_clean: opt.preservation.last(),
            guidance_clean: opt.guidance.filter(|g| g.is_complete()).map(|g| g.last()),
        };
        let (total, parts) = opt.objective.evaluate(&inputs);
        let Some(total) = total else {
            break;
        };
        let value = scalar(&total);
        if !value.is_finite() || value > config.max_loss {
            return Err(EditError::Diverged {
                stage,
                step: j,
                timestep: t,
                what: format!("loss (gradient step {iteration})"),
                value,
            });
        }
        let terms = parts
            .iter()
            .map(|(name, l)| (name.clone(), scalar(l)))
            .collect();
        let grads = total.backward();
        let grad = z.grad(&grads).ok_or_else(|| {
            EditError::input("objective", "the loss does not depend on the latent")
        })?;
        drop(grads);
        let grad = if config.k_late_outside_mask && !config.is_optimised(j) {
            grad * opt.mask.clone().inner().neg().add_scalar(1.0)
        } else {
            grad
        };
        inner = opt.optimizer.step(inner, grad, lr);
        emit(
            progress,
            ProgressEvent {
                stage,
                step: j - start + 1,
                total: stage_steps,
                timestep: Some(t),
                loss: Some(LossValues {
                    total: value,
                    terms,
                    iteration,
                }),
            },
        )?;
    }
    Ok(inner)
}

/// Stage 1b: DDIM inversion of `z0` under the source condition (`denoiser`,
/// normally unguided, forward only on the inner backend) over the steps
/// `config.start_step()..N` of `scheduler`'s schedule, with diffusers'
/// `DDIMInverseScheduler` steps.
pub fn invert<B: AutodiffBackend>(
    denoiser: &Denoiser<'_, B::InnerBackend>,
    scheduler: &DdimScheduler,
    config: &EditConfig,
    z0: Tensor<B::InnerBackend, 4>,
    progress: &mut dyn Progress,
) -> Result<Trajectory<B>> {
    let timesteps = scheduler.timesteps().to_vec();
    let n = timesteps.len();
    let start = config.start_step();
    let mut inverse = DdimInverseScheduler::new(scheduler.config().clone())?;
    inverse.set_timesteps(n)?;
    let ascending = inverse.timesteps().to_vec();
    let steps = n - start;
    let mut z = z0;
    // Collected from clean to noisy, then reversed into step order.
    let mut latents = vec![Tensor::from_inner(z.clone())];
    for (i, &t) in ascending.iter().take(steps).enumerate() {
        let eps = denoiser.predict(z.clone(), t, 0, 1)?;
        z = inverse.step(eps, t, z)?.prev_sample;
        check_latent(&z, Stage::Invert, i, t)?;
        latents.push(Tensor::from_inner(z.clone()));
        emit(
            progress,
            ProgressEvent {
                stage: Stage::Invert,
                step: i + 1,
                total: steps,
                timestep: Some(t),
                loss: None,
            },
        )?;
    }
    latents.reverse();
    Ok(Trajectory {
        timesteps,
        start,
        latents,
        eps: Vec::new(),
    })
}

/// Stage 3: the guidance trajectory. `z0` is encoded with random `noise`
/// (not inversion) to the first step's noise level, then denoised under the
/// edit condition (`forward` on the inner backend, `denoiser` for the
/// gradient steps: the same condition on both); the first `t_u` steps take
/// `k` gradient steps with `optimizer` on `objective`'s guidance-stage
/// terms (in [`Objective::method`], the preservation loss alone; targets:
/// `inversion`). It runs over [`EditConfig::guidance_steps`]: to the clean
/// latent, or only as far as the main stage reads it.
#[allow(clippy::too_many_arguments)]
pub fn guidance_trajectory<B: AutodiffBackend>(
    forward: &Denoiser<'_, B::InnerBackend>,
    denoiser: &Denoiser<'_, B>,
    scheduler: &DdimScheduler,
    config: &EditConfig,
    z0: Tensor<B::InnerBackend, 4>,
    noise: Tensor<B::InnerBackend, 4>,
    inversion: &Trajectory<B>,
    mask: &Tensor<B, 4>,
    objective: &Objective<'_, B>,
    optimizer: &mut dyn LatentOptimizer<B::InnerBackend>,
    progress: &mut dyn Progress,
) -> Result<Trajectory<B>> {
    check_inversion(inversion, scheduler, config)?;
    let start = config.start_step();
    let t0 = scheduler.timesteps()[start];
    let zg = scheduler.add_noise(z0, noise, &[t0])?;
    let opt = Optimisation {
        denoiser,
        objective,
        mask,
        preservation: inversion,
        guidance: None,
        optimizer,
    };
    denoise(
        scheduler,
        config,
        Stage::Guidance,
        forward,
        zg,
        config.guidance_steps(),
        Some(opt),
        None,
        progress,
    )
}

/// Stage 4: the main optimisation. Starts from the inverted latent at the
/// first step and denoises under the edit condition (`forward` on the inner
/// backend, `denoiser` for the gradient steps); the first `t_u` steps take
/// `k` gradient steps on `objective`'s main-stage terms (normally
/// `lambda * L_pres + (1 - lambda) * L_guid`).
#[allow(clippy::too_many_arguments)]
pub fn optimise<B: AutodiffBackend>(
    forward: &Denoiser<'_, B::InnerBackend>,
    denoiser: &Denoiser<'_, B>,
    scheduler: &DdimScheduler,
    config: &EditConfig,
    inversion: &Trajectory<B>,
    guidance: Option<&Trajectory<B>>,
    mask: &Tensor<B, 4>,
    objective: &Objective<'_, B>,
    optimizer: &mut dyn LatentOptimizer<B::InnerBackend>,
    progress: &mut dyn Progress,
) -> Result<Trajectory<B>> {
    check_inversion(inversion, scheduler, config)?;
    if let Some(g) = guidance {
        let needed = config.guidance_steps().len() + 1;
        if g.start != inversion.start
            || g.latents.len() < needed
            || g.latents.len() > inversion.latents.len()
        {
            return Err(EditError::input(
                "guidance",
                format!(
                    "the guidance trajectory (start {}, {} latents) must start where the inversion does ({}) and cover the steps the main stage reads ({needed} latents)",
                    g.start,
                    g.latents.len(),
                    inversion.start
                ),
            ));
        }
    }
    let opt = Optimisation {
        denoiser,
        objective,
        mask,
        preservation: inversion,
        guidance,
        optimizer,
    };
    let start = inversion.start;
    denoise(
        scheduler,
        config,
        Stage::Optimise,
        forward,
        inversion.first().clone().inner(),
        start..inversion.num_steps(),
        Some(opt),
        None,
        progress,
    )
}

pub(crate) fn check_inversion<B: AutodiffBackend>(
    inversion: &Trajectory<B>,
    scheduler: &DdimScheduler,
    config: &EditConfig,
) -> Result<()> {
    if inversion.timesteps != scheduler.timesteps()
        || inversion.start != config.start_step()
        || !inversion.is_complete()
    {
        return Err(EditError::input(
            "inversion",
            format!(
                "the trajectory (start {}, {} latents) does not match the schedule ({} steps from {})",
                inversion.start,
                inversion.latents.len(),
                scheduler.timesteps().len(),
                config.start_step()
            ),
        ));
    }
    Ok(())
}
