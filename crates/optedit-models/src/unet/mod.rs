//! `UNet2DConditionModel` (diffusers `models/unets/unet_2d_condition.py`):
//! the noise predictor of Stable Diffusion 1.x/2.x.

pub mod blocks;
pub mod config;
mod graft;
mod model;

pub use config::UNet2DConditionConfig;
pub(crate) use model::batch_timesteps as model_batch_timesteps;
pub use model::{ControlResiduals, UNet2DConditionModel};
