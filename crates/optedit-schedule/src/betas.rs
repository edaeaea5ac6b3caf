//! The training noise schedule: betas and `alphas_cumprod`, computed in float32
//! the way torch does it in diffusers (float32 `linspace`, float32 `1 - beta`,
//! `cumprod` accumulated in float64 and stored as float32, as torch's CPU kernel
//! does), plus `add_noise` and `get_velocity`.

use burn::tensor::{backend::Backend, Tensor, TensorData};

use crate::config::{BetaSchedule, SchedulerConfig};
use crate::error::{Result, ScheduleError};

/// `torch.linspace(start, end, n, dtype=float32)` on the CPU (scalar path: the
/// first half counted up from `start`, the second half down from `end`).
pub(crate) fn linspace_f32(start: f64, end: f64, n: usize) -> Vec<f32> {
    if n == 1 {
        return vec![start as f32];
    }
    let (s, e) = (start as f32, end as f32);
    let step = (e - s) / (n - 1) as f32;
    let half = n / 2;
    (0..n)
        .map(|i| {
            if i < half {
                s + step * i as f32
            } else {
                e - step * (n - i - 1) as f32
            }
        })
        .collect()
}

/// diffusers' `betas_for_alpha_bar` with the cosine `alpha_bar` (the
/// `squaredcos_cap_v2` schedule): computed in float64, returned as float32.
pub fn betas_for_alpha_bar(num_diffusion_timesteps: usize, max_beta: f64) -> Vec<f32> {
    let alpha_bar = |t: f64| {
        ((t + 0.008) / 1.008 * std::f64::consts::PI / 2.0)
            .cos()
            .powi(2)
    };
    let n = num_diffusion_timesteps as f64;
    (0..num_diffusion_timesteps)
        .map(|i| {
            let t1 = i as f64 / n;
            let t2 = (i + 1) as f64 / n;
            (1.0 - alpha_bar(t2) / alpha_bar(t1)).min(max_beta) as f32
        })
        .collect()
}

/// `torch.cumprod` of a float32 vector on the CPU: accumulated in float64,
/// each partial product stored as float32.
pub(crate) fn cumprod_f32(values: &[f32]) -> Vec<f32> {
    let mut acc = 1.0f64;
    values
        .iter()
        .map(|&v| {
            acc *= v as f64;
            acc as f32
        })
        .collect()
}

/// diffusers' `rescale_zero_terminal_snr` (Lin et al. 2023, Algorithm 1), in float32.
pub fn rescale_zero_terminal_snr(betas: &[f32]) -> Vec<f32> {
    let alphas: Vec<f32> = betas.iter().map(|b| 1.0 - b).collect();
    let mut sqrt_bar: Vec<f32> = cumprod_f32(&alphas).iter().map(|a| a.sqrt()).collect();
    let (first, last) = (sqrt_bar[0], sqrt_bar[sqrt_bar.len() - 1]);
    let scale = first / (first - last);
    for v in &mut sqrt_bar {
        *v = (*v - last) * scale;
    }
    let bar: Vec<f32> = sqrt_bar.iter().map(|v| v * v).collect();
    let mut out = Vec::with_capacity(bar.len());
    out.push(1.0 - bar[0]);
    out.extend(bar.windows(2).map(|w| 1.0 - w[1] / w[0]));
    out
}

/// The betas diffusers builds from a configuration, as float32.
pub fn betas_for_config(config: &SchedulerConfig) -> Vec<f32> {
    let n = config.num_train_timesteps;
    let betas = if let Some(trained) = &config.trained_betas {
        trained.iter().map(|&b| b as f32).collect()
    } else {
        match config.beta_schedule {
            BetaSchedule::Linear => linspace_f32(config.beta_start, config.beta_end, n),
            BetaSchedule::ScaledLinear => {
                linspace_f32(config.beta_start.sqrt(), config.beta_end.sqrt(), n)
                    .into_iter()
                    .map(|b| b * b)
                    .collect()
            }
            BetaSchedule::SquaredCosCapV2 => betas_for_alpha_bar(n, 0.999),
        }
    };
    if config.rescale_betas_zero_snr {
        rescale_zero_terminal_snr(&betas)
    } else {
        betas
    }
}

/// The training noise schedule shared by the forward and inverse schedulers.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseSchedule {
    betas: Vec<f32>,
    alphas_cumprod: Vec<f32>,
}

/// A per-sample coefficient: one scalar for the whole batch, or a
/// `[batch, 1, 1, 1]` tensor that broadcasts.
enum Coefficient<B: Backend> {
    Scalar(f32),
    PerSample(Tensor<B, 4>),
}

impl<B: Backend> Coefficient<B> {
    fn apply(&self, tensor: Tensor<B, 4>) -> Tensor<B, 4> {
        match self {
            Self::Scalar(c) => tensor.mul_scalar(*c),
            Self::PerSample(c) => tensor.mul(c.clone()),
        }
    }
}

impl NoiseSchedule {
    /// The schedule of a configuration (the configuration should be validated).
    pub fn new(config: &SchedulerConfig) -> Self {
        Self::from_betas(betas_for_config(config))
    }

    /// The schedule of explicit float32 betas.
    pub fn from_betas(betas: Vec<f32>) -> Self {
        let alphas: Vec<f32> = betas.iter().map(|b| 1.0 - b).collect();
        let alphas_cumprod = cumprod_f32(&alphas);
        Self {
            betas,
            alphas_cumprod,
        }
    }

    /// The betas, one per training timestep.
    pub fn betas(&self) -> &[f32] {
        &self.betas
    }

    /// `alphas_cumprod`, one per training timestep.
    pub fn alphas_cumprod(&self) -> &[f32] {
        &self.alphas_cumprod
    }

    /// Number of training timesteps.
    pub fn num_train_timesteps(&self) -> usize {
        self.alphas_cumprod.len()
    }

    /// `alphas_cumprod[timestep]`, or an error outside `0..num_train_timesteps`.
    pub fn alpha_cumprod(&self, timestep: usize) -> Result<f64> {
        self.alphas_cumprod.get(timestep).map(|&a| a as f64).ok_or(
            ScheduleError::TimestepOutOfRange {
                timestep: timestep as i64,
                num_train_timesteps: self.num_train_timesteps(),
            },
        )
    }

    fn coefficient<B: Backend>(
        &self,
        like: &Tensor<B, 4>,
        timesteps: &[usize],
        f: impl Fn(f64) -> f64,
    ) -> Result<Coefficient<B>> {
        let batch = like.dims()[0];
        let values = timesteps
            .iter()
            .map(|&t| self.alpha_cumprod(t).map(|a| f(a) as f32))
            .collect::<Result<Vec<f32>>>()?;
        match values.len() {
            1 => Ok(Coefficient::Scalar(values[0])),
            n if n == batch => {
                let data = TensorData::new(values, [n, 1, 1, 1]);
                Ok(Coefficient::PerSample(Tensor::from_data(
                    data,
                    (&like.device(), like.dtype()),
                )))
            }
            n => Err(ScheduleError::arg(
                "timesteps",
                format!("{n} timesteps for a batch of {batch} (give 1 or one per sample)"),
            )),
        }
    }

    /// diffusers' `add_noise`: `sqrt(a_t) * original + sqrt(1 - a_t) * noise`,
    /// with one timestep for the whole batch or one per sample.
    pub fn add_noise<B: Backend>(
        &self,
        original: Tensor<B, 4>,
        noise: Tensor<B, 4>,
        timesteps: &[usize],
    ) -> Result<Tensor<B, 4>> {
        check_same_shape("noise", &original, &noise)?;
        let a = self.coefficient(&original, timesteps, f64::sqrt)?;
        let b = self.coefficient(&original, timesteps, |a| (1.0 - a).sqrt())?;
        Ok(a.apply(original).add(b.apply(noise)))
    }

    /// diffusers' `get_velocity`: `sqrt(a_t) * noise - sqrt(1 - a_t) * sample`.
    pub fn get_velocity<B: Backend>(
        &self,
        sample: Tensor<B, 4>,
        noise: Tensor<B, 4>,
        timesteps: &[usize],
    ) -> Result<Tensor<B, 4>> {
        check_same_shape("noise", &sample, &noise)?;
        let a = self.coefficient(&sample, timesteps, f64::sqrt)?;
        let b = self.coefficient(&sample, timesteps, |a| (1.0 - a).sqrt())?;
        Ok(a.apply(noise).sub(b.apply(sample)))
    }
}

/// Errors unless `other` has the shape of `reference`.
pub(crate) fn check_same_shape<B: Backend>(
    what: &'static str,
    reference: &Tensor<B, 4>,
    other: &Tensor<B, 4>,
) -> Result<()> {
    if reference.dims() == other.dims() {
        Ok(())
    } else {
        Err(ScheduleError::arg(
            what,
            format!(
                "shape {:?} differs from the sample's {:?}",
                other.dims(),
                reference.dims()
            ),
        ))
    }
}
