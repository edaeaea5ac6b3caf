//! `ControlNetModel` (diffusers `models/controlnets/controlnet.py`; Zhang et
//! al., arXiv 2302.05543): a trainable copy of the UNet encoder that turns a
//! condition image (pose, edges, scribble, layout) into residuals for the UNet.

mod config;
mod model;

pub use config::ControlNetConfig;
pub use model::{ControlNetConditioningEmbedding, ControlNetModel};
