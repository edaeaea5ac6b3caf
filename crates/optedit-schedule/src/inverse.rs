//! `DdimInverseScheduler`: diffusers' `DDIMInverseScheduler` (deterministic
//! DDIM inversion, from the data towards noise).

use burn::tensor::{backend::Backend, Tensor};

use crate::betas::{check_same_shape, NoiseSchedule};
use crate::config::SchedulerConfig;
use crate::error::{Result, ScheduleError};
use crate::scheduler::{split_model_output, Direction, Scheduler, StepOutput};
use crate::timesteps::inverse_timesteps;

/// diffusers' `DDIMInverseScheduler`.
///
/// Its timesteps ascend; `step(model_output, t, sample)` takes `sample` from
/// the noise level of `t - num_train_timesteps / num_inference_steps` (or
/// `initial_alpha_cumprod` when that is negative) to the level of `t`, so that
/// it undoes [`DdimScheduler::step`](crate::DdimScheduler::step) at `t` for
/// the same model output.
#[derive(Debug, Clone)]
pub struct DdimInverseScheduler {
    config: SchedulerConfig,
    schedule: NoiseSchedule,
    initial_alpha_cumprod: f32,
    timesteps: Vec<usize>,
    num_inference_steps: Option<usize>,
}

impl DdimInverseScheduler {
    /// Builds the scheduler (diffusers' `DDIMInverseScheduler.from_config`).
    /// The deprecated `set_alpha_to_zero` key, when present, replaces
    /// `set_alpha_to_one`, as in diffusers.
    pub fn new(config: SchedulerConfig) -> Result<Self> {
        config.validate()?;
        let schedule = NoiseSchedule::new(&config);
        let alpha_to_one = config.set_alpha_to_zero.unwrap_or(config.set_alpha_to_one);
        let initial_alpha_cumprod = if alpha_to_one {
            1.0
        } else {
            schedule.alphas_cumprod()[0]
        };
        Ok(Self {
            config,
            schedule,
            initial_alpha_cumprod,
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

    /// The alpha product before the first step: 1, or `alphas_cumprod[0]`
    /// when `set_alpha_to_one` is false.
    pub fn initial_alpha_cumprod(&self) -> f32 {
        self.initial_alpha_cumprod
    }

    /// `DDIMInverseScheduler.set_timesteps`: ascending inference timesteps
    /// (`leading` with `steps_offset`, or `trailing`; `linspace` is unsupported).
    pub fn set_timesteps(&mut self, num_inference_steps: usize) -> Result<()> {
        self.timesteps = inverse_timesteps(&self.config, num_inference_steps)?;
        self.num_inference_steps = Some(num_inference_steps);
        Ok(())
    }

    /// The inference timesteps, ascending (empty before `set_timesteps`).
    pub fn timesteps(&self) -> &[usize] {
        &self.timesteps
    }

    /// The alpha products `(from, to)` of a step at `timestep`.
    pub fn alphas(&self, timestep: usize) -> Result<(f64, f64)> {
        let n = self
            .num_inference_steps
            .ok_or(ScheduleError::TimestepsNotSet)?;
        let t = self.config.num_train_timesteps as i64;
        let to = self.schedule.alpha_cumprod(timestep)?;
        let from_timestep = (timestep as i64 - t / n as i64).min(t - 1);
        let from = if from_timestep >= 0 {
            self.schedule.alpha_cumprod(from_timestep as usize)?
        } else {
            self.initial_alpha_cumprod as f64
        };
        Ok((from, to))
    }

    /// `DDIMInverseScheduler.step`: from `sample` at the previous noise level
    /// to that of `timestep`. `prev_sample` of the output is the noisier
    /// sample. Differentiable in `model_output` and `sample`.
    pub fn step<B: Backend>(
        &self,
        model_output: Tensor<B, 4>,
        timestep: usize,
        sample: Tensor<B, 4>,
    ) -> Result<StepOutput<B>> {
        check_same_shape("model_output", &sample, &model_output)?;
        let (alpha_prod_t, alpha_prod_t_next) = self.alphas(timestep)?;
        let (x0, eps) = split_model_output(
            self.config.prediction_type,
            alpha_prod_t,
            model_output,
            sample,
        );
        let x0 = if self.config.clip_sample {
            let r = self.config.clip_sample_range as f32;
            x0.clamp(-r, r)
        } else {
            x0
        };
        let next = x0
            .clone()
            .mul_scalar(alpha_prod_t_next.sqrt() as f32)
            .add(eps.mul_scalar((1.0 - alpha_prod_t_next).sqrt() as f32));
        Ok(StepOutput {
            prev_sample: next,
            pred_original_sample: x0,
        })
    }
}

impl Scheduler for DdimInverseScheduler {
    fn direction(&self) -> Direction {
        Direction::Noising
    }

    fn set_timesteps(&mut self, num_inference_steps: usize) -> Result<()> {
        DdimInverseScheduler::set_timesteps(self, num_inference_steps)
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

    fn advance<B: Backend>(
        &self,
        model_output: Tensor<B, 4>,
        timestep: usize,
        sample: Tensor<B, 4>,
    ) -> Result<StepOutput<B>> {
        self.step(model_output, timestep, sample)
    }
}
