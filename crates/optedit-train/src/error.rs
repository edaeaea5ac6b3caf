//! Errors of the training crate.

use std::path::PathBuf;

/// A training or export failure, naming the file or argument at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A model could not be built, loaded or saved.
    #[error(transparent)]
    Model(#[from] optedit_models::ModelError),
    /// The tokenizer or a condition builder failed.
    #[error(transparent)]
    Cond(#[from] optedit_cond::CondError),
    /// The classifier's weights or a condition builder failed.
    #[error(transparent)]
    Judge(#[from] optedit_judge::JudgeError),
    /// The noise schedule config was refused.
    #[error(transparent)]
    Schedule(#[from] optedit_schedule::ScheduleError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint could not be read or written.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// An argument is out of range.
    #[error("invalid argument `{argument}`: {message}")]
    InvalidArgument {
        /// The argument.
        argument: String,
        /// Why it is refused.
        message: String,
    },
    /// The loss became NaN or infinite.
    #[error("{stage}: the loss is {value} at step {step}; lower the learning rate or resume from the last checkpoint")]
    Diverged {
        /// The training stage.
        stage: String,
        /// The step.
        step: usize,
        /// The loss value.
        value: f32,
    },
}

/// Result with [`TrainError`].
pub type Result<T> = std::result::Result<T, TrainError>;

/// Maps an I/O error on `path`.
pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}
