//! [`Error`]: everything that can go wrong in the facade, naming the file or
//! argument at fault.

use std::path::PathBuf;

/// Why an edit could not be made or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Loading or running a model failed.
    #[error(transparent)]
    Model(#[from] optedit_models::ModelError),
    /// An image, prompt or condition could not be read or built.
    #[error(transparent)]
    Condition(#[from] optedit_cond::CondError),
    /// A ControlNet condition image could not be built from its source.
    #[error("condition {condition}: {source}")]
    ConditionImage {
        /// The condition: its file, or `edges auto`.
        condition: String,
        /// Why.
        #[source]
        source: optedit_cond::CondError,
    },
    /// The edit itself failed (bad configuration, divergence, bad mask).
    #[error(transparent)]
    Edit(#[from] optedit_edit::EditError),
    /// An argument is out of its range or does not fit the others.
    #[error("{argument}: {message}")]
    InvalidArgument {
        /// The argument.
        argument: String,
        /// What is wrong with it.
        message: String,
    },
    /// The output's extension names no format this crate writes.
    #[error("{}: cannot tell the image format from the extension; use .png, .jpg, .jpeg or .webp", path.display())]
    UnknownFormat {
        /// The output path.
        path: PathBuf,
    },
    /// Writing an output failed (no partial file is left).
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The output path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Encoding an output image failed.
    #[error("cannot encode {}: {source}", path.display())]
    Encode {
        /// The output path.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
}

impl Error {
    pub(crate) fn argument(argument: &str, message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            argument: argument.into(),
            message: message.into(),
        }
    }
}

/// The facade's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
