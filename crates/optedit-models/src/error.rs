//! Typed errors of the model crate: every variant names the file, tensor,
//! field or argument at fault.

use std::path::PathBuf;

/// Everything that can go wrong building or loading a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A required file is not in the folder.
    #[error("missing file {path}: {hint}")]
    MissingFile {
        /// The file (or the folder searched).
        path: PathBuf,
        /// What was looked for.
        hint: String,
    },
    /// A pickle checkpoint was given; only safetensors are read.
    #[error("{path} is a pickle checkpoint; optedit reads only safetensors. Convert it first (e.g. with diffusers: `DiffusionPipeline.from_pretrained(...).save_pretrained(dir, safe_serialization=True)`, or `safetensors.torch.save_file(torch.load(path), 'model.safetensors')`)")]
    PickleRefused {
        /// The refused file.
        path: PathBuf,
    },
    /// A config file is not valid JSON or a field has the wrong type.
    #[error("invalid config {path}: {message}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong (serde's message names the field).
        message: String,
    },
    /// A required config key is absent.
    #[error("config {path} is missing the required key `{field}`")]
    MissingConfigKey {
        /// The config file.
        path: PathBuf,
        /// The absent key.
        field: String,
    },
    /// A config value is valid JSON but not supported by this implementation.
    #[error("config {path}: unsupported value {value} for `{field}` ({reason})")]
    UnsupportedConfig {
        /// The config file (or `<memory>`).
        path: PathBuf,
        /// The key.
        field: String,
        /// The offending value.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A safetensors file could not be parsed (truncated, corrupt header...).
    #[error("cannot parse safetensors file {path}: {message}")]
    Safetensors {
        /// The weights file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The model needs a tensor the file does not have.
    #[error("{path}: missing tensor `{tensor}` (and {more} more)")]
    MissingTensor {
        /// The weights file.
        path: PathBuf,
        /// First missing tensor, by its diffusers name.
        tensor: String,
        /// How many others are missing.
        more: usize,
    },
    /// The file holds a tensor the model does not use (a wrong mapping or a
    /// model of another architecture).
    #[error("{path}: unused tensor `{tensor}` (and {more} more): the file does not match this model's config")]
    UnusedTensor {
        /// The weights file.
        path: PathBuf,
        /// First unused tensor, by its name in the file.
        tensor: String,
        /// How many others are unused.
        more: usize,
    },
    /// A tensor has another shape than the config implies.
    #[error("{path}: tensor `{tensor}` has shape {found:?}, the config implies {expected:?}")]
    ShapeMismatch {
        /// The weights file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// Shape the model expects.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// A tensor has a dtype that cannot be cast to f32.
    #[error("{path}: tensor `{tensor}` has unsupported dtype {dtype}")]
    UnsupportedDtype {
        /// The weights file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// Its dtype.
        dtype: String,
    },
    /// Any other failure while applying the weights.
    #[error("{path}: cannot load tensor `{tensor}`: {message}")]
    Load {
        /// The weights file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// What failed.
        message: String,
    },
    /// A forward-pass argument is inconsistent with the model.
    #[error("invalid argument `{argument}`: {message}")]
    InvalidInput {
        /// The argument.
        argument: String,
        /// What is wrong.
        message: String,
    },
    /// The model needs conditions the call did not give (an SDXL UNet,
    /// `addition_embed_type = "text_time"`, called without `text_embeds`
    /// and `time_ids`).
    #[error("the UNet's addition_embed_type is \"{addition_embed_type}\": it needs {needed} (UNet2DConditionModel::forward_with_conditions)")]
    MissingConditions {
        /// The config's `addition_embed_type`.
        addition_embed_type: String,
        /// What is missing.
        needed: String,
    },
    /// A compute device cannot be used (no driver, no GPU).
    #[error("device {device} is not usable: {reason}")]
    Device {
        /// The device, e.g. `cuda:0`.
        device: String,
        /// What the backend reported.
        reason: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, ModelError>;
