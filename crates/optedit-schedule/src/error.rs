//! The crate's error type.

use std::path::PathBuf;

/// The boxed error a [`NoisePredictor`](crate::NoisePredictor) returns.
pub type PredictorError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias of this crate.
pub type Result<T, E = ScheduleError> = std::result::Result<T, E>;

/// Everything that can go wrong when configuring or running a scheduler.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The configuration file could not be read.
    #[error("cannot read scheduler config {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is not valid JSON or has a value of the wrong type.
    #[error("cannot parse scheduler config {origin}: {source}")]
    Json {
        /// Where the configuration came from (a file path or `<string>`).
        origin: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A configuration value diffusers knows but this crate does not support,
    /// or a value unknown to diffusers.
    #[error("scheduler config {origin}: unsupported {field} = {value}")]
    Unsupported {
        /// Where the configuration came from.
        origin: String,
        /// The configuration key.
        field: &'static str,
        /// The rejected value.
        value: String,
    },
    /// A configuration value that is out of range.
    #[error("scheduler config {origin}: invalid {field}: {reason}")]
    Invalid {
        /// Where the configuration came from.
        origin: String,
        /// The configuration key.
        field: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// `num_inference_steps` is zero or larger than `num_train_timesteps`.
    #[error(
        "num_inference_steps = {got} is invalid: it must be between 1 and num_train_timesteps = {max}"
    )]
    InvalidStepCount {
        /// The requested number of steps.
        got: usize,
        /// `num_train_timesteps`.
        max: usize,
    },
    /// A timestep (given or computed) lies outside `0..num_train_timesteps`.
    #[error("timestep {timestep} is outside 0..{num_train_timesteps}")]
    TimestepOutOfRange {
        /// The offending timestep.
        timestep: i64,
        /// `num_train_timesteps`.
        num_train_timesteps: usize,
    },
    /// `step` was called before `set_timesteps`.
    #[error("set_timesteps must be called before step")]
    TimestepsNotSet,
    /// A call argument is invalid (tensor shapes, eta, start step, ...).
    #[error("invalid {what}: {reason}")]
    InvalidArgument {
        /// The argument.
        what: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// The noise predictor failed.
    #[error("noise predictor failed at step {step} (timestep {timestep}): {source}")]
    Predictor {
        /// Index of the step in the run.
        step: usize,
        /// The timestep it was asked about.
        timestep: usize,
        /// The predictor's error.
        #[source]
        source: PredictorError,
    },
}

impl ScheduleError {
    pub(crate) fn arg(what: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            what,
            reason: reason.into(),
        }
    }
}
