//! The crate's error type: every failure names the argument or file at fault.

use std::path::PathBuf;

use optedit_models::ModelError;

/// Result with [`CondError`].
pub type Result<T, E = CondError> = std::result::Result<T, E>;

/// Why a conditioning input could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CondError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An image file could not be decoded (or has an unsupported format).
    #[error("cannot decode image {path}: {source}")]
    ImageDecode {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },
    /// An image has no pixels.
    #[error("{argument}: the image is empty ({width}x{height})")]
    EmptyImage {
        /// The argument holding the image.
        argument: String,
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
    },
    /// A tokenizer file is missing or malformed.
    #[error("tokenizer file {path}: {message}")]
    TokenizerFile {
        /// The file (or folder) at fault.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The tokenizer failed on a text.
    #[error("cannot tokenize {argument}: {message}")]
    Tokenize {
        /// The argument holding the text.
        argument: String,
        /// The tokenizer's message.
        message: String,
    },
    /// A JSON document (pose file, keypoint list) is malformed.
    #[error("{source_name}: malformed JSON: {message}")]
    Json {
        /// The file or argument the JSON came from.
        source_name: String,
        /// What is wrong (serde's message gives the line and column).
        message: String,
    },
    /// A number is outside the range the argument accepts.
    #[error("{argument}: {message}")]
    OutOfRange {
        /// The argument (with the index of the element, where there is one).
        argument: String,
        /// The value and the range it should lie in.
        message: String,
    },
    /// An argument is invalid for another reason.
    #[error("{argument}: {message}")]
    InvalidArgument {
        /// The argument.
        argument: String,
        /// What is wrong with it.
        message: String,
    },
    /// The text encoder failed.
    #[error(transparent)]
    Model(#[from] ModelError),
}

impl CondError {
    /// An [`CondError::OutOfRange`] for `argument`.
    pub(crate) fn out_of_range(argument: impl Into<String>, message: impl Into<String>) -> Self {
        Self::OutOfRange {
            argument: argument.into(),
            message: message.into(),
        }
    }

    /// An [`CondError::InvalidArgument`] for `argument`.
    pub(crate) fn invalid(argument: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            argument: argument.into(),
            message: message.into(),
        }
    }

    /// A [`CondError::Json`] for the document `source_name`.
    pub(crate) fn json(source_name: impl Into<String>, message: impl ToString) -> Self {
        Self::Json {
            source_name: source_name.into(),
            message: message.to_string(),
        }
    }
}
