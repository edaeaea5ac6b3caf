//! `GuidanceGradient`: what a gradient step differentiates under
//! classifier-free guidance. On the tiny fixture model, with and without a
//! ControlNet: the conditional-only gradient keeps the guided prediction's
//! value, is exactly the conditional branch's gradient, and differs from
//! the exact gradient `(1 - w) g_u + w g_c`, which `Both` gives; the
//! detached gradient keeps the prediction too and differentiates only the
//! DDIM step's direct dependence on the latent; the frozen prediction is
//! computed once per optimised step and the step itself reuses it.

use std::cell::RefCell;
use std::rc::Rc;

use burn::tensor::{Distribution, Tensor};
use optedit_cond::PromptEmbeddings;
use optedit_edit::{
    ControlCondition, Denoiser, EditConfig, EditLoss, Editor, GuidanceGradient, LatentOptimizer,
    LossInputs, Objective, OptimizerKind, SdPipeline, Stages,
};
use optedit_fixtures::{fixtures_dir, values, TestAutodiffBackend as AD, TestBackend as B};
use optedit_models::ControlNetModel;

use crate::common::{image, image_hw, objective_edit, pipeline, prompts, text_edit};

/// The prediction's values and the gradient of `sum(eps * r)` with
/// respect to the latent `z`.
fn value_and_gradient(d: &Denoiser<'_, AD>, z: &Tensor<AD, 4>) -> (Vec<f64>, Vec<f64>) {
    let z = z.clone().detach().require_grad();
    let eps = d.predict(z.clone(), 501, 0, 1).unwrap();
    // A fixed weighting, so that the gradient is not the Jacobian's column sum.
    let r = z.clone().detach().mul_scalar(0.7).sin().add_scalar(0.2);
    let grads = (eps.clone() * r).sum().backward();
    (values(&eps), values(&z.grad(&grads).unwrap()))
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// The four gradients of one condition: guided through both branches,
/// guided through the conditional branch, and each branch alone.
fn check(
    p: &SdPipeline<AD>,
    prompt: &PromptEmbeddings<AD>,
    controls: Vec<ControlCondition<'_, AD>>,
) {
    let w = 5.0;
    let z = p.encode_image(image()).unwrap();
    let guided = || Denoiser::for_prompt(p, prompt, w, controls.clone());
    let (both_v, both_g) = value_and_gradient(&guided(), &z);
    let (cond_v, cond_g) =
        value_and_gradient(&guided().with_gradient(GuidanceGradient::Conditional), &z);
    // Guidance 1 runs the conditional branch alone; the unconditional
    // branch alone is the same with the negative embedding as the prompt.
    let (_, c_g) = value_and_gradient(&Denoiser::for_prompt(p, prompt, 1.0, controls.clone()), &z);
    let negative = PromptEmbeddings::new(prompt.uncond.clone(), prompt.uncond.clone());
    let (_, u_g) = value_and_gradient(
        &Denoiser::for_prompt(p, &negative, 1.0, controls.clone()),
        &z,
    );

    let scale = max_abs(&both_v);
    assert!(
        max_diff(&both_v, &cond_v) <= 1e-4 * scale,
        "the conditional gradient changed the prediction by {}",
        max_diff(&both_v, &cond_v)
    );
    let g = max_abs(&c_g);
    assert!(g > 0.0);
    assert!(
        max_diff(&cond_g, &c_g) <= 1e-4 * g,
        "conditional gradient {} away from the conditional branch's",
        max_diff(&cond_g, &c_g)
    );
    let exact: Vec<f64> = u_g
        .iter()
        .zip(&c_g)
        .map(|(u, c)| (1.0 - w as f64) * u + w as f64 * c)
        .collect();
    let e = max_abs(&exact);
    assert!(
        max_diff(&both_g, &exact) <= 1e-4 * e,
        "guided gradient {} away from (1 - w) g_u + w g_c",
        max_diff(&both_g, &exact)
    );
    assert!(
        max_diff(&both_g, &cond_g) > 1e-2 * e,
        "the two gradients agree: the option did nothing"
    );
}

#[test]
fn the_conditional_gradient_is_the_conditional_branchs_and_keeps_the_prediction() {
    let p = pipeline();
    let (_, tgt) = prompts(&p);
    check(&p, &tgt, Vec::new());
    // With a ControlNet, given one image for both branches, and one image
    // per branch (each branch run alone takes its own half).
    let device = Default::default();
    let cn = ControlNetModel::<AD>::load(&fixtures_dir().join("tiny-controlnet"), &device).unwrap();
    let (h, w) = image_hw();
    <AD as burn::tensor::backend::Backend>::seed(&device, 3);
    let hint = Tensor::<AD, 4>::random([1, 3, h, w], Distribution::Uniform(0.0, 1.0), &device);
    check(&p, &tgt, vec![ControlCondition::new(&cn, hint.clone())]);
    let pair = Tensor::cat(vec![hint.clone(), hint.clone().flip([3])], 0);
    let z = p.encode_image(image()).unwrap();
    let guided = || {
        Denoiser::for_prompt(
            &p,
            &tgt,
            5.0,
            vec![ControlCondition::new(&cn, pair.clone())],
        )
    };
    let (both_v, _) = value_and_gradient(&guided(), &z);
    let (cond_v, _) =
        value_and_gradient(&guided().with_gradient(GuidanceGradient::Conditional), &z);
    assert!(max_diff(&both_v, &cond_v) <= 1e-4 * max_abs(&both_v));
    let (one_v, _) = value_and_gradient(
        &Denoiser::for_prompt(&p, &tgt, 5.0, vec![ControlCondition::new(&cn, hint)]),
        &z,
    );
    assert!(
        max_diff(&both_v, &one_v) > 1e-4 * max_abs(&both_v),
        "the second image was not used"
    );
}

/// `Detached`: the guided prediction's values, and through a DDIM step a
/// gradient that is the step's own coefficient of the latent (measured on
/// the scheduler with the prediction held fixed, so whatever the
/// prediction type) times the loss's weights, where `Both` adds the
/// network's Jacobian.
#[test]
fn the_detached_gradient_is_the_ddim_steps_direct_term() {
    let p = pipeline();
    let (_, tgt) = prompts(&p);
    let z = p.encode_image(image()).unwrap();
    let editor = Editor::new(&p, crate::common::config()).unwrap();
    let scheduler = editor.scheduler();
    let (j, n) = (1, scheduler.timesteps().len());
    let t = scheduler.timesteps()[j];
    let r = z.clone().detach().mul_scalar(0.7).sin().add_scalar(0.2);
    // Value of the step and gradient of sum(step(z) * r) for a denoiser.
    let step_gradient = |d: &Denoiser<'_, AD>| {
        let z = z.clone().detach().require_grad();
        let eps = d.predict(z.clone(), t, j, n).unwrap();
        let next = scheduler
            .step(eps.clone(), t, z.clone(), 0.0, None)
            .unwrap();
        let grads = (next.prev_sample * r.clone()).sum().backward();
        (values(&eps), values(&z.grad(&grads).unwrap()))
    };
    let guided = || Denoiser::for_prompt(&p, &tgt, 5.0, Vec::new());
    let (both_v, both_g) = step_gradient(&guided());
    let (det_v, det_g) = step_gradient(&guided().with_gradient(GuidanceGradient::Detached));
    assert!(
        max_diff(&both_v, &det_v) <= 1e-4 * max_abs(&both_v),
        "the detached gradient changed the prediction by {}",
        max_diff(&both_v, &det_v)
    );
    // The step is affine in the latent for a fixed prediction: its
    // coefficient is step(eps, z + 1) - step(eps, z).
    let eps = Tensor::<AD, 4>::from_inner(
        guided()
            .predict(z.clone().detach(), t, j, n)
            .unwrap()
            .inner(),
    );
    let at = |x: Tensor<AD, 4>| {
        values(
            &scheduler
                .step(eps.clone(), t, x, 0.0, None)
                .unwrap()
                .prev_sample,
        )
    };
    let (lo, hi) = (at(z.clone()), at(z.clone().add_scalar(1.0)));
    let expected: Vec<f64> = values(&r)
        .iter()
        .zip(lo.iter().zip(&hi))
        .map(|(r, (a, b))| r * (b - a))
        .collect();
    let e = max_abs(&expected);
    assert!(e > 0.0);
    assert!(
        max_diff(&det_g, &expected) <= 1e-4 * e,
        "detached gradient {} away from the step's direct term",
        max_diff(&det_g, &expected)
    );
    assert!(
        max_diff(&both_g, &expected) > 1e-2 * e,
        "the exact gradient has no network term: the check cannot tell them apart"
    );
}

#[test]
fn the_config_guidance_gradient_reaches_the_edit() {
    let p = pipeline();
    let run = |gradient| {
        values(
            &text_edit(
                &p,
                EditConfig {
                    guidance_gradient: gradient,
                    ..crate::common::config()
                },
            )
            .image,
        )
    };
    let both = run(GuidanceGradient::Both);
    assert_eq!(
        both,
        run(GuidanceGradient::Both),
        "the edit is not deterministic"
    );
    let conditional = run(GuidanceGradient::Conditional);
    assert_ne!(
        both, conditional,
        "the setting did not reach the gradient steps"
    );
    let detached = run(GuidanceGradient::Detached);
    assert_ne!(both, detached, "detached did not reach the gradient steps");
    assert_ne!(conditional, detached);
    let frozen = run(GuidanceGradient::Frozen);
    assert_ne!(detached, frozen, "frozen did not reach the edit");
}

/// `(z_t, DDIM(z_t))` of every gradient step of one stage, in order.
type Seen = Rc<RefCell<Vec<(Vec<f64>, Vec<f64>)>>>;

/// Records what the guidance stage's gradient steps see; adds nothing to
/// the loss.
struct StepRecorder(Seen);

impl EditLoss<AD> for StepRecorder {
    fn name(&self) -> &str {
        "step recorder"
    }

    fn loss(&self, i: &LossInputs<'_, AD>) -> Option<Tensor<AD, 1>> {
        self.0.borrow_mut().push((values(i.z_t), values(i.next)));
        Some(i.next.clone().sum().mul_scalar(0.0))
    }
}

/// Normalised gradient descent that records the latent of every update.
struct MoveRecorder {
    moved: Rc<RefCell<Vec<Vec<f64>>>>,
    inner: Box<dyn LatentOptimizer<B>>,
}

impl LatentOptimizer<B> for MoveRecorder {
    fn reset(&mut self) {
        self.inner.reset();
    }

    fn step(&mut self, latent: Tensor<B, 4>, grad: Tensor<B, 4>, lr: f64) -> Tensor<B, 4> {
        let out = self.inner.step(latent, grad, lr);
        self.moved.borrow_mut().push(values(&out));
        out
    }
}

/// `Frozen`: within an optimised step, `DDIM(z) - a z` (the prediction's
/// share of the step, `a` the step's coefficient of the latent) stays the
/// same over the gradient steps and the step itself, so the trajectory's
/// next latent is the last gradient step's plus `a` times the last move.
/// `Detached` recomputes the prediction at the moved latent and fails
/// that.
#[test]
fn the_frozen_prediction_is_held_through_the_gradient_steps_and_the_step() {
    let p = pipeline();
    // The largest distance from `DDIM(z) - a z` being held, relative to the
    // latents' size, over every optimised step of the guidance stage.
    let run = |gradient| {
        let cfg = EditConfig {
            guidance_gradient: gradient,
            lr: 0.5,
            ..crate::common::config()
        };
        let seen: Seen = Rc::default();
        let moved = Rc::new(RefCell::new(Vec::new()));
        let m = moved.clone();
        let editor = Editor::new(&p, cfg.clone())
            .unwrap()
            .with_optimizer(move || {
                Box::new(MoveRecorder {
                    moved: m.clone(),
                    inner: OptimizerKind::NormalizedGd.build(),
                })
            });
        let objective = Objective::method(cfg.lambda).with_in(
            Stages::GUIDANCE,
            1.0,
            StepRecorder(seen.clone()),
        );
        let out = objective_edit(&editor, &objective).unwrap();
        drop(objective);
        let guidance = out.guidance.unwrap();
        let scheduler = editor.scheduler();
        let seen = seen.borrow();
        let moved = moved.borrow();
        // The guidance stage runs first: its t_u * k updates come first.
        assert_eq!(seen.len(), cfg.t_u * cfg.k);
        assert!(moved.len() >= seen.len());
        let (mut held, mut step, mut scale) = (0.0f64, 0.0f64, 0.0f64);
        for s in 0..cfg.t_u {
            let j = guidance.start + s;
            let t = scheduler.timesteps()[j];
            // The step's coefficient of the latent for a fixed prediction.
            let eps = Tensor::<AD, 4>::zeros([1, 1, 1, 1], &Default::default());
            let at = |x: f64| {
                let z = Tensor::<AD, 4>::full([1, 1, 1, 1], x, &Default::default());
                values(
                    &scheduler
                        .step(eps.clone(), t, z, 0.0, None)
                        .unwrap()
                        .prev_sample,
                )[0]
            };
            let a = at(1.0) - at(0.0);
            let share = |z: &[f64], next: &[f64]| -> Vec<f64> {
                z.iter().zip(next).map(|(z, n)| n - a * z).collect()
            };
            let first = &seen[s * cfg.k];
            assert_eq!(first.0, values(guidance.at(j)), "step {s} began elsewhere");
            let reference = share(&first.0, &first.1);
            for i in 1..cfg.k {
                let (z, next) = &seen[s * cfg.k + i];
                held = held.max(max_diff(&share(z, next), &reference));
            }
            let last = &moved[s * cfg.k + cfg.k - 1];
            let stepped = share(last, &values(guidance.at(j + 1)));
            step = step.max(max_diff(&stepped, &reference));
            scale = scale.max(max_abs(&reference));
        }
        (held / scale, step / scale)
    };
    let (held, step) = run(GuidanceGradient::Frozen);
    assert!(
        held <= 1e-5,
        "the prediction moved between gradient steps by {held}"
    );
    assert!(
        step <= 1e-5,
        "the step did not reuse the held prediction: {step}"
    );
    let (held, step) = run(GuidanceGradient::Detached);
    assert!(
        held > 1e-4 && step > 1e-4,
        "the detached prediction did not follow the latent ({held}, {step}): the check cannot tell the modes apart"
    );
}

/// With a held prediction and late steps outside the mask, the guidance
/// stage stops after `t_u` steps; running it to the end gives the same
/// edit (nothing later read it) and the same trajectory where both ran.
#[test]
fn a_guidance_stage_stopped_where_it_is_no_longer_read_gives_the_same_edit() {
    let p = pipeline();
    for gradient in [GuidanceGradient::Frozen, GuidanceGradient::Detached] {
        let cfg = EditConfig {
            guidance_gradient: gradient,
            k_late: 1,
            k_late_outside_mask: true,
            ..crate::common::config()
        };
        let short = text_edit(&p, cfg.clone());
        let full = text_edit(
            &p,
            EditConfig {
                guidance_to_end: true,
                ..cfg.clone()
            },
        );
        let (gs, gf) = (short.guidance.unwrap(), full.guidance.unwrap());
        assert_eq!(gs.len(), cfg.t_u, "{gradient:?}");
        assert!(!gs.is_complete() && gf.is_complete(), "{gradient:?}");
        for j in gs.start..=gs.start + gs.len() {
            assert_eq!(values(gs.at(j)), values(gf.at(j)), "{gradient:?} step {j}");
        }
        assert_eq!(
            values(&short.latent),
            values(&full.latent),
            "{gradient:?}: the rest of the guidance stage changed the edit"
        );
    }
}
