//! # optedit-models
//!
//! The four model families of Stable Diffusion 1.5 (and the UNet and text
//! encoders of 2.x and SDXL) on [burn](https://burn.dev),
//! faithful to Hugging Face diffusers / transformers numerically and loaded
//! straight from a diffusers folder:
//!
//! - [`UNet2DConditionModel`] — diffusers `models/unets/unet_2d_condition.py`
//! - [`AutoencoderKL`] — diffusers `models/autoencoders/autoencoder_kl.py`
//! - [`ClipTextModel`] and [`ClipTextModelWithProjection`] (SDXL's second
//!   text encoder) — transformers `models/clip/modeling_clip.py` (text tower)
//! - [`ControlNetModel`] — diffusers `models/controlnets/controlnet.py`
//!   (Zhang et al., "Adding Conditional Control to Text-to-Image Diffusion
//!   Models", arXiv 2302.05543)
//!
//! Stable Diffusion is Rombach et al., "High-Resolution Image Synthesis with
//! Latent Diffusion Models", arXiv 2112.10752. Every model is generic over the
//! burn backend `B: Backend` (CPU `burn::backend::Flex` by default, CUDA with
//! the `cuda` feature) and differentiable on `Autodiff<B>`.
//!
//! Module fields carry diffusers' tensor names (`down_blocks.0.resnets.1.conv1`,
//! ...), configs mirror `config.json` keys, and [`loader`] documents the few
//! key rules that remain. Loading is strict: a missing, unused or mis-shaped
//! tensor is a [`ModelError`] naming it.
//!
//! ```no_run
//! use std::path::Path;
//! use burn::backend::Flex;
//! use optedit_models::UNet2DConditionModel;
//!
//! let device = Default::default();
//! let unet = UNet2DConditionModel::<Flex>::load(Path::new("sd15/unet"), &device)?;
//! # Ok::<(), optedit_models::ModelError>(())
//! ```
#![deny(missing_docs)]

pub mod allocator;
pub mod blocks;
pub mod clip;
pub mod config;
pub mod controlnet;
pub mod device;
pub mod error;
pub mod kernels;
pub mod loader;
pub mod names;
pub mod saver;
pub mod unet;
pub mod vae;

pub use clip::{
    ClipTextConfig, ClipTextModel, ClipTextModelWithProjection, ClipTextOutput,
    ClipTextProjectionOutput,
};
pub use controlnet::{ControlNetConfig, ControlNetModel};
pub use error::{ModelError, Result};
pub use saver::WeightPrecision;
pub use unet::{AddedConditions, ControlResiduals, UNet2DConditionConfig, UNet2DConditionModel};
pub use vae::{AutoencoderKL, AutoencoderKLConfig, DiagonalGaussian};

/// Re-export of the burn version the models are built on.
pub use burn;
