//! The training stages, in the order they run.

pub mod classifier;
pub mod controlnet;
pub mod latents;
pub mod text_to_image;
pub mod vae;

/// Options shared by every stage.
#[derive(Debug, Clone)]
pub struct StageOptions {
    /// Total optimiser steps.
    pub steps: usize,
    /// Samples per step.
    pub batch: usize,
    /// Peak learning rate (AdamW; linear warm-up, then cosine decay to 10%).
    pub lr: f64,
    /// Warm-up steps.
    pub warmup: usize,
    /// Base seed of the data and noise draws.
    pub seed: u64,
    /// Checkpoint every this many steps.
    pub checkpoint_every: usize,
    /// Stop this invocation after this step (checkpointed), leaving the rest
    /// of `steps` to a resumed run; the schedule still spans `steps`.
    pub stop_at: Option<usize>,
}

impl StageOptions {
    /// Learning rate at `step`.
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.lr * (step + 1) as f64 / self.warmup as f64;
        }
        let span = (self.steps - self.warmup).max(1) as f64;
        let p = ((step - self.warmup) as f64 / span).min(1.0);
        self.lr * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
    }

    /// Checks the options.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |argument: &str, message: &str| {
            Err(crate::TrainError::InvalidArgument {
                argument: argument.into(),
                message: message.into(),
            })
        };
        if self.steps == 0 {
            return bad("steps", "must be positive");
        }
        if self.batch == 0 {
            return bad("batch", "must be positive");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", "must be a positive number");
        }
        if self.checkpoint_every == 0 {
            return bad("checkpoint_every", "must be positive");
        }
        Ok(())
    }
}

impl StageOptions {
    /// The step this invocation runs up to.
    pub fn end(&self) -> usize {
        self.stop_at.map_or(self.steps, |s| s.min(self.steps))
    }

    /// Whether to checkpoint after finishing `step` (0-based).
    pub fn checkpoint_after(&self, step: usize) -> bool {
        let done = step + 1;
        done % self.checkpoint_every == 0 || done == self.end()
    }
}

/// Fails with [`crate::TrainError::Diverged`] on a non-finite loss.
pub(crate) fn check_finite(stage: &str, step: usize, value: f32) -> crate::Result<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(crate::TrainError::Diverged {
            stage: stage.into(),
            step,
            value,
        })
    }
}
