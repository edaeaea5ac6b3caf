//! Stage 4: the pose and edge ControlNets, initialised from the trained
//! UNet's encoder with zero output convolutions and trained with the UNet and
//! text encoder frozen (Zhang et al., arXiv 2302.05543). Captions are dropped
//! half of the time, so the network learns to follow the condition alone.

use std::path::Path;

use burn::module::{AutodiffModule, Module};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};
use optedit_cond::ClipTokenizer;
use optedit_models::{ControlNetConfig, ControlNetModel, UNet2DConditionModel};
use rand::Rng;

use super::latents::LatentSet;
use super::text_to_image::{alphas_cumprod, noised, token_ids, weighted_mse, TextToImage};
use super::{check_finite, StageOptions};
use crate::checkpoint::Checkpointer;
use crate::conditions::{condition_image, ControlKind};
use crate::data::{conditions_to_tensor, step_rng};
use crate::demo;
use crate::log::TrainLog;
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
    let unet: UNet2DConditionModel<B> = UNet2DConditionModel::from_inner(base.unet.clone()).no_grad();
    let ckpt = Checkpointer::new(&dir.join(format!("checkpoints/{}", kind.folder())))?;
    // Seeded initialisation: a run is reproducible from its seed.
    B::seed(device, crate::data::mix(&[options.seed, kind.stage() + 100]));
    let model = ControlNetModel::<B>::from_unet(&unet, config(), device)?;
    let optim = AdamWConfig::new().with_weight_decay(0.0)
        .with_grad_clipping(Some(burn::grad_clipping::GradientClippingConfig::Norm(1.0)))
        .init::<B, ControlNetModel<B>>();
    let (mut model, mut optim, start) = ckpt.resume::<B, _, _>(model, optim, device)?;
    let mut log = TrainLog::open(ckpt.dir(), kind.folder(), start, options.steps, &["loss"])?;
    for step in start..options.end() {
        let mut rng = step_rng(options.seed, kind.stage(), step);
        let idx: Vec<usize> = (0..options.batch).map(|_| rng.random_range(0..set.len())).collect();
        let mut captions = Vec::with_capacity(idx.len());
        let mut conds = Vec::with_capacity(idx.len());
        for &i in &idx {
            let spec = optedit_world::SceneSpec::sample(set.seeds[i]);
            conds.push(condition_image(kind, &spec.render())?);
            captions.push(if rng.random_bool(CAPTION_DROPOUT) { String::new() } else { spec.caption() });
        }
        let ids = token_ids::<B::InnerBackend>(tokenizer, &captions, device)?;
        let context = Tensor::<B, 3>::from_inner(base.text_encoder.forward(ids)?.last_hidden_state);
        let cond = conditions_to_tensor::<B>(&conds, device);
        let latents = set.batch::<B>(&idx, device);
        let (noisy, t, noise, w) = noised(latents, &acp, &mut rng, device);
        let residuals = model.forward(noisy.clone(), t.clone(), context.clone(), cond, 1.0)?;
        let pred = unet.forward_with_residuals(noisy, t, context, Some(&residuals))?;
        let loss = weighted_mse(pred, noise, w);
        let value = loss.clone().into_scalar().elem::<f32>();
        check_finite(kind.folder(), step, value)?;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(options.lr_at(step), model, grads);
        log.step(step, &[value]);
        if options.checkpoint_after(step) {
            ckpt.save::<B, _, _>(step + 1, &model, &optim)?;
        }
    }
    log.finish();
    Ok(model.valid())
}

/// The ControlNet of the last checkpoint of `kind`.
pub fn load_trained<B: AutodiffBackend>(
    dir: &Path,
    kind: ControlKind,
    device: &B::Device,
) -> Result<ControlNetModel<B::InnerBackend>> {
    let ckpt = Checkpointer::new(&dir.join(format!("checkpoints/{}", kind.folder())))?;
    let model = ControlNetModel::<B>::from_config(config(), device)?;
    let optim = AdamWConfig::new().init::<B, ControlNetModel<B>>();
    let (model, _, step) = ckpt.resume::<B, _, _>(model, optim, device)?;
    if step == 0 {
        return Err(crate::TrainError::InvalidArgument {
            argument: "dir".into(),
            message: format!("no {} checkpoint in {}", kind.folder(), ckpt.dir().display()),
        });
    }
    Ok(model.valid())
}
