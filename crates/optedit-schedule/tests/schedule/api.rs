//! Behaviour tests: configuration errors, gradients through a step, the
//! trajectory loops, guidance, noising and the stochastic step.

use burn::tensor::{Tensor, TensorData};
use optedit_fixtures::{assert_close, values, TestAutodiffBackend, TestBackend, Tolerance};
use optedit_schedule::{
    fallible, guide, invert, sample, sample_from, start_step_for_strength, BetaSchedule, Cfg,
    DdimInverseScheduler, DdimScheduler, PredictionType, ScheduleError, Scheduler, SchedulerConfig,
    TimestepSpacing,
};

type B = TestBackend;
type AD = TestAutodiffBackend;

const TIGHT: Tolerance = Tolerance {
    atol: 1e-5,
    rtol: 1e-4,
};

/// Deterministic pseudo-random values in [-2, 2).
fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

fn tensor<BK: burn::tensor::backend::Backend>(shape: [usize; 4], seed: u64) -> Tensor<BK, 4> {
    let n = shape.iter().product();
    Tensor::from_data(
        TensorData::new(pseudo_random(n, seed), shape),
        &Default::default(),
    )
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

// ---------------------------------------------------------------- config

fn unsupported_field(json: &str) -> (&'static str, String, String) {
    match SchedulerConfig::from_json_str(json) {
        Err(e @ ScheduleError::Unsupported { .. }) => {
            let message = e.to_string();
            let ScheduleError::Unsupported { field, value, .. } = e else {
                unreachable!()
            };
            (field, value, message)
        }
        other => panic!("expected an unsupported-value error, got {other:?}"),
    }
}

#[test]
fn unsupported_values_name_the_field() {
    for (json, field, value) in [
        (r#"{"beta_schedule": "cosine"}"#, "beta_schedule", "cosine"),
        (r#"{"prediction_type": "flow"}"#, "prediction_type", "flow"),
        (
            r#"{"timestep_spacing": "karras"}"#,
            "timestep_spacing",
            "karras",
        ),
        (r#"{"thresholding": true}"#, "thresholding", "true"),
    ] {
        let (got_field, got_value, message) = unsupported_field(json);
        assert_eq!((got_field, got_value.as_str()), (field, value));
        assert!(
            message.contains(field) && message.contains(value),
            "{message}"
        );
    }
}

#[test]
fn config_defaults_and_unknown_keys() {
    assert_eq!(
        SchedulerConfig::from_json_str("{}").unwrap(),
        SchedulerConfig::default()
    );
    let json = r#"{
        "_class_name": "DDIMScheduler", "_diffusers_version": "0.42.1",
        "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
        "clip_sample": false, "clip_sample_range": 1.0, "dynamic_thresholding_ratio": 0.995,
        "num_train_timesteps": 1000, "prediction_type": "epsilon", "rescale_betas_zero_snr": false,
        "sample_max_value": 1.0, "set_alpha_to_one": false, "steps_offset": 1,
        "thresholding": false, "timestep_spacing": "leading", "trained_betas": null
    }"#;
    let config = SchedulerConfig::from_json_str(json).unwrap();
    assert_eq!(config, SchedulerConfig::stable_diffusion_v1_5());
    let v: SchedulerConfig =
        SchedulerConfig::from_json_str(r#"{"prediction_type": "v_prediction", "timestep_spacing": "trailing", "beta_schedule": "squaredcos_cap_v2"}"#).unwrap();
    assert_eq!(v.prediction_type, PredictionType::VPrediction);
    assert_eq!(v.timestep_spacing, TimestepSpacing::Trailing);
    assert_eq!(v.beta_schedule, BetaSchedule::SquaredCosCapV2);
}

/// SDXL folders ship an `EulerDiscreteScheduler` config: DDIM takes its
/// betas and shared keys, and (without DDIM's own keys in the file) neither
/// clips nor sets the final alpha product to one.
#[test]
fn an_euler_config_gives_ddim_its_betas() {
    let path = optedit_fixtures::fixtures_dir().join("tiny-sdxl/scheduler/scheduler_config.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(raw["_class_name"], "EulerDiscreteScheduler");
    let config = SchedulerConfig::from_file(&path).unwrap();
    assert_eq!(
        config.num_train_timesteps as u64,
        raw["num_train_timesteps"].as_u64().unwrap()
    );
    assert_eq!(config.beta_start, raw["beta_start"].as_f64().unwrap());
    assert_eq!(config.beta_end, raw["beta_end"].as_f64().unwrap());
    assert_eq!(
        config.beta_schedule.as_str(),
        raw["beta_schedule"].as_str().unwrap()
    );
    assert_eq!(
        config.prediction_type.as_str(),
        raw["prediction_type"].as_str().unwrap()
    );
    assert_eq!(
        config.timestep_spacing.as_str(),
        raw["timestep_spacing"].as_str().unwrap()
    );
    assert_eq!(
        config.steps_offset as u64,
        raw["steps_offset"].as_u64().unwrap()
    );
    assert!(raw.get("clip_sample").is_none() && raw.get("set_alpha_to_one").is_none());
    assert!(!config.clip_sample && !config.set_alpha_to_one);
    // The same keys in a DDIM config give the same schedule.
    let mut ddim = raw.clone();
    ddim["_class_name"] = "DDIMScheduler".into();
    ddim["clip_sample"] = false.into();
    ddim["set_alpha_to_one"] = false.into();
    let ddim = SchedulerConfig::from_json_value(&ddim).unwrap();
    assert_eq!(config, ddim);
    let mut a = DdimScheduler::new(config).unwrap();
    let mut b = DdimScheduler::new(ddim).unwrap();
    a.set_timesteps(10).unwrap();
    b.set_timesteps(10).unwrap();
    assert_eq!(a.timesteps(), b.timesteps());
    // DDIM's own keys, where an Euler config has them (the released SDXL
    // config does), are read; DDIM's defaults hold for its own class.
    let with_keys = SchedulerConfig::from_json_str(
        r#"{"_class_name": "EulerDiscreteScheduler", "clip_sample": true, "set_alpha_to_one": true}"#,
    )
    .unwrap();
    assert!(with_keys.clip_sample && with_keys.set_alpha_to_one);
    let own = SchedulerConfig::from_json_str(r#"{"_class_name": "DDIMScheduler"}"#).unwrap();
    assert_eq!(own, SchedulerConfig::default());
    // A scheduler without betas is refused, by class.
    let (field, value, message) =
        unsupported_field(r#"{"_class_name": "FlowMatchEulerDiscreteScheduler"}"#);
    assert_eq!(
        (field, value.as_str()),
        ("_class_name", "FlowMatchEulerDiscreteScheduler")
    );
    assert!(
        message.contains("FlowMatchEulerDiscreteScheduler"),
        "{message}"
    );
}

#[test]
fn config_file_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("optedit-schedule-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("scheduler_config.json");
    std::fs::write(&bad, r#"{"beta_schedule": "sigmoid"}"#).unwrap();
    let err = SchedulerConfig::from_file(&bad).unwrap_err();
    assert!(matches!(
        err,
        ScheduleError::Unsupported {
            field: "beta_schedule",
            ..
        }
    ));
    assert!(
        err.to_string().contains(&bad.display().to_string()),
        "{err}"
    );

    std::fs::write(&bad, "{not json").unwrap();
    let err = SchedulerConfig::from_file(&bad).unwrap_err();
    assert!(
        matches!(err, ScheduleError::Json { .. })
            && err.to_string().contains(&bad.display().to_string())
    );

    let missing = dir.join("missing.json");
    let err = SchedulerConfig::from_file(&missing).unwrap_err();
    assert!(matches!(err, ScheduleError::Io { .. }) && err.to_string().contains("missing.json"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn invalid_values_are_rejected() {
    let err = SchedulerConfig::from_json_str(r#"{"trained_betas": [0.1, 0.2]}"#).unwrap_err();
    assert!(
        matches!(
            err,
            ScheduleError::Invalid {
                field: "trained_betas",
                ..
            }
        ),
        "{err}"
    );
    let err = SchedulerConfig::from_json_str(r#"{"steps_offset": -1}"#).unwrap_err();
    assert!(
        matches!(
            err,
            ScheduleError::Invalid {
                field: "steps_offset",
                ..
            }
        ),
        "{err}"
    );
    let err = DdimScheduler::new(SchedulerConfig {
        thresholding: true,
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(
        err,
        ScheduleError::Unsupported {
            field: "thresholding",
            ..
        }
    ));
}

#[test]
fn step_counts_are_checked() {
    let mut s = DdimScheduler::new(SchedulerConfig::default()).unwrap();
    assert!(matches!(
        s.set_timesteps(0),
        Err(ScheduleError::InvalidStepCount { got: 0, max: 1000 })
    ));
    assert!(matches!(
        s.set_timesteps(1001),
        Err(ScheduleError::InvalidStepCount { got: 1001, .. })
    ));
    let mut inv = DdimInverseScheduler::new(SchedulerConfig::default()).unwrap();
    assert!(matches!(
        inv.set_timesteps(0),
        Err(ScheduleError::InvalidStepCount { .. })
    ));
    let x = tensor::<B>([1, 1, 2, 2], 1);
    assert!(matches!(
        s.step(x.clone(), 10, x.clone(), 0.0, None),
        Err(ScheduleError::TimestepsNotSet)
    ));
    s.set_timesteps(10).unwrap();
    assert!(matches!(
        s.step(x.clone(), 1000, x.clone(), 0.0, None),
        Err(ScheduleError::TimestepOutOfRange { timestep: 1000, .. })
    ));
    let y = tensor::<B>([2, 1, 2, 2], 2);
    assert!(matches!(
        s.step(y, 10, x, 0.0, None),
        Err(ScheduleError::InvalidArgument { .. })
    ));
}

#[test]
fn trained_betas_and_squaredcos() {
    let betas: Vec<f64> = (0..10).map(|i| 0.01 + 0.01 * i as f64).collect();
    let config = SchedulerConfig {
        num_train_timesteps: 10,
        trained_betas: Some(betas.clone()),
        ..Default::default()
    };
    let s = DdimScheduler::new(config).unwrap();
    let mut acc = 1.0f64;
    let want: Vec<f64> = betas
        .iter()
        .map(|b| {
            acc *= 1.0 - b;
            acc
        })
        .collect();
    assert_close(
        "trained alphas_cumprod",
        &f64s(s.alphas_cumprod()),
        &want,
        TIGHT,
    );

    let cos = DdimScheduler::new(SchedulerConfig {
        beta_schedule: BetaSchedule::SquaredCosCapV2,
        ..Default::default()
    })
    .unwrap();
    let f = |t: f64| {
        ((t + 0.008) / 1.008 * std::f64::consts::PI / 2.0)
            .cos()
            .powi(2)
    };
    // Without the cap alphas_cumprod[i] = f((i + 1) / T) / f(0).
    for i in [0usize, 100, 500, 900] {
        let want = f((i + 1) as f64 / 1000.0) / f(0.0);
        assert!(
            (cos.alphas_cumprod()[i] as f64 - want).abs() < 1e-6 + 1e-4 * want,
            "{i}"
        );
    }
}

// ---------------------------------------------------------------- gradients

#[test]
fn gradient_through_ddim_step_is_the_analytic_coefficient() {
    let mut s = DdimScheduler::new(SchedulerConfig::stable_diffusion_v1_5()).unwrap();
    s.set_timesteps(50).unwrap();
    for &t in &[s.timesteps()[3], s.timesteps()[49]] {
        let x = tensor::<AD>([1, 4, 3, 3], 7).require_grad();
        let eps = tensor::<AD>([1, 4, 3, 3], 8).require_grad();
        let out = s.step(eps.clone(), t, x.clone(), 0.0, None).unwrap();
        let grads = out.prev_sample.sum().backward();

        let ac = s.alphas_cumprod();
        let a_t = ac[t] as f64;
        let a_prev = if t >= 20 {
            ac[t - 20] as f64
        } else {
            ac[0] as f64
        };
        let dx = a_prev.sqrt() / a_t.sqrt();
        let deps = (1.0 - a_prev).sqrt() - a_prev.sqrt() * (1.0 - a_t).sqrt() / a_t.sqrt();
        let gx = values(&x.grad(&grads).unwrap());
        let ge = values(&eps.grad(&grads).unwrap());
        assert_close("d prev / d sample", &gx, &vec![dx; gx.len()], TIGHT);
        assert_close("d prev / d eps", &ge, &vec![deps; ge.len()], TIGHT);
    }
}

#[test]
fn gradient_through_inverse_step() {
    let mut s = DdimInverseScheduler::new(SchedulerConfig::stable_diffusion_v1_5()).unwrap();
    s.set_timesteps(10).unwrap();
    let t = s.timesteps()[4];
    let x = tensor::<AD>([1, 4, 2, 2], 3).require_grad();
    let eps = tensor::<AD>([1, 4, 2, 2], 4);
    let out = s.step(eps, t, x.clone()).unwrap();
    let grads = out.prev_sample.sum().backward();
    let ac = s.alphas_cumprod();
    let want = (ac[t] as f64).sqrt() / (ac[t - 100] as f64).sqrt();
    let g = values(&x.grad(&grads).unwrap());
    assert_close("d next / d sample", &g, &vec![want; g.len()], TIGHT);
}

// ---------------------------------------------------------------- steps

#[test]
fn stochastic_step_adds_scaled_noise() {
    let mut s = DdimScheduler::new(SchedulerConfig::stable_diffusion_v1_5()).unwrap();
    s.set_timesteps(20).unwrap();
    let t = s.timesteps()[5];
    let (x, e, z) = (
        tensor::<B>([1, 2, 2, 2], 1),
        tensor::<B>([1, 2, 2, 2], 2),
        tensor::<B>([1, 2, 2, 2], 3),
    );
    let eta = 0.7;
    let ac = s.alphas_cumprod();
    let (a_t, a_p) = (ac[t] as f64, ac[t - 50] as f64);
    let std = eta * ((1.0 - a_p) / (1.0 - a_t) * (1.0 - a_t / a_p)).sqrt();
    let out = s
        .step(e.clone(), t, x.clone(), eta, Some(z.clone()))
        .unwrap();
    let (xv, ev, zv) = (values(&x), values(&e), values(&z));
    let want: Vec<f64> = (0..xv.len())
        .map(|i| {
            let x0 = (xv[i] - (1.0 - a_t).sqrt() * ev[i]) / a_t.sqrt();
            a_p.sqrt() * x0 + (1.0 - a_p - std * std).sqrt() * ev[i] + std * zv[i]
        })
        .collect();
    assert_close("eta step", &values(&out.prev_sample), &want, TIGHT);
    assert!((s.coefficients(t, eta).unwrap().std_dev_t - std).abs() < 1e-12);
    // eta > 0 without noise draws it: the result differs from the eta = 0 step.
    let drawn = s
        .step(e.clone(), t, x.clone(), 1.0, None)
        .unwrap()
        .prev_sample;
    let det = s.step(e, t, x, 0.0, None).unwrap().prev_sample;
    assert!(values(&drawn)
        .iter()
        .zip(values(&det))
        .any(|(a, b)| (a - b).abs() > 1e-4));
}

#[test]
fn add_noise_velocity_and_v_prediction_agree() {
    let config = SchedulerConfig {
        prediction_type: PredictionType::VPrediction,
        clip_sample: false,
        ..SchedulerConfig::stable_diffusion_v1_5()
    };
    let s = DdimScheduler::new(config).unwrap();
    let (x0, noise) = (tensor::<B>([2, 2, 2, 2], 5), tensor::<B>([2, 2, 2, 2], 6));
    let ts = [100usize, 700];
    let noisy = s.add_noise(x0.clone(), noise.clone(), &ts).unwrap();
    let v = s.get_velocity(x0.clone(), noise.clone(), &ts).unwrap();
    let (xv, nv) = (values(&x0), values(&noise));
    let per = xv.len() / 2;
    let ac = s.alphas_cumprod();
    let want_noisy: Vec<f64> = (0..xv.len())
        .map(|i| {
            let a = ac[ts[i / per]] as f64;
            a.sqrt() * xv[i] + (1.0 - a).sqrt() * nv[i]
        })
        .collect();
    assert_close("add_noise", &values(&noisy), &want_noisy, TIGHT);
    for (row, &t) in ts.iter().enumerate() {
        let noisy_row = noisy.clone().narrow(0, row, 1);
        let v_row = v.clone().narrow(0, row, 1);
        let x0_pred = s.predicted_original_sample(v_row, t, noisy_row).unwrap();
        assert_close(
            "x0 from v",
            &values(&x0_pred),
            &xv[row * per..(row + 1) * per],
            TIGHT,
        );
    }
    assert!(matches!(
        s.add_noise(x0, noise, &[1, 2, 3]),
        Err(ScheduleError::InvalidArgument { .. })
    ));
}

#[test]
fn sample_prediction_and_clipping() {
    let config = SchedulerConfig {
        prediction_type: PredictionType::Sample,
        clip_sample: true,
        clip_sample_range: 0.5,
        ..Default::default()
    };
    let mut s = DdimScheduler::new(config).unwrap();
    s.set_timesteps(10).unwrap();
    let (out_model, x) = (tensor::<B>([1, 2, 3, 3], 9), tensor::<B>([1, 2, 3, 3], 10));
    let out = s.step(out_model.clone(), 500, x, 0.0, None).unwrap();
    let want: Vec<f64> = values(&out_model)
        .iter()
        .map(|v| v.clamp(-0.5, 0.5))
        .collect();
    assert_close(
        "clipped x0",
        &values(&out.pred_original_sample),
        &want,
        TIGHT,
    );
}

// ---------------------------------------------------------------- trajectories

#[test]
fn invert_matches_hand_recursion() {
    let config = SchedulerConfig::stable_diffusion_v1_5();
    let mut inv = DdimInverseScheduler::new(config).unwrap();
    let z0 = tensor::<B>([1, 2, 2, 2], 11);
    let mut predictor = |x: Tensor<B, 4>, _t: usize| x.mul_scalar(0.1);
    let mut seen = Vec::new();
    let mut progress = |i: usize, n: usize| seen.push((i, n));
    let traj = invert(
        &mut inv,
        &mut predictor,
        z0.clone(),
        10,
        Some(&mut progress),
    )
    .unwrap();
    assert_eq!(seen, (0..10).map(|i| (i, 10)).collect::<Vec<_>>());
    assert_eq!(traj.timesteps, inv.timesteps());
    assert_eq!(traj.latents.len(), 11);
    assert_eq!(traj.eps.len(), 10);
    assert_eq!(traj.stacked_latents().dims(), [11, 1, 2, 2, 2]);

    let ac = inv.alphas_cumprod();
    let mut x = values(&z0);
    assert_close("z0", &values(traj.first()), &x, TIGHT);
    for (i, &t) in traj.timesteps.iter().enumerate() {
        let from = if t >= 100 {
            ac[t - 100] as f64
        } else {
            inv.initial_alpha_cumprod() as f64
        };
        let to = ac[t] as f64;
        let e: Vec<f64> = x.iter().map(|v| 0.1 * v).collect();
        assert_close(&format!("eps {i}"), &values(&traj.eps[i]), &e, TIGHT);
        x = x
            .iter()
            .zip(&e)
            .map(|(x, e)| {
                to.sqrt() * (x - (1.0 - from).sqrt() * e) / from.sqrt() + (1.0 - to).sqrt() * e
            })
            .collect();
        assert_close(
            &format!("latent {}", i + 1),
            &values(&traj.latents[i + 1]),
            &x,
            TIGHT,
        );
    }
}

#[test]
fn sample_matches_hand_recursion() {
    let config = SchedulerConfig {
        timestep_spacing: TimestepSpacing::Trailing,
        ..SchedulerConfig::stable_diffusion_v1_5()
    };
    let mut s = DdimScheduler::new(config).unwrap();
    let zt = tensor::<B>([1, 2, 2, 2], 12);
    let mut predictor = |x: Tensor<B, 4>, _t: usize| x.mul_scalar(0.1);
    let traj = sample(&mut s, &mut predictor, zt.clone(), 8, None).unwrap();
    let ac = s.alphas_cumprod();
    let mut x = values(&zt);
    for (i, &t) in traj.timesteps.iter().enumerate() {
        let a_t = ac[t] as f64;
        let prev = t as i64 - 125;
        let a_p = if prev >= 0 {
            ac[prev as usize] as f64
        } else {
            s.final_alpha_cumprod() as f64
        };
        x = x
            .iter()
            .map(|x| {
                let e = 0.1 * x;
                a_p.sqrt() * (x - (1.0 - a_t).sqrt() * e) / a_t.sqrt() + (1.0 - a_p).sqrt() * e
            })
            .collect();
        assert_close(
            &format!("latent {}", i + 1),
            &values(&traj.latents[i + 1]),
            &x,
            TIGHT,
        );
    }
}

#[test]
fn sampling_an_inversion_with_constant_eps_restores_z0() {
    let configs = [
        SchedulerConfig::stable_diffusion_v1_5(),
        SchedulerConfig {
            clip_sample: false,
            ..SchedulerConfig::default()
        },
        SchedulerConfig {
            timestep_spacing: TimestepSpacing::Trailing,
            ..SchedulerConfig::stable_diffusion_v1_5()
        },
    ];
    for config in configs {
        let mut inv = DdimInverseScheduler::new(config.clone()).unwrap();
        let mut fwd = DdimScheduler::new(config).unwrap();
        let z0 = tensor::<B>([1, 4, 3, 3], 13);
        let constant = tensor::<B>([1, 4, 3, 3], 14);
        let mut predictor = |_x: Tensor<B, 4>, _t: usize| constant.clone();
        let inverted = invert(&mut inv, &mut predictor, z0.clone(), 20, None).unwrap();
        let restored = sample(&mut fwd, &mut predictor, inverted.last().clone(), 20, None).unwrap();
        let mut reversed = inverted.timesteps.clone();
        reversed.reverse();
        assert_eq!(restored.timesteps, reversed);
        assert_close(
            "restored z0",
            &values(restored.last()),
            &values(&z0),
            Tolerance {
                atol: 1e-4,
                rtol: 1e-4,
            },
        );
        // Each sampling latent retraces the inversion.
        for i in 0..=20 {
            assert_close(
                "retrace",
                &values(&restored.latents[i]),
                &values(&inverted.latents[20 - i]),
                Tolerance {
                    atol: 1e-4,
                    rtol: 1e-4,
                },
            );
        }
    }
}

#[test]
fn sample_from_strength_and_direction_checks() {
    assert_eq!(start_step_for_strength(50, 0.75), 13);
    assert_eq!(start_step_for_strength(50, 1.0), 0);
    assert_eq!(start_step_for_strength(50, 0.0), 50);
    let config = SchedulerConfig::stable_diffusion_v1_5();
    let mut fwd = DdimScheduler::new(config.clone()).unwrap();
    let mut predictor = |x: Tensor<B, 4>, _t: usize| x.mul_scalar(0.0);
    let z = tensor::<B>([1, 1, 2, 2], 15);
    let traj = sample_from(&mut fwd, &mut predictor, z.clone(), 10, 4, None).unwrap();
    assert_eq!(traj.visited_timesteps(), &fwd.timesteps()[4..]);
    assert_eq!(traj.timesteps, fwd.timesteps());
    assert_eq!(traj.start, 4);
    assert!(traj.is_complete());
    assert_eq!(traj.at(4).dims(), z.dims());
    assert_eq!(traj.len(), 6);
    assert!(sample_from(&mut fwd, &mut predictor, z.clone(), 10, 11, None).is_err());
    let mut inv = DdimInverseScheduler::new(config).unwrap();
    assert!(matches!(
        invert(&mut fwd, &mut predictor, z.clone(), 10, None),
        Err(ScheduleError::InvalidArgument { .. })
    ));
    assert!(matches!(
        sample(&mut inv, &mut predictor, z, 10, None),
        Err(ScheduleError::InvalidArgument { .. })
    ));
}

#[test]
fn predictor_errors_carry_the_step() {
    let mut fwd = DdimScheduler::new(SchedulerConfig::stable_diffusion_v1_5()).unwrap();
    let mut calls = 0;
    let mut predictor = fallible(|x: Tensor<B, 4>, _t: usize| {
        calls += 1;
        if calls == 3 {
            Err("model exploded")
        } else {
            Ok(x)
        }
    });
    let err = sample(
        &mut fwd,
        &mut predictor,
        tensor::<B>([1, 1, 2, 2], 16),
        10,
        None,
    )
    .unwrap_err();
    let t2 = fwd.timesteps()[2];
    assert!(
        matches!(err, ScheduleError::Predictor { step: 2, timestep, .. } if timestep == t2),
        "{err}"
    );
    assert!(err.to_string().contains("model exploded"));
}

// ---------------------------------------------------------------- guidance

#[test]
fn guidance_combines_halves() {
    let (u, c) = (tensor::<B>([1, 2, 2, 2], 17), tensor::<B>([1, 2, 2, 2], 18));
    let g = guide(u.clone(), c.clone(), 7.5);
    let want: Vec<f64> = values(&u)
        .iter()
        .zip(values(&c))
        .map(|(u, c)| u + 7.5 * (c - u))
        .collect();
    assert_close("guide", &values(&g), &want, TIGHT);

    let mut batch_sizes = Vec::new();
    let inner = |x: Tensor<B, 4>, _t: usize| {
        batch_sizes.push(x.dims()[0]);
        let n = x.dims()[0] / 2;
        // Both halves must be the latents: uncond = x, cond = 3 x.
        let (a, b) = (x.clone().narrow(0, 0, n), x.narrow(0, n, n));
        assert_eq!(values(&a), values(&b));
        Tensor::cat(vec![a, b.mul_scalar(3.0)], 0)
    };
    let mut cfg = Cfg::new(inner, 2.0);
    let x = tensor::<B>([2, 1, 2, 2], 19);
    let out = optedit_schedule::NoisePredictor::predict(&mut cfg, x.clone(), 5).unwrap();
    let want: Vec<f64> = values(&x).iter().map(|v| v + 2.0 * (3.0 * v - v)).collect();
    assert_close("cfg", &values(&out), &want, TIGHT);
    drop(cfg);
    assert_eq!(batch_sizes, [4]);

    let bad = |x: Tensor<B, 4>, _t: usize| x.narrow(0, 0, 1);
    let mut cfg = Cfg::new(bad, 2.0);
    assert!(
        optedit_schedule::NoisePredictor::predict(&mut cfg, tensor::<B>([1, 1, 2, 2], 20), 5)
            .is_err()
    );
}

#[test]
fn scheduler_trait_is_usable_generically() {
    fn first_step<S: Scheduler>(s: &mut S) -> usize {
        s.set_timesteps(4).unwrap();
        assert_eq!(s.init_noise_sigma(), 1.0);
        s.timesteps()[0]
    }
    let config = SchedulerConfig::stable_diffusion_v1_5();
    assert_eq!(
        first_step(&mut DdimScheduler::new(config.clone()).unwrap()),
        751
    );
    assert_eq!(
        first_step(&mut DdimInverseScheduler::new(config).unwrap()),
        1
    );
}
