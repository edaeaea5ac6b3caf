//! The extension traits reach every optimised stage (issue 23): a custom
//! [`EditLoss`] reaches the stages it is added to, guidance included, and a
//! custom [`LatentOptimizer`] given to the [`Editor`] moves the latent in
//! both the guidance and the main stage. On the tiny fixture models.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use burn::tensor::Tensor;
use optedit_edit::{
    EditCondition, EditConfig, EditLoss, Editor, LatentOptimizer, LossInputs, LossSpace, Objective,
    OptimizerKind, Silent, Stage, Stages,
};
use optedit_fixtures::{values, TestAutodiffBackend as AD, TestBackend as B};

/// Records the stage of every call; pulls the latent towards zero.
struct StageRecorder<'a> {
    seen: &'a RefCell<Vec<Stage>>,
}

impl EditLoss<AD> for StageRecorder<'_> {
    fn name(&self) -> &str {
        "recorder"
    }

    fn loss(&self, inputs: &LossInputs<'_, AD>) -> Option<Tensor<AD, 1>> {
        self.seen.borrow_mut().push(inputs.stage);
        Some(inputs.next.clone().powi_scalar(2).mean())
    }
}

use crate::common::{
    config, half_mask, image, image_hw, masked_diff, objective_edit, pipeline, prompts, text_edit,
};

#[test]
fn a_custom_loss_reaches_the_stages_it_is_added_to() {
    let p = pipeline();
    let (src, tgt) = prompts(&p);
    let cond = EditCondition::text(tgt);
    let cfg = config();
    let editor = Editor::new(&p, cfg.clone()).unwrap();
    let steps = cfg.t_u * cfg.k;
    let plain = editor
        .edit(
            image(),
            &src,
            &cond,
            &mut half_mask(image_hw()),
            &mut Silent,
        )
        .unwrap();
    for (stages, guidance_calls, main_calls) in [
        (Stages::MAIN, 0, steps),
        (Stages::GUIDANCE, steps, 0),
        (Stages::BOTH, steps, steps),
    ] {
        let seen = RefCell::new(Vec::new());
        let objective =
            Objective::method(cfg.lambda).with_in(stages, 1.0, StageRecorder { seen: &seen });
        let out = objective_edit(&editor, &objective).unwrap();
        drop(objective);
        let seen = seen.into_inner();
        let count = |s: Stage| seen.iter().filter(|&&x| x == s).count();
        assert_eq!(
            (count(Stage::Guidance), count(Stage::Optimise), seen.len()),
            (guidance_calls, main_calls, guidance_calls + main_calls),
            "{stages:?}"
        );
        // A term in the guidance stage changes the guidance trajectory; one
        // in the main stage only leaves it as it was.
        let g = values(out.guidance.as_ref().unwrap().last());
        let g_plain = values(plain.guidance.as_ref().unwrap().last());
        assert_eq!(g != g_plain, stages.guidance, "{stages:?}");
        assert_ne!(values(&out.latent), values(&plain.latent), "{stages:?}");
    }
    // The method's objective itself optimises the guidance stage on the
    // preservation loss alone, and no stage that is not optimised.
    let method = Objective::<AD>::method(0.6);
    assert!(method.applies_to(Stage::Guidance) && method.applies_to(Stage::Optimise));
    assert!(!method.applies_to(Stage::Denoise));
    assert!(!Objective::<AD>::new()
        .with(
            0.0,
            StageRecorder {
                seen: &RefCell::new(Vec::new())
            }
        )
        .applies_to(Stage::Optimise));
}

/// Counts steps and resets; steps like plain gradient descent.
struct Counting {
    steps: Rc<Cell<usize>>,
    resets: Rc<Cell<usize>>,
    inner: Box<dyn LatentOptimizer<B>>,
}

impl LatentOptimizer<B> for Counting {
    fn reset(&mut self) {
        self.resets.set(self.resets.get() + 1);
        self.inner.reset();
    }

    fn step(&mut self, latent: Tensor<B, 4>, grad: Tensor<B, 4>, lr: f64) -> Tensor<B, 4> {
        self.steps.set(self.steps.get() + 1);
        self.inner.step(latent, grad, lr)
    }
}

#[test]
fn a_custom_optimizer_moves_the_latent_in_both_stages() {
    let p = pipeline();
    let (src, tgt) = prompts(&p);
    let cond = EditCondition::text(tgt);
    let cfg = EditConfig {
        lr: 20.0,
        ..config()
    };
    let (steps, resets, made) = (
        Rc::new(Cell::new(0)),
        Rc::new(Cell::new(0)),
        Rc::new(Cell::new(0)),
    );
    let (s, r, m) = (steps.clone(), resets.clone(), made.clone());
    let editor = Editor::new(&p, cfg.clone())
        .unwrap()
        .with_optimizer(move || {
            m.set(m.get() + 1);
            Box::new(Counting {
                steps: s.clone(),
                resets: r.clone(),
                inner: OptimizerKind::Sgd.build(),
            })
        });
    assert!(format!("{editor:?}").contains("custom"));
    let custom = editor
        .edit(
            image(),
            &src,
            &cond,
            &mut half_mask(image_hw()),
            &mut Silent,
        )
        .unwrap();
    // A fresh optimiser per optimised stage; a reset per optimised
    // timestep; k steps at each.
    assert_eq!(made.get(), 2);
    assert_eq!(resets.get(), 2 * cfg.t_u);
    assert_eq!(steps.get(), 2 * cfg.t_u * cfg.k);
    // It is the optimiser that moved the latent: the same edit with the
    // config's SGD gives the same result, with its Adam another.
    let with = |optimizer| {
        Editor::new(
            &p,
            EditConfig {
                optimizer,
                ..cfg.clone()
            },
        )
        .unwrap()
        .edit(
            image(),
            &src,
            &cond,
            &mut half_mask(image_hw()),
            &mut Silent,
        )
        .unwrap()
    };
    let sgd = with(OptimizerKind::Sgd);
    assert_eq!(values(&custom.latent), values(&sgd.latent));
    assert_eq!(
        values(custom.guidance.as_ref().unwrap().last()),
        values(sgd.guidance.as_ref().unwrap().last())
    );
    assert_ne!(
        values(&custom.latent),
        values(&with(OptimizerKind::Adam).latent)
    );
}

#[test]
fn each_builtin_optimizer_gives_its_own_edit() {
    let p = pipeline();
    let (src, tgt) = prompts(&p);
    let cond = EditCondition::text(tgt);
    let latents: Vec<Vec<f64>> = [
        OptimizerKind::Adam,
        OptimizerKind::AdamKept,
        OptimizerKind::NormalizedGd,
    ]
    .into_iter()
    .map(|optimizer| {
        let editor = Editor::new(
            &p,
            EditConfig {
                optimizer,
                ..config()
            },
        )
        .unwrap();
        let out = editor
            .edit(
                image(),
                &src,
                &cond,
                &mut half_mask(image_hw()),
                &mut Silent,
            )
            .unwrap();
        values(&out.latent)
    })
    .collect();
    assert!(latents.iter().flatten().all(|v| v.is_finite()));
    assert_ne!(latents[0], latents[1], "Adam kept across timesteps");
    assert_ne!(latents[0], latents[2], "normalised gradient descent");
}

#[test]
fn k_late_optimises_every_step_after_t_u_and_keeps_the_background_closer() {
    let p = pipeline();
    let cfg = EditConfig {
        k_late: 1,
        ..config()
    };
    let late = cfg.num_steps - cfg.start_step() - cfg.t_u;
    assert!(late > 0, "the test schedule has steps after t_u");
    let total = |stage| {
        (0..cfg.num_steps)
            .map(|j| cfg.gradient_steps(stage, j))
            .sum::<usize>()
    };
    assert_eq!(total(Stage::Optimise), cfg.t_u * cfg.k + late);
    assert_eq!(total(Stage::Guidance), cfg.t_u * cfg.k, "no late steps");
    assert_eq!(total(Stage::Denoise), 0);
    let seen = RefCell::new(Vec::new());
    let objective =
        Objective::method(cfg.lambda).with_in(Stages::BOTH, 0.0001, StageRecorder { seen: &seen });
    objective_edit(&Editor::new(&p, cfg.clone()).unwrap(), &objective).unwrap();
    drop(objective);
    let seen = seen.into_inner();
    for (stage, late_steps) in [(Stage::Guidance, 0), (Stage::Optimise, late * cfg.k_late)] {
        assert_eq!(
            seen.iter().filter(|&&s| s == stage).count(),
            cfg.t_u * cfg.k + late_steps,
            "{stage}"
        );
    }
    // Preservation alone (lambda 1) over every step keeps the background
    // closer to the input's latent than over the first t_u only.
    let run = |k_late: usize| {
        text_edit(
            &p,
            EditConfig {
                lambda: 1.0,
                k_late,
                ..config()
            },
        )
    };
    let (early, all) = (run(0), run(2));
    let keep = early.mask.clone().unwrap().neg().add_scalar(1.0);
    let z0 = early.inversion.as_ref().unwrap().last();
    let (e_early, e_all) = (
        masked_diff(&early.latent, z0, &keep),
        masked_diff(&all.latent, z0, &keep),
    );
    assert!(
        e_all < 0.8 * e_early,
        "background error {e_all} with k_late 2 vs {e_early} without"
    );
}

/// The config's loss space reaches the editor's objective: preserving in
/// the clean space pulls the result's background towards the encoded input
/// (the clean target), and the result differs from the next-latent space's.
#[test]
fn the_config_loss_space_reaches_the_edit() {
    let p = pipeline();
    let run = |space, lr| {
        let cfg = EditConfig {
            lambda: 1.0,
            loss_space: space,
            lr,
            ..config()
        };
        text_edit(&p, cfg)
    };
    let free = run(LossSpace::Clean, 0.0);
    let clean = run(LossSpace::Clean, 0.05);
    let next = run(LossSpace::Next, 0.05);
    let z0 = free.inversion.as_ref().unwrap().last();
    let keep = free.mask.clone().unwrap().neg().add_scalar(1.0);
    let (d_free, d_clean) = (
        masked_diff(&free.latent, z0, &keep),
        masked_diff(&clean.latent, z0, &keep),
    );
    assert!(d_clean < 0.9 * d_free, "{d_clean} vs {d_free}");
    assert_ne!(values(&clean.latent), values(&next.latent));
}

/// The config's `preservation_inside` reaches the editor's objective: with
/// the whole image preserved, the edit region ends nearer the encoded input
/// than with the background alone preserved.
#[test]
fn preservation_inside_the_mask_holds_the_edit_region() {
    let p = pipeline();
    let run = |inside| {
        let cfg = EditConfig {
            lambda: 1.0,
            preservation_inside: inside,
            ..config()
        };
        text_edit(&p, cfg)
    };
    let (outside, whole) = (run(0.0), run(1.0));
    let z0 = outside.inversion.as_ref().unwrap().last();
    let edit = outside.mask.clone().unwrap();
    let (d_outside, d_whole) = (
        masked_diff(&outside.latent, z0, &edit),
        masked_diff(&whole.latent, z0, &edit),
    );
    assert!(d_whole < 0.9 * d_outside, "{d_whole} vs {d_outside}");
}

/// Records, for each step, how much of the gradient lies inside the mask.
struct InsideMask {
    mask: Tensor<B, 4>,
    inside: Rc<RefCell<Vec<f64>>>,
}

impl LatentOptimizer<B> for InsideMask {
    fn reset(&mut self) {}

    fn step(&mut self, latent: Tensor<B, 4>, grad: Tensor<B, 4>, lr: f64) -> Tensor<B, 4> {
        let inside = (grad.clone() * self.mask.clone()).abs().sum();
        self.inside.borrow_mut().push(values(&inside)[0]);
        latent - grad.mul_scalar(lr)
    }
}

/// With `k_late_outside_mask`, the late steps' gradient is zero inside the
/// mask (the edit region is left to the condition) and the early steps'
/// is not; without it, the late steps move the edit region too.
#[test]
fn late_steps_outside_the_mask_leave_the_edit_region_alone() {
    let p = pipeline();
    let (src, tgt) = prompts(&p);
    let cond = EditCondition::text(tgt);
    let mask_latent = half_mask(image_hw())
        .to_latent::<B>(p.vae_scale(), &Default::default())
        .unwrap();
    let run = |outside: bool| {
        let cfg = EditConfig {
            lambda: 1.0,
            k_late: 1,
            k_late_outside_mask: outside,
            ..config()
        };
        let inside = Rc::new(RefCell::new(Vec::new()));
        let made = inside.clone();
        let mask = mask_latent.clone();
        Editor::new(&p, cfg.clone())
            .unwrap()
            .with_optimizer(move || {
                Box::new(InsideMask {
                    mask: mask.clone(),
                    inside: made.clone(),
                })
            })
            .edit(
                image(),
                &src,
                &cond,
                &mut half_mask(image_hw()),
                &mut Silent,
            )
            .unwrap();
        let early = cfg.t_u * cfg.k;
        let v = inside.borrow().clone();
        assert_eq!(v.len(), early + cfg.num_steps - cfg.start_step() - cfg.t_u);
        (v[..early].to_vec(), v[early..].to_vec())
    };
    let (early, late) = run(true);
    assert!(early.iter().all(|&g| g > 0.0), "{early:?}");
    assert!(late.iter().all(|&g| g == 0.0), "{late:?}");
    let (_, late_whole) = run(false);
    assert!(late_whole.iter().all(|&g| g > 0.0), "{late_whole:?}");
}
