//! Stage 4: the ControlNets (pose, edges, scribble, layout; see
//! [`crate::conditions`]), initialised from the trained
//! UNet's encoder with zero output convolutions and trained with the UNet and
//! text encoder frozen (Zhang et al., arXiv 2302.05543). Captions are dropped
//! half of the time, so the network learns to follow the condition alone.

use std::path::Path;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::{AutodiffModule, Module};
use burn::optim::AdamWConfig;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use optedit_cond::ClipTokenizer;
use optedit_models::{ControlNetConfig, ControlNetModel, UNet2DConditionModel};
use rand::Rng;
use rayon::prelude::*;

use super::foreground::ForegroundLoss;
use super::latents::LatentSet;
use super::text_to_image::{alphas_cumprod, noised, token_ids, TextToImage};
use super::{load_checkpoint, Run, StageOptions, StepLoss};
use crate::conditions::{condition_image, ControlKind};
use crate::data::conditions_to_tensor;
use crate::demo;
use crate::Result;

/// Probability of an empty caption while training a ControlNet.
pub const CAPTION_DROPOUT: f64 = 0.5;

fn config() -> ControlNetConfig {
    serde_json::from_value(demo::controlnet_config()).expect("valid demo config")
}

/// Trains (or resumes) the ControlNet of `kind` against the frozen `base`.
pub fn train<B: AutodiffBackend>(
    dir: &Path,
    kind: ControlKind,
    base: &TextToImage<B::InnerBackend>,
    set: &LatentSet,
    tokenizer: &ClipTokenizer,
    options: &StageOptions,
    device: &B::Device,
) -> Result<ControlNetModel<B::InnerBackend>> {
    options.validate()?;
    let acp = alphas_cumprod()?;
    // The frozen UNet runs on the autodiff backend so gradients reach the
    // ControlNet's residuals; its own parameters take no gradient.
    let unet: UNet2DConditionModel<B> =
        UNet2DConditionModel::from_inner(base.unet.clone()).no_grad();
    let optim = AdamWConfig::new()
        .with_weight_decay(0.0)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)));
    let loss = ForegroundLoss::new(set, options.foreground_weight);
    let init = || Ok(ControlNetModel::<B>::from_unet(&unet, config(), device)?);
    let run = Run::<B, _>::start(
        dir,
        kind.folder(),
        options.seed,
        kind.stage(),
        optim,
        init,
        device,
    )?;
    let model = run.fit(
        kind.folder(),
        kind.stage(),
        &["loss"],
        options,
        |model, rng, batch| {
            let idx: Vec<usize> = (0..batch).map(|_| rng.random_range(0..set.len())).collect();
            let specs: Vec<_> = idx
                .iter()
                .map(|&i| optedit_world::SceneSpec::sample(set.seeds[i]))
                .collect();
            let captions: Vec<String> = specs
                .iter()
                .map(|spec| {
                    if rng.random_bool(CAPTION_DROPOUT) {
                        String::new()
                    } else {
                        spec.caption()
                    }
                })
                .collect();
            // Rendering and edge detection are the CPU's share of a step: spread
            // them over the cores (the result does not depend on the order).
            let conds = specs
                .par_iter()
                .map(|spec| condition_image(kind, &spec.render()))
                .collect::<Result<Vec<_>>>()?;
            let ids = token_ids::<B::InnerBackend>(tokenizer, &captions, device)?;
            let context =
                Tensor::<B, 3>::from_inner(base.text_encoder.forward(ids)?.last_hidden_state);
            let cond = conditions_to_tensor::<B>(&conds, device);
            let latents = set.batch::<B>(&idx, device);
            let (noisy, t, noise, w) = noised(latents, &acp, &options.noising(), rng, device);
            let residuals = model.forward(noisy.clone(), t.clone(), context.clone(), cond, 1.0)?;
            let pred = unet.forward_with_residuals(noisy, t, context, Some(&residuals))?;
            Ok(StepLoss::single(loss.loss(pred, noise, w, &idx)))
        },
    )?;
    Ok(model.valid())
}

/// The ControlNet of the last checkpoint of `kind`.
pub fn load_trained<B: AutodiffBackend>(
    dir: &Path,
    kind: ControlKind,
    device: &B::Device,
) -> Result<ControlNetModel<B::InnerBackend>> {
    load_checkpoint::<B, _>(
        dir,
        kind.folder(),
        ControlNetModel::<B>::from_config(config(), device)?,
        device,
    )
}
