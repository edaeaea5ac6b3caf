//! Latent trajectories indexed by denoising step.

use burn::tensor::{backend::Backend, Tensor};

/// Latents along the denoising schedule from step `start`: `latents[i]` is
/// the latent at the input of denoising step `start + i` (its noise level is
/// that of `timesteps[start + i]`); the last entry (index `N - start`) is the
/// clean latent.
#[derive(Debug, Clone)]
pub struct StepTrajectory<B: Backend> {
    /// The forward (denoising) timesteps of the whole schedule, `N` of them.
    pub timesteps: Vec<usize>,
    /// First step covered.
    pub start: usize,
    /// `N - start + 1` latents.
    pub latents: Vec<Tensor<B, 4>>,
}

impl<B: Backend> StepTrajectory<B> {
    /// The latent at the input of step `step` (`start <= step <= N`).
    ///
    /// # Panics
    /// If `step` is outside the trajectory.
    pub fn at(&self, step: usize) -> &Tensor<B, 4> {
        assert!(
            step >= self.start && step - self.start < self.latents.len(),
            "step {step} outside the trajectory (steps {}..={})",
            self.start,
            self.start + self.latents.len() - 1
        );
        &self.latents[step - self.start]
    }

    /// The first latent (at step `start`).
    pub fn first(&self) -> &Tensor<B, 4> {
        &self.latents[0]
    }

    /// The last (clean) latent.
    pub fn last(&self) -> &Tensor<B, 4> {
        self.latents
            .last()
            .expect("a trajectory has at least one latent")
    }

    /// Number of denoising steps `N` of the schedule.
    pub fn num_steps(&self) -> usize {
        self.timesteps.len()
    }

    /// Whether the trajectory spans the steps `start..=N`.
    pub fn is_complete(&self) -> bool {
        self.latents.len() == self.timesteps.len() - self.start + 1
    }
}
