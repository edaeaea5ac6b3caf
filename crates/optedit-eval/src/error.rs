//! The crate's error type: every failure names the case line and field, the
//! file, or the argument at fault.

use std::path::{Path, PathBuf};

/// Result with [`EvalError`].
pub type Result<T, E = EvalError> = std::result::Result<T, E>;

/// Why cases could not be read, made or evaluated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A case line is malformed or inconsistent.
    #[error("line {line}, `{field}`: {message}")]
    Case {
        /// 1-based line of the case file.
        line: usize,
        /// The field at fault (`edit.colour`, `mask`, ...; `line` for JSON syntax).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A word that names no colour, shape, pose, control, mask or kind.
    #[error("line {line}, `{field}`: unknown {kind} {word:?}; expected one of: {}", vocabulary.join(", "))]
    UnknownWord {
        /// 1-based line of the case file (0 for a command-line value).
        line: usize,
        /// The field at fault.
        field: String,
        /// What the word should name.
        kind: &'static str,
        /// The word.
        word: String,
        /// Every accepted word.
        vocabulary: Vec<String>,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An argument is out of range or inconsistent.
    #[error("invalid argument `{argument}`: {message}")]
    InvalidArgument {
        /// The argument.
        argument: String,
        /// Why it is refused.
        message: String,
    },
    /// A results folder cannot be resumed (other settings, malformed records).
    #[error("cannot resume {path}: {message}")]
    Resume {
        /// The file at fault.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// An edit failed.
    #[error("case {id}: {source}")]
    Edit {
        /// The case.
        id: String,
        /// The editor's error.
        #[source]
        source: optedit_edit::EditError,
    },
    /// The editor failed outside a case (loading, sampling).
    #[error(transparent)]
    Editor(#[from] optedit_edit::EditError),
    /// A model could not be loaded.
    #[error(transparent)]
    Model(#[from] optedit_models::ModelError),
    /// The classifier's weights or a condition builder failed.
    #[error(transparent)]
    Judge(#[from] optedit_judge::JudgeError),
    /// A scene could not be sampled or edited.
    #[error(transparent)]
    World(#[from] optedit_world::WorldError),
    /// A condition image could not be built.
    #[error(transparent)]
    Cond(#[from] optedit_cond::CondError),
    /// The scheduler failed.
    #[error(transparent)]
    Schedule(#[from] optedit_schedule::ScheduleError),
    /// An image could not be encoded.
    #[error("{path}: {source}")]
    Image {
        /// The file.
        path: PathBuf,
        /// The codec error.
        #[source]
        source: image::ImageError,
    },
    /// The observer asked to stop.
    #[error("cancelled")]
    Cancelled,
}

impl EvalError {
    pub(crate) fn case(line: usize, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Case {
            line,
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn argument(argument: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            argument: argument.into(),
            message: message.into(),
        }
    }
}

/// Maps an I/O error on `path`.
pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EvalError + '_ {
    move |source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    }
}
