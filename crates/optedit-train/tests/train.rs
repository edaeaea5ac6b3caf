//! The training machinery: resumed runs equal uninterrupted ones, the export
//! is a diffusers folder the normal loaders read, and the conditions are the
//! conditioning crate's renderings of the scene.

use burn::backend::{Autodiff, Flex};
use burn::tensor::{Distribution, Tensor};
use burn_store::ModuleSnapshot;
use optedit_judge::classifier::AttributeClassifier;
use optedit_judge::region::dilate;
use optedit_models::{AutoencoderKL, ClipTextModel, ControlNetModel, UNet2DConditionModel};
use optedit_train::conditions::{condition_image, ControlKind};
use optedit_train::export::{export, DemoParts};
use optedit_train::stages::classifier;
use optedit_train::stages::text_to_image::TextToImage;
use optedit_train::stages::{vae, StageOptions};

type A = Autodiff<Flex>;

/// Stages seed the backend's process-wide RNG before initialising a model;
/// tests that draw from it take turns.
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
type B = Flex;

fn options(steps: usize) -> StageOptions {
    StageOptions {
        steps,
        batch: 2,
        lr: 1e-3,
        warmup: 2,
        seed: 7,
        checkpoint_every: 3,
        stop_at: None,
        time_budget: None,
        x0_weight_floor: 0.0,
        offset_noise: 0.0,
        pyramid_noise: 0.0,
        foreground_weight: 0.0,
        shards: 1,
        keep_checkpoints: false,
    }
}

/// Every parameter, by path, as f32 values.
fn weights(model: &AttributeClassifier<B>) -> Vec<(String, Vec<f32>)> {
    let mut out: Vec<(String, Vec<f32>)> = model
        .collect(None, None, false)
        .into_iter()
        .map(|s| (s.full_path(), s.to_data().unwrap().to_vec::<f32>().unwrap()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn a_resumed_run_equals_an_uninterrupted_one() {
    let _turn = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = Default::default();
    let tmp = tempfile::tempdir().unwrap();
    let straight = classifier::train::<A>(&tmp.path().join("a"), &options(4), &device).unwrap();
    // Same run, stopped after 2 steps and resumed to 4.
    let b = tmp.path().join("b");
    let first = StageOptions {
        stop_at: Some(2),
        ..options(4)
    };
    classifier::train::<A>(&b, &first, &device).unwrap();
    let resumed = classifier::train::<A>(&b, &options(4), &device).unwrap();
    let fresh = AttributeClassifier::<B>::new(&device);
    let w_straight = weights(&straight);
    assert!(w_straight == weights(&resumed), "resumed weights differ");
    assert!(w_straight != weights(&fresh), "training changed nothing");
    // The loss log has one row per step across both runs.
    let log = std::fs::read_to_string(b.join("checkpoints/classifier/loss.csv")).unwrap();
    assert_eq!(log.lines().count(), 1 + 4);
}

#[test]
fn a_time_budget_lowers_the_total_at_the_end_of_the_warm_up() {
    use std::time::Duration;
    let o = StageOptions {
        warmup: 20,
        time_budget: Some(Duration::from_secs(60)),
        ..options(1000)
    };
    o.validate().unwrap();
    let s = Duration::from_secs;
    // 10 s spent, 50 s left at 0.1 s/step: 500 more steps.
    assert_eq!(
        o.steps_within(s(60), s(10), Duration::from_millis(100)),
        520
    );
    // Never more than asked for, never fewer than the warm-up plus one.
    assert_eq!(o.steps_within(s(60), s(10), Duration::from_millis(1)), 1000);
    assert_eq!(o.steps_within(s(60), s(70), Duration::from_millis(100)), 21);
    // Too short a warm-up to time is refused.
    assert!(StageOptions { warmup: 5, ..o }.validate().is_err());

    // A real run whose budget is already spent stops right after its warm-up.
    let _turn = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let spent = StageOptions {
        time_budget: Some(Duration::ZERO),
        checkpoint_every: 100,
        ..o
    };
    classifier::train::<A>(tmp.path(), &spent, &Default::default()).unwrap();
    let log = std::fs::read_to_string(tmp.path().join("checkpoints/classifier/loss.csv")).unwrap();
    assert_eq!(log.lines().count(), 1 + 21);
}

#[test]
fn lr_schedule_warms_up_and_decays_to_a_tenth() {
    let o = StageOptions {
        steps: 100,
        warmup: 10,
        lr: 1.0,
        ..options(100)
    };
    assert!((o.lr_at(0) - 0.1).abs() < 1e-12);
    assert!((o.lr_at(9) - 1.0).abs() < 1e-12);
    assert!((o.lr_at(10) - 1.0).abs() < 1e-12);
    assert!((o.lr_at(100) - 0.1).abs() < 1e-9);
    for s in 10..99 {
        assert!(o.lr_at(s + 1) <= o.lr_at(s));
    }
    assert!(StageOptions {
        steps: 0,
        ..o.clone()
    }
    .validate()
    .is_err());
    assert!(StageOptions { lr: f64::NAN, ..o }.validate().is_err());
}

#[test]
fn export_writes_a_folder_the_loaders_read() {
    let _turn = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = Default::default();
    let tmp = tempfile::tempdir().unwrap();
    let vae_model = vae::new_vae::<B>(&device).unwrap();
    let t2i = TextToImage::<B>::new(&device).unwrap();
    let pose: ControlNetModel<B> = ControlNetModel::from_unet(
        &t2i.unet,
        serde_json::from_value(optedit_train::demo::controlnet_config()).unwrap(),
        &device,
    )
    .unwrap();
    let cls = AttributeClassifier::<B>::new(&device);
    let parts = DemoParts {
        vae: &vae_model,
        scaling_factor: 0.5,
        text_to_image: &t2i,
        controlnets: vec![(ControlKind::Pose, &pose)],
        classifier: Some(&cls),
    };
    let out = tmp.path().join("demo");
    let tokenizer = optedit_fixtures::fixtures_dir().join("tiny-sd/tokenizer");
    export(&out, &parts, &tokenizer).unwrap();

    let unet = UNet2DConditionModel::<B>::load(&out.join("unet"), &device).unwrap();
    let vae_back = AutoencoderKL::<B>::load(&out.join("vae"), &device).unwrap();
    assert_eq!(vae_back.scaling_factor(), 0.5);
    ClipTextModel::<B>::load(&out.join("text_encoder"), &device).unwrap();
    ControlNetModel::<B>::load(&out.join("controlnet-pose"), &device).unwrap();
    AttributeClassifier::<B>::load(&out.join("classifier/model.safetensors"), &device).unwrap();
    assert!(out.join("tokenizer/vocab.json").exists());
    assert!(out.join("scheduler/scheduler_config.json").exists());

    // The UNet written in f16 predicts what the f32 model predicts.
    let x = Tensor::<B, 4>::random([1, 4, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let ctx = Tensor::<B, 3>::random([1, 77, 64], Distribution::Normal(0.0, 1.0), &device);
    let t = Tensor::<B, 1>::from_floats([400.0], &device);
    let (x2, t2, ctx2) = (x.clone(), t.clone(), ctx.clone());
    let a = t2i.unet.forward(x.clone(), t.clone(), ctx.clone()).unwrap();
    let b = unet.forward(x, t, ctx).unwrap();
    let err = (a.clone() - b).abs().max().into_scalar();
    assert!(
        err < 1e-2 * a.abs().max().into_scalar().max(1.0),
        "f16 export moved the UNet by {err}"
    );

    // A run can start from the exported folder: the same UNet comes back.
    let again = TextToImage::<B>::from_pipeline(&out, &device).unwrap();
    let c = again
        .unet
        .forward(x2.clone(), t2.clone(), ctx2.clone())
        .unwrap();
    let d = unet.forward(x2, t2, ctx2).unwrap();
    assert_eq!(c.into_data(), d.into_data());
}

#[test]
fn conditions_are_the_pose_rendering_and_the_edges_of_the_scene() {
    let spec = optedit_world::SceneSpec::sample(3);
    let r = spec.render();
    let pose = condition_image(ControlKind::Pose, &r).unwrap();
    assert_eq!(pose.dimensions(), (128, 128));
    // Every drawn keypoint is coloured (OpenPose draws a disc on each).
    for (x, y) in r.keypoints.iter().flatten() {
        let p = pose.get_pixel(x.round().min(127.0) as u32, y.round().min(127.0) as u32);
        assert!(p.0.iter().any(|&c| c > 0), "keypoint ({x}, {y}) not drawn");
    }
    // Edges lie on the scene's object boundaries: some edge pixel is next to
    // every object.
    let edges = condition_image(ControlKind::Canny, &r).unwrap();
    for mask in &r.object_masks {
        let near = dilate(mask, 2);
        let hit = edges
            .enumerate_pixels()
            .any(|(x, y, p)| p[0] > 0 && near.get_pixel(x, y)[0] > 0);
        assert!(hit, "no edge around an object");
    }
}

#[test]
fn the_caption_probe_feeds_five_different_captions_through_the_same_noise() {
    let _turn = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = Default::default();
    let mut t2i = TextToImage::<B>::new(&device).unwrap();
    let latent_len = 4 * 32 * 32;
    let set = optedit_train::stages::latents::LatentSet {
        seeds: vec![11, 12, 13, 14],
        latents: (0..4 * latent_len)
            .map(|i| ((i % 97) as f32 / 48.0) - 1.0)
            .collect(),
        scaling_factor: 0.5,
    };
    let tokenizer = optedit_cond::ClipTokenizer::from_dir(
        &optedit_fixtures::fixtures_dir().join("tiny-sd/tokenizer"),
    )
    .unwrap();
    use optedit_train::stages::text_to_image::caption_probe;
    for (count, batch, argument) in [(0, 2, "count"), (5, 2, "count"), (4, 0, "batch")] {
        let e = caption_probe(&t2i, &set, &tokenizer, count, batch, 1, &device).unwrap_err();
        assert!(e.to_string().contains(argument), "{e}");
    }
    let p = caption_probe(&t2i, &set, &tokenizer, 4, 3, 1, &device).unwrap();
    assert_eq!(p.count, 4);
    for v in [p.own, p.other, p.empty, p.shape, p.colour] {
        assert!(v.is_finite() && v > 0.0, "{p:?}");
    }
    // The buckets partition the samples, and their losses make the totals.
    assert_eq!(p.by_timestep.len(), 4);
    assert_eq!(p.by_timestep.iter().map(|b| b.count).sum::<usize>(), 4);
    assert_eq!((p.by_timestep[0].from, p.by_timestep[3].to), (0, 1000));
    let own: f64 = p
        .by_timestep
        .iter()
        .map(|b| b.own * b.count as f64)
        .sum::<f64>()
        / 4.0;
    assert!((own - p.own).abs() < 1e-9 * p.own, "{p:?}");
    // Even a random model's predictions depend on the caption, and on the
    // one word swapped.
    for v in [p.other, p.empty, p.shape, p.colour] {
        assert!((p.own - v).abs() > 1e-7, "{p:?}");
    }

    // With the text encoder's output zeroed every caption gives the same
    // context, so the three losses agree.
    let ln = &mut t2i.text_encoder.text_model.final_layer_norm;
    ln.gamma = burn::module::Param::from_tensor(ln.gamma.val().zeros_like());
    if let Some(beta) = &ln.beta {
        ln.beta = Some(burn::module::Param::from_tensor(beta.val().zeros_like()));
    }
    let q = caption_probe(&t2i, &set, &tokenizer, 4, 3, 1, &device).unwrap();
    for v in [q.other, q.empty, q.shape, q.colour] {
        assert!((q.own - v).abs() < 1e-6 * q.own, "{q:?}");
    }
}

#[test]
fn the_world_figure_uses_the_conditioning_crates_keypoint_order() {
    // optedit-world keeps its own copy of the table to stay free of burn;
    // the pose conditions are only right while the two agree.
    assert_eq!(
        optedit_world::KEYPOINT_NAMES,
        optedit_cond::pose::BODY_KEYPOINT_NAMES
    );
}

#[test]
fn the_loss_weights_are_min_snr_5_with_a_floored_x0_weight() {
    use optedit_train::stages::text_to_image::{alphas_cumprod, noised, Noising};
    use rand::SeedableRng;
    let device = Default::default();
    let acp = alphas_cumprod().unwrap();
    let latents = Tensor::<B, 4>::zeros([64, 4, 2, 2], &device);
    for floor in [0.0, 1.0] {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let noising = Noising {
            x0_weight_floor: floor,
            ..Noising::default()
        };
        let (_, t, _, w) = noised(latents.clone(), &acp, &noising, &mut rng, &device);
        let t = t.into_data().to_vec::<f32>().unwrap();
        let w = w.into_data().to_vec::<f32>().unwrap();
        let (mut floored, mut clamped) = (0, 0);
        for (&t, &w) in t.iter().zip(&w) {
            let a = f64::from(acp[t as usize]);
            let snr = a / (1.0 - a);
            // The x0 error's weight is w * snr.
            let x0 = f64::from(w) * snr;
            let want = snr.min(5.0).max(floor);
            assert!(
                (x0 - want).abs() < 1e-4 * want,
                "t {t}: x0 weight {x0}, want {want}"
            );
            floored += usize::from(floor > 0.0 && snr < floor);
            clamped += usize::from(snr > 5.0);
        }
        assert!(clamped > 0, "no sample had snr > 5");
        if floor > 0.0 {
            assert!(floored > 0, "no sample was below the floor");
        }
    }
    let bad = StageOptions {
        x0_weight_floor: -1.0,
        ..options(10)
    };
    assert!(bad
        .validate()
        .unwrap_err()
        .to_string()
        .contains("x0-weight-floor"));
    // The stages without diffusion noise refuse any floor instead of
    // ignoring it; the diffusion stages accept a positive one.
    let floored = StageOptions {
        x0_weight_floor: 0.5,
        ..options(10)
    };
    assert!(floored.validate().is_ok());
    let e = floored.validate_without_noise().unwrap_err().to_string();
    assert!(e.contains("x0-weight-floor") && e.contains("unet"), "{e}");
    assert!(options(10).validate_without_noise().is_ok());
}

#[test]
fn offset_noise_adds_one_constant_per_sample_and_channel() {
    use optedit_train::stages::text_to_image::{alphas_cumprod, noised, Noising};
    use rand::SeedableRng;
    let device = Default::default();
    let acp = alphas_cumprod().unwrap();
    let latents = Tensor::<B, 4>::zeros([256, 4, 8, 8], &device);
    let channel_means = |offset: f64| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let noising = Noising {
            offset_noise: offset,
            ..Noising::default()
        };
        let (noisy, t, noise, _) = noised(latents.clone(), &acp, &noising, &mut rng, &device);
        // Zero latents: the noisy latent is the noise times sqrt(1 - acp).
        let t = t.into_data().to_vec::<f32>().unwrap();
        let s: Vec<f32> = t.iter().map(|&t| (1.0 - acp[t as usize]).sqrt()).collect();
        let scaled = noise.clone()
            * Tensor::<B, 1>::from_data(burn::tensor::TensorData::new(s, [256]), &device)
                .reshape([256, 1, 1, 1]);
        let gap = (noisy - scaled).abs().max().into_scalar();
        assert!(gap < 1e-5, "noisy latent is not the scaled noise: {gap}");
        noise
            .mean_dim(3)
            .mean_dim(2)
            .into_data()
            .to_vec::<f32>()
            .unwrap()
    };
    let var = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32;
    // 64 values per channel: plain noise has channel means of variance 1/64;
    // an offset of 0.5 adds 0.25.
    let plain = var(&channel_means(0.0));
    let offset = var(&channel_means(0.5));
    assert!((plain - 1.0 / 64.0).abs() < 0.006, "plain {plain}");
    assert!(
        (offset - (0.25 + 1.0 / 64.0)).abs() < 0.06,
        "offset {offset}"
    );
    let bad = StageOptions {
        offset_noise: 2.0,
        ..options(10)
    };
    assert!(bad
        .validate()
        .unwrap_err()
        .to_string()
        .contains("offset-noise"));
    let e = StageOptions {
        offset_noise: 0.1,
        ..options(10)
    }
    .validate_without_noise()
    .unwrap_err()
    .to_string();
    assert!(e.contains("offset-noise"), "{e}");
}

#[test]
fn a_grafted_text_time_embedding_starts_silent_then_follows_the_caption_and_exports() {
    let _turn = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = Default::default();
    let plain = TextToImage::<B>::new(&device).unwrap();
    let x = Tensor::<B, 4>::random([2, 4, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let ctx = Tensor::<B, 3>::random([2, 77, 64], Distribution::Normal(0.0, 1.0), &device);
    let t = Tensor::<B, 1>::from_floats([400.0, 900.0], &device);
    let run = |m: &TextToImage<B>, ctx: Tensor<B, 3>| {
        m.unet
            .forward(x.clone(), t.clone(), ctx)
            .unwrap()
            .into_data()
    };
    let before = run(&plain, ctx.clone());
    let mut grafted = plain.with_text_time_embedding(4).unwrap();
    assert_eq!(
        grafted.unet_config["addition_embed_type"],
        serde_json::json!("text")
    );
    // A zero output norm: the predictions do not change, bit for bit.
    assert_eq!(run(&grafted, ctx.clone()), before);
    // Once the norm opens, the time embedding carries the caption.
    let add = grafted.unet.add_embedding.as_mut().unwrap();
    add.norm2.gamma = add.norm2.gamma.clone().map(|g| g.ones_like());
    assert_ne!(run(&grafted, ctx.clone()), before);
    // Grafting twice keeps the first embedding; heads must divide the width.
    let again = grafted.clone().with_text_time_embedding(8).unwrap();
    assert_eq!(run(&again, ctx.clone()), run(&grafted, ctx.clone()));
    let e = TextToImage::<B>::new(&device)
        .unwrap()
        .with_text_time_embedding(5)
        .unwrap_err();
    assert!(
        e.to_string().contains("addition_embed_type_num_heads"),
        "{e}"
    );

    // The export writes the UNet's own config, which the loader reads back.
    let tmp = tempfile::tempdir().unwrap();
    let vae_model = vae::new_vae::<B>(&device).unwrap();
    let parts = DemoParts {
        vae: &vae_model,
        scaling_factor: 0.5,
        text_to_image: &grafted,
        controlnets: vec![],
        classifier: None,
    };
    let out = tmp.path().join("demo");
    let tokenizer = optedit_fixtures::fixtures_dir().join("tiny-sd/tokenizer");
    export(&out, &parts, &tokenizer).unwrap();
    let back = TextToImage::<B>::from_pipeline(&out, &device).unwrap();
    assert!(back.unet.add_embedding.is_some());
    assert_eq!(back.unet.config.addition_embed_type_num_heads, 4);
    let a = Tensor::<B, 4>::from_data(run(&grafted, ctx.clone()), &device);
    let b = Tensor::<B, 4>::from_data(run(&back, ctx), &device);
    let err = (a.clone() - b).abs().max().into_scalar();
    assert!(
        err < 1e-2 * a.abs().max().into_scalar().max(1.0),
        "f16 export moved the UNet by {err}"
    );
}

#[test]
fn a_grafted_run_records_its_unet_config_and_reloads() {
    let _turn = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = Default::default();
    let latent_len = 4 * 32 * 32;
    let set = optedit_train::stages::latents::LatentSet {
        seeds: vec![21, 22],
        latents: (0..2 * latent_len)
            .map(|i| ((i % 89) as f32 / 44.0) - 1.0)
            .collect(),
        scaling_factor: 0.5,
    };
    let tokenizer = optedit_cond::ClipTokenizer::from_dir(
        &optedit_fixtures::fixtures_dir().join("tiny-sd/tokenizer"),
    )
    .unwrap();
    use optedit_train::stages::text_to_image::{load_trained, run_unet_config, train, Grafts};
    let tmp = tempfile::tempdir().unwrap();
    let trained = train::<A>(
        tmp.path(),
        &set,
        &tokenizer,
        &options(2),
        None,
        &Grafts {
            text_time_heads: Some(4),
            up_cross_attention: true,
        },
        &device,
    )
    .unwrap();
    assert!(trained.unet.add_embedding.is_some());
    let recorded = run_unet_config(tmp.path()).unwrap();
    assert_eq!(
        recorded["addition_embed_type_num_heads"],
        serde_json::json!(4)
    );
    // The demo UNet's plain full-resolution up level now attends to the text.
    assert_eq!(
        recorded["up_block_types"],
        serde_json::json!([
            "CrossAttnUpBlock2D",
            "CrossAttnUpBlock2D",
            "CrossAttnUpBlock2D"
        ])
    );
    assert_eq!(trained.unet.up_blocks[2].attentions.len(), 2);
    // The checkpoint loads into the recorded architecture.
    let back = load_trained::<A>(tmp.path(), &device).unwrap();
    let gamma = |m: &TextToImage<B>| {
        m.unet
            .add_embedding
            .as_ref()
            .unwrap()
            .norm2
            .gamma
            .val()
            .into_data()
    };
    assert_eq!(gamma(&back), gamma(&trained));
    // Two steps moved the grafted gate and the grafted attention's output
    // projection off zero.
    let g: Vec<f32> = gamma(&trained).to_vec().unwrap();
    assert!(g.iter().any(|v| *v != 0.0));
    let proj: Vec<f32> = trained.unet.up_blocks[2].attentions[0]
        .proj_out
        .weight
        .val()
        .into_data()
        .to_vec()
        .unwrap();
    assert!(proj.iter().any(|v| *v != 0.0));
}

#[test]
fn pyramid_noise_keeps_unit_variance_and_raises_the_block_means() {
    use optedit_train::stages::text_to_image::{alphas_cumprod, noised, Noising};
    use rand::SeedableRng;
    let device = Default::default();
    let acp = alphas_cumprod().unwrap();
    let latents = Tensor::<B, 4>::zeros([256, 4, 32, 32], &device);
    // (variance of the noise, variance of its 4x4-block means)
    let moments = |discount: f64| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let noising = Noising {
            pyramid_noise: discount,
            ..Noising::default()
        };
        let (_, _, noise, _) = noised(latents.clone(), &acp, &noising, &mut rng, &device);
        let var = noise.clone().powi_scalar(2).mean().into_scalar();
        let blocks = noise
            .reshape([256, 4, 8, 4, 8, 4])
            .mean_dim(5)
            .mean_dim(3)
            .powi_scalar(2)
            .mean()
            .into_scalar();
        (var, blocks)
    };
    let (v0, b0) = moments(0.0);
    assert!(
        (v0 - 1.0).abs() < 0.01 && (b0 - 1.0 / 16.0).abs() < 0.01,
        "{v0} {b0}"
    );
    // d = 0.8 on 32x32: blocks of 2..32 with weights d^1..d^5. A 4x4 block
    // averages the fine noise (1/16) and four 2-blocks (d^2/4) and lies in
    // one block of every coarser level (d^4 + ... + d^10), over the total
    // weight 1 + d^2 + ... + d^10.
    let d: f64 = 0.8;
    let coarse: f64 = (2..=5).map(|l| d.powi(2 * l)).sum();
    let total = 1.0 + d * d + coarse;
    let want = (1.0 / 16.0 + d * d / 4.0 + coarse) / total;
    let (v, b) = moments(d);
    assert!((v - 1.0).abs() < 0.05, "noise variance {v}");
    assert!(
        (f64::from(b) - want).abs() < 0.05,
        "block variance {b}, want {want}"
    );
    // Out of range, and refused by the stages without diffusion noise.
    for bad in [1.0, -0.1, f64::NAN] {
        let o = StageOptions {
            pyramid_noise: bad,
            ..options(10)
        };
        let e = o.validate().unwrap_err().to_string();
        assert!(e.contains("pyramid-noise"), "{e}");
    }
    let o = StageOptions {
        pyramid_noise: 0.5,
        ..options(10)
    };
    assert!(o.validate().is_ok());
    let e = o.validate_without_noise().unwrap_err().to_string();
    assert!(e.contains("pyramid-noise") && e.contains("unet"), "{e}");
}

#[test]
fn foreground_weight_is_checked_and_refused_without_noise() {
    for bad in [-0.5, f64::NAN, f64::INFINITY] {
        let o = StageOptions {
            foreground_weight: bad,
            ..options(10)
        };
        let e = o.validate().unwrap_err().to_string();
        assert!(e.contains("foreground-weight"), "{e}");
    }
    let o = StageOptions {
        foreground_weight: 4.0,
        ..options(10)
    };
    assert!(o.validate().is_ok());
    let e = o.validate_without_noise().unwrap_err().to_string();
    assert!(e.contains("foreground-weight") && e.contains("unet"), "{e}");
}

#[test]
fn the_condition_probe_sees_a_controlnet_use_its_condition() {
    use optedit_train::stages::controlnet::condition_probe;
    let _turn = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = Default::default();
    let t2i = TextToImage::<B>::new(&device).unwrap();
    let latent_len = 4 * 32 * 32;
    let set = optedit_train::stages::latents::LatentSet {
        seeds: vec![21, 22, 23],
        latents: (0..3 * latent_len)
            .map(|i| ((i % 89) as f32 / 44.0) - 1.0)
            .collect(),
        scaling_factor: 0.5,
    };
    let tokenizer = optedit_cond::ClipTokenizer::from_dir(
        &optedit_fixtures::fixtures_dir().join("tiny-sd/tokenizer"),
    )
    .unwrap();
    let config = || serde_json::from_value(optedit_train::demo::controlnet_config()).unwrap();
    // Random output convolutions: the residuals depend on the condition.
    // The condition embedding's output scaled up 1000x, so that the losses
    // the condition moves differ by far more than f32 rounding (unscaled,
    // own and blank differed by 8e-8 of 1.1 under the empty caption).
    let mut net = ControlNetModel::<B>::from_config(config(), &device).unwrap();
    let out = &mut net.controlnet_cond_embedding.conv_out;
    out.weight = out.weight.clone().map(|w| w * 1000.0);
    for (count, batch, argument) in [(0, 2, "count"), (4, 2, "count"), (3, 0, "batch")] {
        let e = condition_probe(
            &t2i,
            &net,
            ControlKind::Scribble,
            &set,
            &tokenizer,
            count,
            batch,
            1,
            &device,
        )
        .unwrap_err();
        assert!(e.to_string().contains(argument), "{e}");
    }
    for kind in [ControlKind::Scribble, ControlKind::Layout] {
        let p = condition_probe(&t2i, &net, kind, &set, &tokenizer, 3, 2, 1, &device).unwrap();
        assert_eq!(p.count, 3);
        for l in [p.captioned, p.uncaptioned] {
            for v in [l.own, l.other, l.blank, l.none] {
                assert!(v.is_finite() && v > 0.0, "{p:?}");
            }
            for v in [l.other, l.blank, l.none] {
                assert!((l.own - v).abs() > 1e-7, "{kind:?}: {p:?}");
            }
        }
        assert!(
            (p.captioned.none - p.uncaptioned.none).abs() > 1e-7,
            "{p:?}"
        );
    }
    // Zero output convolutions (a fresh ControlNet): nothing reaches the UNet.
    let silent = net.zero_output_convs();
    let q = condition_probe(
        &t2i,
        &silent,
        ControlKind::Scribble,
        &set,
        &tokenizer,
        3,
        2,
        1,
        &device,
    )
    .unwrap();
    for l in [q.captioned, q.uncaptioned] {
        for v in [l.other, l.blank, l.none] {
            assert!((l.own - v).abs() <= 1e-6 * l.own, "{q:?}");
        }
    }
}
