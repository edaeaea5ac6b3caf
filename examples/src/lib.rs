//! Shared set-up of optedit's runnable examples (see `examples/`): every
//! example runs on the tiny fixture models of `tests/fixtures` without any
//! download, and takes a real SD 1.5 folder as its first argument instead.
//!
//! With the tiny models (random weights) the images are noise-like: the
//! examples show the API and every code path, not edit quality.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};

use burn::tensor::{backend::Backend, Tensor};
use optedit_edit::EditConfig;

/// The SD folder: the first command-line argument, or the tiny fixture model.
pub fn model_dir() -> PathBuf {
    std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| optedit_fixtures::fixtures_dir().join("tiny-sd"))
}

/// A ControlNet folder: the second argument, or the tiny fixture ControlNet.
pub fn controlnet_dir() -> PathBuf {
    std::env::args()
        .nth(2)
        .map(PathBuf::from)
        .unwrap_or_else(|| optedit_fixtures::fixtures_dir().join("tiny-controlnet"))
}

/// Whether the examples run on the tiny fixture model.
pub fn is_tiny() -> bool {
    std::env::args().nth(1).is_none()
}

/// A quick config on the tiny model, the defaults on a real one.
pub fn example_config() -> EditConfig {
    if is_tiny() {
        EditConfig {
            num_steps: 10,
            t_u: 3,
            k: 2,
            ..EditConfig::default()
        }
    } else {
        EditConfig::default()
    }
}

/// A test image `[1, 3, size, size]` in `[-1, 1]`: the fixture's VAE input on
/// the tiny model, a smooth gradient pattern at other sizes.
pub fn input_image<B: Backend>(size: usize, device: &B::Device) -> Tensor<B, 4> {
    let golden = optedit_fixtures::fixtures_dir().join("golden/vae_encode.safetensors");
    if is_tiny() && golden.is_file() {
        let g = optedit_fixtures::Golden::open(&golden);
        let t = g.get("input.image");
        if t.shape == [1, 3, size, size] {
            return t.tensor(device);
        }
    }
    let values: Vec<f32> = (0..3 * size * size)
        .map(|i| {
            let (c, y, x) = (i / (size * size), (i / size) % size, i % size);
            ((x + y * (c + 1)) as f32 / size as f32 * std::f32::consts::PI).sin()
        })
        .collect();
    Tensor::from_data(
        burn::tensor::TensorData::new(values, [1, 3, size, size]),
        device,
    )
}

/// Image size the model was trained at (`8 * unet sample_size`, 512 for SD 1.5).
pub fn image_size<B: Backend>(pipeline: &optedit_edit::SdPipeline<B>) -> usize {
    let s = match &pipeline.unet.config.sample_size {
        Some(optedit_models::config::IntOrList::Int(v)) => *v,
        Some(optedit_models::config::IntOrList::List(v)) => v[0],
        None => 64,
    };
    s * pipeline.vae_scale()
}

/// Writes a `[1, 3, H, W]` tensor in `[-1, 1]` as a PNG.
pub fn save_png<B: Backend>(
    image: &Tensor<B, 4>,
    path: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    optedit_cond::image::tensor_to_rgb(image.clone())?.save(path)?;
    Ok(())
}

/// A progress printer for the examples: one line per stage end, and the
/// loss of the last gradient step of each optimised timestep.
pub fn print_progress(e: &optedit_edit::ProgressEvent) -> std::ops::ControlFlow<()> {
    if let Some(l) = &e.loss {
        eprintln!(
            "  {:>8} t={:>4?} iter {} loss {:.5}",
            e.stage.to_string(),
            e.timestep,
            l.iteration,
            l.total
        );
    } else if e.step == e.total {
        eprintln!("{} done ({} steps)", e.stage, e.total);
    }
    std::ops::ControlFlow::Continue(())
}

/// The shipped demo pipeline folder (`models/optedit-demo` in the repository).
pub fn demo_model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/optedit-demo")
}

/// Dilates a binary mask by `r` pixels (square neighbourhood).
pub fn dilate(mask: &image::GrayImage, r: u32) -> image::GrayImage {
    let (w, h) = mask.dimensions();
    let r = r as i64;
    image::GrayImage::from_fn(w, h, |x, y| {
        let hit = ((y as i64 - r).max(0)..=(y as i64 + r).min(h as i64 - 1)).any(|yy| {
            ((x as i64 - r).max(0)..=(x as i64 + r).min(w as i64 - 1))
                .any(|xx| mask.get_pixel(xx as u32, yy as u32)[0] > 127)
        });
        image::Luma([if hit { 255 } else { 0 }])
    })
}

/// Peak resident memory of this process so far, KiB (`VmHWM` of
/// `/proc/self/status`; 0 where that file does not exist).
pub fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
