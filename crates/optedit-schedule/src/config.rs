//! `SchedulerConfig`: the keys of a diffusers `scheduler/scheduler_config.json`
//! that `DDIMScheduler` and `DDIMInverseScheduler` read.
//!
//! The file may belong to another scheduler class of the same discrete beta
//! family (SDXL folders ship an `EulerDiscreteScheduler` config): like
//! diffusers' `DDIMScheduler.from_config`, DDIM then takes the keys it shares
//! with that class (`num_train_timesteps`, `beta_start`, `beta_end`,
//! `beta_schedule`, `trained_betas`, `prediction_type`, `timestep_spacing`,
//! `steps_offset`, `rescale_betas_zero_snr`) and ignores the other class's
//! own keys. See [`SchedulerConfig::from_json_str`] for the one departure.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Result, ScheduleError};

/// How the betas of the training noise schedule are laid out (`beta_schedule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BetaSchedule {
    /// `linear`: betas evenly spaced from `beta_start` to `beta_end`.
    Linear,
    /// `scaled_linear`: square roots of the betas evenly spaced (Stable Diffusion).
    ScaledLinear,
    /// `squaredcos_cap_v2`: the Glide cosine schedule, betas capped at 0.999.
    SquaredCosCapV2,
}

/// What the model predicts (`prediction_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredictionType {
    /// `epsilon`: the noise.
    Epsilon,
    /// `v_prediction`: the velocity `sqrt(a) * eps - sqrt(1 - a) * x0`.
    VPrediction,
    /// `sample`: the clean sample x0.
    Sample,
}

/// How inference timesteps are spread over the training ones (`timestep_spacing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestepSpacing {
    /// `leading`: `k * (T / n) + steps_offset`.
    Leading,
    /// `trailing`: `round(T - k * T / n) - 1`.
    Trailing,
    /// `linspace`: `round(linspace(0, T - 1, n))`.
    Linspace,
}

macro_rules! string_enum {
    ($ty:ident { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            /// The name diffusers uses in its configuration files.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),* }
            }

            /// Parses the diffusers name; `None` for any other string.
            pub fn parse(name: &str) -> Option<Self> {
                match name { $($name => Some(Self::$variant),)* _ => None }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(BetaSchedule {
    Linear => "linear",
    ScaledLinear => "scaled_linear",
    SquaredCosCapV2 => "squaredcos_cap_v2",
});
string_enum!(PredictionType {
    Epsilon => "epsilon",
    VPrediction => "v_prediction",
    Sample => "sample",
});
string_enum!(TimestepSpacing {
    Leading => "leading",
    Trailing => "trailing",
    Linspace => "linspace",
});

/// The configuration of a DDIM (or inverse DDIM) scheduler, with diffusers'
/// defaults for absent keys.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerConfig {
    /// Number of training timesteps `T` (default 1000).
    pub num_train_timesteps: usize,
    /// First beta (default 0.0001).
    pub beta_start: f64,
    /// Last beta (default 0.02).
    pub beta_end: f64,
    /// Beta layout (default `linear`).
    pub beta_schedule: BetaSchedule,
    /// Explicit betas, overriding the three keys above (default none).
    pub trained_betas: Option<Vec<f64>>,
    /// Clamp the predicted x0 to `±clip_sample_range` (default true).
    pub clip_sample: bool,
    /// Clamp range for `clip_sample` (default 1.0).
    pub clip_sample_range: f64,
    /// Alpha product beyond the last (DDIM) or before the first (inverse) step:
    /// 1 if true, otherwise `alphas_cumprod[0]` (default true).
    pub set_alpha_to_one: bool,
    /// Deprecated `set_alpha_to_zero` key; when present `DDIMInverseScheduler`
    /// uses it in place of `set_alpha_to_one` (default none).
    pub set_alpha_to_zero: Option<bool>,
    /// Offset added to `leading` timesteps (default 0).
    pub steps_offset: usize,
    /// What the model predicts (default `epsilon`).
    pub prediction_type: PredictionType,
    /// Timestep spacing (default `leading`).
    pub timestep_spacing: TimestepSpacing,
    /// Rescale betas to zero terminal SNR (default false).
    pub rescale_betas_zero_snr: bool,
    /// Dynamic thresholding; only `false` is supported (default false).
    pub thresholding: bool,
}

impl Default for SchedulerConfig {
    /// diffusers' `DDIMScheduler` defaults.
    fn default() -> Self {
        Self {
            num_train_timesteps: 1000,
            beta_start: 0.0001,
            beta_end: 0.02,
            beta_schedule: BetaSchedule::Linear,
            trained_betas: None,
            clip_sample: true,
            clip_sample_range: 1.0,
            set_alpha_to_one: true,
            set_alpha_to_zero: None,
            steps_offset: 0,
            prediction_type: PredictionType::Epsilon,
            timestep_spacing: TimestepSpacing::Leading,
            rescale_betas_zero_snr: false,
            thresholding: false,
        }
    }
}

/// The scheduler classes whose configs are DDIM's own.
const DDIM_CLASSES: [&str; 2] = ["DDIMScheduler", "DDIMInverseScheduler"];

/// The other classes of diffusers' discrete beta-schedule family (the
/// `_compatibles` of `DDIMScheduler`) whose configs give DDIM its betas.
const BETA_SOURCE_CLASSES: [&str; 14] = [
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "PNDMScheduler",
    "LMSDiscreteScheduler",
    "DDPMScheduler",
    "HeunDiscreteScheduler",
    "KDPM2DiscreteScheduler",
    "KDPM2AncestralDiscreteScheduler",
    "DPMSolverMultistepScheduler",
    "DPMSolverSinglestepScheduler",
    "DPMSolverSDEScheduler",
    "DEISMultistepScheduler",
    "UniPCMultistepScheduler",
    "EDMEulerScheduler",
];

/// The JSON as written by diffusers, before validation.
#[derive(Deserialize)]
struct RawConfig {
    #[serde(default, rename = "_class_name")]
    class_name: Option<String>,
    #[serde(default = "default_num_train_timesteps")]
    num_train_timesteps: i64,
    #[serde(default = "default_beta_start")]
    beta_start: f64,
    #[serde(default = "default_beta_end")]
    beta_end: f64,
    #[serde(default = "default_beta_schedule")]
    beta_schedule: String,
    #[serde(default)]
    trained_betas: Option<Vec<f64>>,
    #[serde(default)]
    clip_sample: Option<bool>,
    #[serde(default = "one")]
    clip_sample_range: f64,
    #[serde(default)]
    set_alpha_to_one: Option<bool>,
    #[serde(default)]
    set_alpha_to_zero: Option<bool>,
    #[serde(default)]
    steps_offset: i64,
    #[serde(default = "default_prediction_type")]
    prediction_type: String,
    #[serde(default = "default_timestep_spacing")]
    timestep_spacing: String,
    #[serde(default)]
    rescale_betas_zero_snr: bool,
    #[serde(default)]
    thresholding: bool,
}

fn default_num_train_timesteps() -> i64 {
    1000
}
fn default_beta_start() -> f64 {
    0.0001
}
fn default_beta_end() -> f64 {
    0.02
}
fn default_beta_schedule() -> String {
    "linear".into()
}
fn default_prediction_type() -> String {
    "epsilon".into()
}
fn default_timestep_spacing() -> String {
    "leading".into()
}
fn one() -> f64 {
    1.0
}

fn unsupported(origin: &str, field: &'static str, value: impl Into<String>) -> ScheduleError {
    ScheduleError::Unsupported {
        origin: origin.to_string(),
        field,
        value: value.into(),
    }
}

fn invalid(origin: &str, field: &'static str, reason: impl Into<String>) -> ScheduleError {
    ScheduleError::Invalid {
        origin: origin.to_string(),
        field,
        reason: reason.into(),
    }
}

impl SchedulerConfig {
    /// Reads and validates a diffusers `scheduler_config.json`; errors name the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ScheduleError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates a configuration from JSON text; unknown keys are ignored.
    ///
    /// `_class_name` may be `DDIMScheduler`, `DDIMInverseScheduler` (or
    /// absent), or another scheduler of the discrete beta family, such as
    /// the `EulerDiscreteScheduler` of SDXL folders, whose config is read for
    /// DDIM's betas as `DDIMScheduler.from_config` reads it. The one
    /// departure: when such a foreign config lacks DDIM's own
    /// `clip_sample` and `set_alpha_to_one` (the released SDXL config has
    /// both, `false`; a freshly saved Euler config has neither), they are
    /// `false`, the Stable Diffusion values, not `DDIMScheduler`'s defaults
    /// (`true`): clipping the predicted clean latent to `[-1, 1]` would ruin
    /// latent-space inversion. Any other class (flow matching, consistency
    /// schedulers) is [`ScheduleError::Unsupported`].
    pub fn from_json_str(json: &str) -> Result<Self> {
        Self::parse(json, "<string>")
    }

    /// Parses and validates a configuration from an already parsed JSON value.
    pub fn from_json_value(value: &serde_json::Value) -> Result<Self> {
        let raw = RawConfig::deserialize(value).map_err(|source| ScheduleError::Json {
            origin: "<json value>".into(),
            source,
        })?;
        Self::from_raw(raw, "<json value>")
    }

    fn parse(json: &str, origin: &str) -> Result<Self> {
        let raw: RawConfig = serde_json::from_str(json).map_err(|source| ScheduleError::Json {
            origin: origin.to_string(),
            source,
        })?;
        Self::from_raw(raw, origin)
    }

    fn from_raw(raw: RawConfig, origin: &str) -> Result<Self> {
        // DDIM's own config, or one read for its betas only.
        let own = match raw.class_name.as_deref() {
            None => true,
            Some(c) if DDIM_CLASSES.contains(&c) => true,
            Some(c) if BETA_SOURCE_CLASSES.contains(&c) => false,
            Some(c) => return Err(unsupported(origin, "_class_name", c)),
        };
        let beta_schedule = BetaSchedule::parse(&raw.beta_schedule)
            .ok_or_else(|| unsupported(origin, "beta_schedule", &raw.beta_schedule))?;
        let prediction_type = PredictionType::parse(&raw.prediction_type)
            .ok_or_else(|| unsupported(origin, "prediction_type", &raw.prediction_type))?;
        let timestep_spacing = TimestepSpacing::parse(&raw.timestep_spacing)
            .ok_or_else(|| unsupported(origin, "timestep_spacing", &raw.timestep_spacing))?;
        let num_train_timesteps = usize::try_from(raw.num_train_timesteps)
            .map_err(|_| invalid(origin, "num_train_timesteps", "must not be negative"))?;
        let steps_offset = usize::try_from(raw.steps_offset)
            .map_err(|_| invalid(origin, "steps_offset", "must not be negative"))?;
        let config = Self {
            num_train_timesteps,
            beta_start: raw.beta_start,
            beta_end: raw.beta_end,
            beta_schedule,
            trained_betas: raw.trained_betas,
            clip_sample: raw.clip_sample.unwrap_or(own),
            clip_sample_range: raw.clip_sample_range,
            set_alpha_to_one: raw.set_alpha_to_one.unwrap_or(own),
            set_alpha_to_zero: raw.set_alpha_to_zero,
            steps_offset,
            prediction_type,
            timestep_spacing,
            rescale_betas_zero_snr: raw.rescale_betas_zero_snr,
            thresholding: raw.thresholding,
        };
        config.validate_from(origin)?;
        Ok(config)
    }

    /// The Stable Diffusion 1.5 scheduler configuration (`scaled_linear`
    /// 0.00085..0.012, `steps_offset` 1, `set_alpha_to_one` false, no clipping).
    pub fn stable_diffusion_v1_5() -> Self {
        Self {
            beta_start: 0.00085,
            beta_end: 0.012,
            beta_schedule: BetaSchedule::ScaledLinear,
            clip_sample: false,
            set_alpha_to_one: false,
            steps_offset: 1,
            ..Self::default()
        }
    }

    /// Checks the values this crate cannot honour (`thresholding`, empty or
    /// mismatched `trained_betas`, zero `num_train_timesteps`, ...).
    pub fn validate(&self) -> Result<()> {
        self.validate_from("<config>")
    }

    fn validate_from(&self, origin: &str) -> Result<()> {
        if self.thresholding {
            return Err(unsupported(origin, "thresholding", "true"));
        }
        if self.num_train_timesteps == 0 {
            return Err(invalid(origin, "num_train_timesteps", "must be at least 1"));
        }
        if let Some(betas) = &self.trained_betas {
            if betas.len() != self.num_train_timesteps {
                return Err(invalid(
                    origin,
                    "trained_betas",
                    format!(
                        "{} values for num_train_timesteps = {}",
                        betas.len(),
                        self.num_train_timesteps
                    ),
                ));
            }
            if let Some(b) = betas.iter().find(|b| !(0.0..=1.0).contains(*b)) {
                return Err(invalid(
                    origin,
                    "trained_betas",
                    format!("{b} is outside [0, 1]"),
                ));
            }
        } else {
            for (field, v) in [("beta_start", self.beta_start), ("beta_end", self.beta_end)] {
                if !(0.0..=1.0).contains(&v) {
                    return Err(invalid(origin, field, format!("{v} is outside [0, 1]")));
                }
            }
        }
        if !(self.clip_sample_range.is_finite() && self.clip_sample_range >= 0.0) {
            return Err(invalid(
                origin,
                "clip_sample_range",
                format!(
                    "{} is not a finite non-negative number",
                    self.clip_sample_range
                ),
            ));
        }
        Ok(())
    }
}
