//! The crate's error type: every failure names the stage, step, field or
//! argument at fault.

use std::path::PathBuf;

use optedit_cond::CondError;
use optedit_models::ModelError;
use optedit_schedule::ScheduleError;

use crate::progress::Stage;

/// Result with [`EditError`].
pub type Result<T> = std::result::Result<T, EditError>;

/// Why an edit could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// A model failed (loading or a forward pass).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The scheduler failed.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// A conditioning input failed (tokenizer, condition image).
    #[error(transparent)]
    Cond(#[from] CondError),
    /// A pipeline folder's `model_index.json` is missing, unreadable or has
    /// no `_class_name`.
    #[error("cannot read pipeline index {path}: {message}")]
    ModelIndex {
        /// The `model_index.json` file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A pipeline folder holds a pipeline class this crate does not edit
    /// with.
    #[error(
        "{path}: unsupported pipeline class `{class}` (expected StableDiffusionPipeline or StableDiffusionXLPipeline)"
    )]
    UnsupportedPipeline {
        /// The `model_index.json` file.
        path: PathBuf,
        /// Its `_class_name`.
        class: String,
    },
    /// An [`EditConfig`](crate::EditConfig) field is out of range.
    #[error("invalid edit config: `{field}` {message}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// An argument is inconsistent (shapes, sizes).
    #[error("invalid argument `{argument}`: {message}")]
    InvalidInput {
        /// The argument.
        argument: String,
        /// What is wrong.
        message: String,
    },
    /// A loss or latent became NaN/infinite or exploded.
    #[error("{stage} stage diverged at step {step} (timestep {timestep}): {what} = {value}")]
    Diverged {
        /// The stage.
        stage: Stage,
        /// Denoising step index (from the start of the schedule).
        step: usize,
        /// Its timestep.
        timestep: usize,
        /// Which quantity.
        what: String,
        /// Its value.
        value: f64,
    },
    /// The progress callback asked to stop.
    #[error("cancelled during the {stage} stage at step {step}")]
    Cancelled {
        /// The stage.
        stage: Stage,
        /// The step reached.
        step: usize,
    },
}

impl EditError {
    pub(crate) fn config(field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidConfig {
            field,
            message: message.into(),
        }
    }

    pub(crate) fn input(argument: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidInput {
            argument: argument.into(),
            message: message.into(),
        }
    }
}
