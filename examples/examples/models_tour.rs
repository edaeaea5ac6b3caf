//! A tour of the four Stable Diffusion 1.5 models on a diffusers folder:
//! encode an image with the VAE, encode token ids with CLIP, run the ControlNet
//! and the UNet one step, decode again.
//!
//! ```text
//! cargo run --release -p optedit-examples --example models_tour
//! cargo run --release -p optedit-examples --example models_tour -- /path/to/sd15 /path/to/controlnet
//! ```
//!
//! Without arguments it uses the tiny models of `tests/fixtures` (random
//! weights, so the numbers mean nothing, but every code path runs). With a
//! real SD 1.5 folder (`unet/`, `vae/`, `text_encoder/` with safetensors
//! weights) and optionally a ControlNet v1.1 folder it runs at full size.

use std::path::PathBuf;
use std::time::Instant;

use burn::backend::Flex;
use burn::tensor::{backend::Backend, Distribution, Int, Tensor};
use optedit_models::{AutoencoderKL, ClipTextModel, ControlNetModel, UNet2DConditionModel};

type B = Flex;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let fixtures = optedit_fixtures::fixtures_dir();
    let sd = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| fixtures.join("tiny-sd"));
    let cn = args.next().map(PathBuf::from).or_else(|| {
        let p = fixtures.join("tiny-controlnet");
        p.is_dir().then_some(p)
    });
    let device = Default::default();

    let t0 = Instant::now();
    let vae = AutoencoderKL::<B>::load(&sd.join("vae"), &device)?;
    let clip = ClipTextModel::<B>::load(&sd.join("text_encoder"), &device)?;
    let unet = UNet2DConditionModel::<B>::load(&sd.join("unet"), &device)?;
    println!("loaded {} in {:.2?}", sd.display(), t0.elapsed());

    // The UNet's native latent size times the VAE's down-sampling factor.
    let vae_factor = 1usize << (vae.config.block_out_channels.len() - 1);
    let size = vae_factor
        * unet.config.sample_size.as_ref().map_or(64, |s| match s {
            optedit_models::config::IntOrList::Int(v) => *v,
            optedit_models::config::IntOrList::List(v) => v[0],
        });
    B::seed(&device, 0);
    let image = Tensor::<B, 4>::random(
        [1, 3, size, size],
        Distribution::Uniform(-1.0, 1.0),
        &device,
    );
    let dist = vae.encode(image)?;
    let z0 = dist.mean.clone().mul_scalar(vae.scaling_factor());
    println!("image {size}x{size} -> latent {:?}", z0.dims());

    // Token ids of "<|startoftext|> a photo <|endoftext|>" padded to the text
    // encoder's positions (77; the tokenizer lives in optedit-cond).
    let tokens = clip.config.max_position_embeddings;
    let mut ids = vec![49406i64, 320, 1125];
    ids.resize(tokens, 49407);
    let ids =
        Tensor::<B, 2, Int>::from_data(burn::tensor::TensorData::new(ids, [1, tokens]), &device);
    let text = clip.forward(ids)?;
    println!("text embedding {:?}", text.last_hidden_state.dims());

    let t = Tensor::<B, 1>::from_data([500.0f32].as_slice(), &device);
    let residuals = match &cn {
        Some(dir) => {
            let controlnet = ControlNetModel::<B>::load(dir, &device)?;
            let cond = Tensor::<B, 4>::random(
                [1, 3, size, size],
                Distribution::Uniform(0.0, 1.0),
                &device,
            );
            Some(controlnet.forward(
                z0.clone(),
                t.clone(),
                text.last_hidden_state.clone(),
                cond,
                1.0,
            )?)
        }
        None => None,
    };
    let t1 = Instant::now();
    let eps =
        unet.forward_with_residuals(z0.clone(), t, text.last_hidden_state, residuals.as_ref())?;
    println!(
        "unet eps {:?} in {:.2?} (controlnet: {})",
        eps.dims(),
        t1.elapsed(),
        cn.is_some()
    );

    let image = vae.decode(z0.div_scalar(vae.scaling_factor()))?;
    println!("decoded {:?}", image.dims());
    Ok(())
}
