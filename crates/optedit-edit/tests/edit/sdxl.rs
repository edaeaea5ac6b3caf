//! SDXL end to end on the tiny SDXL fixture (issue 26): the folder is
//! detected as `StableDiffusionXLPipeline` and loads through the same
//! `SdPipeline::load` (both text encoders, the VAE's own scaling factor, DDIM
//! from the folder's `EulerDiscreteScheduler` betas); the pooled embeddings
//! and size conditions reach the UNet in every stage; inversion
//! reconstructs the input latent; the three methods edit.

use burn::tensor::Tensor;
use optedit_cond::{PromptEmbeddings, SizeConditions};
use optedit_edit::{
    Denoiser, EditCondition, EditConfig, EditError, Editor, PipelineFamily, SdPipeline, Silent,
};
use optedit_fixtures::{fixtures_dir, values, TestAutodiffBackend as AD};
use optedit_models::ModelError;

use crate::common::{config, image_for as image, mse, three_methods};

fn pipeline() -> SdPipeline<AD> {
    crate::common::load("tiny-sdxl")
}

fn json(path: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures_dir().join("tiny-sdxl").join(path)).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_sdxl_folder_loads_through_the_one_api() {
    let p = pipeline();
    assert_eq!(p.family, PipelineFamily::StableDiffusionXl);
    assert!(p.prompts.sdxl().is_some() && p.prompts.clip().is_none());
    let vae = json("vae/config.json");
    assert_eq!(
        p.vae.scaling_factor(),
        vae["scaling_factor"].as_f64().unwrap()
    );
    assert_eq!(
        json("scheduler/scheduler_config.json")["_class_name"],
        "EulerDiscreteScheduler"
    );
    assert!(!p.scheduler.clip_sample);
    let e = p.encode_prompt("a red circle", None).unwrap();
    let pooled = e
        .pooled
        .as_ref()
        .expect("SDXL embeddings carry pooled ones");
    let projection = json("text_encoder_2/config.json")["projection_dim"]
        .as_u64()
        .unwrap() as usize;
    assert_eq!(pooled.cond.dims(), [1, projection]);
    assert_eq!(pooled.uncond.dims(), [1, projection]);
    // SD 1.x folders carry none.
    let sd = crate::common::pipeline();
    assert_eq!(sd.family, PipelineFamily::StableDiffusion);
    assert!(sd.encode_prompt("a cat", None).unwrap().pooled.is_none());
}

#[test]
fn family_detection_errors_name_the_file_and_the_class() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("model_index.json");
    let err = PipelineFamily::detect(dir.path()).unwrap_err();
    assert!(matches!(&err, EditError::ModelIndex { path, .. } if *path == index));
    assert!(err.to_string().contains("model_index.json"), "{err}");
    std::fs::write(&index, r#"{"_class_name": "FluxPipeline"}"#).unwrap();
    let err = PipelineFamily::detect(dir.path()).unwrap_err();
    assert!(
        matches!(&err, EditError::UnsupportedPipeline { path, class } if *path == index && class == "FluxPipeline")
    );
    let message = err.to_string();
    assert!(
        message.contains("FluxPipeline") && message.contains("model_index.json"),
        "{message}"
    );
    std::fs::write(&index, r#"{"_class_name": "StableDiffusionXLPipeline"}"#).unwrap();
    assert_eq!(
        PipelineFamily::detect(dir.path()).unwrap(),
        PipelineFamily::StableDiffusionXl
    );
    // Loading refuses the folder before reading any model.
    std::fs::write(&index, r#"{"_class_name": "FluxPipeline"}"#).unwrap();
    let err = SdPipeline::<AD>::load(dir.path(), &Default::default()).unwrap_err();
    assert!(
        matches!(err, EditError::UnsupportedPipeline { .. }),
        "{err}"
    );
}

#[test]
fn the_added_conditions_reach_the_unet() {
    let p = pipeline();
    let x = image(&p);
    let z = p.encode_image(x).unwrap();
    let e = p
        .encode_prompt("a red circle", Some("a blue square"))
        .unwrap();
    let t = 500;
    let predict = |d: Denoiser<'_, AD>| d.predict(z.clone(), t, 0, 1).unwrap();
    let base = predict(Denoiser::for_prompt(&p, &e, 5.0, Vec::new()));
    // The default size conditions are the image's size uncropped.
    let [_, _, h, w] = z.dims();
    let f = p.vae_scale();
    let explicit = predict(
        Denoiser::for_prompt(&p, &e, 5.0, Vec::new())
            .with_size_conditions(SizeConditions::uncropped(h * f, w * f)),
    );
    assert_eq!(values(&base), values(&explicit));
    // Other time ids, other pooled embeddings: other predictions.
    let other_sizes = predict(
        Denoiser::for_prompt(&p, &e, 5.0, Vec::new()).with_size_conditions(SizeConditions {
            original_size: (4 * h * f, 4 * w * f),
            crop_top_left: (h, w),
            target_size: (h * f, w * f),
        }),
    );
    assert!(mse(&base, &other_sizes) > 1e-10);
    let mut zeroed = e.clone();
    let pooled = zeroed.pooled.as_mut().unwrap();
    pooled.cond = pooled.cond.zeros_like();
    let other_pooled = predict(Denoiser::for_prompt(&p, &zeroed, 5.0, Vec::new()));
    assert!(mse(&base, &other_pooled) > 1e-10);
    // Without the pooled embeddings the UNet refuses, by type.
    let bare = PromptEmbeddings::new(e.cond.clone(), e.uncond.clone());
    let err = Denoiser::for_prompt(&p, &bare, 5.0, Vec::new())
        .predict(z.clone(), t, 0, 1)
        .unwrap_err();
    assert!(
        matches!(err, EditError::Model(ModelError::MissingConditions { .. })),
        "{err}"
    );
    // Through the editor: its size conditions change an SDEdit.
    let cond = EditCondition::text(e);
    let sdedit =
        |editor: Editor<'_, AD>| editor.sdedit(image(&p), &cond, &mut Silent).unwrap().latent;
    let default = sdedit(Editor::new(&p, config()).unwrap());
    let resized = sdedit(
        Editor::new(&p, config())
            .unwrap()
            .with_size_conditions(SizeConditions::uncropped(4 * h * f, 4 * w * f)),
    );
    assert!(mse(&default, &resized) > 1e-10);
}

#[test]
fn inversion_reconstructs_the_input_latent() {
    let p = pipeline();
    let src = p
        .encode_prompt("a red circle next to a dancing figure", None)
        .unwrap();
    // The tiny models' weights are random: under epsilon prediction their
    // DDIM inversion from the noisiest timestep does not come back (the tiny
    // SD 1.5 model's neither), so this inverts half way, with finer steps.
    let config = EditConfig {
        num_steps: 20,
        strength: 0.5,
        ..config()
    };
    let editor = Editor::new(&p, config).unwrap();
    let z0 = editor.encode(image(&p)).unwrap();
    let inversion = editor.invert(z0.clone(), &src, &mut Silent).unwrap();
    let recon = editor.reconstruct(&inversion, &src, &mut Silent).unwrap();
    let error = mse(recon.last(), &z0);
    let inverted = mse(inversion.first(), &z0);
    // How close it comes back depends on the random weights: under 0.25 of
    // the way on the public fixtures, 0.29 on a set made with other shapes.
    // Half the way still fails for a wrong schedule or direction, which
    // lands about as far as the inverted latent or farther.
    assert!(
        error < 0.5 * inverted,
        "reconstruction error {error}; the inverted latent is {inverted} away"
    );
}

#[test]
fn the_three_methods_edit() {
    let p = pipeline();
    let src = p.encode_prompt("a red circle", None).unwrap();
    let cond = EditCondition::text(p.encode_prompt("a blue square", None).unwrap());
    let editor = Editor::new(&p, config()).unwrap();
    let x = image(&p);
    let (optimised, diffedit, sdedit) = three_methods(
        &editor,
        &x,
        &src,
        &cond,
        &mut optedit_edit::EstimatedMask::default(),
    );
    // The optimised edit keeps the background closer to the input than
    // SDEdit, which changes the whole image.
    let z0 = editor.encode(x).unwrap();
    let keep = optimised.mask.clone().unwrap().neg().add_scalar(1.0);
    let kept = |latent: &Tensor<AD, 4>| {
        mse(
            &(latent.clone() * keep.clone()),
            &(z0.clone() * keep.clone()),
        )
    };
    assert!(
        kept(&optimised.latent) < kept(&sdedit.latent),
        "{} vs {}",
        kept(&optimised.latent),
        kept(&sdedit.latent)
    );
    let mask = diffedit.mask.unwrap();
    assert_eq!(
        mask.dims()[2..],
        optimised.mask.as_ref().unwrap().dims()[2..]
    );
}

/// An SDXL ControlNet (`addition_embed_type = "text_time"`) built from the
/// fixture UNet's own config, with random weights: the pooled embeddings
/// and size conditions reach it in every method, and its residuals steer
/// all three. An SD 1.x-style ControlNet of another width is refused with
/// a typed error naming the input, not a panic.
#[test]
fn an_sdxl_controlnet_steers_the_three_methods() {
    use optedit_edit::ControlCondition;
    use optedit_models::{ControlNetConfig, ControlNetModel};

    let p = pipeline();
    let device = Default::default();
    let mut unet = json("unet/config.json");
    // One conditioning-embedding level per VAE halving: condition images at
    // the input's size.
    let levels = p.vae_scale().trailing_zeros() as usize + 1;
    unet["conditioning_embedding_out_channels"] = serde_json::json!(vec![8; levels]);
    let config: ControlNetConfig = serde_json::from_value(unet).unwrap();
    assert!(
        config.added_conditions().is_some(),
        "a text_time ControlNet"
    );
    let net = ControlNetModel::<AD>::from_config(config, &device).unwrap();

    let src = p.encode_prompt("a red circle", None).unwrap();
    let prompt = p.encode_prompt("a blue square", None).unwrap();
    let editor = Editor::new(&p, config_with_steps()).unwrap();
    let x = image(&p);
    let [_, _, h, w] = x.dims();
    let hint = Tensor::<AD, 4>::random(
        [1, 3, h, w],
        burn::tensor::Distribution::Uniform(0.0, 1.0),
        &device,
    );
    let plain = EditCondition::text(prompt.clone());
    let steered = EditCondition::text(prompt.clone())
        .with_control(ControlCondition::new(&net, hint.clone()).with_scale(1.0));
    let mut mask = optedit_edit::FullMask;
    let (a, b, c) = three_methods(&editor, &x, &src, &plain, &mut mask);
    let (sa, sb, sc) = three_methods(&editor, &x, &src, &steered, &mut mask);
    for (name, plain, steered) in [
        ("optimise", &a, &sa),
        ("diffedit", &b, &sb),
        ("sdedit", &c, &sc),
    ] {
        let moved = mse(&plain.latent, &steered.latent);
        assert!(
            moved > 1e-8,
            "{name}: the ControlNet changed nothing ({moved})"
        );
    }

    // A ControlNet made for another UNet (the SD 1.x fixture's) is refused,
    // naming the input that does not fit.
    let sd = ControlNetModel::<AD>::load(&fixtures_dir().join("tiny-controlnet"), &device).unwrap();
    if sd.config.cross_attention_dim != p.unet.config.cross_attention_dim {
        let wrong = EditCondition::text(prompt)
            .with_control(ControlCondition::new(&sd, hint).with_scale(1.0));
        let err = editor.sdedit(x, &wrong, &mut Silent).unwrap_err();
        assert!(
            matches!(
                &err,
                EditError::Model(ModelError::InvalidInput { argument, .. })
                    if argument == "encoder_hidden_states" || argument == "controlnet_cond"
            ),
            "{err}"
        );
    }
}

/// The shared test config cut to two steps, one of them optimised once
/// (six edits run here).
fn config_with_steps() -> EditConfig {
    EditConfig {
        num_steps: 2,
        t_u: 1,
        k: 1,
        ..config()
    }
}
