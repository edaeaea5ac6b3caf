//! The [`Scheduler`] trait shared by samplers, and the pieces every DDIM-style
//! step uses.

use burn::tensor::{backend::Backend, Tensor};

use crate::betas::NoiseSchedule;
use crate::config::PredictionType;
use crate::error::Result;

/// Which way a scheduler walks the noise levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From noise towards the data (sampling; timesteps descending).
    Denoising,
    /// From the data towards noise (inversion; timesteps ascending).
    Noising,
}

/// What one scheduler step returns.
#[derive(Debug, Clone)]
pub struct StepOutput<B: Backend> {
    /// The sample after the step (diffusers' `prev_sample`; for an inverse
    /// scheduler it is the sample at the next, noisier, timestep).
    pub prev_sample: Tensor<B, 4>,
    /// The predicted clean sample x0 (clipped when `clip_sample` is set).
    pub pred_original_sample: Tensor<B, 4>,
}

/// A sampler that walks a list of timesteps, one model evaluation per step.
///
/// Implemented by [`DdimScheduler`](crate::DdimScheduler) (denoising) and
/// [`DdimInverseScheduler`](crate::DdimInverseScheduler) (noising), so that
/// [`sample`](crate::sample) and [`invert`](crate::invert) can drive other
/// samplers later.
pub trait Scheduler {
    /// Which way [`advance`](Self::advance) moves the sample.
    fn direction(&self) -> Direction;

    /// Computes the inference timesteps for `num_inference_steps` steps.
    fn set_timesteps(&mut self, num_inference_steps: usize) -> Result<()>;

    /// The inference timesteps, in the order they are visited (empty before
    /// [`set_timesteps`](Self::set_timesteps)).
    fn timesteps(&self) -> &[usize];

    /// The step count given to the last [`set_timesteps`](Self::set_timesteps).
    fn num_inference_steps(&self) -> Option<usize>;

    /// The training noise schedule.
    fn noise_schedule(&self) -> &NoiseSchedule;

    /// Standard deviation of the initial noise (1 for DDIM).
    fn init_noise_sigma(&self) -> f64 {
        1.0
    }

    /// Scales the model input at `timestep` (the identity for DDIM).
    fn scale_model_input<B: Backend>(
        &self,
        sample: Tensor<B, 4>,
        _timestep: usize,
    ) -> Tensor<B, 4> {
        sample
    }

    /// One deterministic step from `timestep` given the model output there.
    fn advance<B: Backend>(
        &self,
        model_output: Tensor<B, 4>,
        timestep: usize,
        sample: Tensor<B, 4>,
    ) -> Result<StepOutput<B>>;

    /// Noises `original` to the level of `timesteps` (one, or one per sample).
    fn add_noise<B: Backend>(
        &self,
        original: Tensor<B, 4>,
        noise: Tensor<B, 4>,
        timesteps: &[usize],
    ) -> Result<Tensor<B, 4>> {
        self.noise_schedule().add_noise(original, noise, timesteps)
    }
}

/// Splits a model output at noise level `alpha_prod_t` into the predicted
/// clean sample x0 and the predicted noise, per `prediction_type`
/// (formula (12) of the DDIM paper; v-prediction per Imagen Video §2.4).
pub fn split_model_output<B: Backend>(
    prediction_type: PredictionType,
    alpha_prod_t: f64,
    model_output: Tensor<B, 4>,
    sample: Tensor<B, 4>,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let sqrt_a = alpha_prod_t.sqrt();
    let sqrt_b = (1.0 - alpha_prod_t).sqrt();
    match prediction_type {
        PredictionType::Epsilon => {
            let x0 = sample
                .sub(model_output.clone().mul_scalar(sqrt_b as f32))
                .div_scalar(sqrt_a as f32);
            (x0, model_output)
        }
        PredictionType::Sample => {
            let eps = sample
                .sub(model_output.clone().mul_scalar(sqrt_a as f32))
                .div_scalar(sqrt_b as f32);
            (model_output, eps)
        }
        PredictionType::VPrediction => {
            let x0 = sample
                .clone()
                .mul_scalar(sqrt_a as f32)
                .sub(model_output.clone().mul_scalar(sqrt_b as f32));
            let eps = model_output
                .mul_scalar(sqrt_a as f32)
                .add(sample.mul_scalar(sqrt_b as f32));
            (x0, eps)
        }
    }
}
