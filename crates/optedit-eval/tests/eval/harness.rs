//! The harness end to end on the tiny fixture models (random weights, so
//! the numbers only have to be well formed) with a randomly initialised
//! classifier.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, Flex};
use optedit_edit::{EditConfig, GuidanceGradient};
use optedit_eval::{
    evaluate, make_cases, quality, AttributeClassifier, CaseKind, ControlName, EvalError,
    EvalModels, MakeOptions, MaskSpec, Method, ModelPaths, QualityOptions, Quiet, RunEvent,
    RunOptions, RunPlan,
};

type B = Autodiff<Flex>;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// The ControlNet folders of a demo pipeline.
const CONTROLNET_FOLDERS: [&str; 4] = [
    "controlnet-pose",
    "controlnet-canny",
    "controlnet-scribble",
    "controlnet-layout",
];

/// A demo-layout folder: the tiny SD model, the tiny ControlNet (random
/// weights, output convolutions included) as every ControlNet, and a random
/// classifier.
fn demo_dir() -> tempfile::TempDir {
    let fixtures = optedit_fixtures::fixtures_dir();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures.join("tiny-sd"), dir.path());
    for name in CONTROLNET_FOLDERS {
        copy_dir(&fixtures.join("tiny-controlnet"), &dir.path().join(name));
    }
    std::fs::create_dir_all(dir.path().join("classifier")).unwrap();
    AttributeClassifier::<Flex>::new(&Default::default())
        .save(&dir.path().join("classifier/model.safetensors"))
        .unwrap();
    dir
}

fn fast() -> EditConfig {
    EditConfig {
        num_steps: 2,
        t_u: 1,
        k: 1,
        ..EditConfig::default()
    }
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

fn in_range(v: Option<f64>, lo: f64, hi: f64) -> bool {
    v.is_some_and(|v| v.is_finite() && (lo..=hi).contains(&v))
}

#[test]
fn evaluate_writes_records_summary_and_grid_and_resumes() {
    let model = demo_dir();
    let out_root = tempfile::tempdir().unwrap();
    let mut cases = make_cases(&MakeOptions {
        count: 3,
        seed: 1,
        ..MakeOptions::default()
    })
    .unwrap();
    cases[0].controls.push(ControlName::Canny);
    let device = Default::default();
    let models =
        EvalModels::<B>::load(&ModelPaths::demo(model.path()), &ControlName::ALL, &device).unwrap();
    let options = RunOptions {
        config: fast(),
        ..RunOptions::default()
    };
    let out = out_root.path().join("optimise");
    let mut plan = RunPlan::new(options.clone(), out.clone());
    plan.grid = 2;
    plan.references_per_class = 2;

    let mut items = 0;
    let mut steps = 0;
    let summary = evaluate(&models, &cases, &plan, &mut |e: RunEvent<'_>| {
        match e {
            RunEvent::Item { .. } => items += 1,
            RunEvent::Step(_) => steps += 1,
            _ => {}
        }
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!((items, summary.cases, summary.failed), (3, 3, 0));
    assert!(steps > 0);
    assert!(in_range(summary.edit_accuracy, 0.0, 1.0));
    assert!(
        in_range(summary.background.psnr_bg, 0.0, 100.0),
        "{:?}",
        summary.background.psnr_bg
    );
    assert!(in_range(summary.background.mae_bg, 0.0, 255.0));
    assert!(in_range(summary.csfid, 0.0, f64::MAX));
    assert!(in_range(summary.mask_iou, 0.0, 1.0));
    assert_eq!(summary.by_kind.len(), 3);
    assert_eq!(lines(&out.join("cases.jsonl")), 3);
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    // The row names the settings that differ from the defaults.
    assert!(
        md.contains("| optimise (t_u 1, k 1, steps 2) | 0.6 | per case | 3 |"),
        "{md}"
    );
    let grid = image::open(out.join("grid.png")).unwrap();
    assert_eq!(
        (grid.width(), grid.height()),
        (4 * 128 + 3 * 2, 2 * 128 + 2)
    );
    assert!(out.join("references.json").is_file());

    // Resume: nothing left to do, the same summary.
    plan.resume = true;
    let mut again = 0;
    let resumed = evaluate(&models, &cases, &plan, &mut |e: RunEvent<'_>| {
        again += usize::from(matches!(e, RunEvent::Item { .. }));
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(again, 0);
    assert_eq!(resumed.edit_accuracy, summary.edit_accuracy);
    // Equal up to JSON's float parsing of the cached references.
    let (a, b) = (resumed.csfid.unwrap(), summary.csfid.unwrap());
    assert!((a - b).abs() <= 1e-9 * b.abs(), "{a} vs {b}");

    // A run.json written before some settings were recorded resumes when
    // what the missing keys meant is what this run uses, whatever its
    // edit_config text says; when it is not (no late steps then, one now),
    // it is refused.
    let run_json = out.join("run.json");
    let current = std::fs::read_to_string(&run_json).unwrap();
    let mut old: serde_json::Value = serde_json::from_str(&current).unwrap();
    for key in [
        "loss_space",
        "inversion_guidance",
        "lr_schedule",
        "max_loss",
        "preservation_inside",
    ] {
        old["settings"].as_object_mut().unwrap().remove(key);
    }
    old["edit_config"] = "EditConfig { written by an older optedit }".into();
    std::fs::write(&run_json, old.to_string()).unwrap();
    evaluate(&models, &cases, &plan, &mut Quiet).unwrap();
    // Runs from before the gradient was recorded took the exact gradient;
    // this one holds the prediction (the default since).
    assert_ne!(options.config.guidance_gradient, GuidanceGradient::Both);
    let mut older = old.clone();
    older["settings"]
        .as_object_mut()
        .unwrap()
        .remove("guidance_gradient");
    std::fs::write(&run_json, older.to_string()).unwrap();
    assert!(matches!(
        evaluate(&models, &cases, &plan, &mut Quiet),
        Err(EvalError::Resume { .. })
    ));
    old["settings"].as_object_mut().unwrap().remove("k_late");
    std::fs::write(&run_json, old.to_string()).unwrap();
    assert!(matches!(
        evaluate(&models, &cases, &plan, &mut Quiet),
        Err(EvalError::Resume { .. })
    ));
    std::fs::write(&run_json, current).unwrap();

    // Not without resume, nor with other settings.
    plan.resume = false;
    assert!(matches!(
        evaluate(&models, &cases, &plan, &mut Quiet),
        Err(EvalError::InvalidArgument { .. })
    ));
    let mut other = plan.clone();
    other.resume = true;
    other.options.config.lambda = 0.2;
    assert!(matches!(
        evaluate(&models, &cases, &other, &mut Quiet),
        Err(EvalError::Resume { .. })
    ));
    // Never over an input.
    let mut clash = RunPlan::new(options, out_root.path().join("clash"));
    std::fs::create_dir_all(&clash.out).unwrap();
    std::fs::write(clash.out.join("summary.md"), "mine").unwrap();
    clash.inputs = vec![clash.out.join("summary.md")];
    assert!(evaluate(&models, &cases, &clash, &mut Quiet).is_err());
    assert_eq!(
        std::fs::read_to_string(clash.out.join("summary.md")).unwrap(),
        "mine"
    );
}

#[test]
fn baselines_and_mask_variants_run() {
    let model = demo_dir();
    let out_root = tempfile::tempdir().unwrap();
    let cases = make_cases(&MakeOptions {
        count: 1,
        seed: 2,
        kinds: vec![CaseKind::Pose],
        ..MakeOptions::default()
    })
    .unwrap();
    let models = EvalModels::<B>::load(
        &ModelPaths::demo(model.path()),
        &[ControlName::Pose],
        &Default::default(),
    )
    .unwrap();
    for (method, mask) in [
        (Method::DIFFEDIT, Some(MaskSpec::Estimated)),
        (Method::SDEDIT, None),
        (Method::OPTIMISE, Some(MaskSpec::Erode(64))),
        (Method::OPTIMISE, Some(MaskSpec::Box)),
    ] {
        let options = RunOptions {
            method,
            config: fast(),
            mask_override: mask,
            ..RunOptions::default()
        };
        let out: PathBuf = out_root.path().join(format!(
            "{}-{}",
            method.word(),
            mask.map_or("none".into(), |m| m.to_string().replace(':', "-"))
        ));
        let mut plan = RunPlan::new(options, out.clone());
        plan.references_per_class = 1;
        plan.grid = 0;
        let s = evaluate(&models, &cases, &plan, &mut Quiet).unwrap();
        assert_eq!(s.cases, 1);
        assert!(!out.join("grid.png").exists());
        let record: optedit_eval::CaseRecord = serde_json::from_str(
            std::fs::read_to_string(out.join("cases.jsonl"))
                .unwrap()
                .trim(),
        )
        .unwrap();
        assert_eq!(record.method, method.word());
        match (method, mask) {
            (Method::SDEDIT, _) => {
                assert_eq!((record.mask.as_str(), record.mask_coverage), ("none", 1.0))
            }
            (_, Some(MaskSpec::Erode(64))) => {
                assert!(record.mask_empty && record.mask_coverage == 0.0)
            }
            _ => assert!(record.mask_coverage > 0.0),
        }
        assert!(record.psnr_bg.is_some_and(f64::is_finite));
    }
    // A case asking for a ControlNet that is not loaded.
    let mut canny = cases.clone();
    canny[0].controls = vec![ControlName::Canny];
    let plan = RunPlan::new(
        RunOptions {
            config: fast(),
            ..RunOptions::default()
        },
        out_root.path().join("x"),
    );
    let e = evaluate(&models, &canny, &plan, &mut Quiet).unwrap_err();
    assert!(e.to_string().contains("canny"), "{e}");
}

/// The calibration rows run through the harness like a method, with no
/// model call, and their results are known exactly: identity is the input,
/// oracle the target render, blank the input with the mask's pixels grey.
#[test]
fn calibration_rows_are_exact_and_call_no_model() {
    use optedit_eval::metrics::{coverage, PSNR_CAP_DB};
    use optedit_eval::runner::BLANK_GREY;
    use optedit_eval::{run_case, CaseScenes};

    let model = demo_dir();
    let models =
        EvalModels::<B>::load(&ModelPaths::demo(model.path()), &[], &Default::default()).unwrap();
    let cases = make_cases(&MakeOptions {
        count: 3,
        seed: 7,
        kinds: vec![CaseKind::Text, CaseKind::Pose, CaseKind::TextPose],
        ..MakeOptions::default()
    })
    .unwrap();
    let grey = image::Rgb(BLANK_GREY);
    let mut steps = 0;
    for case in &cases {
        let scenes = CaseScenes::of(case).unwrap();
        let input = scenes.input();
        let truth = scenes.true_region();
        assert!(coverage(&truth) > 0.0);
        let mut run = |method, mask_override| {
            let options = RunOptions {
                method,
                config: fast(),
                mask_override,
                ..RunOptions::default()
            };
            let mut count = |_: &optedit_edit::ProgressEvent| {
                steps += 1;
                ControlFlow::Continue(())
            };
            let out = run_case(&models, case, &options, &mut count).unwrap();
            let r = &out.record;
            assert!(r.error.is_none() && r.stages.is_empty(), "{r:?}");
            assert_eq!(r.method, method.word());
            // Judged like an edit: every edited attribute has a verdict.
            assert!(!r.edited.is_empty() && !r.regions.is_empty());
            assert_eq!(out.images.input, *input);
            out
        };

        let identity = run(Method::Identity, None);
        assert_eq!(identity.images.result, *input);
        let r = &identity.record;
        assert_eq!(r.psnr_bg, Some(PSNR_CAP_DB));
        assert_eq!(r.mae_bg, Some(0.0));
        assert!((r.ssim_bg.unwrap() - 1.0).abs() < 1e-12, "{:?}", r.ssim_bg);
        assert_eq!(
            (r.mask.as_str(), r.mask_coverage, r.mask_iou),
            ("none", 0.0, None)
        );

        let oracle = run(Method::Oracle, None);
        assert_eq!(oracle.images.result, scenes.target_render.image);
        assert_ne!(oracle.images.result, *input);
        // Source and target agree outside the true region.
        assert_eq!(oracle.record.psnr_bg, Some(PSNR_CAP_DB));
        assert_eq!(oracle.record.mask, "none");

        // Blank: the case's own mask (true), an override (box), and the
        // true region for the masks that give no pixels (estimated, full).
        for (spec, word) in [
            (None, "true"),
            (Some(MaskSpec::Box), "box"),
            (Some(MaskSpec::Estimated), "estimated"),
            (Some(MaskSpec::Full), "full"),
        ] {
            let blank = run(Method::Blank, spec);
            let region = match spec {
                Some(MaskSpec::Box) => scenes.pixel_mask(MaskSpec::Box).unwrap(),
                _ => truth.clone(),
            };
            let mut inside = 0;
            for (x, y, p) in blank.images.result.enumerate_pixels() {
                if region.get_pixel(x, y)[0] > 127 {
                    assert_eq!(*p, grey, "{} {word}: ({x}, {y}) inside", case.id);
                    inside += 1;
                } else {
                    assert_eq!(p, input.get_pixel(x, y), "{} {word}: ({x}, {y})", case.id);
                }
            }
            assert!(inside > 0);
            let r = &blank.record;
            assert_eq!(r.mask, word);
            assert_eq!(blank.images.mask, region);
            assert!((r.mask_coverage - coverage(&region)).abs() < 1e-12);
            if spec.is_none() {
                assert_eq!(r.mask_iou, Some(1.0));
                // Everything changed lies inside the excluded region.
                assert_eq!(r.psnr_bg, Some(PSNR_CAP_DB));
            }
        }
    }
    assert_eq!(steps, 0, "a calibration row ran the editor");

    // Through evaluate: records, summary, grid images, no editor step.
    let out_root = tempfile::tempdir().unwrap();
    for method in [Method::Identity, Method::Blank, Method::Oracle] {
        let out = out_root.path().join(method.word());
        let mut plan = RunPlan::new(
            RunOptions {
                method,
                config: fast(),
                ..RunOptions::default()
            },
            out.clone(),
        );
        plan.grid = 2;
        plan.references_per_class = 1;
        let mut events = 0;
        let s = evaluate(&models, &cases, &plan, &mut |e: RunEvent<'_>| {
            events += usize::from(matches!(e, RunEvent::Step(_)));
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!((events, s.cases, s.failed), (0, 3, 0));
        assert_eq!(s.background.psnr_bg, Some(PSNR_CAP_DB));
        assert_eq!(s.background.psnr_bg_cases, 3);
        let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
        let mask = if method == Method::Blank {
            "per case"
        } else {
            "none"
        };
        assert!(
            md.contains(&format!("| {} | – | {mask} | 3 |", method.word())),
            "{md}"
        );
        let first = image::open(
            out.join("images")
                .join(format!("{}-result.png", cases[0].id)),
        )
        .unwrap()
        .to_rgb8();
        let scenes = CaseScenes::of(&cases[0]).unwrap();
        match method {
            Method::Identity => assert_eq!(first, *scenes.input()),
            Method::Oracle => assert_eq!(first, scenes.target_render.image),
            _ => assert!(first != *scenes.input() && first.pixels().any(|p| *p == grey)),
        }
        assert!(out.join("grid.png").is_file());
    }
}

#[test]
fn quality_measures_are_well_formed() {
    let model = demo_dir();
    let out = tempfile::tempdir().unwrap();
    let paths = ModelPaths::demo(model.path());
    let models = EvalModels::<B>::load(&paths, &[], &Default::default()).unwrap();
    let options = QualityOptions {
        count: 2,
        steps: 2,
        grid: 1,
        ..QualityOptions::default()
    };
    let report = quality(
        &models.pipeline,
        &models.judge,
        &options,
        Some(out.path()),
        &mut Quiet,
    )
    .unwrap();
    let s = &report.samples;
    assert_eq!(s.count, 2);
    for v in [s.shape, s.colour, s.pose, s.mean, s.all] {
        assert!((0.0..=1.0).contains(&v), "{v}");
    }
    let r = &report.reconstruction;
    assert!(r.psnr_mean.is_finite() && r.psnr_min <= r.psnr_mean && r.vae_psnr_mean.is_finite());
    for name in [
        "quality.json",
        "quality.md",
        "samples.png",
        "reconstructions.png",
    ] {
        assert!(out.path().join(name).is_file(), "{name}");
    }
    let samples = image::open(out.path().join("samples.png")).unwrap();
    assert_eq!((samples.width(), samples.height()), (2 * 128 + 2, 128));
}

/// A randomly initialised pipeline of the demo architecture (VAE factor 4,
/// ControlNets taking 128x128 conditions for 32x32 latents), exported by
/// `optedit-train` as the trained one will be.
fn random_demo_dir() -> tempfile::TempDir {
    use optedit_models::ControlNetModel;
    use optedit_train::conditions::ControlKind;
    use optedit_train::export::{export, DemoParts};
    use optedit_train::stages::text_to_image::TextToImage;

    let device = Default::default();
    let vae = optedit_train::stages::vae::new_vae::<Flex>(&device).unwrap();
    let t2i = TextToImage::<Flex>::new(&device).unwrap();
    let net = || {
        let config = serde_json::from_value(optedit_train::demo::controlnet_config()).unwrap();
        ControlNetModel::from_unet(&t2i.unet, config, &device).unwrap()
    };
    let nets: Vec<_> = ControlKind::ALL.iter().map(|&k| (k, net())).collect();
    let classifier = AttributeClassifier::<Flex>::new(&device);
    let parts = DemoParts {
        vae: &vae,
        scaling_factor: 0.5,
        text_to_image: &t2i,
        controlnets: nets.iter().map(|(k, n)| (*k, n)).collect(),
        classifier: Some(&classifier),
    };
    let dir = tempfile::tempdir().unwrap();
    let tokenizer = optedit_fixtures::fixtures_dir().join("tiny-sd/tokenizer");
    export(dir.path(), &parts, &tokenizer).unwrap();
    dir
}

#[test]
fn the_demo_architecture_with_vae_factor_four_runs() {
    let model = random_demo_dir();
    let out = tempfile::tempdir().unwrap();
    let mut cases = make_cases(&MakeOptions {
        count: 2,
        seed: 4,
        kinds: vec![CaseKind::TextPose],
        ..MakeOptions::default()
    })
    .unwrap();
    cases[1].controls.push(ControlName::Canny);
    cases[1].mask = MaskSpec::Estimated;
    let models = EvalModels::<B>::load(
        &ModelPaths::demo(model.path()),
        &ControlName::ALL,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(models.pipeline.vae_scale(), 4);
    let mut plan = RunPlan::new(
        RunOptions {
            config: fast(),
            ..RunOptions::default()
        },
        out.path().join("run"),
    );
    plan.references_per_class = 1;
    let s = evaluate(&models, &cases, &plan, &mut Quiet).unwrap();
    assert_eq!((s.cases, s.failed), (2, 0));
    assert!(in_range(s.background.psnr_bg, 0.0, 100.0) && in_range(s.mask_iou, 0.0, 1.0));
    let options = QualityOptions {
        count: 1,
        steps: 2,
        grid: 0,
        ..QualityOptions::default()
    };
    let q = quality(&models.pipeline, &models.judge, &options, None, &mut Quiet).unwrap();
    assert!(q.reconstruction.psnr_mean.is_finite());
}

/// An edges, a scribble and a layout case run on the tiny models, where
/// every ControlNet folder holds the same random ControlNet: the condition
/// image reaches the ControlNet, since the same edit with the same weights
/// comes out differently under each control (and without one), and each
/// control's image is the target scene's condition.
#[test]
fn edges_scribble_and_layout_conditions_reach_the_controlnet() {
    use optedit_eval::{control_image, run_case, CaseScenes};
    use optedit_train::conditions::{
        condition_image, ControlKind, LAYOUT_BACKGROUND, LAYOUT_OBJECT, LAYOUT_PERSON,
    };

    let model = demo_dir();
    let models = EvalModels::<B>::load(
        &ModelPaths::demo(model.path()),
        &ControlName::ALL,
        &Default::default(),
    )
    .unwrap();
    // `canny` and `edges` share one folder, loaded once.
    assert_eq!(models.weights_fingerprint.split(',').count(), 3 + 4);
    let options = RunOptions {
        config: fast(),
        ..RunOptions::default()
    };
    let cases = make_cases(&MakeOptions {
        count: 3,
        seed: 5,
        kinds: vec![CaseKind::Edges, CaseKind::Scribble, CaseKind::Layout],
        ..MakeOptions::default()
    })
    .unwrap();
    for case in &cases {
        let scenes = CaseScenes::of(case).unwrap();
        let mut results = Vec::new();
        for controls in [
            vec![],
            vec![ControlName::Canny],
            vec![ControlName::Edges],
            vec![ControlName::Scribble],
            vec![ControlName::Layout],
        ] {
            let mut c = case.clone();
            c.controls = controls.clone();
            let out = run_case(&models, &c, &options, &mut optedit_edit::Silent).unwrap();
            assert!(
                out.record.error.is_none(),
                "{}: {:?}",
                c.id,
                out.record.error
            );
            assert_eq!(out.record.kind, c.kind().word());
            results.push((controls, out.images.result));
        }
        for (i, (a, ra)) in results.iter().enumerate() {
            for (b, rb) in &results[i + 1..] {
                assert_ne!(ra, rb, "{}: {a:?} and {b:?} give the same result", case.id);
            }
        }
        // The images: the target's conditions (the source's edges for `canny`).
        let target = &scenes.target_render;
        for (name, kind) in [
            (ControlName::Edges, ControlKind::Canny),
            (ControlName::Scribble, ControlKind::Scribble),
            (ControlName::Layout, ControlKind::Layout),
        ] {
            let image = control_image(name, &scenes).unwrap();
            assert_eq!(image, condition_image(kind, target).unwrap());
            assert_ne!(
                image,
                condition_image(kind, &scenes.source_render).unwrap(),
                "{}: the {name:?} image does not show the new shape",
                case.id
            );
        }
        assert_eq!(
            control_image(ControlName::Canny, &scenes).unwrap(),
            condition_image(ControlKind::Canny, &scenes.source_render).unwrap()
        );
        let scribble = control_image(ControlName::Scribble, &scenes).unwrap();
        assert!(scribble.pixels().all(|p| p.0 == [0; 3] || p.0 == [255; 3]));
        let layout = control_image(ControlName::Layout, &scenes).unwrap();
        assert!(layout
            .pixels()
            .all(|p| [LAYOUT_BACKGROUND, LAYOUT_OBJECT, LAYOUT_PERSON].contains(&p.0)));
    }
    // A missing folder is named.
    std::fs::remove_dir_all(model.path().join("controlnet-layout")).unwrap();
    let e = EvalModels::<B>::load(
        &ModelPaths::demo(model.path()),
        &[ControlName::Layout],
        &Default::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("controlnet-layout"), "{e}");
}
