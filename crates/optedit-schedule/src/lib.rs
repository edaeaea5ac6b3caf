//! DDIM and inverse-DDIM schedulers for optedit, on burn tensors of any backend.
//!
//! This crate mirrors diffusers' `DDIMScheduler`
//! (`diffusers/schedulers/scheduling_ddim.py`) and `DDIMInverseScheduler`
//! (`diffusers/schedulers/scheduling_ddim_inverse.py`), diffusers 0.42, which
//! implement the denoising diffusion implicit models of Song, Meng & Ermon,
//! *Denoising Diffusion Implicit Models* (2020, arXiv 2010.02502):
//!
//! - [`SchedulerConfig`] reads a diffusers `scheduler/scheduler_config.json`;
//! - [`NoiseSchedule`] holds the betas and `alphas_cumprod`, computed in
//!   float32 as torch does, with `add_noise` and `get_velocity`;
//! - [`DdimScheduler`] and [`DdimInverseScheduler`] compute the inference
//!   timesteps and take steps; the tensor arithmetic is generic over the burn
//!   backend (autodiff included), only scalar coefficients live on the host;
//! - [`NoisePredictor`], [`Cfg`], [`invert`] and [`sample`] drive a model
//!   (a UNet or any closure) through whole trajectories.
//!
//! Deviations from diffusers, all in cases where diffusers fails or
//! misbehaves: a timestep outside `0..num_train_timesteps` is an error rather
//! than an index error (or a negative index read from the end); the extra
//! `-1` timestep numpy's float `arange` adds to `trailing` spacing for some
//! step counts is not produced; `thresholding = true` is unsupported.
//!
//! ```
//! use burn::backend::Flex;
//! use burn::tensor::Tensor;
//! use optedit_schedule::{invert, sample, DdimInverseScheduler, DdimScheduler, SchedulerConfig};
//!
//! let config = SchedulerConfig::stable_diffusion_v1_5();
//! let mut forward = DdimScheduler::new(config.clone())?;
//! let mut inverse = DdimInverseScheduler::new(config)?;
//! let device = Default::default();
//! let z0 = Tensor::<Flex, 4>::ones([1, 4, 8, 8], &device);
//! // A stand-in for the UNet: any `FnMut(latents, timestep) -> eps`.
//! let mut eps = |x: Tensor<Flex, 4>, _t: usize| x.mul_scalar(0.0).add_scalar(0.1);
//! let inverted = invert(&mut inverse, &mut eps, z0.clone(), 10, None)?;
//! let restored = sample(&mut forward, &mut eps, inverted.last().clone(), 10, None)?;
//! assert_eq!(restored.latents.len(), 11);
//! # Ok::<(), optedit_schedule::ScheduleError>(())
//! ```
#![deny(missing_docs)]

mod betas;
mod config;
mod ddim;
mod error;
mod guidance;
mod inverse;
mod predictor;
mod scheduler;
mod timesteps;
mod trajectory;

pub use betas::{betas_for_alpha_bar, betas_for_config, rescale_zero_terminal_snr, NoiseSchedule};
pub use config::{BetaSchedule, PredictionType, SchedulerConfig, TimestepSpacing};
pub use ddim::{DdimCoefficients, DdimScheduler};
pub use error::{PredictorError, Result, ScheduleError};
pub use guidance::{guide, guide_batch, Cfg};
pub use inverse::DdimInverseScheduler;
pub use predictor::{fallible, Fallible, NoisePredictor};
pub use scheduler::{split_model_output, Direction, Scheduler, StepOutput};
pub use timesteps::{ddim_timesteps, inverse_timesteps};
pub use trajectory::{
    invert, run, sample, sample_from, start_step_for_strength, Progress, Trajectory,
};
