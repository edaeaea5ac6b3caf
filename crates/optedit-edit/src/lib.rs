//! # optedit-edit
//!
//! Optimisation-based multi-modal semantic image editing: the method of
//! "Optimisation-Based Multi-Modal Semantic Image Editing" (arXiv 2311.16882)
//! on Stable Diffusion (1.5, 2.1 and SDXL folders, one [`SdPipeline`] for
//! every [`PipelineFamily`]) and ControlNet, with the DiffEdit (arXiv
//! 2210.11427) and SDEdit (arXiv 2108.01073) baselines built from the same
//! stages.
//!
//! An edit runs in stages, each callable on its own (see `docs/method.md`):
//!
//! 1. **encode** the image (`z0 = s * mean(E(x))`) and **invert** it with DDIM
//!    under the source prompt, keeping the trajectory `z*`;
//! 2. build the **mask** ([`MaskSource`]: [`UserMask`], [`EstimatedMask`]
//!    (DiffEdit, exact to diffusers' `generate_mask`), [`FullMask`]);
//! 3. make the **guidance trajectory** `zg` from random-noise encoding,
//!    optimising the preservation loss only;
//! 4. **optimise**: from `z*` at the first step, take `k` gradient steps per
//!    optimised timestep on `lambda * L_pres + (1 - lambda) * L_guid`
//!    ([`Objective`], [`EditLoss`]) with a [`LatentOptimizer`], then plain
//!    guided DDIM;
//! 5. **decode**.
//!
//! Instructions are a target prompt plus any number of ControlNets
//! ([`EditCondition`], [`ControlCondition`]). Models run on any burn backend
//! `B: AutodiffBackend` (e.g. `Autodiff<Flex>`); parameters are frozen and
//! gradients flow to the latent only. By default
//! ([`GuidanceGradient::Frozen`]) an optimised step's prediction is computed
//! once and held, so the gradient is the DDIM step's own and a step costs
//! one UNet call; [`GuidanceGradient::Both`] gives the paper's gradient
//! through the UNet and the ControlNets.
//! `Autodiff<Flex, BalancedCheckpointing>` (what the `optedit` binary uses)
//! recomputes memory-bound operations in the backward pass: a third less
//! peak memory for SD 1.5 at 512x512, same speed and results.
//! Progress (stage, step, loss values) goes to a [`Progress`] callback, which
//! can cancel; NaN or exploding losses stop the edit with
//! [`EditError::Diverged`].
#![deny(missing_docs)]

pub mod baselines;
pub mod condition;
pub mod config;
pub mod denoiser;
pub mod diffedit;
pub mod editor;
pub mod error;
pub mod graph;
pub mod loss;
pub mod mask;
pub mod method;
pub mod noise;
pub mod optimizer;
pub mod pipeline;
pub mod progress;
pub mod stages;
mod words;

pub use condition::{ControlCondition, EditCondition};
pub use config::EditConfig;
pub use denoiser::{Denoiser, GuidanceGradient};
pub use diffedit::{estimate_mask, DiffEditMaskConfig, MaskDraws, MaskEstimate};
pub use editor::{paste_back, EditOutput, Editor, OptimizerFactory};
pub use error::{EditError, Result};
pub use graph::release_graphs;
pub use loss::{
    masked_mse, EditLoss, GuidanceLoss, LossInputs, LossSpace, Objective, PreservationLoss, Stages,
};
pub use mask::{EstimatedMask, FullMask, MaskContext, MaskOptions, MaskSource, UserMask};
pub use method::Method;
pub use noise::NoiseSource;
pub use optedit_schedule::Trajectory;
pub use optimizer::{Adam, LatentOptimizer, LrSchedule, NormalizedGd, OptimizerKind, Sgd};
pub use pipeline::{PipelineFamily, PromptEncoders, SdPipeline};
pub use progress::{LossValues, Progress, ProgressEvent, Silent, Stage};
pub use words::Worded;
