//! Parity with diffusers' `DDIMScheduler` / `DDIMInverseScheduler`: every
//! golden case named `ddim_scheduler*`, every output it lists.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use optedit_fixtures::{assert_close, assert_output, cases_with_prefix, Backends, Case, Golden};
use optedit_schedule::{DdimInverseScheduler, DdimScheduler, SchedulerConfig};

/// Splits `output.stepK_rest` / `output.inv_stepK_rest` into (inverse?, K, rest).
fn parse_step_output(name: &str) -> Option<(bool, String, &str)> {
    let name = name.strip_prefix("output.")?;
    let (inverse, name) = match name.strip_prefix("inv_step") {
        Some(rest) => (true, rest),
        None => (false, name.strip_prefix("step")?),
    };
    let digits = name.chars().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let rest = name[digits..].strip_prefix('_')?;
    Some((inverse, name[..digits].to_string(), rest))
}

fn timestep(golden: &Golden, name: &str) -> usize {
    let values = golden.get(name).i64s();
    assert_eq!(values.len(), 1, "{name} should hold one timestep");
    usize::try_from(values[0]).expect("non-negative timestep")
}

/// The first of `names` the golden file holds.
fn first_input<'a>(case: &Case, golden: &Golden, names: &[&'a str]) -> Option<&'a str> {
    names
        .iter()
        .copied()
        .find(|n| golden.has(n) || case.inputs.contains_key(*n))
}

fn check_scalars(case: &Case, name: &str, got: &[f64], golden: &Golden) {
    let want = golden.get(name);
    assert_eq!(
        got.len(),
        want.values.len(),
        "{}: {name} has {} values, reference {}",
        case.case,
        got.len(),
        want.values.len()
    );
    assert_close(
        &format!("{}: {name}", case.case),
        got,
        &want.values,
        case.tolerance_for(name),
    );
}

fn run_case<B: Backend>(case: &Case) {
    let golden = case.load();
    let device = Default::default();
    let params = &case.params;
    let config = SchedulerConfig::from_json_value(&params["scheduler_config"])
        .unwrap_or_else(|e| panic!("{}: {e}", case.case));
    let steps = params["num_inference_steps"]
        .as_u64()
        .unwrap_or_else(|| panic!("{}: num_inference_steps missing", case.case))
        as usize;
    let eta = params.get("eta").and_then(|v| v.as_f64()).unwrap_or(0.0);

    let mut forward = DdimScheduler::new(config.clone()).unwrap();
    forward.set_timesteps(steps).unwrap();
    let mut inverse = DdimInverseScheduler::new(config).unwrap();
    // Built lazily: diffusers' inverse scheduler rejects some spacings, and a
    // case without inverse outputs need not have a valid one.
    let mut inverse_ready = false;
    let mut ensure_inverse = |inverse: &mut DdimInverseScheduler| {
        if !inverse_ready {
            inverse
                .set_timesteps(steps)
                .unwrap_or_else(|e| panic!("{}: inverse set_timesteps: {e}", case.case));
            inverse_ready = true;
        }
    };

    let mut checked = 0;
    for name in case.outputs.keys() {
        let as_f64 = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
        let as_f64u = |v: &[usize]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
        match name.as_str() {
            "output.timesteps" => check_scalars(case, name, &as_f64u(forward.timesteps()), &golden),
            "output.alphas_cumprod" => {
                check_scalars(case, name, &as_f64(forward.alphas_cumprod()), &golden)
            }
            "output.betas" => {
                let betas = optedit_schedule::betas_for_config(forward.config());
                check_scalars(case, name, &as_f64(&betas), &golden)
            }
            "output.final_alpha_cumprod" => {
                check_scalars(case, name, &[forward.final_alpha_cumprod() as f64], &golden)
            }
            "output.inverse_timesteps" => {
                ensure_inverse(&mut inverse);
                check_scalars(case, name, &as_f64u(inverse.timesteps()), &golden)
            }
            "output.inverse_initial_alpha_cumprod" => check_scalars(
                case,
                name,
                &[inverse.initial_alpha_cumprod() as f64],
                &golden,
            ),
            other => {
                let (is_inverse, k, what) = parse_step_output(other)
                    .unwrap_or_else(|| panic!("{}: unknown output {other}", case.case));
                let prefix = if is_inverse { "inv_step" } else { "step" };
                let own = |suffix: &str| format!("input.{prefix}{k}_{suffix}");
                let shared = |suffix: &str| format!("input.step{k}_{suffix}");
                let load = |suffix: &str| -> Tensor<B, 4> {
                    let (a, b) = (own(suffix), shared(suffix));
                    let name = first_input(case, &golden, &[&a, &b])
                        .unwrap_or_else(|| panic!("{}: no {a} or {b} for {other}", case.case));
                    golden.tensor(name, &device)
                };
                let model_output = load("model_output");
                let sample = load("sample");
                let t = timestep(&golden, &own("timestep"));
                let out = if is_inverse {
                    ensure_inverse(&mut inverse);
                    inverse.step(model_output, t, sample).unwrap()
                } else {
                    let noise_names = [own("variance_noise"), own("noise")];
                    let noise = first_input(case, &golden, &[&noise_names[0], &noise_names[1]])
                        .map(|n| golden.tensor::<B, 4>(n, &device));
                    assert!(
                        eta == 0.0 || noise.is_some(),
                        "{}: eta = {eta} but no {} input",
                        case.case,
                        noise_names[0]
                    );
                    forward.step(model_output, t, sample, eta, noise).unwrap()
                };
                let got = match (is_inverse, what) {
                    (false, "prev_sample") | (true, "next_sample") | (true, "prev_sample") => {
                        out.prev_sample
                    }
                    (_, "pred_original_sample") => out.pred_original_sample,
                    _ => panic!("{}: unknown output {other}", case.case),
                };
                assert_output(case, &golden, name, &got);
            }
        }
        checked += 1;
    }
    assert!(checked > 0, "{}: no outputs", case.case);
}

fn ddim_scheduler_cases_match_diffusers<T: Backends>() {
    let cases = cases_with_prefix("ddim_scheduler");
    for case in &cases {
        run_case::<T::B>(case);
    }
    eprintln!("checked {} ddim_scheduler cases", cases.len());
}

#[test]
fn output_names_parse() {
    assert_eq!(
        parse_step_output("output.step12_prev_sample"),
        Some((false, "12".into(), "prev_sample"))
    );
    assert_eq!(
        parse_step_output("output.inv_step0_next_sample"),
        Some((true, "0".into(), "next_sample"))
    );
    assert_eq!(parse_step_output("output.timesteps"), None);
    assert_eq!(parse_step_output("output.stepx_prev_sample"), None);
}

optedit_fixtures::on_each_backend!(ddim_scheduler_cases_match_diffusers);
