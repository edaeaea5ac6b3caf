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
    /// The guidance trajectory one step later (`zg_{t-1}`), if there is one
    /// and it reaches that step (the guidance stage may stop after the
    /// first `t_u` steps: [`EditConfig::guidance_steps`](crate::EditConfig::guidance_steps)).
    pub guidance_target: Option<&'a Tensor<B, 4>>,
    /// The inversion's clean latent `z0` (the encoded input), the
    /// preservation target in [`LossSpace::Clean`].
    pub preservation_clean: &'a Tensor<B, 4>,
    /// The guidance trajectory's clean latent `zg_0`, if there is one and
    /// it ran to the end.
    pub guidance_clean: Option<&'a Tensor<B, 4>>,
}

/// Where the method's losses compare latents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LossSpace {
    /// The next noisy latent `DDIM(z_t)` against the target trajectory one
    /// step later (the paper's formulation; the default).
    #[default]
    Next,
    /// The predicted clean latent (`pred_original_sample` of the DDIM step)
    /// against the target trajectory's clean latent: every optimised step
    /// aims at the final image rather than at the next noise level.
    Clean,
}

crate::words::words!(LossSpace, "loss space", {
    Next => "next",
    Clean => "clean",
});

/// A differentiable loss on the latent.
pub trait EditLoss<B: Backend> {
    /// Short name used in progress reports.
    fn name(&self) -> &str;
    /// The scalar loss (`[1]`), or `None` if it does not apply (e.g. the
    /// guidance loss when there is no guidance trajectory).
    fn loss(&self, inputs: &LossInputs<'_, B>) -> Option<Tensor<B, 1>>;
}

/// `mean(W * (DDIM(z_t) - z*_{t-1})^2)` over all latent elements, with
/// `W = (1 - M) + inside * M`: keep everything outside the edit on the
/// inversion trajectory, and (with `inside` > 0) hold the edit region
/// towards it too. In [`LossSpace::Clean`], `mean(W * (x0(z_t) - z0)^2)`.
///
/// `inside` 0 (the default) is the reconstructed loss of `docs/method.md`,
/// which never touches the edit region; `inside` 1 is a preservation loss
/// over the whole image (the paper's "global consistency" read literally),
/// under which the edit region's target becomes the blend `lambda z* +
/// (1 - lambda) zg` and lambda trades the edit against the source inside
/// the mask too.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreservationLoss {
    /// Where the latents are compared.
    pub space: LossSpace,
    /// The loss's weight inside the edit mask, in `[0, 1]` (outside it the
    /// weight is 1).
    pub inside: f64,
}

impl<B: Backend> EditLoss<B> for PreservationLoss {
    fn name(&self) -> &str {
        "preservation"
    }

    fn loss(&self, i: &LossInputs<'_, B>) -> Option<Tensor<B, 1>> {
        // (1 - M) + inside * M = 1 - (1 - inside) * M.
        let keep = i.mask.clone().mul_scalar(self.inside - 1.0).add_scalar(1.0);
        Some(match self.space {
            LossSpace::Next => masked_mse(i.next, i.preservation_target, keep),
            LossSpace::Clean => masked_mse(i.pred_original, i.preservation_clean, keep),
        })
    }
}

/// `mean(M * (DDIM(z_t) - zg_{t-1})^2)`: make the edit region follow the
/// guidance trajectory. In [`LossSpace::Clean`], `mean(M * (x0(z_t) -
/// zg_0)^2)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuidanceLoss {
    /// Where the latents are compared.
    pub space: LossSpace,
}

impl<B: Backend> EditLoss<B> for GuidanceLoss {
    fn name(&self) -> &str {
        "guidance"
    }

    fn loss(&self, i: &LossInputs<'_, B>) -> Option<Tensor<B, 1>> {
        let (a, g) = match self.space {
            LossSpace::Next => (i.next, i.guidance_target?),
            LossSpace::Clean => (i.pred_original, i.guidance_clean?),
        };
        Some(masked_mse(a, g, i.mask.clone()))
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
    /// guidance stage, comparing next latents ([`LossSpace::Next`]).
    pub fn method(lambda: f64) -> Self {
        Self::method_in(lambda, LossSpace::Next)
    }

    /// [`Objective::method`] with its losses measured in `space`.
    pub fn method_in(lambda: f64, space: LossSpace) -> Self {
        Self::method_with(lambda, space, 0.0)
    }

    /// [`Objective::method_in`] with the main stage's preservation loss
    /// weighted `inside` inside the edit mask ([`PreservationLoss::inside`]).
    /// The guidance stage keeps the loss outside the mask only: its edit
    /// region is the guidance image, which must stay free to change.
    pub fn method_with(lambda: f64, space: LossSpace, inside: f64) -> Self {
        Self::new()
            .with(lambda, PreservationLoss { space, inside })
            .with(1.0 - lambda, GuidanceLoss { space })
            .with_in(
                Stages::GUIDANCE,
                1.0,
                PreservationLoss { space, inside: 0.0 },
            )
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

#[cfg(test)]
mod tests {
    use super::*;
    use optedit_fixtures::{values, TestBackend as B};

    fn t(v: &[f32]) -> Tensor<B, 4> {
        Tensor::<B, 1>::from_floats(v, &Default::default()).reshape([1, 1, 1, v.len()])
    }

    fn value(l: Option<Tensor<B, 1>>) -> f64 {
        values(&l.expect("the loss applies"))[0] as f64
    }

    /// The two spaces read different tensors: next against the target one
    /// step later, the predicted clean latent against the clean target,
    /// each over its own region of the mask.
    #[test]
    fn loss_spaces_compare_their_own_tensors_over_their_regions() {
        let mask = t(&[1.0, 1.0, 0.0, 0.0]);
        let next = t(&[1.0, 2.0, 3.0, 4.0]);
        let pred = t(&[0.0, 0.0, 10.0, 10.0]);
        let pres_target = t(&[9.0, 9.0, 3.0, 2.0]);
        let pres_clean = t(&[9.0, 9.0, 10.0, 7.0]);
        let guid_target = t(&[2.0, 2.0, 9.0, 9.0]);
        let guid_clean = t(&[1.0, -1.0, 9.0, 9.0]);
        let z = t(&[0.0; 4]);
        let inputs = LossInputs {
            stage: Stage::Optimise,
            step: 0,
            timestep: 0,
            z_t: &z,
            next: &next,
            pred_original: &pred,
            mask: &mask,
            preservation_target: &pres_target,
            guidance_target: Some(&guid_target),
            preservation_clean: &pres_clean,
            guidance_clean: Some(&guid_clean),
        };
        let p = |space| value(PreservationLoss { space, inside: 0.0 }.loss(&inputs));
        let g = |space| value(GuidanceLoss { space }.loss(&inputs));
        // Means over all four elements.
        assert!((p(LossSpace::Next) - 4.0 / 4.0).abs() < 1e-6);
        // Inside the mask the preservation loss takes its own weight:
        // squared differences 64 and 49 inside, 0 and 4 outside.
        for (inside, want) in [(0.5, 0.5 * 113.0 + 4.0), (1.0, 117.0)] {
            let l = PreservationLoss {
                space: LossSpace::Next,
                inside,
            }
            .loss(&inputs);
            assert!((value(l) - want / 4.0).abs() < 1e-5, "inside {inside}");
        }
        assert!((p(LossSpace::Clean) - 9.0 / 4.0).abs() < 1e-6);
        assert!((g(LossSpace::Next) - 1.0 / 4.0).abs() < 1e-6);
        assert!((g(LossSpace::Clean) - 2.0 / 4.0).abs() < 1e-6);
        // Without a guidance trajectory the guidance loss does not apply.
        let none = LossInputs {
            guidance_target: None,
            guidance_clean: None,
            ..inputs.clone()
        };
        for space in LossSpace::ALL {
            assert!(GuidanceLoss { space }.loss(&none).is_none());
            assert_eq!(LossSpace::from_word(space.word()), Some(space));
        }
        // The method's objective in the clean space weighs the clean terms.
        let total = Objective::method_in(0.25, LossSpace::Clean)
            .evaluate(&inputs)
            .0;
        assert!((value(total) - (0.25 * 9.0 + 0.75 * 2.0) / 4.0).abs() < 1e-6);
        // With the edit region preserved too, the main stage's preservation
        // term weighs it; the guidance stage's never does.
        let method = Objective::method_with(0.25, LossSpace::Next, 1.0);
        let total = method.evaluate(&inputs).0;
        assert!((value(total) - (0.25 * 117.0 + 0.75 * 1.0) / 4.0).abs() < 1e-5);
        let guidance_stage = LossInputs {
            stage: Stage::Guidance,
            ..inputs.clone()
        };
        let total = method.evaluate(&guidance_stage).0;
        assert!((value(total) - 4.0 / 4.0).abs() < 1e-6);
    }
}
