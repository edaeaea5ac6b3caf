//! Saving: a model written by `save_weights` has exactly the tensor names,
//! shapes and values of the diffusers file it was loaded from, loads back
//! strictly, and `ControlNetModel::from_unet` starts as a copy with zero
//! outputs.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::{Distribution, Tensor};
use optedit_fixtures::{fixtures_dir, FixtureShapes, TestBackend as B};
use optedit_models::{
    AddedConditions, AutoencoderKL, ClipTextModel, ControlNetConfig, ControlNetModel,
    UNet2DConditionModel, WeightPrecision,
};

/// name -> (shape, values as f32)
fn tensors(path: &Path) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            let values: Vec<f32> = match view.dtype() {
                safetensors::Dtype::F32 => view
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                safetensors::Dtype::F16 => view
                    .data()
                    .chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
                other => panic!("{name}: unexpected dtype {other:?}"),
            };
            (name, (view.shape().to_vec(), values))
        })
        .collect()
}

/// The saved file holds the same names and shapes as the original and values
/// within `tol` (0 for f32: a bit-exact round trip).
fn assert_same_file(original: &Path, saved: &Path, tol: f32) {
    let a = tensors(original);
    let b = tensors(saved);
    let extra: Vec<_> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    let missing: Vec<_> = a
        .keys()
        .filter(|k| !b.contains_key(*k) && !k.ends_with("position_ids"))
        .collect();
    assert!(extra.is_empty(), "saved but not in the original: {extra:?}");
    assert!(
        missing.is_empty(),
        "in the original but not saved: {missing:?}"
    );
    for (name, (shape, values)) in &b {
        let (oshape, ovalues) = &a[name];
        assert_eq!(shape, oshape, "{name}: shape");
        let worst = values
            .iter()
            .zip(ovalues)
            .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
            .fold(0.0f32, f32::max);
        assert!(worst <= tol, "{name}: differs by {worst} (tolerance {tol})");
    }
}

#[test]
fn unet_round_trips_bit_exact_and_in_f16() {
    unet_round_trip(&fixtures_dir().join("tiny-sd/unet"));
}

/// A UNet with a text-time embedding (`add_embedding.*`, including the raw
/// `positional_embedding` tensor), built from the fixture UNet's config
/// with random weights, saves and loads back bit for bit.
#[test]
fn text_time_unet_round_trips_bit_exact_and_in_f16() {
    let text = std::fs::read_to_string(fixtures_dir().join("tiny-sd/unet/config.json")).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Up to 4 heads, as many as divide the text width.
    let width = config["cross_attention_dim"].as_u64().unwrap();
    let heads = (1..=4).rev().find(|h| width % h == 0).unwrap();
    config["addition_embed_type"] = "text".into();
    config["addition_embed_type_num_heads"] = heads.into();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("unet");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let device = Default::default();
    let unet =
        UNet2DConditionModel::<B>::from_config_file(&dir.join("config.json"), &device).unwrap();
    assert!(unet.add_embedding.is_some());
    unet.save_weights(&dir, WeightPrecision::F32).unwrap();
    unet_round_trip(&dir);
}

/// SDXL's UNet (`add_embedding.linear_*` of the `text_time` addition,
/// transformer layers per block) saves under diffusers' names.
#[test]
fn sdxl_unet_round_trips_bit_exact_and_in_f16() {
    unet_round_trip(&fixtures_dir().join("tiny-sdxl/unet"));
}

fn unet_round_trip(dir: &Path) {
    let device = Default::default();
    let unet = UNet2DConditionModel::<B>::load(dir, &device).unwrap();
    let out = tempfile::tempdir().unwrap();
    let saved = unet.save_weights(out.path(), WeightPrecision::F32).unwrap();
    assert_same_file(
        &dir.join("diffusion_pytorch_model.safetensors"),
        &saved,
        0.0,
    );

    let half_dir = out.path().join("half");
    let saved16 = unet.save_weights(&half_dir, WeightPrecision::F16).unwrap();
    assert!(std::fs::metadata(&saved16).unwrap().len() < std::fs::metadata(&saved).unwrap().len());
    assert_same_file(
        &dir.join("diffusion_pytorch_model.safetensors"),
        &saved16,
        1e-3,
    );
    std::fs::copy(dir.join("config.json"), half_dir.join("config.json")).unwrap();
    let back = UNet2DConditionModel::<B>::load(&half_dir, &device).unwrap();
    // The smallest latent every level of this UNet takes, and the fixture
    // text encoder's token count.
    let side = 1 << (unet.config.block_out_channels.len() - 1);
    let [b, c, h, w] = [1, unet.config.in_channels, side, side];
    let x = Tensor::<B, 4>::random([b, c, h, w], Distribution::Normal(0.0, 1.0), &device);
    let ctx = Tensor::<B, 3>::random(
        [
            1,
            FixtureShapes::read().tokens,
            unet.config.cross_attention_dim,
        ],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let t = Tensor::<B, 1>::from_floats([500.0], &device);
    // SDXL's added conditions where the UNet takes them.
    let added = unet.config.added_conditions().map(|dims| AddedConditions {
        text_embeds: Tensor::random(
            [1, dims.text_embeds],
            Distribution::Normal(0.0, 1.0),
            &device,
        ),
        time_ids: Tensor::from_floats([[1024.0, 768.0, 16.0, 8.0, 1024.0, 1024.0]], &device),
    });
    let y0 = unet
        .forward_with_conditions(x.clone(), t.clone(), ctx.clone(), added.as_ref(), None)
        .unwrap();
    let y1 = back
        .forward_with_conditions(x, t, ctx, added.as_ref(), None)
        .unwrap();
    let err = (y0.clone() - y1).abs().max().into_scalar();
    let scale = y0.abs().max().into_scalar();
    assert!(
        err <= 2e-2 * scale,
        "f16 round trip moved the output by {err} (scale {scale})"
    );
}

#[test]
fn vae_clip_controlnet_round_trip_bit_exact() {
    let root = fixtures_dir();
    let device = Default::default();
    let out = tempfile::tempdir().unwrap();

    let vae = AutoencoderKL::<B>::load(&root.join("tiny-sd/vae"), &device).unwrap();
    let saved = vae
        .save_weights(&out.path().join("vae"), WeightPrecision::F32)
        .unwrap();
    assert_same_file(
        &root.join("tiny-sd/vae/diffusion_pytorch_model.safetensors"),
        &saved,
        0.0,
    );

    let clip = ClipTextModel::<B>::load(&root.join("tiny-sd/text_encoder"), &device).unwrap();
    let saved = clip
        .save_weights(&out.path().join("te"), WeightPrecision::F32)
        .unwrap();
    // transformers 5 writes the tensors without the `text_model.` prefix; we
    // write the layout of released SD 1.5 folders, which both load.
    let with_prefix: BTreeMap<_, _> = tensors(&root.join("tiny-sd/text_encoder/model.safetensors"))
        .into_iter()
        .map(|(k, v)| {
            if k.starts_with("text_model.") {
                (k, v)
            } else {
                (format!("text_model.{k}"), v)
            }
        })
        .collect();
    let ours = tensors(&saved);
    assert_eq!(
        with_prefix
            .keys()
            .filter(|k| !k.ends_with("position_ids"))
            .collect::<Vec<_>>(),
        ours.keys().collect::<Vec<_>>()
    );
    for (k, v) in &ours {
        assert_eq!(v, &with_prefix[k], "{k}");
    }

    let cn_dir = root.join("tiny-controlnet");
    let cn = ControlNetModel::<B>::load(&cn_dir, &device).unwrap();
    let saved = cn
        .save_weights(&out.path().join("cn"), WeightPrecision::F32)
        .unwrap();
    assert_same_file(
        &cn_dir.join("diffusion_pytorch_model.safetensors"),
        &saved,
        0.0,
    );
}

/// Random ControlNet inputs shaped by its config: a latent of the smallest
/// size every level takes, a context as wide as `cross_attention_dim` with
/// the fixture text encoder's token count, and a conditioning image as much
/// larger than the latent as the conditioning embedding down-samples.
fn controlnet_inputs<Bk: burn::tensor::backend::Backend>(
    config: &ControlNetConfig,
    device: &Bk::Device,
) -> (Tensor<Bk, 4>, Tensor<Bk, 3>, Tensor<Bk, 4>) {
    let side = 1 << (config.block_out_channels.len() - 1);
    let factor = 1 << (config.conditioning_embedding_out_channels.len() - 1);
    let tokens = FixtureShapes::read().tokens;
    let normal = Distribution::Normal(0.0, 1.0);
    (
        Tensor::random([1, config.in_channels, side, side], normal, device),
        Tensor::random([1, tokens, config.cross_attention_dim], normal, device),
        Tensor::random(
            [
                1,
                config.conditioning_channels,
                side * factor,
                side * factor,
            ],
            Distribution::Uniform(0.0, 1.0),
            device,
        ),
    )
}

#[test]
fn controlnet_from_unet_copies_the_encoder_and_starts_at_zero() {
    let root = fixtures_dir();
    let device = Default::default();
    let unet = UNet2DConditionModel::<B>::load(&root.join("tiny-sd/unet"), &device).unwrap();
    let text = std::fs::read_to_string(root.join("tiny-controlnet/config.json")).unwrap();
    let config: ControlNetConfig = serde_json::from_str(&text).unwrap();
    let cn = ControlNetModel::<B>::from_unet(&unet, config, &device).unwrap();
    let out = tempfile::tempdir().unwrap();
    let u = tensors(
        &unet
            .save_weights(&out.path().join("u"), WeightPrecision::F32)
            .unwrap(),
    );
    let c = tensors(
        &cn.save_weights(&out.path().join("c"), WeightPrecision::F32)
            .unwrap(),
    );
    let mut copied = 0;
    for (name, value) in &c {
        if let Some(orig) = u.get(name) {
            assert_eq!(value, orig, "{name} was not copied");
            copied += 1;
        } else if name.starts_with("controlnet_down_blocks")
            || name.starts_with("controlnet_mid_block")
        {
            assert!(value.1.iter().all(|v| *v == 0.0), "{name} is not zero");
        }
    }
    let encoder = u
        .keys()
        .filter(|k| {
            ["conv_in", "time_embedding", "down_blocks", "mid_block"]
                .iter()
                .any(|p| k.starts_with(p))
        })
        .count();
    assert_eq!(copied, encoder);

    let (x, ctx, cond) = controlnet_inputs::<B>(&cn.config, &device);
    let t = Tensor::<B, 1>::from_floats([300.0], &device);
    let res = cn.forward(x, t, ctx, cond, 1.0).unwrap();
    for d in res.down.iter().chain(std::iter::once(&res.mid)) {
        assert_eq!(d.clone().abs().max().into_scalar(), 0.0);
    }
}

/// The zero convolutions start at zero but train: on an autodiff backend a
/// loss on the residuals gives them gradients (a ControlNet whose zero
/// convolutions lost their gradient flag would never learn).
#[test]
fn controlnet_zero_convolutions_take_gradients() {
    use burn::module::Module;
    use optedit_fixtures::TestAutodiffBackend as A;
    let root = fixtures_dir();
    let device = Default::default();
    let unet = UNet2DConditionModel::<A>::load(&root.join("tiny-sd/unet"), &device).unwrap();
    let text = std::fs::read_to_string(root.join("tiny-controlnet/config.json")).unwrap();
    let config: ControlNetConfig = serde_json::from_str(&text).unwrap();
    let cn = ControlNetModel::<A>::from_unet(&unet, config, &device).unwrap();
    let (x, ctx, cond) = controlnet_inputs::<A>(&cn.config, &device);
    let t = Tensor::<A, 1>::from_floats([300.0], &device);
    let res = cn.forward(x, t, ctx, cond, 1.0).unwrap();
    let loss = res
        .down
        .into_iter()
        .chain(std::iter::once(res.mid))
        .map(|d| (d - 1.0).powi_scalar(2).mean())
        .reduce(|a, b| a + b)
        .unwrap();
    let grads = loss.backward();
    let mut zero_convs = cn.controlnet_down_blocks.clone();
    zero_convs.push(cn.controlnet_mid_block.clone());
    for (i, conv) in zero_convs.iter().enumerate() {
        let g = conv
            .weight
            .grad(&grads)
            .unwrap_or_else(|| panic!("zero convolution {i} has no weight gradient"));
        assert!(g.abs().max().into_scalar() > 0.0, "zero convolution {i}");
        let b = conv.bias.as_ref().unwrap().grad(&grads);
        assert!(b.is_some(), "zero convolution {i} has no bias gradient");
    }
    assert!(cn.num_params() > 0);
}
