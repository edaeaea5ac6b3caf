//! The quality bar of the model itself (issue 7): (a) plain text-to-image
//! samples of held-out single-object captions, judged by the classifier on
//! the whole image; (b) DDIM inversion and reconstruction of held-out world
//! images, PSNR vs the original. Both use the editor's building blocks
//! (a denoiser of `Editor::forward_pipeline` with `optedit_schedule::sample`;
//! `Editor::invert` / `Editor::reconstruct`), forward only on the inner
//! backend, so no autodiff bookkeeping piles up over hundreds of images.

use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use image::{DynamicImage, GrayImage, Luma, RgbImage};
use optedit_edit::{Denoiser, EditConfig, Editor, NoiseSource, ProgressEvent, SdPipeline, Stage};
use optedit_world::{mix, scene_seed, SampleOptions, SceneSpec, Split};
use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};
use crate::evaluate::{notify, Observer, RunEvent, Steps};
use crate::features::Judge;
use crate::grid::grid;
use crate::metrics::{mean, psnr};
use crate::output::{write_atomic, write_png};
use optedit_cond::image::{rgb_to_signed_tensor, tensor_to_rgb};

/// Held-out scene indices of quality samples start here, those of
/// reconstructions at `QUALITY_INDEX_BASE + 2^32`.
pub const QUALITY_INDEX_BASE: u64 = 1 << 61;

/// Options of the quality measures.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityOptions {
    /// Samples, and images reconstructed.
    pub count: usize,
    /// DDIM steps.
    pub steps: usize,
    /// Classifier-free guidance scale of the samples.
    pub guidance: f64,
    /// Inversion depth of the reconstruction, in (0, 1] (1: from the noisiest step).
    pub strength: f64,
    /// Seed of the samples' noise.
    pub seed: u64,
    /// Rows in the picture grids (0: none).
    pub grid: usize,
}

impl Default for QualityOptions {
    fn default() -> Self {
        Self {
            count: 100,
            steps: 50,
            guidance: 7.5,
            strength: 1.0,
            seed: 0,
            grid: 8,
        }
    }
}

/// Attribute accuracy of plain samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleQuality {
    /// Samples judged.
    pub count: usize,
    /// The object's shape judged as captioned.
    pub shape: f64,
    /// The object's colour judged as captioned.
    pub colour: f64,
    /// The figure's pose judged as captioned.
    pub pose: f64,
    /// Mean of the three.
    pub mean: f64,
    /// All three right.
    pub all: f64,
}

/// PSNR of DDIM inversion and reconstruction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconstructionQuality {
    /// Images.
    pub count: usize,
    /// Mean PSNR, dB.
    pub psnr_mean: f64,
    /// Lowest PSNR, dB.
    pub psnr_min: f64,
    /// Mean PSNR of the VAE alone (encode, decode): the ceiling.
    pub vae_psnr_mean: f64,
}

/// `quality.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    /// DDIM steps.
    pub steps: usize,
    /// Guidance scale of the samples.
    pub guidance: f64,
    /// Inversion depth.
    pub strength: f64,
    /// Seed.
    pub seed: u64,
    /// Plain samples.
    pub samples: SampleQuality,
    /// Reconstructions.
    pub reconstruction: ReconstructionQuality,
}

impl QualityReport {
    /// A markdown table of the report.
    pub fn markdown(&self) -> String {
        let s = &self.samples;
        let r = &self.reconstruction;
        format!(
            "| measure | value |\n|---|---|\n\
             | sample shape accuracy ({n} samples, {steps} DDIM steps, CFG {g}) | {:.1} % |\n\
             | sample colour accuracy | {:.1} % |\n\
             | sample pose accuracy | {:.1} % |\n\
             | sample mean attribute accuracy | {:.1} % |\n\
             | samples with all attributes right | {:.1} % |\n\
             | inversion + reconstruction PSNR ({m} images, strength {st}) | {:.2} dB (min {:.2}) |\n\
             | VAE round-trip PSNR | {:.2} dB |\n",
            100.0 * s.shape,
            100.0 * s.colour,
            100.0 * s.pose,
            100.0 * s.mean,
            100.0 * s.all,
            r.psnr_mean,
            r.psnr_min,
            r.vae_psnr_mean,
            n = s.count,
            steps = self.steps,
            g = self.guidance,
            m = r.count,
            st = self.strength,
        )
    }
}

fn check(options: &QualityOptions) -> Result<()> {
    if options.count == 0 {
        return Err(EvalError::argument("count", "must be at least 1"));
    }
    Ok(())
}

fn stage_event(stage: Stage, step: usize, total: usize) -> ProgressEvent {
    ProgressEvent {
        stage,
        step,
        total,
        timestep: None,
        loss: None,
    }
}

/// Generates one sample per held-out single-object caption and judges it on
/// the whole image. Returns the accuracies and (sample, real render) pairs.
pub fn sample_quality<B: AutodiffBackend>(
    pipeline: &SdPipeline<B>,
    judge: &Judge<B::InnerBackend>,
    options: &QualityOptions,
    observer: &mut dyn Observer,
) -> Result<(SampleQuality, Vec<(RgbImage, RgbImage)>)> {
    check(options)?;
    let config = EditConfig {
        num_steps: options.steps,
        guidance_scale: options.guidance,
        strength: 1.0,
        ..EditConfig::default()
    };
    let editor = Editor::new(pipeline, config)?;
    let (mut hits, mut all_right, mut pairs) = ([0usize; 3], 0usize, Vec::new());
    for i in 0..options.count {
        let seed = scene_seed(Split::HeldOut, QUALITY_INDEX_BASE + i as u64);
        let spec = SceneSpec::sample_with(seed, &SampleOptions { objects: Some(1) })?;
        let id = format!("sample-{:04}", i + 1);
        notify(observer, RunEvent::Item { index: i, id: &id })?;
        let forward = editor.forward_pipeline();
        let prompt = forward.encode_prompt(&spec.caption(), None)?;
        let denoiser = Denoiser::for_prompt(forward, &prompt, options.guidance, Vec::new());
        let real = spec.render().image;
        let [lh, lw] = pipeline.latent_size(real.height() as usize, real.width() as usize);
        let channels = pipeline.vae.config.latent_channels;
        let noise = NoiseSource::new(mix(&[options.seed, i as u64]))
            .normal([1, channels, lh, lw], &pipeline.device);
        let mut scheduler = editor.scheduler().clone();
        let mut predict = optedit_schedule::fallible(|z: Tensor<B::InnerBackend, 4>, t: usize| {
            denoiser.predict(z, t, 0, 1)
        });
        let mut cancelled = false;
        let mut steps = Steps(&mut *observer);
        let mut progress = |step: usize, total: usize| {
            cancelled |= optedit_edit::Progress::report(
                &mut steps,
                &stage_event(Stage::Denoise, step + 1, total),
            )
            .is_break();
        };
        let trajectory = optedit_schedule::sample(
            &mut scheduler,
            &mut predict,
            noise,
            options.steps,
            Some(&mut progress),
        )?;
        if cancelled {
            return Err(EvalError::Cancelled);
        }
        let sample = tensor_to_rgb(forward.decode_latent(trajectory.last().clone())?)?;
        let full = GrayImage::from_pixel(sample.width(), sample.height(), Luma([255]));
        let j = &judge.judge(&[&sample], &[&full])[0];
        let o = &spec.objects[0];
        let right = [
            j.shape == o.shape.index(),
            j.colour == o.colour.index(),
            j.pose == spec.figure.pose.index(),
        ];
        for (h, r) in hits.iter_mut().zip(right) {
            *h += usize::from(r);
        }
        all_right += usize::from(right.iter().all(|&r| r));
        if i < options.grid {
            pairs.push((sample, real));
        }
        notify(
            observer,
            RunEvent::Finished {
                index: i,
                record: None,
            },
        )?;
    }
    let n = options.count as f64;
    let rate = |k: usize| hits[k] as f64 / n;
    Ok((
        SampleQuality {
            count: options.count,
            shape: rate(0),
            colour: rate(1),
            pose: rate(2),
            mean: (rate(0) + rate(1) + rate(2)) / 3.0,
            all: all_right as f64 / n,
        },
        pairs,
    ))
}

/// Inverts held-out world images with DDIM under their caption (guidance 1)
/// and reconstructs them; PSNR vs the original over the whole image. Returns
/// the measures and (original, reconstruction) pairs.
pub fn reconstruction_quality<B: AutodiffBackend>(
    pipeline: &SdPipeline<B>,
    options: &QualityOptions,
    observer: &mut dyn Observer,
) -> Result<(ReconstructionQuality, Vec<(RgbImage, RgbImage)>)> {
    check(options)?;
    let config = EditConfig {
        num_steps: options.steps,
        strength: options.strength,
        ..EditConfig::default()
    };
    let editor = Editor::new(pipeline, config)?;
    let (mut psnrs, mut vae, mut pairs) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..options.count {
        let spec = SceneSpec::sample(scene_seed(
            Split::HeldOut,
            QUALITY_INDEX_BASE + (1 << 32) + i as u64,
        ));
        let id = format!("reconstruction-{:04}", i + 1);
        notify(observer, RunEvent::Item { index: i, id: &id })?;
        let original = spec.render().image;
        let source = editor.encode_prompt(&spec.caption(), None)?;
        let z0 = editor.encode(rgb_to_signed_tensor::<B>(&original, &pipeline.device))?;
        vae.push(psnr(&original, &tensor_to_rgb(editor.decode(z0.clone())?)?));
        let mut steps = Steps(&mut *observer);
        let inversion = editor.invert(z0, &source, &mut steps)?;
        let trajectory = editor.reconstruct(&inversion, &source, &mut steps)?;
        let recon = tensor_to_rgb(editor.decode(trajectory.last().clone())?)?;
        psnrs.push(psnr(&original, &recon));
        if i < options.grid {
            pairs.push((original, recon));
        }
        notify(
            observer,
            RunEvent::Finished {
                index: i,
                record: None,
            },
        )?;
    }
    Ok((
        ReconstructionQuality {
            count: options.count,
            psnr_mean: mean(psnrs.iter().copied()).unwrap_or(f64::NAN),
            psnr_min: psnrs.iter().copied().fold(f64::INFINITY, f64::min),
            vae_psnr_mean: mean(vae).unwrap_or(f64::NAN),
        },
        pairs,
    ))
}

/// Both measures; with `out`, writes `quality.json`, `quality.md`,
/// `samples.png` (sample | real render of its caption) and
/// `reconstructions.png` (original | reconstruction) there, atomically.
pub fn quality<B: AutodiffBackend>(
    pipeline: &SdPipeline<B>,
    judge: &Judge<B::InnerBackend>,
    options: &QualityOptions,
    out: Option<&Path>,
    observer: &mut dyn Observer,
) -> Result<QualityReport> {
    check(options)?;
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).map_err(crate::error::io(dir))?;
    }
    notify(
        observer,
        RunEvent::Started {
            total: 2 * options.count,
            done: 0,
        },
    )?;
    let (samples, sample_pairs) = sample_quality(pipeline, judge, options, observer)?;
    let (reconstruction, recon_pairs) = reconstruction_quality(pipeline, options, observer)?;
    let report = QualityReport {
        steps: options.steps,
        guidance: options.guidance,
        strength: options.strength,
        seed: options.seed,
        samples,
        reconstruction,
    };
    if let Some(dir) = out {
        write_atomic(
            &dir.join("quality.json"),
            serde_json::to_string_pretty(&report)
                .expect("serialises")
                .as_bytes(),
        )?;
        write_atomic(&dir.join("quality.md"), report.markdown().as_bytes())?;
        for (name, pairs) in [
            ("samples.png", sample_pairs),
            ("reconstructions.png", recon_pairs),
        ] {
            if !pairs.is_empty() {
                let rows: Vec<Vec<RgbImage>> = pairs.into_iter().map(|(a, b)| vec![a, b]).collect();
                write_png(&dir.join(name), &DynamicImage::ImageRgb8(grid(&rows)))?;
            }
        }
    }
    Ok(report)
}
