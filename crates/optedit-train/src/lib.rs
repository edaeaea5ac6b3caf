//! # optedit-train
//!
//! Trains optedit's demo model: a small latent diffusion model in Stable
//! Diffusion 1.5's topology (Rombach et al., arXiv 2112.10752) for the
//! procedural world of [`optedit_world`], with ControlNets for pose, edges,
//! scribbles and layouts (Zhang et al., arXiv 2302.05543) and the attribute classifier that judges
//! edits, all in the workspace's own model code and written as a diffusers
//! folder that the normal loader reads.
//!
//! Stages, each resumable from its checkpoint folder and seeded:
//! 1. [`stages::vae`]: the autoencoder;
//! 2. [`stages::latents`]: encode the training scenes once, measure the latent scale;
//! 3. [`stages::text_to_image`]: UNet and text encoder together;
//! 4. [`stages::controlnet`]: the pose, Canny, scribble and layout ControlNets
//!    (conditions in [`conditions`]);
//! 5. [`stages::classifier`]: the evaluation classifier;
//!
//! then [`export::export`] writes the pipeline folder. The `optedit-train`
//! binary runs them with progress bars and loss logs (`loss.csv` per stage).
#![deny(missing_docs)]

pub mod average;
pub mod checkpoint;
pub mod conditions;
pub mod data;
pub mod demo;
pub mod error;
pub mod export;
pub mod log;
pub mod snr;
pub mod stages;

pub use error::{Result, TrainError};
