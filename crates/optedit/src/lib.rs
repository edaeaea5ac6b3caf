#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod error;
pub mod images;
mod pipeline;

pub use error::{Error, Result};
pub use pipeline::{Control, Edited, Instruction, MaskChoice, Options, Pipeline, SD_MAX_SIDE};

pub use optedit_edit::{
    EditConfig, LossValues, MaskOptions, Method, OptimizerKind, Progress, ProgressEvent, Silent,
    Stage,
};

/// Prompts, poses, edges and condition images ([`optedit_cond`]).
pub use optedit_cond as cond;
/// The lower-level API: stages, losses, optimisers, masks
/// ([`optedit_edit`]).
pub use optedit_edit as edit;
/// The models and their diffusers loaders ([`optedit_models`]).
pub use optedit_models as models;

/// The CPU backend with gradients, as the editor needs: burn's `Flex`
/// under `Autodiff`.
pub type CpuBackend = burn::backend::Autodiff<burn::backend::Flex>;
