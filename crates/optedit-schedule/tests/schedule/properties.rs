//! Property tests over random configurations.

use burn::tensor::{Tensor, TensorData};
use optedit_fixtures::{values, TestBackend};
use optedit_schedule::{
    BetaSchedule, DdimInverseScheduler, DdimScheduler, PredictionType, ScheduleError,
    SchedulerConfig, TimestepSpacing,
};
use proptest::prelude::*;

type B = TestBackend;

fn beta_schedule() -> impl Strategy<Value = BetaSchedule> {
    prop_oneof![
        Just(BetaSchedule::Linear),
        Just(BetaSchedule::ScaledLinear),
        Just(BetaSchedule::SquaredCosCapV2),
    ]
}

fn spacing() -> impl Strategy<Value = TimestepSpacing> {
    prop_oneof![
        Just(TimestepSpacing::Leading),
        Just(TimestepSpacing::Trailing),
        Just(TimestepSpacing::Linspace),
    ]
}

prop_compose! {
    fn config()(
        num_train_timesteps in prop_oneof![Just(1000usize), 2usize..1200],
        beta_schedule in beta_schedule(),
        beta_start in 0.00005f64..0.002,
        beta_span in 0.001f64..0.03,
        set_alpha_to_one in any::<bool>(),
        steps_offset in 0usize..3,
        timestep_spacing in spacing(),
    ) -> SchedulerConfig {
        SchedulerConfig {
            num_train_timesteps,
            beta_schedule,
            beta_start,
            beta_end: beta_start + beta_span,
            set_alpha_to_one,
            steps_offset,
            timestep_spacing,
            clip_sample: false,
            prediction_type: PredictionType::Epsilon,
            ..SchedulerConfig::default()
        }
    }
}

/// A config and a valid step count for it.
fn config_and_steps() -> impl Strategy<Value = (SchedulerConfig, usize)> {
    config().prop_flat_map(|c| {
        let t = c.num_train_timesteps;
        (Just(c), 1..=t)
    })
}

fn tensor(data: Vec<f32>) -> Tensor<B, 4> {
    Tensor::from_data(TensorData::new(data, [1, 2, 2, 2]), &Default::default())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn timesteps_strictly_decreasing_in_range((config, steps) in config_and_steps()) {
        let t = config.num_train_timesteps;
        let mut forward = DdimScheduler::new(config.clone()).unwrap();
        let leading_overflow = config.timestep_spacing == TimestepSpacing::Leading
            && (steps - 1) * (t / steps) + config.steps_offset >= t;
        match forward.set_timesteps(steps) {
            Err(ScheduleError::TimestepOutOfRange { .. }) if leading_overflow => return Ok(()),
            Err(e) => panic!("{e}"),
            Ok(()) => prop_assert!(!leading_overflow),
        }
        let ts = forward.timesteps();
        prop_assert_eq!(ts.len(), steps);
        prop_assert!(ts.windows(2).all(|w| w[0] > w[1]), "not decreasing: {:?}", ts);
        prop_assert!(ts.iter().all(|&x| x < t));

        let mut inverse = DdimInverseScheduler::new(config.clone()).unwrap();
        match config.timestep_spacing {
            TimestepSpacing::Linspace => prop_assert!(inverse.set_timesteps(steps).is_err()),
            _ => {
                inverse.set_timesteps(steps).unwrap();
                let mut reversed = ts.to_vec();
                reversed.reverse();
                prop_assert_eq!(inverse.timesteps(), &reversed[..]);
            }
        }
    }

    #[test]
    fn alphas_cumprod_decreasing(config in config(), rescale in any::<bool>()) {
        let config = SchedulerConfig { rescale_betas_zero_snr: rescale, ..config };
        let scheduler = DdimScheduler::new(config.clone()).unwrap();
        let a = scheduler.alphas_cumprod();
        prop_assert_eq!(a.len(), config.num_train_timesteps);
        prop_assert!(a.iter().all(|&x| (0.0..1.0).contains(&x)), "outside [0, 1): {:?}", &a[..4.min(a.len())]);
        for w in a.windows(2) {
            prop_assert!(w[1] < w[0] || (w[0] == 0.0 && w[1] == 0.0), "{} then {}", w[0], w[1]);
        }
        if rescale && a.len() > 1 {
            prop_assert_eq!(a[a.len() - 1], 0.0);
        }
    }

    #[test]
    fn inverse_step_undoes_forward_step(
        (config, steps) in config_and_steps(),
        index in any::<prop::sample::Index>(),
        sample in prop::collection::vec(-3.0f32..3.0, 8),
        eps in prop::collection::vec(-3.0f32..3.0, 8),
    ) {
        let t = config.num_train_timesteps;
        prop_assume!(!(config.timestep_spacing == TimestepSpacing::Leading
            && (steps - 1) * (t / steps) + config.steps_offset >= t));
        let mut forward = DdimScheduler::new(config.clone()).unwrap();
        forward.set_timesteps(steps).unwrap();
        // The inverse scheduler only needs the step count (its step uses
        // T / n); linspace spacing is rejected by its set_timesteps, so use
        // the same config with leading spacing for it.
        let inverse_config = SchedulerConfig { timestep_spacing: TimestepSpacing::Leading, steps_offset: 0, ..config };
        let mut inverse = DdimInverseScheduler::new(inverse_config).unwrap();
        inverse.set_timesteps(steps).unwrap();

        let timestep = forward.timesteps()[index.index(steps)];
        let x = tensor(sample.clone());
        let e = tensor(eps);
        let down = forward.step(e.clone(), timestep, x, 0.0, None).unwrap().prev_sample;
        let up = inverse.step(e, timestep, down).unwrap().prev_sample;
        let a_t = forward.alphas_cumprod()[timestep] as f64;
        // The round trip divides by sqrt(a_t): f32 error grows like 1/sqrt(a_t).
        let tol = 1e-5 * (1.0 + 1.0 / a_t.sqrt());
        for (g, w) in values(&up).iter().zip(&sample) {
            prop_assert!((g - *w as f64).abs() <= tol * (1.0 + w.abs() as f64), "got {g}, want {w} (t = {timestep})");
        }
    }
}
