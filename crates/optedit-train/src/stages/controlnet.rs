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
        crate::conditions::stage(kind),
        optim,
        init,
        device,
    )?;
    let model = run.fit(
        kind.folder(),
        crate::conditions::stage(kind),
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
                .collect::<optedit_judge::Result<Vec<_>>>()?;
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

/// How much a ControlNet's noise predictions use its condition: the mean
/// min-SNR-weighted denoising loss of the frozen UNet with the ControlNet
/// given each scene's own condition, another scene's, an all-black one, and
/// of the UNet alone; the same latents, timesteps and noise for all four.
/// Under the scene's own caption (`captioned`) and under the empty one
/// (`uncaptioned`, where the condition is all the model is told).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ConditionProbe {
    /// Scenes probed.
    pub count: usize,
    /// Losses under each scene's own caption.
    pub captioned: ProbeLosses,
    /// Losses under the empty caption.
    pub uncaptioned: ProbeLosses,
}

/// The four losses of [`ConditionProbe`] under one kind of caption.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ProbeLosses {
    /// With each scene's own condition.
    pub own: f64,
    /// With the next scene's condition.
    pub other: f64,
    /// With an all-black condition.
    pub blank: f64,
    /// The UNet alone.
    pub none: f64,
}

/// Measures [`ConditionProbe`] for the ControlNet `net` of `kind` on the
/// first `count` scenes of `set` (in batches of `batch`, noise and timesteps
/// drawn from `seed`).
#[allow(clippy::too_many_arguments)]
pub fn condition_probe<B: burn::tensor::backend::Backend>(
    base: &TextToImage<B>,
    net: &ControlNetModel<B>,
    kind: ControlKind,
    set: &LatentSet,
    tokenizer: &ClipTokenizer,
    count: usize,
    batch: usize,
    seed: u64,
    device: &B::Device,
) -> Result<ConditionProbe> {
    use super::text_to_image::{check_probe_size, noised, weighted_mse_per_sample, Noising};
    use rand::SeedableRng;
    check_probe_size(set, count, batch)?;
    let acp = alphas_cumprod()?;
    let spec = |i: usize| optedit_world::SceneSpec::sample(set.seeds[i]);
    // [captioned, uncaptioned][own, other, blank, none]
    let mut sums = [[0.0f64; 4]; 2];
    let mut start = 0;
    while start < count {
        let idx: Vec<usize> = (start..count.min(start + batch)).collect();
        let mut rng =
            rand_chacha::ChaCha8Rng::seed_from_u64(crate::data::mix(&[seed, start as u64]));
        let (noisy, t, noise, w) = noised(
            set.batch::<B>(&idx, device),
            &acp,
            &Noising::default(),
            &mut rng,
            device,
        );
        let own = idx
            .iter()
            .map(|&i| condition_image(kind, &spec(i).render()))
            .collect::<optedit_judge::Result<Vec<_>>>()?;
        let other = idx
            .iter()
            .map(|&i| condition_image(kind, &spec((i + 1) % set.len()).render()))
            .collect::<optedit_judge::Result<Vec<_>>>()?;
        let blank =
            vec![image::RgbImage::new(demo::IMAGE_SIZE as u32, demo::IMAGE_SIZE as u32); idx.len()];
        let captions = [
            idx.iter().map(|&i| spec(i).caption()).collect::<Vec<_>>(),
            vec![String::new(); idx.len()],
        ];
        for (c, captions) in captions.iter().enumerate() {
            let ids = token_ids::<B>(tokenizer, captions, device)?;
            let context = base.text_encoder.forward(ids)?.last_hidden_state;
            for (k, conds) in [Some(&own), Some(&other), Some(&blank), None]
                .into_iter()
                .enumerate()
            {
                let residuals = match conds {
                    Some(conds) => Some(net.forward(
                        noisy.clone(),
                        t.clone(),
                        context.clone(),
                        conditions_to_tensor::<B>(conds, device),
                        1.0,
                    )?),
                    None => None,
                };
                let pred = base.unet.forward_with_residuals(
                    noisy.clone(),
                    t.clone(),
                    context.clone(),
                    residuals.as_ref(),
                )?;
                let losses = weighted_mse_per_sample(pred, noise.clone(), w.clone())
                    .into_data()
                    .convert::<f32>()
                    .to_vec::<f32>()
                    .expect("f32 data converts to f32");
                sums[c][k] += losses.iter().map(|&l| f64::from(l)).sum::<f64>();
            }
        }
        start += idx.len();
    }
    let n = count as f64;
    let losses = |s: [f64; 4]| ProbeLosses {
        own: s[0] / n,
        other: s[1] / n,
        blank: s[2] / n,
        none: s[3] / n,
    };
    Ok(ConditionProbe {
        count,
        captioned: losses(sums[0]),
        uncaptioned: losses(sums[1]),
    })
}
