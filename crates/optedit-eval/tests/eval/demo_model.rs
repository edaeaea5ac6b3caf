//! The committed demo model (`models/optedit-demo`, docs/demo-model.md)
//! against issue 7's bar: plain samples of held-out captions whose shape,
//! colour and pose the classifier recognises 90% of the time, DDIM
//! inversion and reconstruction of held-out world scenes at 28 dB or more,
//! and an evaluation classifier that names the attributes of held-out
//! renders and says "nothing" for garbage. The calibration rows of issue 22
//! hold with the committed judge: the input unchanged and the edit region
//! blanked score at most 5%, the target render at least 95%, on the
//! committed cases and on cases drawn with another seed. (`optedit eval
//! quality` measures the samples on more scenes.)

use std::ops::ControlFlow;
use std::path::PathBuf;

use burn::backend::{Autodiff, Flex};
use optedit_edit::ProgressEvent;
use optedit_edit::SdPipeline;
use optedit_eval::quality::{reconstruction_quality, sample_quality};
use optedit_eval::{
    make_cases, read_cases, run_case, AttributeClassifier, Case, EvalModels, Judge, MakeOptions,
    Method, ModelPaths, QualityOptions, Quiet, RunOptions,
};
use optedit_train::stages::classifier::held_out_accuracy;

fn demo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/optedit-demo")
}

#[test]
fn the_demo_model_inverts_and_reconstructs_held_out_scenes_above_28_db() {
    let device = Default::default();
    let pipeline = SdPipeline::<Autodiff<Flex>>::load(&demo_dir(), &device).expect("demo model");
    let options = QualityOptions {
        count: 4,
        steps: 25,
        grid: 0,
        ..QualityOptions::default()
    };
    let (q, _) = reconstruction_quality(&pipeline, &options, &mut Quiet).expect("reconstruction");
    assert!(q.vae_psnr_mean >= 28.0, "VAE round trip: {q:?}");
    assert!(q.psnr_mean >= 28.0, "inversion + reconstruction: {q:?}");
}

#[test]
fn the_demo_classifier_names_held_out_attributes() {
    let device = Default::default();
    let path = demo_dir().join("classifier/model.safetensors");
    let model = AttributeClassifier::<Flex>::load(&path, &device).expect("classifier");
    let acc = held_out_accuracy(&model, 128, 7, &device);
    for (name, value) in [
        ("shape", acc.shape),
        ("colour", acc.colour),
        ("pose", acc.pose),
    ] {
        assert!(
            value >= 0.95,
            "{name} accuracy {value} on held-out regions: {acc:?}"
        );
    }
    assert!(acc.false_nothing <= 0.03, "{acc:?}");
    // Garbage of every kind is "nothing", not a class that could score.
    assert_eq!(acc.named.len(), 5);
    for (kind, named) in &acc.named {
        assert!(*named <= 0.03, "{kind:?} named a class {named}: {acc:?}");
    }
}

/// Edit accuracy of a calibration row over `cases`.
fn calibration_accuracy(
    models: &EvalModels<Autodiff<Flex>>,
    cases: &[Case],
    method: Method,
) -> f64 {
    let options = RunOptions {
        method,
        ..RunOptions::default()
    };
    let correct = cases
        .iter()
        .filter(|case| {
            let out = run_case(models, case, &options, &mut |_: &ProgressEvent| {
                ControlFlow::Continue(())
            })
            .expect("calibration runs");
            out.record.correct
        })
        .count();
    correct as f64 / cases.len() as f64
}

#[test]
fn calibration_rows_hold_with_the_committed_judge() {
    let device = Default::default();
    let models = EvalModels::<Autodiff<Flex>>::load(&ModelPaths::demo(&demo_dir()), &[], &device)
        .expect("demo model");
    let committed = read_cases(&demo_dir().join("../../eval/cases.jsonl")).expect("cases");
    let fresh = make_cases(&MakeOptions {
        count: 140,
        seed: 0x5eed_2222,
        ..MakeOptions::default()
    })
    .expect("cases");
    for (name, cases) in [("committed", committed), ("fresh", fresh)] {
        let identity = calibration_accuracy(&models, &cases, Method::Identity);
        let blank = calibration_accuracy(&models, &cases, Method::Blank);
        let oracle = calibration_accuracy(&models, &cases, Method::Oracle);
        assert!(identity <= 0.05, "{name}: identity {identity}");
        assert!(blank <= 0.05, "{name}: blank {blank}");
        assert!(oracle >= 0.95, "{name}: oracle {oracle}");
    }
}

#[test]
fn the_demo_model_draws_the_attributes_of_held_out_captions() {
    let device = Default::default();
    let pipeline = SdPipeline::<Autodiff<Flex>>::load(&demo_dir(), &device).expect("demo model");
    let judge =
        Judge::load(&demo_dir().join("classifier/model.safetensors"), &device).expect("classifier");
    let options = QualityOptions {
        count: 16,
        steps: 25,
        grid: 0,
        ..QualityOptions::default()
    };
    let (q, _) = sample_quality(&pipeline, &judge, &options, &mut Quiet).expect("samples");
    assert!(
        q.mean >= 0.9,
        "mean attribute accuracy of plain samples: {q:?}"
    );
}

/// The committed folder has a ControlNet for every control a case can ask
/// for (pose, Canny, scribble, layout), each loading strictly and trained
/// (its output convolutions no longer the zeros it starts from), with its
/// condition reaching its residuals. How much: on the first cases of the
/// committed file the condition moves the residuals by only 0.1-0.3% of
/// their size (docs/demo-model.md, "Scribble and layout ControlNets"), so
/// the bounds here only catch a ControlNet that is untrained or cut off
/// from its condition.
#[test]
fn the_demo_model_has_a_trained_controlnet_for_every_case_kind() {
    use burn::tensor::{Tensor, TensorData};
    use optedit_eval::{control_image, CaseKind, CaseScenes, ControlName, EvalModels, ModelPaths};

    let device = Default::default();
    let models = EvalModels::<Autodiff<Flex>>::load(
        &ModelPaths::demo(&demo_dir()),
        &ControlName::ALL,
        &device,
    )
    .expect("every ControlNet of the demo model");
    let cases = optedit_eval::make_cases(&optedit_eval::MakeOptions {
        count: 7,
        ..optedit_eval::MakeOptions::default()
    })
    .unwrap();
    let p = &models.pipeline;
    let context = p.encode_prompt("", None).unwrap();
    let latent = Tensor::<Autodiff<Flex>, 4>::from_data(
        TensorData::new(vec![0.1f32; 4 * 32 * 32], [1, 4, 32, 32]),
        &device,
    );
    let residuals = |c: ControlName, image: &image::RgbImage| {
        let cond = optedit_cond::image::rgb_to_tensor(image, &device);
        let r = models.controlnets[&c]
            .forward(
                latent.clone(),
                Tensor::from_data(TensorData::new(vec![500.0f32], [1]), &device),
                context.cond.clone(),
                cond,
                1.0,
            )
            .unwrap();
        let mut all = r.down;
        all.push(r.mid);
        all
    };
    let largest = |ts: Vec<Tensor<Autodiff<Flex>, 4>>| {
        ts.into_iter()
            .map(|t| t.abs().max().into_scalar())
            .fold(0.0f32, f32::max)
    };
    let black = image::RgbImage::new(128, 128);
    let mut seen = std::collections::BTreeSet::new();
    for case in cases.iter().filter(|c| c.kind() != CaseKind::Text) {
        let scenes = CaseScenes::of(case).unwrap();
        for &c in &case.controls {
            seen.insert(c);
            let with = residuals(c, &control_image(c, &scenes).unwrap());
            let without = residuals(c, &black);
            assert!(
                largest(with.clone()) > 1e-2,
                "{}: the {c:?} ControlNet adds nothing",
                case.id
            );
            let change = largest(with.into_iter().zip(without).map(|(a, b)| a - b).collect());
            assert!(
                change > 1e-5,
                "{}: the {c:?} ControlNet ignores its condition",
                case.id
            );
        }
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
}
