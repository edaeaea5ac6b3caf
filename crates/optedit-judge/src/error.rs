//! Errors of the judge crate.

use std::path::PathBuf;

/// A failure of the judge's weights or of a condition builder, naming the
/// file at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JudgeError {
    /// A condition image could not be built.
    #[error(transparent)]
    Cond(#[from] optedit_cond::CondError),
    /// The classifier's weights could not be read or written, or do not
    /// match the classifier.
    #[error("checkpoint {path}: {message}")]
    Weights {
        /// The safetensors file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Result with [`JudgeError`].
pub type Result<T> = std::result::Result<T, JudgeError>;
