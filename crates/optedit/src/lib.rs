#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

pub mod batch;
pub mod conditions;
pub mod error;
pub mod images;
mod pipeline;

pub use error::{Error, Result};
pub use optedit_models::kernels::ComputeDtype;
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
/// under `Autodiff`, with balanced checkpointing (memory-bound operations
/// such as softmax, norms and activations are recomputed in the backward
/// pass instead of kept: a third less peak memory for an SD 1.5 gradient at
/// 512 x 512, at the same speed and with the same numbers,
/// `docs/benchmarks.md`).
pub type CpuBackend = burn::backend::Autodiff<
    burn::backend::Flex,
    burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing,
>;

/// The CUDA backend with gradients (feature `cuda`), checkpointed like
/// [`CpuBackend`]; its device comes from [`cuda`].
#[cfg(feature = "cuda")]
#[cfg_attr(docsrs, doc(cfg(feature = "cuda")))]
pub type CudaBackend = burn::backend::Autodiff<
    burn::backend::Cuda,
    burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing,
>;

/// The first CUDA device, checked to work (feature `cuda`).
#[cfg(feature = "cuda")]
#[cfg_attr(docsrs, doc(cfg(feature = "cuda")))]
pub use optedit_models::device::cuda;
