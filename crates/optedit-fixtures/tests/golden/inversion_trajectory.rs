//! DDIM inversion and guided DDIM sampling with the tiny UNet, at parity with
//! diffusers' `DDIMInverseScheduler` / `DDIMScheduler` loops, over every
//! `ddim_inversion_trajectory*` case, on each test backend.

use burn::tensor::Tensor;
use optedit_fixtures::{assert_output, cases_with_prefix, fixtures_dir, Backends};
use optedit_models::UNet2DConditionModel;
use optedit_schedule::{
    fallible, invert, sample, Cfg, DdimInverseScheduler, DdimScheduler, SchedulerConfig,
};

fn ddim_inversion_trajectory_cases<T: Backends>() {
    let device = Default::default();
    for case in cases_with_prefix("ddim_inversion_trajectory") {
        let g = case.load();
        let unet = UNet2DConditionModel::<T::B>::load(&case.model_dir(), &device).unwrap();
        let steps = case.params["num_inference_steps"]
            .as_u64()
            .expect("num_inference_steps") as usize;
        let w = case.params["guidance_scale"]
            .as_f64()
            .expect("guidance_scale");
        // The scheduler folder sits beside the UNet folder.
        let sched_dir = case.model_dir().parent().unwrap().join("scheduler");
        let config = SchedulerConfig::from_file(sched_dir.join("scheduler_config.json"))
            .or_else(|_| {
                SchedulerConfig::from_file(
                    fixtures_dir().join("tiny-sd/scheduler/scheduler_config.json"),
                )
            })
            .unwrap();
        let cond: Tensor<T::B, 3> = g.tensor("input.cond_embedding", &device);
        let uncond: Tensor<T::B, 3> = g.tensor("input.uncond_embedding", &device);
        let z0: Tensor<T::B, 4> = g.tensor("input.z0", &device);

        let mut inverse = DdimInverseScheduler::new(config.clone()).unwrap();
        let mut eps_cond = fallible(|x: Tensor<T::B, 4>, t: usize| {
            let tt = Tensor::<T::B, 1>::from_data([t as f32].as_slice(), &x.device());
            unet.forward(x, tt, cond.clone())
        });
        let inv = invert(&mut inverse, &mut eps_cond, z0, steps, None).unwrap();

        let both = Tensor::cat(vec![uncond.clone(), cond.clone()], 0);
        let batch = fallible(|x: Tensor<T::B, 4>, t: usize| {
            let tt = Tensor::<T::B, 1>::from_data([t as f32].as_slice(), &x.device());
            unet.forward(x, tt, both.clone())
        });
        let mut guided = Cfg::new(batch, w);
        let mut forward = DdimScheduler::new(config).unwrap();
        let smp = sample(&mut forward, &mut guided, inv.last().clone(), steps, None).unwrap();

        let as_tensor = |ts: &[usize]| {
            Tensor::<T::B, 1>::from_data(
                ts.iter().map(|&t| t as f32).collect::<Vec<_>>().as_slice(),
                &device,
            )
        };
        for name in case.outputs.keys() {
            match name.as_str() {
                "output.inversion_timesteps" => {
                    assert_output(&case, &g, name, &as_tensor(&inv.timesteps))
                }
                "output.sampling_timesteps" => {
                    assert_output(&case, &g, name, &as_tensor(&smp.timesteps))
                }
                "output.inversion_latents" => {
                    assert_output(&case, &g, name, &inv.stacked_latents())
                }
                "output.inversion_eps" => {
                    assert_output(&case, &g, name, &inv.stacked_eps().unwrap())
                }
                "output.sampling_latents" => assert_output(&case, &g, name, &smp.stacked_latents()),
                "output.sampling_guided_eps" => {
                    assert_output(&case, &g, name, &smp.stacked_eps().unwrap())
                }
                other => panic!("{}: unknown output {other}", case.case),
            }
        }
    }
}

optedit_fixtures::on_each_backend!(ddim_inversion_trajectory_cases);
