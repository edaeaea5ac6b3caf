//! `optedit-train`: trains the demo model stage by stage and exports it.

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::AutodiffBackend;
use clap::{Parser, Subcommand, ValueEnum};
use optedit_cond::ClipTokenizer;
use optedit_train::conditions::ControlKind;
use optedit_train::export::{export, DemoParts};
use optedit_train::stages::{classifier, controlnet, latents, text_to_image, vae, StageOptions};

/// Train optedit's demo latent diffusion model on the procedural world.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Run folder: checkpoints, loss logs and the encoded latents go here.
    #[arg(long, default_value = "target/demo-train")]
    dir: PathBuf,
    /// CLIP tokenizer folder (vocab.json, merges.txt).
    #[arg(long, default_value = "tests/fixtures/tiny-sd/tokenizer")]
    tokenizer: PathBuf,
    /// Base seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to train.
    #[arg(long, value_enum, default_value_t = DeviceKind::Cpu)]
    device: DeviceKind,
    #[command(subcommand)]
    stage: Stage,
}

#[derive(clap::Args, Clone)]
struct Opts {
    /// Total optimiser steps (a resumed run continues up to this).
    #[arg(long)]
    steps: usize,
    /// Samples per step.
    #[arg(long)]
    batch: usize,
    /// Peak learning rate.
    #[arg(long)]
    lr: f64,
    /// Linear warm-up steps.
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    /// Checkpoint interval in steps.
    #[arg(long, default_value_t = 100)]
    checkpoint_every: usize,
    /// Stop this invocation at this step (resume later with the same --steps).
    #[arg(long)]
    stop_at: Option<usize>,
    /// Wall-clock budget in seconds for a fresh run: the warm-up is timed
    /// and --steps lowered to what fits (the chosen total is printed).
    #[arg(long, value_name = "SECONDS")]
    time_budget: Option<u64>,
    /// UNet and ControlNet stages: floor on the x0-error weight of the
    /// min-SNR-5 loss (0: plain min-SNR-5; 1 weighs the noisiest steps'
    /// x0 errors as much as a signal-to-noise ratio of 1).
    #[arg(long, default_value_t = 0.0, value_name = "W")]
    x0_weight_floor: f64,
    /// UNet and ControlNet stages: standard deviation of offset noise, a
    /// constant per sample and channel added to the training noise (about
    /// 0.1 hides the image mean that SD's schedule leaves visible; 0: none).
    #[arg(long, default_value_t = 0.0, value_name = "S")]
    offset_noise: f64,
    /// UNet and ControlNet stages: discount of multi-resolution (pyramid)
    /// noise, Gaussian noise at every coarser block scale weighted by
    /// D^level and rescaled to unit variance (hides block means as well as
    /// the image mean; 0: none).
    #[arg(long, default_value_t = 0.0, value_name = "D")]
    pyramid_noise: f64,
    /// UNet and ControlNet stages: weigh each latent pixel's squared error
    /// by 1 + W x the part of it covered by an object or the figure, so
    /// that shapes and limbs count for more than the background (0: the
    /// plain loss).
    #[arg(long, default_value_t = 0.0, value_name = "W")]
    foreground_weight: f64,
    /// Split each batch into this many shards computed on parallel threads
    /// (data parallelism; on a CPU, the number of cores). Divides --batch.
    #[arg(long, default_value_t = 1)]
    shards: usize,
    /// Keep every checkpoint's model record (not only the last), so that
    /// `export --average-last K` can average the last K.
    #[arg(long)]
    keep_checkpoints: bool,
}

/// The backend to train on.
#[derive(Clone, Copy, ValueEnum)]
enum DeviceKind {
    /// The CPU (burn's Flex backend).
    Cpu,
    /// An NVIDIA GPU (burn's CUDA backend; needs a build with `--features cuda`).
    Cuda,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// OpenPose rendering of the figure's keypoints (`controlnet-pose/`).
    Pose,
    /// Canny edges of the scene (`controlnet-canny/`).
    Canny,
    /// Objects' outlines and the stick figure, white on black (`controlnet-scribble/`).
    Scribble,
    /// Flat-colour semantic map of objects and figure (`controlnet-layout/`).
    Layout,
}

#[derive(Subcommand)]
enum Stage {
    /// Stage 1: the VAE.
    Vae {
        #[command(flatten)]
        opts: Opts,
        /// Crop side.
        #[arg(long, default_value_t = 64)]
        crop: u32,
    },
    /// Stage 2: encode training scenes with the trained VAE.
    Latents {
        /// Number of scenes.
        #[arg(long, default_value_t = 6000)]
        count: usize,
        /// Take the VAE from this pipeline folder (DIR/vae) instead of the
        /// run's checkpoint.
        #[arg(long, value_name = "DIR")]
        vae_from: Option<PathBuf>,
    },
    /// Stage 3: UNet + text encoder.
    Unet {
        #[command(flatten)]
        opts: Opts,
        /// Start a fresh run from the UNet and text encoder of this pipeline
        /// folder (an earlier export) instead of a random initialisation.
        #[arg(long, value_name = "DIR")]
        init_from: Option<PathBuf>,
        /// Give the UNet a text-time embedding with this many pooling heads
        /// (diffusers' `addition_embed_type = "text"`: the caption,
        /// attention-pooled, added to the time embedding, so every resnet
        /// sees it); grafted with a zero output onto an `--init-from` UNet
        /// that has none.
        #[arg(long, value_name = "HEADS")]
        text_time_heads: Option<usize>,
        /// Graft cross-attention onto every up level of the UNet that has
        /// none (on the demo UNet, the full-resolution one), with a zero
        /// output, so an `--init-from` model's predictions do not change at
        /// first; the encoder and the ControlNets keep their architecture.
        #[arg(long)]
        up_cross_attention: bool,
    },
    /// Stage 4: a ControlNet.
    Controlnet {
        /// Which condition.
        #[arg(long, value_enum)]
        kind: Kind,
        /// Train against the frozen UNet and text encoder of this pipeline
        /// folder (an earlier export, e.g. models/optedit-demo) instead of
        /// the run's UNet checkpoint.
        #[arg(long, value_name = "DIR")]
        unet_from: Option<PathBuf>,
        #[command(flatten)]
        opts: Opts,
    },
    /// Stage 5: the evaluation classifier.
    Classifier {
        #[command(flatten)]
        opts: Opts,
    },
    /// Report how much the text-to-image model uses its captions: the
    /// denoising loss under each scene's own caption, another scene's, the
    /// empty one, and the own caption with the objects' shapes or colours
    /// swapped (same latents, timesteps and noise).
    Probe {
        /// Probe the UNet and text encoder of this pipeline folder instead of
        /// the run's last checkpoint.
        #[arg(long, value_name = "DIR")]
        from: Option<PathBuf>,
        /// Number of encoded scenes probed.
        #[arg(long, default_value_t = 256)]
        count: usize,
        /// Scenes per forward pass.
        #[arg(long, default_value_t = 32)]
        batch: usize,
    },
    /// Report how much a ControlNet uses its condition: the denoising loss
    /// with each scene's own condition, another scene's, a black one, and
    /// of the UNet alone, under the own caption and the empty one (same
    /// latents, timesteps and noise; see
    /// `optedit_train::stages::controlnet::condition_probe`).
    ControlProbe {
        /// Which ControlNet.
        #[arg(long, value_enum)]
        kind: Kind,
        /// Probe the UNet, text encoder and ControlNet of this pipeline
        /// folder instead of the run's checkpoints.
        #[arg(long, value_name = "DIR")]
        from: Option<PathBuf>,
        /// With the run's ControlNet checkpoint: the UNet and text encoder
        /// of this pipeline folder instead of the run's.
        #[arg(long, value_name = "DIR", conflicts_with = "from")]
        unet_from: Option<PathBuf>,
        /// Number of encoded scenes probed.
        #[arg(long, default_value_t = 256)]
        count: usize,
        /// Scenes per forward pass.
        #[arg(long, default_value_t = 32)]
        batch: usize,
    },
    /// Report how visible the encoded scenes' coarse structure stays under
    /// the forward noise: the signal-to-noise ratio of the whole-image mean
    /// and of block means at several timesteps, under the demo schedule and
    /// under DDPM's linear betas (see `optedit_train::snr`).
    Snr {
        /// Side of the averaged blocks, in latent pixels (divides 32).
        #[arg(long, default_value_t = 4)]
        block: usize,
    },
    /// Write the pipeline folder from the last checkpoints.
    Export {
        /// Output folder.
        #[arg(long, default_value = "models/optedit-demo")]
        out: PathBuf,
        /// Take the VAE from this pipeline folder (DIR/vae) instead of the
        /// run's checkpoint.
        #[arg(long, value_name = "DIR")]
        vae_from: Option<PathBuf>,
        /// Export the mean of the last K kept UNet + text-encoder
        /// checkpoints (a run trained with --keep-checkpoints) instead of
        /// the last one.
        #[arg(long, value_name = "K")]
        average_last: Option<usize>,
        /// Take the UNet and text encoder from this pipeline folder instead
        /// of the run's checkpoint (a run that trained only ControlNets with
        /// `controlnet --unet-from DIR`).
        #[arg(long, value_name = "DIR", conflicts_with = "average_last")]
        unet_from: Option<PathBuf>,
    },
    /// Write only the classifier of the run's last checkpoint into a
    /// pipeline folder (`OUT/classifier/model.safetensors`), leaving the
    /// rest of the folder as it is, and print its held-out accuracy.
    ExportClassifier {
        /// Pipeline folder.
        #[arg(long, default_value = "models/optedit-demo")]
        out: PathBuf,
    },
}

fn stage_options(o: &Opts, seed: u64) -> StageOptions {
    StageOptions {
        x0_weight_floor: o.x0_weight_floor,
        offset_noise: o.offset_noise,
        pyramid_noise: o.pyramid_noise,
        foreground_weight: o.foreground_weight,
        shards: o.shards,
        keep_checkpoints: o.keep_checkpoints,
        steps: o.steps,
        batch: o.batch,
        lr: o.lr,
        warmup: o.warmup,
        seed,
        checkpoint_every: o.checkpoint_every,
        stop_at: o.stop_at,
        time_budget: o.time_budget.map(std::time::Duration::from_secs),
    }
}

fn kind(k: Kind) -> ControlKind {
    match k {
        Kind::Pose => ControlKind::Pose,
        Kind::Canny => ControlKind::Canny,
        Kind::Scribble => ControlKind::Scribble,
        Kind::Layout => ControlKind::Layout,
    }
}

fn main() -> Result<()> {
    optedit_models::allocator::tune_allocator();
    let cli = Cli::parse();
    match cli.device {
        DeviceKind::Cpu => run::<Autodiff<Flex>>(&cli, Default::default()),
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => {
            run::<Autodiff<burn::backend::Cuda>>(&cli, optedit_models::device::cuda()?)
        }
        #[cfg(not(feature = "cuda"))]
        DeviceKind::Cuda => anyhow::bail!(
            "--device cuda: this optedit-train was built without CUDA support; rebuild with `cargo build --release -p optedit-train --features cuda`"
        ),
    }
}

/// The VAE of the pipeline folder `from`, else of the run's checkpoint.
fn load_vae<B: AutodiffBackend>(
    dir: &std::path::Path,
    from: Option<&std::path::Path>,
    device: &B::Device,
) -> Result<optedit_models::AutoencoderKL<B::InnerBackend>> {
    Ok(match from {
        Some(p) => optedit_models::AutoencoderKL::load(&p.join("vae"), device)
            .with_context(|| format!("VAE of {}", p.display()))?,
        None => vae::load_trained::<B>(dir, device)?,
    })
}

/// The UNet and text encoder of the pipeline folder `from`, else of the
/// run's checkpoint.
fn load_text_to_image<B: AutodiffBackend>(
    dir: &std::path::Path,
    from: Option<&std::path::Path>,
    device: &B::Device,
) -> Result<text_to_image::TextToImage<B::InnerBackend>> {
    Ok(match from {
        Some(p) => text_to_image::TextToImage::<B::InnerBackend>::from_pipeline(p, device)
            .with_context(|| format!("UNet and text encoder of {}", p.display()))?,
        None => text_to_image::load_trained::<B>(dir, device)?,
    })
}

/// Runs the stage of `cli` on backend `B`.
fn run<B: AutodiffBackend>(cli: &Cli, device: B::Device) -> Result<()> {
    let dir = &cli.dir;
    let tokenizer = || {
        ClipTokenizer::from_dir(&cli.tokenizer)
            .with_context(|| format!("tokenizer {}", cli.tokenizer.display()))
    };
    let latent_set = || -> Result<latents::LatentSet> {
        latents::LatentSet::load(dir).context("no encoded latents: run the `latents` stage first")
    };
    match &cli.stage {
        Stage::Vae { opts, crop } => {
            let options = vae::VaeOptions {
                crop: *crop,
                ..Default::default()
            };
            vae::train::<B>(dir, &stage_options(opts, cli.seed), &options, &device)?;
        }
        Stage::Latents { count, vae_from } => {
            let model = load_vae::<B>(dir, vae_from.as_deref(), &device)?;
            let set = latents::encode(dir, &model, *count, cli.seed, &device)?;
            println!(
                "{} scenes encoded; scaling factor {:.5}",
                set.len(),
                set.scaling_factor
            );
        }
        Stage::Unet {
            opts,
            init_from,
            text_time_heads,
            up_cross_attention,
        } => {
            text_to_image::train::<B>(
                dir,
                &latent_set()?,
                &tokenizer()?,
                &stage_options(opts, cli.seed),
                init_from.as_deref(),
                &text_to_image::Grafts {
                    text_time_heads: *text_time_heads,
                    up_cross_attention: *up_cross_attention,
                },
                &device,
            )?;
        }
        Stage::Controlnet {
            kind: k,
            unet_from,
            opts,
        } => {
            let base = load_text_to_image::<B>(dir, unet_from.as_deref(), &device)?;
            controlnet::train::<B>(
                dir,
                kind(*k),
                &base,
                &latent_set()?,
                &tokenizer()?,
                &stage_options(opts, cli.seed),
                &device,
            )?;
        }
        Stage::Classifier { opts } => {
            let model = classifier::train::<B>(dir, &stage_options(opts, cli.seed), &device)?;
            let acc = classifier::held_out_accuracy(&model, 512, cli.seed, &device);
            println!("held-out accuracy: {}", serde_json::to_string(&acc)?);
        }
        Stage::Probe { from, count, batch } => {
            let model = load_text_to_image::<B>(dir, from.as_deref(), &device)?;
            let probe = text_to_image::caption_probe(
                &model,
                &latent_set()?,
                &tokenizer()?,
                *count,
                *batch,
                cli.seed,
                &device,
            )?;
            println!("caption probe: {}", serde_json::to_string(&probe)?);
        }
        Stage::ControlProbe {
            kind: k,
            from,
            unet_from,
            count,
            batch,
        } => {
            let kind = kind(*k);
            let base =
                load_text_to_image::<B>(dir, from.as_deref().or(unet_from.as_deref()), &device)?;
            let net = match from {
                Some(p) => {
                    let folder = p.join(kind.folder());
                    optedit_models::ControlNetModel::<B::InnerBackend>::load(&folder, &device)
                        .with_context(|| format!("ControlNet {}", folder.display()))?
                }
                None => controlnet::load_trained::<B>(dir, kind, &device)?,
            };
            let probe = controlnet::condition_probe(
                &base,
                &net,
                kind,
                &latent_set()?,
                &tokenizer()?,
                *count,
                *batch,
                cli.seed,
                &device,
            )?;
            println!("condition probe: {}", serde_json::to_string(&probe)?);
        }
        Stage::Snr { block } => {
            let set = latent_set()?;
            // DDPM's linear betas (diffusers' DDIMScheduler defaults) for comparison.
            let linear =
                optedit_schedule::NoiseSchedule::new(&optedit_schedule::SchedulerConfig::default());
            let steps = [999, 981, 900, 750, 500, 250];
            let v = optedit_train::snr::Variances::of(&set, *block)?;
            let demo = v.rows(&text_to_image::alphas_cumprod()?, &steps)?;
            let lin = v.rows(linear.alphas_cumprod(), &steps)?;
            let (image, blocks) = v.shares();
            println!(
                "share of the latent variance in the image means: {:.1}%, in {block}x{block} block means: {:.1}%",
                100.0 * image,
                100.0 * blocks
            );
            println!("| t | demo schedule: image mean | demo: {block}x{block} blocks | DDPM linear betas: image mean | linear: {block}x{block} blocks |");
            println!("|---|---|---|---|---|");
            for (d, l) in demo.iter().zip(&lin) {
                println!(
                    "| {} | {:.3} | {:.3} | {:.3} | {:.3} |",
                    d.timestep, d.image_mean, d.block_mean, l.image_mean, l.block_mean
                );
            }
        }
        Stage::ExportClassifier { out } => {
            let model = classifier::load_trained::<B>(dir, &device)?;
            let folder = out.join("classifier");
            std::fs::create_dir_all(&folder)
                .with_context(|| format!("creating {}", folder.display()))?;
            // Written beside the target and renamed, so a failure leaves the
            // old classifier in place.
            let tmp = folder.join("model.safetensors.tmp");
            model.save(&tmp)?;
            std::fs::rename(&tmp, folder.join("model.safetensors"))
                .with_context(|| format!("renaming {}", tmp.display()))?;
            let acc = classifier::held_out_accuracy(&model, 512, cli.seed, &device);
            println!("held-out accuracy: {}", serde_json::to_string(&acc)?);
        }
        Stage::Export {
            out,
            vae_from,
            average_last,
            unet_from,
        } => {
            let vae_model = load_vae::<B>(dir, vae_from.as_deref(), &device)?;
            let set = latent_set()?;
            let t2i = match average_last {
                Some(k) => text_to_image::load_averaged::<B::InnerBackend>(dir, *k, &device)?,
                None => load_text_to_image::<B>(dir, unet_from.as_deref(), &device)?,
            };
            let mut nets = Vec::new();
            for k in ControlKind::ALL {
                match controlnet::load_trained::<B>(dir, k, &device) {
                    Ok(n) => nets.push((k, n)),
                    Err(e) => eprintln!("skipping {}: {e}", k.folder()),
                }
            }
            let cls = classifier::load_trained::<B>(dir, &device).ok();
            let parts = DemoParts {
                vae: &vae_model,
                scaling_factor: set.scaling_factor,
                text_to_image: &t2i,
                controlnets: nets.iter().map(|(k, n)| (*k, n)).collect(),
                classifier: cls.as_ref(),
            };
            export(out, &parts, &cli.tokenizer)?;
            println!("wrote {}", out.display());
        }
    }
    Ok(())
}
