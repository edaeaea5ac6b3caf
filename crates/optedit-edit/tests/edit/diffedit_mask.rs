//! DiffEdit mask estimation at parity with diffusers' `generate_mask`, replaying
//! the stored random draws, over every `diffedit_mask*` case.

use burn::tensor::{Int, Tensor, TensorData};
use optedit_edit::{estimate_mask, DiffEditMaskConfig, EditCondition, MaskDraws, SdPipeline};
use optedit_fixtures::{assert_close, assert_output, cases_with_prefix, values, TestBackend as B};

#[test]
fn diffedit_mask_cases() {
    let device = Default::default();
    for case in cases_with_prefix("diffedit_mask") {
        let g = case.load();
        let pipeline = SdPipeline::<B>::load(&case.model_dir(), &device).unwrap();
        let p = &case.params;
        let config = DiffEditMaskConfig {
            num_maps: p["num_maps_per_mask"].as_u64().unwrap() as usize,
            strength: p["mask_encode_strength"].as_f64().unwrap(),
            threshold_ratio: p["mask_thresholding_ratio"].as_f64().unwrap(),
            num_inference_steps: p["num_inference_steps"].as_u64().unwrap() as usize,
        };
        let w = p["guidance_scale"].as_f64().unwrap();
        let embed = |name: &str| {
            let ids = g.get(name);
            let ids = Tensor::<B, 2, Int>::from_data(
                TensorData::new(ids.i64s(), ids.shape.clone()),
                &device,
            );
            pipeline
                .prompts
                .clip()
                .expect("an SD 1.x pipeline")
                .text_encoder()
                .forward(ids)
                .unwrap()
                .last_hidden_state
        };
        let negative = embed("input.negative_input_ids");
        let source =
            optedit_cond::PromptEmbeddings::new(embed("input.source_input_ids"), negative.clone());
        let target = EditCondition::text(optedit_cond::PromptEmbeddings::new(
            embed("input.target_input_ids"),
            negative,
        ));
        // uint8 HxWx3 -> [1, 3, H, W] in [-1, 1], as the pipeline preprocesses.
        let img = g.get("input.image_uint8_hwc");
        let (h, wd) = (img.shape[0], img.shape[1]);
        let hwc: Vec<f32> = img.values.iter().map(|&v| v as f32 / 255.0).collect();
        let image = Tensor::<B, 4>::from_data(TensorData::new(hwc, [1, h, wd, 3]), &device)
            .permute([0, 3, 1, 2])
            .mul_scalar(2.0)
            .sub_scalar(1.0);
        let draws = MaskDraws {
            vae_noise: g.tensor("input.random_0_vae_latent_sample", &device),
            add_noise: g.tensor("input.random_1_add_noise", &device),
        };
        let est = estimate_mask(
            &pipeline,
            image.clone(),
            &source,
            &target,
            w,
            &config,
            draws,
        )
        .unwrap();
        for name in case.outputs.keys() {
            match name.as_str() {
                "output.preprocessed_image" => assert_output(&case, &g, name, &image),
                "output.encode_timestep" => {
                    assert_eq!(
                        est.encode_timestep as f64,
                        g.get(name).values[0],
                        "{}: encode timestep",
                        case.case
                    )
                }
                "output.unet_input_latents" => {
                    // The UNet batch is 4 copies of the noisy latents.
                    let want = g.get(name);
                    let n = config.num_maps;
                    let per = want.values.len() / want.shape[0];
                    let got = values(&est.noisy_latents);
                    for copy in 0..want.shape[0] / n {
                        let slice = &want.values[copy * n * per..(copy + 1) * n * per];
                        assert_close(
                            &format!("{}: {name} copy {copy}", case.case),
                            &got,
                            slice,
                            case.tolerance_for(name),
                        );
                    }
                }
                "output.mask_guidance_map" => assert_output(&case, &g, name, &est.guidance_map),
                "output.mask" => assert_output(&case, &g, name, &est.mask),
                // diffusers' batch: [source, negative, target, negative],
                // each repeated num_maps times.
                "output.unet_encoder_hidden_states" => {
                    let n = config.num_maps;
                    let order = [
                        &source.cond,
                        &source.uncond,
                        &target.prompt.cond,
                        &target.prompt.uncond,
                    ];
                    let got = Tensor::cat(
                        order
                            .iter()
                            .map(|e| (*e).clone().repeat_dim(0, n))
                            .collect(),
                        0,
                    );
                    assert_output(&case, &g, name, &got);
                }
                "output.unet_noise_pred" => {
                    let n = config.num_maps;
                    let t =
                        Tensor::<B, 1>::from_data([est.encode_timestep as f32].as_slice(), &device);
                    let order = [
                        &source.cond,
                        &source.uncond,
                        &target.prompt.cond,
                        &target.prompt.uncond,
                    ];
                    let preds = order
                        .iter()
                        .map(|e| {
                            pipeline
                                .unet
                                .forward(
                                    est.noisy_latents.clone(),
                                    t.clone(),
                                    (*e).clone().repeat_dim(0, n),
                                )
                                .unwrap()
                        })
                        .collect();
                    assert_output(&case, &g, name, &Tensor::cat(preds, 0));
                }
                other => panic!("{}: unknown output {other}", case.case),
            }
        }
    }
}
