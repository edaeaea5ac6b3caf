//! `DdimScheduler`: diffusers' `DDIMScheduler` (denoising DDIM steps, with
//! optional stochasticity `eta`).

use burn::tensor::{backend::Backend, Distribution, Tensor};

use crate::betas::{check_same_shape, NoiseSchedule};
use crate::config::SchedulerConfig;
use crate::error::{Result, ScheduleError};
use crate::scheduler::{split_model_output, Direction, Scheduler, StepOutput};
use crate::timesteps::ddim_timesteps;

/// The host-side scalars of one DDIM step (formulas (12) and (16) of the paper).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DdimCoefficients {
    /// The timestep stepped from.
    pub timestep: usize,
    /// `timestep - num_train_timesteps / num_inference_steps` (may be negative).
    pub prev_timestep: i64,
    /// `alphas_cumprod[timestep]`.
    pub alpha_prod_t: f64,
    /// `alphas_cumprod[prev_timestep]`, or `final_alpha_cumprod` when negative.
    pub alpha_prod_t_prev: f64,
    /// `eta * sqrt(variance)`, the standard deviation of the added noise.
    pub std_dev_t: f64,
}

impl DdimCoefficients {
    /// `(1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)`, diffusers' `_get_variance`.
    pub fn variance(&self) -> f64 {
        variance(self.alpha_prod_t, self.alpha_prod_t_prev)
    }
}

fn variance(alpha_prod_t: f64, alpha_prod_t_prev: f64) -> f64 {
    (1.0 - alpha_prod_t_prev) / (1.0 - alpha_prod_t) * (1.0 - alpha_prod_t / alpha_prod_t_prev)
}

/// diffusers' `DDIMScheduler` (Song et al. 2020, arXiv 2010.02502).
#[derive(Debug, Clone)]
pub struct DdimScheduler {
    config: SchedulerConfig,
    schedule: NoiseSchedule,
    final_alpha_cumprod: f32,
    timesteps: Vec<usize>,
    num_inference_steps: Option<usize>,
}

impl DdimScheduler {
    /// Builds the scheduler; errors for a configuration it cannot honour.
    pub fn new(config: SchedulerConfig) -> Result<Self> {
        config.validate()?;
        let schedule = NoiseSchedule::new(&config);
        let final_alpha_cumprod = if config.set_alpha_to_one {
            1.0
        } else {
            schedule.alphas_cumprod()[0]
        };
        Ok(Self {
            config,
            schedule,
            final_alpha_cumprod,
            timesteps: Vec::new(),
            num_inference_steps: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// `alphas_cumprod`, one per training timestep.
    pub fn alphas_cumprod(&self) -> &[f32] {
        self.schedule.alphas_cumprod()
    }

    /// The alpha product after the last step: 1, or `alphas_cumprod[0]`
    /// when `set_alpha_to_one` is false.
    pub fn final_alpha_cumprod(&self) -> f32 {
        self.final_alpha_cumprod
    }

    /// `DDIMScheduler.set_timesteps`: descending inference timesteps.
    pub fn set_timesteps(&mut self, num_inference_steps: usize) -> Result<()> {
        self.timesteps = ddim_timesteps(&self.config, num_inference_steps)?;
        self.num_inference_steps = Some(num_inference_steps);
        Ok(())
    }

    /// The inference timesteps, descending (empty before `set_timesteps`).
    pub fn timesteps(&self) -> &[usize] {
        &self.timesteps
    }

    /// The scalars of a step from `timestep` with noise weight `eta`.
    pub fn coefficients(&self, timestep: usize, eta: f64) -> Result<DdimCoefficients> {
        let n = self
            .num_inference_steps
            .ok_or(ScheduleError::TimestepsNotSet)?;
        if !(eta.is_finite() && eta >= 0.0) {
            return Err(ScheduleError::arg(
                "eta",
                format!("{eta} is not a finite non-negative number"),
            ));
        }
        let prev_timestep = timestep as i64 - (self.config.num_train_timesteps / n) as i64;
        let alpha_prod_t = self.schedule.alpha_cumprod(timestep)?;
        let alpha_prod_t_prev = if prev_timestep >= 0 {
            self.schedule.alpha_cumprod(prev_timestep as usize)?
        } else {
            self.final_alpha_cumprod as f64
        };
        let std_dev_t = eta * variance(alpha_prod_t, alpha_prod_t_prev).sqrt();
        Ok(DdimCoefficients {
            timestep,
            prev_timestep,
            alpha_prod_t,
            alpha_prod_t_prev,
            std_dev_t,
        })
    }

    fn clip<B: Backend>(&self, x0: Tensor<B, 4>) -> Tensor<B, 4> {
        if self.config.clip_sample {
            let r = self.config.clip_sample_range as f32;
            x0.clamp(-r, r)
        } else {
            x0
        }
    }

    /// The predicted clean sample x0 at `timestep` (clipped when
    /// `clip_sample` is set), as `step` computes it.
    pub fn predicted_original_sample<B: Backend>(
        &self,
        model_output: Tensor<B, 4>,
        timestep: usize,
        sample: Tensor<B, 4>,
    ) -> Result<Tensor<B, 4>> {
        check_same_shape("model_output", &sample, &model_output)?;
        let alpha_prod_t = self.schedule.alpha_cumprod(timestep)?;
        let (x0, _) = split_model_output(
            self.config.prediction_type,
            alpha_prod_t,
            model_output,
            sample,
        );
        Ok(self.clip(x0))
    }

    /// `DDIMScheduler.step`: from `sample` at `timestep` to the previous
    /// timestep. With `eta > 0`, `eta * sqrt(variance) * noise` is added, the
    /// noise being `variance_noise` or, when `None`, drawn from the backend's
    /// standard normal generator. Differentiable in `model_output` and `sample`.
    pub fn step<B: Backend>(
        &self,
        model_output: Tensor<B, 4>,
        timestep: usize,
        sample: Tensor<B, 4>,
        eta: f64,
        variance_noise: Option<Tensor<B, 4>>,
    ) -> Result<StepOutput<B>> {
        check_same_shape("model_output", &sample, &model_output)?;
        let c = self.coefficients(timestep, eta)?;
        let radicand = 1.0 - c.alpha_prod_t_prev - c.std_dev_t * c.std_dev_t;
        if radicand < -1e-12 {
            return Err(ScheduleError::arg(
                "eta",
                format!("{eta} makes 1 - alpha_prod_t_prev - std_dev_t^2 negative ({radicand})"),
            ));
        }
        let noise_shape = sample.dims();
        let (device, dtype) = (sample.device(), sample.dtype());
        let (x0, eps) = split_model_output(
            self.config.prediction_type,
            c.alpha_prod_t,
            model_output,
            sample,
        );
        let x0 = self.clip(x0);
        let mut prev = x0
            .clone()
            .mul_scalar(c.alpha_prod_t_prev.sqrt() as f32)
            .add(eps.mul_scalar(radicand.max(0.0).sqrt() as f32));
        if eta > 0.0 {
            let noise = match variance_noise {
                Some(noise) => {
                    if noise.dims() != noise_shape {
                        return Err(ScheduleError::arg(
                            "variance_noise",
                            format!(
                                "shape {:?} differs from the sample's {noise_shape:?}",
                                noise.dims()
                            ),
                        ));
                    }
                    noise
                }
                None => Tensor::random(
                    noise_shape,
                    Distribution::Normal(0.0, 1.0),
                    (&device, dtype),
                ),
            };
            prev = prev.add(noise.mul_scalar(c.std_dev_t as f32));
        }
        Ok(StepOutput {
            prev_sample: prev,
            pred_original_sample: x0,
        })
    }

    /// diffusers' `add_noise` (one timestep, or one per sample).
    pub fn add_noise<B: Backend>(
        &self,
        original: Tensor<B, 4>,
        noise: Tensor<B, 4>,
        timesteps: &[usize],
    ) -> Result<Tensor<B, 4>> {
        self.schedule.add_noise(original, noise, timesteps)
    }

    /// diffusers' `get_velocity` (one timestep, or one per sample).
    pub fn get_velocity<B: Backend>(
        &self,
        sample: Tensor<B, 4>,
        noise: Tensor<B, 4>,
        timesteps: &[usize],
    ) -> Result<Tensor<B, 4>> {
        self.schedule.get_velocity(sample, noise, timesteps)
    }
}

impl Scheduler for DdimScheduler {
    fn direction(&self) -> Direction {
        Direction::Denoising
    }

    fn set_timesteps(&mut self, num_inference_steps: usize) -> Result<()> {
        DdimScheduler::set_timesteps(self, num_inference_steps)
    }

    fn timesteps(&self) -> &[usize] {
        &self.timesteps
    }

    fn num_inference_steps(&self) -> Option<usize> {
        self.num_inference_steps
    }

    fn noise_schedule(&self) -> &NoiseSchedule {
        &self.schedule
    }

    /// A step with `eta = 0` (deterministic DDIM).
    fn advance<B: Backend>(
        &self,
        model_output: Tensor<B, 4>,
        timestep: usize,
        sample: Tensor<B, 4>,
    ) -> Result<StepOutput<B>> {
        self.step(model_output, timestep, sample, 0.0, None)
    }
}
