//! Where one optimisation edit spends its time: wall time per stage, the
//! mean time of a denoising step and of a gradient step in each, and the
//! process's peak memory, so that a user can predict the cost of `t_u`, `k`
//! and the number of steps (issue 8; docs/benchmarks.md "Cost of an edit
//! per stage").
//!
//! ```text
//! cargo run --release -p optedit-examples --example edit_stages [MODEL] [STEPS] [T_U] [K]
//! ```
//!
//! `MODEL` is `demo` (the shipped demo model at 128 x 128, the default),
//! `sd15-random` (the full-size SD 1.5 topology with random weights at
//! 512 x 512, from `tests/fixtures/sd15-configs` and the real CLIP
//! tokenizer: speed and memory are those of SD 1.5, the image is noise),
//! `sd21-random` (SD 2.1 at 768 x 768, v-prediction) or `sdxl-random`
//! (SDXL base at 1024 x 1024), both from the released configs in
//! `benches/configs/`, or a diffusers folder of either family.
//! `STEPS`, `T_U` and `K` default to `EditConfig::default()`'s;
//! `OPTEDIT_SIZE` sets another image side; `OPTEDIT_DTYPE=f32|bf16|auto`
//! the kernels' compute dtype (default f32);
//! `OPTEDIT_GUIDANCE_GRADIENT=both|conditional|detached|frozen` what the gradient steps
//! differentiate (`EditConfig::guidance_gradient`, default frozen). The mask is the centre quarter
//! of the image. Times are those between progress events: with `frozen`
//! an optimised step's one UNet call comes before its first gradient step,
//! so it is counted in the gradient steps' time; the last column, a
//! step's time with its gradient steps, is the cost of a step in every
//! mode.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
use burn::backend::{Autodiff, Flex};
use burn::module::Module;
use burn::tensor::backend::Backend;
use optedit_cond::{ClipTokenizer, PromptEncoder, SdxlPromptEncoder};
use optedit_edit::{
    EditCondition, EditConfig, Editor, GuidanceGradient, PipelineFamily, ProgressEvent,
    PromptEncoders, SdPipeline, Stage, UserMask, Worded,
};
use optedit_examples::{demo_model_dir, image_size, input_image, peak_kib};
use optedit_models::{
    AutoencoderKL, ClipTextModel, ClipTextModelWithProjection, UNet2DConditionModel,
};
use optedit_schedule::SchedulerConfig;

/// Balanced checkpointing recomputes memory-bound operations in the backward
/// pass instead of keeping them: less peak memory, same speed and numbers.
type B = Autodiff<Flex, BalancedCheckpointing>;

/// Peak resident memory of this process so far, GiB.
fn peak_gib() -> f64 {
    peak_kib() as f64 / (1024.0 * 1024.0)
}

/// The full-size SD 1.5 topology with random weights.
fn sd15_random<Bk: Backend>(
    device: &Bk::Device,
) -> Result<SdPipeline<Bk>, Box<dyn std::error::Error>> {
    let fixtures = optedit_fixtures::fixtures_dir();
    let configs = optedit_fixtures::sd15_configs_dir();
    let text = ClipTextModel::from_config_file(&configs.join("text_encoder/config.json"), device)?;
    Ok(SdPipeline {
        family: PipelineFamily::StableDiffusion,
        unet: UNet2DConditionModel::from_config_file(&configs.join("unet/config.json"), device)?
            .no_grad(),
        vae: AutoencoderKL::from_config_file(&configs.join("vae/config.json"), device)?.no_grad(),
        prompts: PromptEncoders::Clip(PromptEncoder::new(
            ClipTokenizer::from_dir(&fixtures.join("tiny-sd/tokenizer"))?,
            text.no_grad(),
            device.clone(),
        )),
        scheduler: SchedulerConfig::from_file(configs.join("scheduler/scheduler_config.json"))?,
        device: device.clone(),
    })
}

/// A full-size topology with random weights from the config folder `dir`
/// (`benches/configs/sd21` or `sdxl`: `model_index.json`, `unet/`, `vae/`,
/// the text encoders' and the scheduler's configs, no weights), with the
/// real CLIP tokenizers of the fixture pipeline `tokenizers`.
fn random_pipeline<Bk: Backend>(
    dir: &Path,
    tokenizers: &Path,
    device: &Bk::Device,
) -> Result<SdPipeline<Bk>, Box<dyn std::error::Error>> {
    let family = PipelineFamily::detect(dir)?;
    let text = ClipTextModel::from_config_file(&dir.join("text_encoder/config.json"), device)?;
    let tokenizer = ClipTokenizer::from_dir(&tokenizers.join("tokenizer"))?;
    let prompts = match family {
        PipelineFamily::StableDiffusionXl => PromptEncoders::Sdxl(SdxlPromptEncoder::new(
            (tokenizer, text.no_grad()),
            (
                ClipTokenizer::from_dir(&tokenizers.join("tokenizer_2"))?,
                ClipTextModelWithProjection::from_config_file(
                    &dir.join("text_encoder_2/config.json"),
                    device,
                )?
                .no_grad(),
            ),
            optedit_cond::sdxl::force_zeros_for_empty_prompt(&dir.join("model_index.json"))?,
            device.clone(),
        )),
        _ => PromptEncoders::Clip(PromptEncoder::new(
            tokenizer,
            text.no_grad(),
            device.clone(),
        )),
    };
    Ok(SdPipeline {
        family,
        unet: UNet2DConditionModel::from_config_file(&dir.join("unet/config.json"), device)?
            .no_grad(),
        vae: AutoencoderKL::from_config_file(&dir.join("vae/config.json"), device)?.no_grad(),
        prompts,
        scheduler: SchedulerConfig::from_file(dir.join("scheduler/scheduler_config.json"))?,
        device: device.clone(),
    })
}

fn arg(n: usize, default: usize) -> Result<usize, Box<dyn std::error::Error>> {
    Ok(std::env::args()
        .nth(n)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(default))
}

/// Per stage: (denoising steps, their seconds, gradient steps, their seconds).
type Tally = HashMap<Stage, (usize, f64, usize, f64)>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // As the `optedit` binary does: freed activations are reused from the heap.
    optedit_models::allocator::tune_allocator();
    let which = std::env::args().nth(1).unwrap_or_else(|| "demo".into());
    let defaults = EditConfig::default();
    let config = EditConfig {
        num_steps: arg(2, defaults.num_steps)?,
        t_u: arg(3, defaults.t_u)?,
        k: arg(4, defaults.k)?,
        guidance_gradient: match std::env::var("OPTEDIT_GUIDANCE_GRADIENT") {
            Ok(word) => GuidanceGradient::parse_word(&word)
                .map_err(|e| format!("OPTEDIT_GUIDANCE_GRADIENT={word}: {e}"))?,
            Err(_) => defaults.guidance_gradient,
        },
        ..defaults
    };
    let dtype: optedit_models::kernels::ComputeDtype = std::env::var("OPTEDIT_DTYPE")
        .unwrap_or_else(|_| "f32".into())
        .parse()?;
    optedit_models::kernels::set_compute_dtype(dtype)?;
    println!(
        "compute dtype {dtype}, gradient through {}",
        config.guidance_gradient
    );
    let device = Default::default();
    let t0 = Instant::now();
    let pipeline = match which.as_str() {
        "demo" => SdPipeline::<B>::load(&demo_model_dir(), &device)?,
        "sd15-random" => sd15_random(&device)?,
        "sd21-random" | "sdxl-random" => {
            let name = &which[..which.len() - "-random".len()];
            let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/configs");
            let tokenizers = optedit_fixtures::fixtures_dir().join(format!("tiny-{name}"));
            random_pipeline(&configs.join(name), &tokenizers, &device)?
        }
        dir => SdPipeline::<B>::load(Path::new(dir), &device)?,
    };
    let size = match std::env::var("OPTEDIT_SIZE") {
        Ok(v) => v.parse()?,
        Err(_) => image_size(&pipeline),
    };
    println!(
        "UNet {} parameters, {}",
        pipeline.unet.num_params(),
        pipeline.family
    );
    println!(
        "{which}: {size} x {size}, {} steps, strength {}, t_u {}, k {}; loaded in {:.1} s, peak {:.2} GiB",
        config.num_steps,
        config.strength,
        config.t_u,
        config.k,
        t0.elapsed().as_secs_f64(),
        peak_gib()
    );
    let image = input_image::<B>(size, &device);
    let source = pipeline.encode_prompt("a red circle on a blue striped background", None)?;
    let target = EditCondition::text(
        pipeline.encode_prompt("a green circle on a blue striped background", None)?,
    );
    let pixels: Vec<f32> = (0..size * size)
        .map(|i| {
            let (y, x) = (i / size, i % size);
            let inside = |v: usize| (size / 4..3 * size / 4).contains(&v);
            if inside(x) && inside(y) {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let mut mask = UserMask::new(pixels, size, size)?;

    let mut tally = Tally::new();
    let mut last = Instant::now();
    let mut progress = |e: &ProgressEvent| {
        let dt = last.elapsed().as_secs_f64();
        last = Instant::now();
        let entry = tally.entry(e.stage).or_default();
        if e.loss.is_some() {
            entry.2 += 1;
            entry.3 += dt;
        } else {
            entry.0 += 1;
            entry.1 += dt;
        }
        ControlFlow::Continue(())
    };
    let t1 = Instant::now();
    let out =
        Editor::new(&pipeline, config)?.edit(image, &source, &target, &mut mask, &mut progress)?;
    let total = t1.elapsed().as_secs_f64();

    println!(
        "| stage | wall s | steps | s/step | gradient steps | s/gradient step | s/step with its gradient steps |"
    );
    println!("|---|---|---|---|---|---|---|");
    let per = |n: usize, s: f64| {
        if n == 0 {
            "–".to_string()
        } else {
            format!("{:.3}", s / n as f64)
        }
    };
    for (stage, d) in &out.timings {
        let (n, s, g, gs) = tally.get(stage).copied().unwrap_or_default();
        println!(
            "| {stage} | {:.2} | {n} | {} | {g} | {} | {} |",
            d.as_secs_f64(),
            per(n, s),
            per(g, gs),
            per(n, s + gs)
        );
    }
    println!("| total | {total:.2} | | | | | |");
    println!("peak resident memory: {:.2} GiB", peak_gib());
    println!(
        "kept filter transforms: {:.2} GiB (kernels::set_weight_cache_limit)",
        optedit_models::kernels::weight_cache_bytes() as f64 / (1u64 << 30) as f64
    );
    Ok(())
}
