//! Latent optimisers and learning-rate schedules. They work on the plain
//! (non-autodiff) tensors: the gradient comes in, the new latent goes out.
//!
//! Why more than Adam: Adam reset at every timestep (the default until issue
//! 23) makes its first update `m̂ / (√v̂ + ε) = sign(g)` element by element,
//! so the weight lambda, which mostly rescales each region's gradient (the
//! preservation and guidance losses cover disjoint regions), is divided out
//! again, and elements whose gradient is only cross-talk move as far as
//! any. [`OptimizerKind::AdamKept`] carries Adam's moments across
//! timesteps, and [`NormalizedGd`] (the default) divides the gradient by
//! one global norm, which keeps the ratio of the two regions' gradients
//! that lambda sets (issue 23's ablation, `docs/method.md`).

use burn::tensor::{backend::Backend, ElementConversion, Tensor};

use crate::error::{EditError, Result};

/// Moves a latent along its gradient. A custom one reaches both optimised
/// stages through [`Editor::with_optimizer`](crate::Editor::with_optimizer).
pub trait LatentOptimizer<B: Backend> {
    /// Called at the start of each optimised timestep: the optimiser
    /// forgets whatever state it does not carry across timesteps.
    fn reset(&mut self);
    /// One step: returns the updated latent.
    fn step(&mut self, latent: Tensor<B, 4>, grad: Tensor<B, 4>, lr: f64) -> Tensor<B, 4>;
}

/// Which built-in optimiser to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OptimizerKind {
    /// Plain gradient descent `z -= lr * g`.
    Sgd,
    /// Adam (beta1 0.9, beta2 0.999, eps 1e-8), state reset at each timestep.
    Adam,
    /// Adam whose moments carry across the optimised timesteps of a stage.
    AdamKept,
    /// Gradient descent normalised by the gradient's root mean square over
    /// the whole latent: `z -= lr * g / rms(g)` ([`NormalizedGd`]).
    NormalizedGd,
}

crate::words::words!(OptimizerKind, "optimizer", {
    Sgd => "sgd",
    Adam => "adam",
    AdamKept => "adam-kept",
    NormalizedGd => "normalized-gd",
});

impl OptimizerKind {
    /// A fresh optimiser of this kind.
    pub fn build<B: Backend>(self) -> Box<dyn LatentOptimizer<B>> {
        match self {
            OptimizerKind::Sgd => Box::new(Sgd),
            OptimizerKind::Adam => Box::new(Adam::default()),
            OptimizerKind::AdamKept => Box::new(Adam {
                keep_across_timesteps: true,
                ..Adam::default()
            }),
            OptimizerKind::NormalizedGd => Box::new(NormalizedGd::default()),
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
    /// Whether the moments carry across timesteps (false: they are reset at
    /// each one, the default).
    pub keep_across_timesteps: bool,
    state: Option<(Tensor<B, 4>, Tensor<B, 4>, i32)>,
}

impl<B: Backend> Default for Adam<B> {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            keep_across_timesteps: false,
            state: None,
        }
    }
}

impl<B: Backend> LatentOptimizer<B> for Adam<B> {
    fn reset(&mut self) {
        if !self.keep_across_timesteps {
            self.state = None;
        }
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

/// Gradient descent with one global normalisation: `z -= lr * g / (rms(g)
/// + eps)`, the root mean square taken over every element of the latent.
/// Each step moves the latent by `lr` in root mean square, as Adam's first
/// step moves each element, but the elements keep their relative sizes.
#[derive(Debug, Clone, Copy)]
pub struct NormalizedGd {
    /// Added to the root mean square (default 1e-12): a zero gradient moves
    /// nothing.
    pub eps: f64,
}

impl Default for NormalizedGd {
    fn default() -> Self {
        Self { eps: 1e-12 }
    }
}

impl<B: Backend> LatentOptimizer<B> for NormalizedGd {
    fn reset(&mut self) {}

    fn step(&mut self, latent: Tensor<B, 4>, grad: Tensor<B, 4>, lr: f64) -> Tensor<B, 4> {
        let rms = grad
            .clone()
            .powi_scalar(2)
            .mean()
            .into_scalar()
            .elem::<f64>()
            .sqrt();
        latent - grad.mul_scalar(lr / (rms + self.eps))
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

#[cfg(test)]
mod tests {
    use super::*;
    use optedit_fixtures::{values, TestBackend as B};

    fn t(v: &[f32]) -> Tensor<B, 4> {
        Tensor::<B, 1>::from_floats(v, &Default::default()).reshape([1, 1, 1, v.len()])
    }

    /// One step of `kind` from zero per gradient, resetting before each
    /// step when `reset_each` (a new timestep).
    fn steps(kind: OptimizerKind, grads: &[&[f32]], reset_each: bool) -> Vec<Vec<f64>> {
        let mut opt = kind.build::<B>();
        let mut z = t(&vec![0.0; grads[0].len()]);
        let mut out = Vec::new();
        for g in grads {
            if reset_each {
                opt.reset();
            }
            z = opt.step(z, t(g), 0.1);
            out.push(values(&z));
        }
        out
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
    }

    #[test]
    fn adam_reset_moves_by_the_sign_and_divides_a_scale_out() {
        // The first step of a fresh Adam is lr * sign(g): scaling one
        // region's gradient (what lambda does) changes nothing.
        let a = steps(OptimizerKind::Adam, &[&[0.3, -2.0, 0.001]], true);
        let b = steps(OptimizerKind::Adam, &[&[3.0, -0.2, 0.1]], true);
        assert!(close(&a[0], &[-0.1, 0.1, -0.1]), "{a:?}");
        assert!(close(&a[0], &b[0]), "{a:?} {b:?}");
    }

    #[test]
    fn adam_kept_carries_its_moments_across_timesteps() {
        let grads: [&[f32]; 2] = [&[1.0, 1.0], &[-1.0, 0.5]];
        let reset = steps(OptimizerKind::Adam, &grads, true);
        let kept = steps(OptimizerKind::AdamKept, &grads, true);
        // The same first step; then a reset Adam steps by the sign again
        // (0.1 back for the first element) while the kept one still
        // remembers the first gradient.
        assert!(close(&reset[0], &kept[0]));
        assert!(close(&reset[1], &[0.0, -0.2]), "{reset:?}");
        // Kept, t = 2: m = 0.9 * 0.1 * g1 + 0.1 * g2, v likewise; by hand.
        let adam2 = |g1: f64, g2: f64| {
            let m = (0.9 * 0.1 * g1 + 0.1 * g2) / (1.0 - 0.81);
            let v = (0.999 * 0.001 * g1 * g1 + 0.001 * g2 * g2) / (1.0 - 0.999f64.powi(2));
            m / (v.sqrt() + 1e-8)
        };
        let want = [-0.1 - 0.1 * adam2(1.0, -1.0), -0.1 - 0.1 * adam2(1.0, 0.5)];
        assert!(close(&kept[1], &want), "{kept:?} {want:?}");
        // Without resets the two kinds agree.
        assert!(close(
            &steps(OptimizerKind::Adam, &grads, false)[1],
            &kept[1]
        ));
    }

    #[test]
    fn normalized_gd_keeps_relative_sizes_and_moves_lr_in_rms() {
        let g = [3.0f32, -4.0, 0.0, 0.0];
        let rms = (25.0f64 / 4.0).sqrt();
        let z = &steps(OptimizerKind::NormalizedGd, &[&g], true)[0];
        let want: Vec<f64> = g.iter().map(|&x| -0.1 * f64::from(x) / rms).collect();
        assert!(close(z, &want), "{z:?} {want:?}");
        let moved = (z.iter().map(|x| x * x).sum::<f64>() / 4.0).sqrt();
        assert!((moved - 0.1).abs() < 1e-6);
        // Scaling the whole gradient changes nothing; scaling one part does.
        let scaled = &steps(
            OptimizerKind::NormalizedGd,
            &[&[30.0, -40.0, 0.0, 0.0]],
            true,
        )[0];
        assert!(close(z, scaled));
        let part = &steps(
            OptimizerKind::NormalizedGd,
            &[&[3.0, -40.0, 0.0, 0.0]],
            true,
        )[0];
        let rms_part = ((9.0f64 + 1600.0) / 4.0).sqrt();
        assert!(close(&part[..1], &[-0.3 / rms_part]), "{part:?}");
        // A zero gradient moves nothing.
        let zero = &steps(OptimizerKind::NormalizedGd, &[&[0.0; 4]], true)[0];
        assert!(close(zero, &[0.0; 4]));
    }

    #[test]
    fn sgd_steps_by_lr_times_the_gradient() {
        assert!(close(
            &steps(OptimizerKind::Sgd, &[&[2.0, -1.0]], true)[0],
            &[-0.2, 0.1]
        ));
    }
}
