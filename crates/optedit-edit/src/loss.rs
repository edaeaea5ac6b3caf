//! Losses of the latent optimisation. The method's two losses
//! ([`PreservationLoss`], [`GuidanceLoss`]) are the default terms of an
//! [`Objective`]; any [`EditLoss`] (a perceptual or CLIP loss, a regulariser)
//! can be added with its own weight, to the main stage, the guidance stage
//! or both ([`Stages`]).

use burn::tensor::{backend::Backend, Tensor};

use crate::progress::Stage;

/// Everything a loss may look at for one gradient step at denoising step
/// `step`. Tensors derived from `z_t` carry the autodiff graph.
#[derive(Debug, Clone)]
pub struct LossInputs<'a, B: Backend> {
    /// The optimised stage: [`Stage::Guidance`] or [`Stage::Optimise`].
    pub stage: Stage,
    /// Denoising step index in the full schedule.
    pub step: usize,
    /// Its timestep.
    pub timestep: usize,
    /// The latent being optimised, `[1, 4, h, w]`.
    pub z_t: &'a Tensor<B, 4>,
    /// `DDIM(z_t)`: the latent one step later (differentiable).
    pub next: &'a Tensor<B, 4>,
    /// The predicted clean latent at this step (differentiable).
    pub pred_original: &'a Tensor<B, 4>,
    /// Edit mask at latent resolution `[1, 1, h, w]`, 1 = may change.
    pub mask: &'a Tensor<B, 4>,
    /// The inverted latent one step later (`z*_{t-1}`), the preservation target.
    pub preservation_target: &'a Tensor<B, 4>,
    /// The guidance trajectory one step later (`zg_{t-1}`), if there is one.
    pub guidance_target: Option<&'a Tensor<B, 4>>,
}

/// A differentiable loss on the latent.
pub trait EditLoss<B: Backend> {
    /// Short name used in progress reports.
    fn name(&self) -> &str;
    /// The scalar loss (`[1]`), or `None` if it does not apply (e.g. the
    /// guidance loss when there is no guidance trajectory).
    fn loss(&self, inputs: &LossInputs<'_, B>) -> Option<Tensor<B, 1>>;
}

/// `mean((1 - M) * (DDIM(z_t) - z*_{t-1})^2)` over all latent elements:
/// keep everything outside the edit on the inversion trajectory.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreservationLoss;

impl<B: Backend> EditLoss<B> for PreservationLoss {
    fn name(&self) -> &str {
        "preservation"
    }

    fn loss(&self, i: &LossInputs<'_, B>) -> Option<Tensor<B, 1>> {
        let keep = i.mask.clone().neg().add_scalar(1.0);
        Some(masked_mse(i.next, i.preservation_target, keep))
    }
}

/// `mean(M * (DDIM(z_t) - zg_{t-1})^2)`: make the edit region follow the
/// guidance trajectory.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuidanceLoss;

impl<B: Backend> EditLoss<B> for GuidanceLoss {
    fn name(&self) -> &str {
        "guidance"
    }

    fn loss(&self, i: &LossInputs<'_, B>) -> Option<Tensor<B, 1>> {
        i.guidance_target
            .map(|g| masked_mse(i.next, g, i.mask.clone()))
    }
}

/// `mean(w * (a - b)^2)` with `w` `[1, 1, h, w]` broadcast over channels; the
/// mean runs over every element of `a`.
pub fn masked_mse<B: Backend>(
    a: &Tensor<B, 4>,
    b: &Tensor<B, 4>,
    weight: Tensor<B, 4>,
) -> Tensor<B, 1> {
    let c = a.dims()[1];
    let w = if weight.dims()[1] == c {
        weight
    } else {
        weight.repeat_dim(1, c)
    };
    (w * (a.clone() - b.clone()).powi_scalar(2)).mean()
}

/// The optimised stages a term of an [`Objective`] applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stages {
    /// The guidance stage ([`Stage::Guidance`]: random-noise encoding
    /// denoised under the edit condition).
    pub guidance: bool,
    /// The main stage ([`Stage::Optimise`]).
    pub main: bool,
}

impl Stages {
    /// The main stage only.
    pub const MAIN: Stages = Stages {
        guidance: false,
        main: true,
    };
    /// The guidance stage only.
    pub const GUIDANCE: Stages = Stages {
        guidance: true,
        main: false,
    };
    /// Both optimised stages.
    pub const BOTH: Stages = Stages {
        guidance: true,
        main: true,
    };

    /// Whether `stage` is one of them (never for a stage that is not
    /// optimised).
    pub fn contains(self, stage: Stage) -> bool {
        match stage {
            Stage::Guidance => self.guidance,
            Stage::Optimise => self.main,
            _ => false,
        }
    }
}

/// A weighted sum of losses, each applying to some of the optimised stages.
pub struct Objective<'l, B: Backend> {
    terms: Vec<(Stages, f64, Box<dyn EditLoss<B> + 'l>)>,
}

impl<B: Backend> std::fmt::Debug for Objective<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.terms
                    .iter()
                    .map(|(s, w, l)| (s, w, l.name().to_string())),
            )
            .finish()
    }
}

impl<'l, B: Backend> Objective<'l, B> {
    /// An empty objective.
    pub fn new() -> Self {
        Self { terms: Vec::new() }
    }

    /// The method's objective: `lambda * L_pres + (1 - lambda) * L_guid` in
    /// the main stage, and the preservation loss alone (weight 1) in the
    /// guidance stage.
    pub fn method(lambda: f64) -> Self {
        Self::new()
            .with(lambda, PreservationLoss)
            .with(1.0 - lambda, GuidanceLoss)
            .with_in(Stages::GUIDANCE, 1.0, PreservationLoss)
    }

    /// Adds a term to the main stage.
    pub fn with(self, weight: f64, loss: impl EditLoss<B> + 'l) -> Self {
        self.with_in(Stages::MAIN, weight, loss)
    }

    /// Adds a term to `stages`.
    pub fn with_in(mut self, stages: Stages, weight: f64, loss: impl EditLoss<B> + 'l) -> Self {
        self.terms.push((stages, weight, Box::new(loss)));
        self
    }

    /// Adds a boxed term to `stages`.
    pub fn with_boxed(
        mut self,
        stages: Stages,
        weight: f64,
        loss: Box<dyn EditLoss<B> + 'l>,
    ) -> Self {
        self.terms.push((stages, weight, loss));
        self
    }

    /// Whether some term with a nonzero weight applies to `stage`.
    pub fn applies_to(&self, stage: Stage) -> bool {
        self.terms
            .iter()
            .any(|(s, w, _)| *w != 0.0 && s.contains(stage))
    }

    /// Number of terms.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// Whether there are no terms.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The weighted sum of the terms of `inputs.stage` (`None` if no term
    /// applies or every weight is 0) and each applied, weighted term as
    /// `(name, tensor)`.
    pub fn evaluate(
        &self,
        inputs: &LossInputs<'_, B>,
    ) -> (Option<Tensor<B, 1>>, Vec<(String, Tensor<B, 1>)>) {
        let mut total: Option<Tensor<B, 1>> = None;
        let mut parts = Vec::new();
        for (stages, w, loss) in &self.terms {
            if *w == 0.0 || !stages.contains(inputs.stage) {
                continue;
            }
            if let Some(l) = loss.loss(inputs) {
                let l = l.mul_scalar(*w);
                parts.push((loss.name().to_string(), l.clone()));
                total = Some(match total {
                    Some(t) => t + l,
                    None => l,
                });
            }
        }
        (total, parts)
    }
}

impl<B: Backend> Default for Objective<'_, B> {
    fn default() -> Self {
        Self::method(0.6)
    }
}
