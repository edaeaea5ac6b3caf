//! Stage 3: the UNet and the text encoder, trained together from scratch on
//! the encoded scenes with the epsilon-prediction objective of DDPM (Ho et
//! al., arXiv 2006.11239) under SD 1.5's noise schedule, min-SNR-5 loss
//! weighting (Hang et al., arXiv 2303.09556) and 10% empty captions for
//! classifier-free guidance (Ho & Salimans, arXiv 2207.12598).

use std::path::Path;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::{AutodiffModule, Module};
use burn::optim::AdamWConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use optedit_cond::ClipTokenizer;
use optedit_models::blocks::embeddings::TextTimeEmbedding;
use optedit_models::{ClipTextConfig, ClipTextModel, UNet2DConditionConfig, UNet2DConditionModel};
use optedit_schedule::{NoiseSchedule, SchedulerConfig};
use rand::Rng;

use super::foreground::ForegroundLoss;
use super::latents::LatentSet;
use super::{load_checkpoint, Run, StageOptions, StepLoss};
use crate::data::normal;
use crate::demo;
use crate::error::{io, TrainError};
use crate::Result;

const STAGE: u64 = 3;
/// Checkpoint folder name.
const NAME: &str = "text_to_image";

/// Probability of training on the empty caption.
pub const CAPTION_DROPOUT: f64 = 0.1;

/// The UNet and text encoder trained as one module.
#[derive(Module, Debug)]
pub struct TextToImage<B: Backend> {
    /// The denoiser.
    pub unet: UNet2DConditionModel<B>,
    /// The CLIP text tower.
    pub text_encoder: ClipTextModel<B>,
    /// The UNet's `config.json`, as exported (the demo config, or that of
    /// the pipeline the run started from, with any grafted embedding).
    #[module(skip)]
    pub unet_config: serde_json::Value,
}

/// File in the run's checkpoint folder that records the UNet config.
const UNET_CONFIG: &str = "unet_config.json";

impl<B: Backend> TextToImage<B> {
    /// A fresh demo model.
    pub fn new(device: &B::Device) -> Result<Self> {
        Self::from_unet_config(demo::unet_config(), device)
    }

    /// A fresh model with the demo text encoder and the UNet of `unet_config`.
    pub fn from_unet_config(unet_config: serde_json::Value, device: &B::Device) -> Result<Self> {
        let unet: UNet2DConditionConfig =
            serde_json::from_value(unet_config.clone()).map_err(|e| {
                TrainError::InvalidArgument {
                    argument: "unet config".into(),
                    message: e.to_string(),
                }
            })?;
        let text: ClipTextConfig =
            serde_json::from_value(demo::text_encoder_config()).expect("valid demo config");
        Ok(Self {
            unet: UNet2DConditionModel::from_config(unet, device)?,
            text_encoder: ClipTextModel::from_config(text, device)?,
            unet_config,
        })
    }

    /// The UNet and text encoder of a pipeline folder written by
    /// [`crate::export::export`] (`DIR/unet`, `DIR/text_encoder`; f16
    /// weights are cast to f32): training continues from them.
    pub fn from_pipeline(dir: &Path, device: &B::Device) -> Result<Self> {
        let config_path = dir.join("unet/config.json");
        let text = std::fs::read_to_string(&config_path).map_err(io(&config_path))?;
        let unet_config = serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint {
            path: config_path.clone(),
            message: e.to_string(),
        })?;
        Ok(Self {
            unet: UNet2DConditionModel::load(&dir.join("unet"), device)?,
            text_encoder: ClipTextModel::load(&dir.join("text_encoder"), device)?,
            unet_config,
        })
    }

    /// Gives the UNet a text-time embedding (diffusers' `addition_embed_type
    /// = "text"`: the caption, attention-pooled, added to the time
    /// embedding) with `heads` pooling heads, unless it has one. A grafted
    /// embedding starts with a zero output norm, so the model's predictions
    /// do not change until training moves it.
    pub fn with_text_time_embedding(mut self, heads: usize) -> Result<Self> {
        if self.unet.add_embedding.is_some() {
            return Ok(self);
        }
        let mut config = self.unet.config.clone();
        config.addition_embed_type = Some("text".into());
        config.addition_embed_type_num_heads = heads;
        config
            .validate(Path::new("<text-time embedding>"))
            .map_err(|e| TrainError::InvalidArgument {
                argument: "text-time-heads".into(),
                message: e.to_string(),
            })?;
        let device = self.unet.devices()[0].clone();
        let add = TextTimeEmbedding::new(
            config.cross_attention_dim,
            config.time_embed_dim(),
            heads,
            &device,
        )
        .zero_output();
        self.unet.add_embedding = Some(add);
        self.unet.config = config;
        if let serde_json::Value::Object(m) = &mut self.unet_config {
            m.insert("addition_embed_type".into(), "text".into());
            m.insert("addition_embed_type_num_heads".into(), heads.into());
        }
        Ok(self)
    }
}

/// Modules grafted onto the UNet at the start of a fresh run (onto the
/// `--init-from` model, or a fresh demo UNet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grafts {
    /// A text-time embedding with this many pooling heads
    /// ([`TextToImage::with_text_time_embedding`]).
    pub text_time_heads: Option<usize>,
    /// Cross-attention on every plain up level
    /// ([`TextToImage::with_up_cross_attention`]).
    pub up_cross_attention: bool,
}

impl<B: Backend> TextToImage<B> {
    /// Gives every up level of the UNet without cross-attention one
    /// transformer per resnet, with a zero output projection, so the
    /// predictions do not change until training moves it
    /// ([`UNet2DConditionModel::with_up_cross_attention`]). On the demo UNet
    /// this is the full-resolution (32 x 32) level, where the objects'
    /// outlines are drawn, and the encoder (which the ControlNets copy)
    /// keeps its architecture.
    pub fn with_up_cross_attention(mut self) -> Result<Self> {
        let (unet, grafted) = self.unet.with_up_cross_attention()?;
        self.unet = unet;
        if grafted > 0 {
            if let serde_json::Value::Object(m) = &mut self.unet_config {
                m.insert(
                    "up_block_types".into(),
                    serde_json::json!(self.unet.config.up_block_types),
                );
            }
        }
        Ok(self)
    }

    /// Applies `grafts`.
    pub fn with_grafts(self, grafts: &Grafts) -> Result<Self> {
        let model = match grafts.text_time_heads {
            Some(heads) => self.with_text_time_embedding(heads)?,
            None => self,
        };
        if grafts.up_cross_attention {
            model.with_up_cross_attention()
        } else {
            Ok(model)
        }
    }
}

/// The UNet config a run in `dir` trains (recorded at its start; the demo
/// config for runs older than the record).
pub fn run_unet_config(dir: &Path) -> Result<serde_json::Value> {
    let path = dir.join("checkpoints").join(NAME).join(UNET_CONFIG);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint {
            path,
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(demo::unet_config()),
        Err(e) => Err(io(&path)(e)),
    }
}

/// The demo schedule's `alphas_cumprod`.
pub fn alphas_cumprod() -> Result<Vec<f32>> {
    let config = SchedulerConfig::from_json_str(&demo::scheduler_config().to_string())?;
    Ok(NoiseSchedule::new(&config).alphas_cumprod().to_vec())
}

/// Token ids `[n, 77]` of `captions`.
pub fn token_ids<B: Backend>(
    tokenizer: &ClipTokenizer,
    captions: &[String],
    device: &B::Device,
) -> Result<Tensor<B, 2, Int>> {
    let refs: Vec<&str> = captions.iter().map(String::as_str).collect();
    Ok(tokenizer.input_ids::<B>(&refs, device)?)
}

/// How a diffusion stage noises its latents and weighs the loss.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Noising {
    /// Floor on the x0 error's weight (see
    /// [`super::StageOptions::x0_weight_floor`]); 0: plain min-SNR-5.
    pub x0_weight_floor: f64,
    /// Standard deviation of a per-sample, per-channel constant added to
    /// the Gaussian noise (offset noise; see
    /// [`super::StageOptions::offset_noise`]); 0: plain Gaussian noise.
    pub offset_noise: f64,
    /// Discount of multi-resolution noise (see
    /// [`super::StageOptions::pyramid_noise`]); 0: none.
    pub pyramid_noise: f64,
}

/// A noised batch at uniformly drawn timesteps: `(noisy latents,
/// timesteps, noise, per-sample loss weights)`. The weights of the epsilon
/// loss are `max(min(snr, 5), x0_weight_floor) / snr`: min-SNR-5, with the
/// x0 error's weight floored. The noise is Gaussian (multi-resolution
/// when `pyramid_noise` > 0), plus `offset_noise` times one Gaussian draw
/// per sample and channel; the extra draws happen only when their option
/// is non-zero, so the plain stream is unchanged.
pub fn noised<B: Backend>(
    latents: Tensor<B, 4>,
    acp: &[f32],
    noising: &Noising,
    rng: &mut rand_chacha::ChaCha8Rng,
    device: &B::Device,
) -> (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 4>, Tensor<B, 1>) {
    let ts: Vec<usize> = (0..latents.dims()[0])
        .map(|_| rng.random_range(0..acp.len()))
        .collect();
    noised_at(latents, acp, &ts, noising, rng, device)
}

/// [`noised`] at given timesteps `ts` (one per sample of `latents`); the noise comes from
/// `rng`.
fn noised_at<B: Backend>(
    latents: Tensor<B, 4>,
    acp: &[f32],
    ts: &[usize],
    noising: &Noising,
    rng: &mut rand_chacha::ChaCha8Rng,
    device: &B::Device,
) -> (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 4>, Tensor<B, 1>) {
    let [n, c, h, w] = latents.dims();
    let a: Vec<f32> = ts.iter().map(|&t| acp[t].sqrt()).collect();
    let s: Vec<f32> = ts.iter().map(|&t| (1.0 - acp[t]).sqrt()).collect();
    // min-SNR-5 weights for epsilon prediction, min(snr, 5) / snr, with the
    // x0 weight min(snr, 5) floored at x0_weight_floor
    let weights: Vec<f32> = ts
        .iter()
        .map(|&t| {
            let snr = f64::from(acp[t] / (1.0 - acp[t]));
            (snr.min(5.0).max(noising.x0_weight_floor) / snr) as f32
        })
        .collect();
    let mut noise = normal::<B, 4>([n, c, h, w], rng, device);
    if noising.pyramid_noise > 0.0 {
        noise = pyramid(noise, noising.pyramid_noise, rng, device);
    }
    if noising.offset_noise > 0.0 {
        let offset = normal::<B, 4>([n, c, 1, 1], rng, device).mul_scalar(noising.offset_noise);
        noise = noise + offset;
    }
    let a = Tensor::<B, 1>::from_data(TensorData::new(a, [n]), device).reshape([n, 1, 1, 1]);
    let s = Tensor::<B, 1>::from_data(TensorData::new(s, [n]), device).reshape([n, 1, 1, 1]);
    let t = Tensor::<B, 1>::from_data(
        TensorData::new(ts.iter().map(|&t| t as f32).collect::<Vec<_>>(), [n]),
        device,
    );
    let w = Tensor::<B, 1>::from_data(TensorData::new(weights, [n]), device);
    (latents * a + noise.clone() * s, t, noise, w)
}

/// Adds Gaussian noise drawn at every coarser scale (blocks of 2, 4, ...
/// pixels while a block fits in the latent, constant within a block) to
/// `noise`, weighted by `discount^level`, and rescales the sum to unit
/// variance.
fn pyramid<B: Backend>(
    noise: Tensor<B, 4>,
    discount: f64,
    rng: &mut rand_chacha::ChaCha8Rng,
    device: &B::Device,
) -> Tensor<B, 4> {
    let [n, c, h, w] = noise.dims();
    let (mut sum, mut weight, mut total) = (noise, discount, 1.0f64);
    let mut block = 2usize;
    while block <= h.min(w) {
        let (hb, wb) = (h.div_ceil(block), w.div_ceil(block));
        let coarse = normal::<B, 6>([n, c, hb, 1, wb, 1], rng, device)
            .repeat_dim(3, block)
            .repeat_dim(5, block)
            .reshape([n, c, hb * block, wb * block])
            .slice([0..n, 0..c, 0..h, 0..w]);
        sum = sum + coarse.mul_scalar(weight);
        total += weight * weight;
        weight *= discount;
        block *= 2;
    }
    sum.div_scalar(total.sqrt())
}

/// Per-sample weighted MSE between prediction and target, `[n, c, h, w]`
/// each: `[n]`.
pub fn weighted_mse_per_sample<B: Backend>(
    pred: Tensor<B, 4>,
    target: Tensor<B, 4>,
    weights: Tensor<B, 1>,
) -> Tensor<B, 1> {
    let [n, ..] = pred.dims();
    let per = (pred - target)
        .powi_scalar(2)
        .reshape([n as i32, -1])
        .mean_dim(1)
        .reshape([n]);
    per * weights
}

/// Weighted MSE between prediction and target, `[n, c, h, w]` each.
pub fn weighted_mse<B: Backend>(
    pred: Tensor<B, 4>,
    target: Tensor<B, 4>,
    weights: Tensor<B, 1>,
) -> Tensor<B, 1> {
    weighted_mse_per_sample(pred, target, weights).mean()
}

/// Trains (or resumes) the text-to-image model on `set`; a fresh run starts
/// from the weights of the pipeline folder `init_from` when given (a
/// checkpoint in `dir` takes precedence), with `grafts` applied (see
/// [`TextToImage::with_grafts`]). The UNet config is recorded
/// in the run's checkpoint folder, for [`load_trained`] and the export.
pub fn train<B: AutodiffBackend>(
    dir: &Path,
    set: &LatentSet,
    tokenizer: &ClipTokenizer,
    options: &StageOptions,
    init_from: Option<&Path>,
    grafts: &Grafts,
    device: &B::Device,
) -> Result<TextToImage<B::InnerBackend>> {
    options.validate()?;
    let acp = alphas_cumprod()?;
    let captions: Vec<String> = set
        .seeds
        .iter()
        .map(|&s| optedit_world::SceneSpec::sample(s).caption())
        .collect();
    let optim = AdamWConfig::new()
        .with_weight_decay(0.01)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)));
    let run = Run::<B, _>::start(
        dir,
        NAME,
        options.seed,
        STAGE,
        optim,
        || {
            let model = match init_from {
                Some(folder) => TextToImage::from_pipeline(folder, device)?,
                None => TextToImage::new(device)?,
            };
            model.with_grafts(grafts)
        },
        device,
    )?;
    let loss = ForegroundLoss::new(set, options.foreground_weight);
    let record = dir.join("checkpoints").join(NAME).join(UNET_CONFIG);
    let config = serde_json::to_string_pretty(&run.model.unet_config).expect("serialisable");
    std::fs::write(&record, config).map_err(io(&record))?;
    let model = run.fit(NAME, STAGE, &["loss"], options, |model, rng, batch| {
        let idx: Vec<usize> = (0..batch).map(|_| rng.random_range(0..set.len())).collect();
        let batch_captions: Vec<String> = idx
            .iter()
            .map(|&i| {
                if rng.random_bool(CAPTION_DROPOUT) {
                    String::new()
                } else {
                    captions[i].clone()
                }
            })
            .collect();
        let ids = token_ids::<B>(tokenizer, &batch_captions, device)?;
        let latents = set.batch::<B>(&idx, device);
        let (noisy, t, noise, w) = noised(latents, &acp, &options.noising(), rng, device);
        let context = model.text_encoder.forward(ids)?.last_hidden_state;
        let pred = model.unet.forward(noisy, t, context)?;
        Ok(StepLoss::single(loss.loss(pred, noise, w, &idx)))
    })?;
    Ok(model.valid())
}

/// The model of the last checkpoint (an error when there is none).
pub fn load_trained<B: AutodiffBackend>(
    dir: &Path,
    device: &B::Device,
) -> Result<TextToImage<B::InnerBackend>> {
    let model = TextToImage::from_unet_config(run_unet_config(dir)?, device)?;
    load_checkpoint::<B, _>(dir, NAME, model, device)
}

/// The uniform average of the last `last` checkpoints' UNet and text
/// encoder (a run trained with [`super::StageOptions::keep_checkpoints`]).
pub fn load_averaged<B: Backend>(
    dir: &Path,
    last: usize,
    device: &B::Device,
) -> Result<TextToImage<B>> {
    let config = run_unet_config(dir)?;
    super::load_averaged::<B, _>(
        dir,
        NAME,
        last,
        || TextToImage::from_unet_config(config.clone(), device),
        device,
    )
}

/// How much the model's noise predictions depend on the caption: the
/// min-SNR-weighted denoising loss of the same latents, timesteps and noise
/// under each scene's own caption, under another scene's caption, under
/// the empty caption, and under the own caption with the objects' shapes or
/// colours swapped. A model that follows its captions has a clearly lower
/// loss under its own; equal losses mean the text is ignored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaptionProbe {
    /// Scenes probed.
    pub count: usize,
    /// Loss under each scene's own caption.
    pub own: f64,
    /// Loss under the caption of the next scene in the set.
    pub other: f64,
    /// Loss under the empty caption.
    pub empty: f64,
    /// Loss under the own caption with every object's shape replaced by the
    /// next one (circle by square, ...): how much the shape words are used.
    pub shape: f64,
    /// Loss under the own caption with every object's colour replaced by
    /// the next one (red by green, ...): how much the colour words are used.
    pub colour: f64,
    /// The same five losses per quarter of the timestep range, from the
    /// least noisy (`t` in 0..250) to the noisiest (750..1000).
    pub by_timestep: Vec<ProbeBucket>,
}

/// [`CaptionProbe`]'s losses for the samples whose timestep lies in
/// `from..to`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ProbeBucket {
    /// First timestep of the range.
    pub from: usize,
    /// End of the range (exclusive).
    pub to: usize,
    /// Samples that drew a timestep in the range.
    pub count: usize,
    /// Mean loss under the own caption.
    pub own: f64,
    /// Mean loss under another scene's caption.
    pub other: f64,
    /// Mean loss under the empty caption.
    pub empty: f64,
    /// Mean loss under the shape-swapped caption.
    pub shape: f64,
    /// Mean loss under the colour-swapped caption.
    pub colour: f64,
}

/// Number of timestep ranges of [`CaptionProbe::by_timestep`].
const PROBE_BUCKETS: usize = 4;

/// Checks a probe's `count` (1 to the scenes of `set`) and `batch`
/// (positive), as [`caption_probe`] and
/// [`condition_probe`](super::controlnet::condition_probe) take
/// them.
pub(crate) fn check_probe_size(set: &LatentSet, count: usize, batch: usize) -> Result<()> {
    if count == 0 || count > set.len() {
        return Err(TrainError::InvalidArgument {
            argument: "count".into(),
            message: format!("must be between 1 and the {} encoded scenes", set.len()),
        });
    }
    if batch == 0 {
        return Err(TrainError::InvalidArgument {
            argument: "batch".into(),
            message: "must be positive".into(),
        });
    }
    Ok(())
}

/// Measures [`CaptionProbe`] on the first `count` scenes of `set` (in
/// batches of `batch`, noise and timesteps drawn from `seed`).
pub fn caption_probe<B: Backend>(
    model: &TextToImage<B>,
    set: &LatentSet,
    tokenizer: &ClipTokenizer,
    count: usize,
    batch: usize,
    seed: u64,
    device: &B::Device,
) -> Result<CaptionProbe> {
    use rand::SeedableRng;
    check_probe_size(set, count, batch)?;
    let acp = alphas_cumprod()?;
    let width = acp.len().div_ceil(PROBE_BUCKETS);
    let spec = |i: usize| optedit_world::SceneSpec::sample(set.seeds[i]);
    // [bucket][own, other, empty, shape, colour] loss sums and the bucket sizes.
    let mut sums = [[0.0f64; 5]; PROBE_BUCKETS];
    let mut sizes = [0usize; PROBE_BUCKETS];
    let mut start = 0;
    while start < count {
        let idx: Vec<usize> = (start..count.min(start + batch)).collect();
        let mut rng =
            rand_chacha::ChaCha8Rng::seed_from_u64(crate::data::mix(&[seed, start as u64]));
        let ts: Vec<usize> = idx.iter().map(|_| rng.random_range(0..acp.len())).collect();
        let (noisy, t, noise, w) = noised_at(
            set.batch::<B>(&idx, device),
            &acp,
            &ts,
            &Noising::default(),
            &mut rng,
            device,
        );
        let buckets: Vec<usize> = ts
            .iter()
            .map(|&t| (t / width).min(PROBE_BUCKETS - 1))
            .collect();
        for &b in &buckets {
            sizes[b] += 1;
        }
        let specs: Vec<_> = idx.iter().map(|&i| spec(i)).collect();
        let own: Vec<String> = specs.iter().map(|s| s.caption()).collect();
        let other: Vec<String> = idx
            .iter()
            .map(|&i| spec((i + 1) % set.len()).caption())
            .collect();
        let empty = vec![String::new(); idx.len()];
        let shape: Vec<String> = specs.iter().map(|s| swapped(s.clone(), true)).collect();
        let colour: Vec<String> = specs.into_iter().map(|s| swapped(s, false)).collect();
        for (k, captions) in [own, other, empty, shape, colour].into_iter().enumerate() {
            let ids = token_ids::<B>(tokenizer, &captions, device)?;
            let context = model.text_encoder.forward(ids)?.last_hidden_state;
            let pred = model.unet.forward(noisy.clone(), t.clone(), context)?;
            let losses = weighted_mse_per_sample(pred, noise.clone(), w.clone())
                .into_data()
                .convert::<f32>()
                .to_vec::<f32>()
                .expect("f32 data converts to f32");
            for (&b, &l) in buckets.iter().zip(&losses) {
                sums[b][k] += f64::from(l);
            }
        }
        start += idx.len();
    }
    let n = count as f64;
    let total = |k: usize| sums.iter().map(|s| s[k]).sum::<f64>() / n;
    let by_timestep = (0..PROBE_BUCKETS)
        .map(|b| {
            let m = sizes[b].max(1) as f64;
            ProbeBucket {
                from: b * width,
                to: ((b + 1) * width).min(acp.len()),
                count: sizes[b],
                own: sums[b][0] / m,
                other: sums[b][1] / m,
                empty: sums[b][2] / m,
                shape: sums[b][3] / m,
                colour: sums[b][4] / m,
            }
        })
        .collect();
    Ok(CaptionProbe {
        count,
        own: total(0),
        other: total(1),
        empty: total(2),
        shape: total(3),
        colour: total(4),
        by_timestep,
    })
}

/// The caption of `spec` with every object's shape (`shapes`) or colour
/// replaced by the next in the world's list.
fn swapped(mut spec: optedit_world::SceneSpec, shapes: bool) -> String {
    use optedit_world::{Colour, Shape};
    for o in &mut spec.objects {
        if shapes {
            o.shape = Shape::ALL[(o.shape.index() + 1) % Shape::ALL.len()];
        } else {
            o.colour = Colour::ALL[(o.colour.index() + 1) % Colour::ALL.len()];
        }
    }
    spec.caption()
}
