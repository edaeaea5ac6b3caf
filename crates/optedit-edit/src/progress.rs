//! Progress reporting and cancellation: every stage reports its steps (and
//! the loss values of every gradient step) to a callback, which may stop the
//! edit by returning [`ControlFlow::Break`].

use std::fmt;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use crate::error::{EditError, Result};

/// The stages of an edit (and of the baselines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// VAE encoding of the input image.
    Encode,
    /// DDIM inversion under the source condition.
    Invert,
    /// Mask estimation (DiffEdit-style) or preparation.
    Mask,
    /// Guidance-image generation from random-noise encoding.
    Guidance,
    /// The main latent optimisation and the remaining denoising.
    Optimise,
    /// Plain guided denoising (baselines).
    Denoise,
    /// VAE decoding.
    Decode,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Stage::Encode => "encode",
            Stage::Invert => "invert",
            Stage::Mask => "mask",
            Stage::Guidance => "guidance",
            Stage::Optimise => "optimise",
            Stage::Denoise => "denoise",
            Stage::Decode => "decode",
        };
        f.write_str(s)
    }
}

/// Loss values of one gradient step.
#[derive(Debug, Clone, PartialEq)]
pub struct LossValues {
    /// The weighted total that was minimised.
    pub total: f64,
    /// Each weighted term by name (`preservation`, `guidance`, custom ones).
    pub terms: Vec<(String, f64)>,
    /// Which gradient step of the timestep (0-based, `< k`).
    pub iteration: usize,
}

/// One progress report.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressEvent {
    /// The stage.
    pub stage: Stage,
    /// Steps done in this stage (after this event); for gradient-step events
    /// (`loss` is set), the 1-based denoising step being optimised.
    pub step: usize,
    /// Steps of this stage.
    pub total: usize,
    /// The diffusion timestep of this step, where there is one.
    pub timestep: Option<usize>,
    /// Loss values, for gradient-step events.
    pub loss: Option<LossValues>,
}

/// Receives progress events; return `ControlFlow::Break(())` to cancel.
pub trait Progress {
    /// Called after each step (and each gradient step).
    fn report(&mut self, event: &ProgressEvent) -> ControlFlow<()>;
}

impl<F: FnMut(&ProgressEvent) -> ControlFlow<()>> Progress for F {
    fn report(&mut self, event: &ProgressEvent) -> ControlFlow<()> {
        self(event)
    }
}

/// A progress sink that ignores every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {
    fn report(&mut self, _: &ProgressEvent) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// Sends an event and turns a `Break` into [`EditError::Cancelled`].
pub(crate) fn emit(progress: &mut dyn Progress, event: ProgressEvent) -> Result<()> {
    let (stage, step) = (event.stage, event.step);
    match progress.report(&event) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(EditError::Cancelled { stage, step }),
    }
}

/// Wall time per stage.
pub(crate) struct Timer {
    clock: Instant,
    pub(crate) timings: Vec<(Stage, Duration)>,
}

impl Timer {
    pub(crate) fn new() -> Self {
        Self {
            clock: Instant::now(),
            timings: Vec::new(),
        }
    }

    pub(crate) fn lap(&mut self, stage: Stage) {
        self.timings.push((stage, self.clock.elapsed()));
        self.clock = Instant::now();
    }
}
