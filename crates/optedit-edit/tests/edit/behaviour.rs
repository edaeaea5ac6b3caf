//! Behaviour of the edit on the tiny fixture models: preservation, the
//! all-zero mask, loss decrease, determinism, multi-ControlNet, custom losses,
//! cancellation and divergence.

use std::cell::Cell;
use std::ops::ControlFlow;

use burn::tensor::{Distribution, Tensor};
use optedit_edit::{
    ControlCondition, EditCondition, EditConfig, EditError, EditLoss, Editor, FullMask, LossInputs,
    Objective, OptimizerKind, ProgressEvent, SdPipeline, Silent, Stage, UserMask,
};
use optedit_fixtures::{cases_with_prefix, fixtures_dir, values, TestAutodiffBackend as AD};
use optedit_models::ControlNetModel;

use crate::common::{
    config, half_mask, image, image_hw, masked_diff, objective_edit, pipeline, prompts,
};

#[test]
fn preservation_only_keeps_the_unmasked_latent_near_the_inversion() {
    let p = pipeline();
    let (src, tgt) = prompts(&p);
    let cond = EditCondition::text(tgt);
    let size = image_hw();
    let run = |k: usize| {
        let editor = Editor::new(
            &p,
            EditConfig {
                lambda: 1.0,
                k,
                ..config()
            },
        )
        .unwrap();
        editor
            .edit(image(), &src, &cond, &mut half_mask(size), &mut Silent)
            .unwrap()
    };
    let plain = run(0);
    let optimised = run(4);
    let keep = optimised.mask.clone().unwrap().neg().add_scalar(1.0);
    let z0 = optimised.inversion.as_ref().unwrap().last();
    let err_plain = masked_diff(&plain.latent, z0, &keep);
    let err_opt = masked_diff(&optimised.latent, z0, &keep);
    // Stated tolerance: the optimised background is at least 2x closer to the
    // input latent than plain guided DDIM from the inversion.
    assert!(
        err_opt < 0.5 * err_plain,
        "background error {err_opt} with optimisation vs {err_plain} without"
    );
    assert!(
        optimised.guidance.is_none(),
        "lambda = 1 needs no guidance trajectory"
    );
}

#[test]
fn all_zero_mask_returns_the_plain_ddim_reconstruction() {
    let p = pipeline();
    let (src, tgt) = prompts(&p);
    let cond = EditCondition::text(tgt);
    let editor = Editor::new(&p, config()).unwrap();
    let (h, w) = image_hw();
    let mut zero = UserMask::new(vec![0.0; h * w], w, h).unwrap();
    let out = editor
        .edit(image(), &src, &cond, &mut zero, &mut Silent)
        .unwrap();
    let z0 = editor.encode(image()).unwrap();
    let inversion = editor.invert(z0, &src, &mut Silent).unwrap();
    let recon = editor.reconstruct(&inversion, &src, &mut Silent).unwrap();
    assert_eq!(values(&out.latent), values(recon.last()));
}

#[test]
fn each_gradient_step_lowers_its_loss() {
    let p = pipeline();
    let (src, tgt) = prompts(&p);
    let cond = EditCondition::text(tgt);
    let size = image_hw();
    for optimizer in [OptimizerKind::Adam, OptimizerKind::Sgd] {
        let lr = if optimizer == OptimizerKind::Sgd {
            50.0
        } else {
            0.02
        };
        let editor = Editor::new(
            &p,
            EditConfig {
                k: 4,
                optimizer,
                lr,
                ..config()
            },
        )
        .unwrap();
        let mut events: Vec<ProgressEvent> = Vec::new();
        let mut record = |e: &ProgressEvent| {
            events.push(e.clone());
            ControlFlow::Continue(())
        };
        editor
            .edit(image(), &src, &cond, &mut half_mask(size), &mut record)
            .unwrap();
        for stage in [Stage::Guidance, Stage::Optimise] {
            let losses: Vec<_> = events
                .iter()
                .filter(|e| e.stage == stage && e.loss.is_some())
                .collect();
            assert_eq!(losses.len(), 3 * 4, "{stage}: t_u * k gradient steps");
            for chunk in losses.chunks(4) {
                let v: Vec<f64> = chunk
                    .iter()
                    .map(|e| e.loss.as_ref().unwrap().total)
                    .collect();
                assert!(
                    v.windows(2).all(|w| w[1] < w[0]),
                    "{optimizer:?} {stage} at timestep {:?}: losses {v:?} do not decrease",
                    chunk[0].timestep
                );
            }
        }
    }
}

#[test]
fn same_seed_same_output_other_seed_other_output() {
    let p = pipeline();
    let (src, tgt) = prompts(&p);
    let cond = EditCondition::text(tgt);
    let size = image_hw();
    let run = |seed| {
        let editor = Editor::new(&p, EditConfig { seed, ..config() }).unwrap();
        values(
            &editor
                .edit(image(), &src, &cond, &mut half_mask(size), &mut Silent)
                .unwrap()
                .image,
        )
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

/// The whole edit (inversion, optimised steps with their gradients, the
/// rest of the schedule) under `B`.
fn edit_under<B: burn::tensor::backend::AutodiffBackend>() -> Vec<f64> {
    let device = Default::default();
    let p = SdPipeline::<B>::load(&fixtures_dir().join("tiny-sd"), &device).unwrap();
    let src = p.encode_prompt("a photo of a cat", None).unwrap();
    let cond = EditCondition::text(p.encode_prompt("a painting of a dog", None).unwrap());
    let case = cases_with_prefix("vae_encode").remove(0);
    let image: Tensor<B, 4> = case.load().tensor("input.image", &device);
    let [_, _, h, w] = image.dims();
    let size = (h, w);
    let editor = Editor::new(&p, config()).unwrap();
    let out = editor
        .edit(image, &src, &cond, &mut half_mask(size), &mut Silent)
        .unwrap();
    values(&out.image)
}

/// burn's balanced checkpointing (the CLI's backend) recomputes memory-bound
/// operations in the backward pass instead of keeping their outputs; the
/// gradients, and so the edit, must not change by a single bit.
#[test]
fn balanced_checkpointing_gives_the_same_edit() {
    use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
    use burn::backend::{Autodiff, Flex};
    let plain = edit_under::<AD>();
    let balanced = edit_under::<Autodiff<Flex, BalancedCheckpointing>>();
    assert_eq!(plain, balanced);
}

#[test]
fn two_controlnets_at_once_both_change_the_result() {
    let p = pipeline();
    let device = Default::default();
    let (src, tgt) = prompts(&p);
    let cn = ControlNetModel::<AD>::load(&fixtures_dir().join("tiny-controlnet"), &device).unwrap();
    let size = image_hw();
    let cond_image = |seed: u64| {
        <AD as burn::tensor::backend::Backend>::seed(&device, seed);
        // The conditioning image has the edited image's size.
        let (h, w) = size;
        Tensor::<AD, 4>::random([1, 3, h, w], Distribution::Uniform(0.0, 1.0), &device)
    };
    let (a, b) = (cond_image(1), cond_image(2));
    let editor = Editor::new(&p, config()).unwrap();
    let run = |controls: Vec<ControlCondition<'_, AD>>| {
        let cond = EditCondition {
            prompt: tgt.clone(),
            controls,
        };
        values(
            &editor
                .edit(image(), &src, &cond, &mut FullMask, &mut Silent)
                .unwrap()
                .image,
        )
    };
    let only_a = run(vec![ControlCondition::new(&cn, a.clone())]);
    let only_b = run(vec![ControlCondition::new(&cn, b.clone()).with_scale(0.7)]);
    let both = run(vec![
        ControlCondition::new(&cn, a),
        ControlCondition::new(&cn, b).with_scale(0.7),
    ]);
    assert_ne!(both, only_a);
    assert_ne!(both, only_b);
}

/// Pulls the latent towards zero; counts its calls.
struct ShrinkLoss<'c> {
    calls: &'c Cell<usize>,
}

impl EditLoss<AD> for ShrinkLoss<'_> {
    fn name(&self) -> &str {
        "shrink"
    }

    fn loss(&self, inputs: &LossInputs<'_, AD>) -> Option<Tensor<AD, 1>> {
        self.calls.set(self.calls.get() + 1);
        Some(inputs.next.clone().powi_scalar(2).mean())
    }
}

#[test]
fn a_custom_loss_is_called_and_changes_the_result() {
    let p = pipeline();
    let (src, tgt) = prompts(&p);
    let cond = EditCondition::text(tgt);
    let size = image_hw();
    let cfg = config();
    let editor = Editor::new(&p, cfg.clone()).unwrap();
    let calls = Cell::new(0);
    let objective = Objective::method(cfg.lambda).with(1.0, ShrinkLoss { calls: &calls });
    let custom = objective_edit(&editor, &objective).unwrap();
    assert_eq!(
        calls.get(),
        cfg.t_u * cfg.k,
        "called once per gradient step of the main stage"
    );
    let plain = editor
        .edit(image(), &src, &cond, &mut half_mask(size), &mut Silent)
        .unwrap();
    assert_ne!(values(&custom.latent), values(&plain.latent));
}

struct NanLoss;

impl EditLoss<AD> for NanLoss {
    fn name(&self) -> &str {
        "nan"
    }

    fn loss(&self, inputs: &LossInputs<'_, AD>) -> Option<Tensor<AD, 1>> {
        Some(inputs.next.clone().mean().mul_scalar(f32::NAN))
    }
}

#[test]
fn a_nan_loss_stops_the_edit_naming_the_step() {
    let p = pipeline();
    let cfg = config();
    let editor = Editor::new(&p, cfg.clone()).unwrap();
    let objective = Objective::method(cfg.lambda).with(1.0, NanLoss);
    match objective_edit(&editor, &objective) {
        Err(
            e @ EditError::Diverged {
                stage: Stage::Optimise,
                step: 0,
                ..
            },
        ) => {
            assert!(e.to_string().contains("step 0"), "{e}")
        }
        other => panic!("expected Diverged at step 0, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn the_progress_callback_can_cancel() {
    let p = pipeline();
    let (src, tgt) = prompts(&p);
    let cond = EditCondition::text(tgt);
    let editor = Editor::new(&p, config()).unwrap();
    let mut stop_in_guidance = |e: &ProgressEvent| {
        if e.stage == Stage::Guidance {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let size = image_hw();
    match editor.edit(
        image(),
        &src,
        &cond,
        &mut half_mask(size),
        &mut stop_in_guidance,
    ) {
        Err(EditError::Cancelled {
            stage: Stage::Guidance,
            ..
        }) => {}
        other => panic!("expected Cancelled, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn bad_config_and_inputs_are_named() {
    let p = pipeline();
    for (cfg, field) in [
        (
            EditConfig {
                lambda: 1.5,
                ..config()
            },
            "lambda",
        ),
        (
            EditConfig {
                strength: 0.0,
                ..config()
            },
            "strength",
        ),
        (
            EditConfig {
                num_steps: 0,
                ..config()
            },
            "num_steps",
        ),
        (
            EditConfig {
                lr: f64::NAN,
                ..config()
            },
            "lr",
        ),
    ] {
        match Editor::new(&p, cfg) {
            Err(EditError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
            other => panic!(
                "expected InvalidConfig({field}), got {:?}",
                other.map(|_| ())
            ),
        }
    }
    let editor = Editor::new(&p, config()).unwrap();
    // One row more than the fixture image: never a multiple of the VAE's
    // down-sampling factor when the image itself is.
    let (h, w) = image_hw();
    let odd = Tensor::<AD, 4>::zeros([1, 3, h + 1, w], &Default::default());
    assert!(
        matches!(editor.encode(odd), Err(EditError::InvalidInput { argument, .. }) if argument == "image")
    );
    assert!(matches!(
        UserMask::new(vec![0.5; 3], 2, 2),
        Err(EditError::InvalidInput { .. })
    ));
}

#[test]
fn baselines_run_and_diffedit_keeps_the_unmasked_latent() {
    let p = pipeline();
    let (src, tgt) = prompts(&p);
    let cond = EditCondition::text(tgt);
    let editor = Editor::new(&p, config()).unwrap();
    let size = image_hw();
    let d = editor
        .diffedit(image(), &src, &cond, &mut half_mask(size), &mut Silent)
        .unwrap();
    let mask = d.mask.unwrap();
    let keep = mask.clone().neg().add_scalar(1.0);
    let z0 = editor.encode(image()).unwrap();
    let inversion = editor.invert(z0, &src, &mut Silent).unwrap();
    // Outside the mask DiffEdit's latent is the inversion's, exactly.
    assert_eq!(masked_diff(&d.latent, inversion.last(), &keep), 0.0);
    let s = editor.sdedit(image(), &cond, &mut Silent).unwrap();
    assert_eq!(s.image.dims(), image().dims());
    assert_ne!(values(&s.latent), values(&d.latent));
}
