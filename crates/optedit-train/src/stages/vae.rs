//! Stage 1: the autoencoder, trained on random crops of world scenes with an
//! L1 + L2 reconstruction loss and a small KL term (Rombach et al., arXiv
//! 2112.10752, section 3, without the adversarial and perceptual terms: the
//! world has no texture they would help with).

use std::path::Path;

use burn::module::AutodiffModule;
use burn::optim::AdamWConfig;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ElementConversion;
use optedit_cond::image::rgb_batch_to_signed_tensor;
use optedit_models::{AutoencoderKL, AutoencoderKLConfig};

use super::{load_checkpoint, Run, StageOptions, StepLoss};
use crate::data::{normal, random_crop, train_scene_seed};
use crate::demo;
use crate::Result;

/// Stage id mixed into the data seeds.
const STAGE: u64 = 1;
/// Checkpoint folder name.
const NAME: &str = "vae";

/// Extra options of the VAE stage.
#[derive(Debug, Clone)]
pub struct VaeOptions {
    /// Side of the square training crops (a multiple of 4).
    pub crop: u32,
    /// Weight of the KL term (per latent element).
    pub kl_weight: f64,
}

impl Default for VaeOptions {
    fn default() -> Self {
        Self {
            crop: 64,
            kl_weight: 1e-4,
        }
    }
}

/// A fresh demo VAE (scaling factor 1 until [`super::latents`] measures it).
pub fn new_vae<B: burn::tensor::backend::Backend>(device: &B::Device) -> Result<AutoencoderKL<B>> {
    let config: AutoencoderKLConfig =
        serde_json::from_value(demo::vae_config(1.0)).expect("valid demo config");
    Ok(AutoencoderKL::from_config(config, device)?)
}

/// Trains (or resumes) the VAE in `dir`; returns it, on the inner backend.
pub fn train<B: AutodiffBackend>(
    dir: &Path,
    options: &StageOptions,
    vae_options: &VaeOptions,
    device: &B::Device,
) -> Result<AutoencoderKL<B::InnerBackend>> {
    options.validate_without_noise()?;
    let optim = AdamWConfig::new().with_weight_decay(0.0);
    let run = Run::<B, _>::start(
        dir,
        NAME,
        options.seed,
        STAGE,
        optim,
        || new_vae::<B>(device),
        device,
    )?;
    let model = run.fit(
        NAME,
        STAGE,
        &["loss", "l1", "mse", "kl"],
        options,
        |model, rng, batch| {
            let crops: Vec<_> = (0..batch)
                .map(|_| {
                    let spec = optedit_world::SceneSpec::sample(train_scene_seed(rng));
                    random_crop(&spec.render().image, vae_options.crop, rng)
                })
                .collect();
            let x = rgb_batch_to_signed_tensor::<B, _>(&crops, device);
            let posterior = model.encode(x.clone())?;
            let eps = normal::<B, 4>(posterior.mean.dims(), rng, device);
            let z = posterior.mean.clone() + posterior.logvar.clone().mul_scalar(0.5).exp() * eps;
            let rec = model.decode(z)?;
            let diff = rec - x;
            let l1 = diff.clone().abs().mean();
            let mse = diff.powi_scalar(2).mean();
            let kl = (posterior.mean.powi_scalar(2) + posterior.logvar.clone().exp()
                - posterior.logvar)
                .sub_scalar(1.0)
                .mean()
                .mul_scalar(0.5);
            let loss = l1.clone() + mse.clone() + kl.clone().mul_scalar(vae_options.kl_weight);
            let values = [loss.clone(), l1, mse, kl]
                .into_iter()
                .map(|t| t.into_scalar().elem::<f32>())
                .collect();
            Ok(StepLoss { loss, values })
        },
    )?;
    Ok(model.valid())
}

/// The trained VAE from the last checkpoint in `dir`, on `B`.
pub fn load_trained<B: AutodiffBackend>(
    dir: &Path,
    device: &B::Device,
) -> Result<AutoencoderKL<B::InnerBackend>> {
    load_checkpoint::<B, _>(dir, NAME, new_vae::<B>(device)?, device)
}
