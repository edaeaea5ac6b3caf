//! Latent optimisers (SGD, Adam) and learning-rate schedules. They work on the
//! plain (non-autodiff) tensors: the gradient comes in, the new latent goes out.

use burn::tensor::{backend::Backend, Tensor};

use crate::error::{EditError, Result};

/// Moves a latent along its gradient.
pub trait LatentOptimizer<B: Backend> {
    /// Forgets any state (called at each new timestep).
    fn reset(&mut self);
    /// One step: returns the updated latent.
    fn step(&mut self, latent: Tensor<B, 4>, grad: Tensor<B, 4>, lr: f64) -> Tensor<B, 4>;
}

/// Which built-in optimiser to use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimizerKind {
    /// Plain gradient descent `z -= lr * g`.
    Sgd,
    /// Adam (beta1 0.9, beta2 0.999, eps 1e-8), state reset at each timestep.
    Adam,
}

impl OptimizerKind {
    /// A fresh optimiser of this kind.
    pub fn build<B: Backend>(self) -> Box<dyn LatentOptimizer<B>> {
        match self {
            OptimizerKind::Sgd => Box::new(Sgd),
            OptimizerKind::Adam => Box::new(Adam::default()),
        }
    }
}

/// Plain gradient descent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sgd;

impl<B: Backend> LatentOptimizer<B> for Sgd {
    fn reset(&mut self) {}

    fn step(&mut self, latent: Tensor<B, 4>, grad: Tensor<B, 4>, lr: f64) -> Tensor<B, 4> {
        latent - grad.mul_scalar(lr)
    }
}

/// Adam (Kingma & Ba, arXiv 1412.6980) on the latent.
#[derive(Debug, Clone)]
pub struct Adam<B: Backend> {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    state: Option<(Tensor<B, 4>, Tensor<B, 4>, i32)>,
}

impl<B: Backend> Default for Adam<B> {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            state: None,
        }
    }
}

impl<B: Backend> LatentOptimizer<B> for Adam<B> {
    fn reset(&mut self) {
        self.state = None;
    }

    fn step(&mut self, latent: Tensor<B, 4>, grad: Tensor<B, 4>, lr: f64) -> Tensor<B, 4> {
        let (m, v, t) = match self.state.take() {
            Some((m, v, t)) => (
                m.mul_scalar(self.beta1) + grad.clone().mul_scalar(1.0 - self.beta1),
                v.mul_scalar(self.beta2) + grad.clone().powi_scalar(2).mul_scalar(1.0 - self.beta2),
                t + 1,
            ),
            None => (
                grad.clone().mul_scalar(1.0 - self.beta1),
                grad.powi_scalar(2).mul_scalar(1.0 - self.beta2),
                1,
            ),
        };
        let m_hat = m.clone().div_scalar(1.0 - self.beta1.powi(t));
        let v_hat = v.clone().div_scalar(1.0 - self.beta2.powi(t));
        let update = m_hat / v_hat.sqrt().add_scalar(self.eps);
        self.state = Some((m, v, t));
        latent - update.mul_scalar(lr)
    }
}

/// Learning rate as a function of the optimised step `i` of `t_u`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LrSchedule {
    /// `lr` throughout.
    Constant,
    /// From `lr` linearly down to `lr * final_fraction` at the last optimised step.
    Linear {
        /// Fraction of `lr` at the last step, in `[0, 1]`.
        final_fraction: f64,
    },
    /// Cosine from `lr` down to `lr * final_fraction`.
    Cosine {
        /// Fraction of `lr` at the last step, in `[0, 1]`.
        final_fraction: f64,
    },
}

impl LrSchedule {
    /// The rate at optimised step `i` of `total`.
    pub fn rate(&self, lr: f64, i: usize, total: usize) -> f64 {
        let p = if total <= 1 {
            0.0
        } else {
            i as f64 / (total - 1) as f64
        };
        match *self {
            LrSchedule::Constant => lr,
            LrSchedule::Linear { final_fraction } => lr * (1.0 - p * (1.0 - final_fraction)),
            LrSchedule::Cosine { final_fraction } => {
                let c = 0.5 * (1.0 + (std::f64::consts::PI * p).cos());
                lr * (final_fraction + (1.0 - final_fraction) * c)
            }
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        match *self {
            LrSchedule::Constant => Ok(()),
            LrSchedule::Linear { final_fraction } | LrSchedule::Cosine { final_fraction } => {
                if (0.0..=1.0).contains(&final_fraction) {
                    Ok(())
                } else {
                    Err(EditError::config(
                        "lr_schedule",
                        format!("final_fraction {final_fraction} must be in [0, 1]"),
                    ))
                }
            }
        }
    }
}
