//! Shared set-up of optedit's criterion benchmarks: the models and inputs
//! each bench measures, built the same way on every backend.
//!
//! Run with `cargo bench -p optedit-benches` (CPU, burn's Flex backend) or
//! `cargo bench -p optedit-benches --features cuda` (CUDA). The numbers and
//! the PyTorch baseline measured in the same run are in `docs/benchmarks.md`.
#![deny(missing_docs)]

use std::path::PathBuf;

use burn::tensor::{backend::Backend, Distribution, Tensor};
use optedit_models::UNet2DConditionModel;

/// Folder of the full-size SD 1.5 configs (random weights, no files needed).
pub fn sd15_configs() -> PathBuf {
    optedit_fixtures::sd15_configs_dir()
}

/// The full-size SD 1.5 UNet with random weights.
pub fn sd15_unet<B: Backend>(device: &B::Device) -> UNet2DConditionModel<B> {
    UNet2DConditionModel::from_config_file(&sd15_configs().join("unet/config.json"), device)
        .expect("sd15 unet config")
}

/// The tiny fixture UNet with its real (fixture) weights.
pub fn tiny_unet<B: Backend>(device: &B::Device) -> UNet2DConditionModel<B> {
    UNet2DConditionModel::load(
        &optedit_fixtures::fixtures_dir().join("tiny-sd/unet"),
        device,
    )
    .expect("tiny unet")
}

/// Standard-normal inputs `(latent, timesteps, context)` for a UNet forward.
pub fn unet_inputs<B: Backend>(
    unet: &UNet2DConditionModel<B>,
    batch: usize,
    latent: usize,
    device: &B::Device,
) -> (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 3>) {
    B::seed(device, 0);
    let x = Tensor::random(
        [batch, unet.config.in_channels, latent, latent],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let t = Tensor::from_data(
        if batch == 1 {
            vec![500.0f32]
        } else {
            (0..batch)
                .map(|i| if i % 2 == 0 { 999.0 } else { 500.0 })
                .collect()
        }
        .as_slice(),
        device,
    );
    let c = Tensor::random(
        [batch, 77, unet.config.cross_attention_dim],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    (x, t, c)
}
