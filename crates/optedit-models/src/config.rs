//! Reading diffusers / transformers `config.json` files: unknown keys are
//! ignored, a missing required key or a value of the wrong type is a typed
//! error naming the file and the key.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{ModelError, Result};

/// A config value that diffusers accepts either as one integer or as one
/// integer per block (e.g. `attention_head_dim`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum IntOrList {
    /// Same value for every block.
    Int(usize),
    /// One value per block.
    List(Vec<usize>),
}

impl IntOrList {
    /// The value for block `i` of `n` blocks; `None` if a list has the wrong length.
    pub fn per_block(&self, n: usize) -> Option<Vec<usize>> {
        match self {
            Self::Int(v) => Some(vec![*v; n]),
            Self::List(v) if v.len() == n => Some(v.clone()),
            Self::List(_) => None,
        }
    }
}

/// Parses a config from JSON text; `path` names the source in errors.
pub fn parse_config<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T> {
    serde_json::from_str(text).map_err(|e| {
        let msg = e.to_string();
        if let Some(rest) = msg.strip_prefix("missing field `") {
            if let Some(field) = rest.split('`').next() {
                return ModelError::MissingConfigKey {
                    path: path.to_path_buf(),
                    field: field.to_string(),
                };
            }
        }
        ModelError::Config {
            path: path.to_path_buf(),
            message: msg,
        }
    })
}

/// Reads and parses a config file.
pub fn read_config<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ModelError::MissingFile {
                path: path.to_path_buf(),
                hint: "config file not found".into(),
            }
        } else {
            ModelError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    parse_config(&text, path)
}

/// Error for an unsupported config value.
pub(crate) fn unsupported(
    path: &Path,
    field: &str,
    value: impl std::fmt::Debug,
    reason: &str,
) -> ModelError {
    ModelError::UnsupportedConfig {
        path: path.to_path_buf(),
        field: field.to_string(),
        value: format!("{value:?}"),
        reason: reason.to_string(),
    }
}

/// serde defaults shared by the model configs (diffusers' defaults).
pub(crate) mod defaults {
    #![allow(missing_docs)]
    use super::IntOrList;
    pub fn d_1() -> usize {
        1
    }
    pub fn d_2() -> usize {
        2
    }
    pub fn d_3() -> usize {
        3
    }
    pub fn d_32() -> usize {
        32
    }
    pub fn d_4() -> usize {
        4
    }
    pub fn d_64() -> usize {
        64
    }
    pub fn d_77() -> usize {
        77
    }
    pub fn d_512() -> usize {
        512
    }
    pub fn d_act() -> String {
        "quick_gelu".into()
    }
    pub fn d_cond() -> Vec<usize> {
        vec![16, 32, 96, 256]
    }
    pub fn d_default() -> String {
        "default".into()
    }
    pub fn d_eos() -> i64 {
        2
    }
    pub fn d_eps() -> f64 {
        1e-5
    }
    pub fn d_heads() -> IntOrList {
        IntOrList::Int(8)
    }
    pub fn d_mid() -> Option<String> {
        Some("UNetMidBlock2DCrossAttn".into())
    }
    pub fn d_one() -> f64 {
        1.0
    }
    pub fn d_positional() -> String {
        "positional".into()
    }
    pub fn d_rgb() -> String {
        "rgb".into()
    }
    pub fn d_scale() -> f64 {
        0.18215
    }
    pub fn d_silu() -> String {
        "silu".into()
    }
    pub fn d_tlayers() -> IntOrList {
        IntOrList::Int(1)
    }
    pub fn d_true() -> bool {
        true
    }
}
