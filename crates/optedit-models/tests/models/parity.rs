//! Parity with diffusers / transformers for the VAE, the CLIP text encoders,
//! the ControlNet and UNet gradients, over every matching case of the fixture
//! set named by `OPTEDIT_FIXTURES`, on each test backend (`Flex` with
//! optedit's kernels, and burn's `NdArray` with none of them).

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use optedit_fixtures::{assert_output, cases_with_prefix, fixtures_dir, Backends};
use optedit_models::{
    AddedConditions, AutoencoderKL, ClipTextModel, ClipTextModelWithProjection, ControlNetModel,
    ModelError, UNet2DConditionModel,
};

fn vae_encode_cases<T: Backends>() {
    let device = Default::default();
    for case in cases_with_prefix("vae_encode") {
        let g = case.load();
        let vae = AutoencoderKL::<T::B>::load(&case.model_dir(), &device).unwrap();
        if let Some(s) = case.params.get("scaling_factor").and_then(|v| v.as_f64()) {
            assert_eq!(vae.scaling_factor(), s, "{}: scaling_factor", case.case);
        }
        let dist = vae.encode(g.tensor("input.image", &device)).unwrap();
        for name in case.outputs.keys() {
            let got = match name.as_str() {
                "output.mean" => dist.mean.clone(),
                "output.logvar" => dist.logvar.clone(),
                "output.std" => dist.std(),
                other => panic!("{}: unknown output {other}", case.case),
            };
            assert_output(&case, &g, name, &got);
        }
    }
}

fn vae_decode_cases<T: Backends>() {
    let device = Default::default();
    for case in cases_with_prefix("vae_decode") {
        let g = case.load();
        let vae = AutoencoderKL::<T::B>::load(&case.model_dir(), &device).unwrap();
        let image = vae.decode(g.tensor("input.latent", &device)).unwrap();
        assert_eq!(case.outputs.len(), 1);
        assert_output(&case, &g, "output.image", &image);
    }
}

/// The `CLIPTextModelWithProjection` cases, read by
/// [`clip_text_encoder_with_projection_cases`].
const WITH_PROJECTION: &str = "clip_text_encoder_with_projection";

fn input_ids<B: Backend>(g: &optedit_fixtures::Golden) -> Tensor<B, 2, Int> {
    let ids = g.get("input.input_ids");
    let data = TensorData::new(ids.i64s(), ids.shape.clone());
    Tensor::<B, 2, Int>::from_data(data, &Default::default())
}

fn clip_text_encoder_cases<T: Backends>() {
    let device = Default::default();
    for case in cases_with_prefix("clip_text_encoder") {
        if case.case.starts_with(WITH_PROJECTION) {
            continue;
        }
        let g = case.load();
        let clip = ClipTextModel::<T::B>::load(&case.model_dir(), &device).unwrap();
        let out = clip.forward(input_ids(&g)).unwrap();
        assert_eq!(out.hidden_states.len(), clip.config.num_hidden_layers + 1);
        for name in case.outputs.keys() {
            match name.as_str() {
                "output.last_hidden_state" => {
                    assert_output(&case, &g, name, &out.last_hidden_state)
                }
                "output.pooler_output" => assert_output(&case, &g, name, &out.pooler_output),
                other => panic!("{}: unknown output {other}", case.case),
            }
        }
    }
}

/// SDXL's second text encoder: last hidden state, penultimate hidden state
/// (`hidden_states[-2]`, before the final norm) and the projected pooled
/// state (`text_embeds`).
fn clip_text_encoder_with_projection_cases<T: Backends>() {
    let device = Default::default();
    for case in cases_with_prefix(WITH_PROJECTION) {
        let g = case.load();
        let clip = ClipTextModelWithProjection::<T::B>::load(&case.model_dir(), &device)
            .unwrap_or_else(|e| panic!("{}: {e}", case.case));
        let out = clip.forward(input_ids(&g)).unwrap();
        for name in case.outputs.keys() {
            match name.as_str() {
                "output.last_hidden_state" => {
                    assert_output(&case, &g, name, &out.text.last_hidden_state)
                }
                "output.penultimate_hidden_state" => {
                    assert_output(&case, &g, name, &out.text.penultimate_hidden_state())
                }
                "output.text_embeds" => assert_output(&case, &g, name, &out.text_embeds),
                other => panic!("{}: unknown output {other}", case.case),
            }
        }
        // Strict both ways: the projection's tensor is unused by the plain
        // encoder, and missing from a plain encoder's folder.
        let err = ClipTextModel::<T::B>::load(&case.model_dir(), &device).unwrap_err();
        assert!(err.to_string().contains("text_projection.weight"), "{err}");
    }
    let plain = cases_with_prefix("clip_text_encoder")
        .into_iter()
        .find(|c| !c.case.starts_with(WITH_PROJECTION))
        .expect("a plain clip_text_encoder case");
    let err = ClipTextModelWithProjection::<T::B>::load(&plain.model_dir(), &device).unwrap_err();
    assert!(
        matches!(&err, ModelError::MissingTensor { tensor, .. } if tensor == "text_projection.weight"),
        "{err}"
    );
}

fn controlnet_forward_cases<T: Backends>() {
    let device = Default::default();
    for case in cases_with_prefix("controlnet_forward") {
        let g = case.load();
        let cn = ControlNetModel::<T::B>::load(&case.model_dir(), &device).unwrap();
        let scale = g.get("input.conditioning_scale").values[0];
        // SDXL ControlNets take the added conditions too.
        let added = match (g.has("input.text_embeds"), g.has("input.time_ids")) {
            (false, false) => None,
            (true, true) => Some(AddedConditions {
                text_embeds: g.tensor("input.text_embeds", &device),
                time_ids: g.tensor("input.time_ids", &device),
            }),
            _ => panic!("{}: text_embeds and time_ids must come together", case.case),
        };
        assert_eq!(
            added.is_some(),
            cn.config.added_conditions().is_some(),
            "{}: added conditions given iff the ControlNet is text_time",
            case.case
        );
        let res = cn
            .forward_with_conditions(
                g.tensor("input.sample", &device),
                g.tensor("input.timestep", &device),
                g.tensor("input.encoder_hidden_states", &device),
                g.tensor("input.controlnet_cond", &device),
                scale,
                added.as_ref(),
            )
            .unwrap();
        let down = case.outputs_with_prefix("output.down_block_res_sample");
        assert_eq!(
            down.len(),
            res.down.len(),
            "{}: number of down residuals",
            case.case
        );
        for (name, got) in down.iter().zip(&res.down) {
            assert_output(&case, &g, name, got);
        }
        assert_output(&case, &g, "output.mid_block_res_sample", &res.mid);
        assert_eq!(
            case.outputs.len(),
            down.len() + 1,
            "{}: unchecked outputs",
            case.case
        );
    }
}

/// Gradients w.r.t. the latent through the whole UNet, for a plain MSE on
/// the noise prediction and for a masked MSE on the predicted x0.
fn unet_grad_cases<T: Backends>() {
    let device = Default::default();
    for case in cases_with_prefix("unet_grad") {
        let g = case.load();
        let unet = UNet2DConditionModel::<T::AD>::load(&case.model_dir(), &device).unwrap();
        let t: Tensor<T::AD, 1> = g.tensor("input.timestep", &device);
        let ctx: Tensor<T::AD, 3> = g.tensor("input.encoder_hidden_states", &device);
        let a = g.get("input.alpha_prod_t").values[0];
        let target: Tensor<T::AD, 4> = g.tensor("input.target", &device);
        let reference: Tensor<T::AD, 4> = g.tensor("input.ref", &device);
        let mask: Tensor<T::AD, 4> = g.tensor("input.mask", &device);
        let [_, c, _, _] = target.dims();

        let z: Tensor<T::AD, 4> = g.tensor::<T::AD, 4>("input.z", &device).require_grad();
        let eps = unet.forward(z.clone(), t.clone(), ctx.clone()).unwrap();
        let loss_mse = (eps.clone() - target).powi_scalar(2).mean();
        let grad_mse = z.grad(&loss_mse.backward()).unwrap();

        let z2: Tensor<T::AD, 4> = g.tensor::<T::AD, 4>("input.z", &device).require_grad();
        let eps2 = unet.forward(z2.clone(), t, ctx).unwrap();
        let z0 = (z2.clone() - eps2.mul_scalar((1.0 - a).sqrt())).div_scalar(a.sqrt());
        let mask = mask.repeat_dim(1, c);
        let loss_masked = (mask * (z0.clone() - reference).powi_scalar(2)).mean();
        let grad_masked = z2.grad(&loss_masked.backward()).unwrap();

        for name in case.outputs.keys() {
            match name.as_str() {
                "output.eps" => assert_output(&case, &g, name, &eps.clone().inner()),
                "output.loss_mse" => {
                    assert_output(&case, &g, name, &loss_mse.clone().inner().reshape([1]))
                }
                "output.grad_mse" => assert_output(&case, &g, name, &grad_mse),
                "output.z0_pred" => assert_output(&case, &g, name, &z0.clone().inner()),
                "output.loss_masked_x0" => {
                    assert_output(&case, &g, name, &loss_masked.clone().inner().reshape([1]))
                }
                "output.grad_masked_x0" => assert_output(&case, &g, name, &grad_masked),
                other => panic!("{}: unknown output {other}", case.case),
            }
        }
    }
}

optedit_fixtures::on_each_backend!(
    vae_encode_cases,
    vae_decode_cases,
    clip_text_encoder_cases,
    clip_text_encoder_with_projection_cases,
    controlnet_forward_cases,
    unet_grad_cases,
);

/// The fixture folder must exist where the tests look for it.
#[test]
fn fixture_folder_is_present() {
    assert!(
        fixtures_dir().join("golden/cases.json").is_file(),
        "{}",
        fixtures_dir().display()
    );
}
