//! `UNet2DConditionModel` (diffusers `models/unets/unet_2d_condition.py`):
//! the noise predictor of Stable Diffusion 1.x/2.x and SDXL.

pub mod blocks;
pub mod config;
mod graft;
mod model;

pub use config::{AddedConditionDims, UNet2DConditionConfig, TIME_IDS};
pub(crate) use model::batch_timesteps as model_batch_timesteps;
pub(crate) use model::text_time_embedding;
pub use model::{AddedConditions, ControlResiduals, UNet2DConditionModel};
