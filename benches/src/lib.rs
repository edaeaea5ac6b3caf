//! Shared set-up of optedit's criterion benchmarks: the models and inputs
//! each bench measures, built the same way on every backend.
//!
//! Run with `cargo bench -p optedit-benches` (CPU, burn's Flex backend) or
//! `cargo bench -p optedit-benches --features cuda` (CUDA). The numbers and
//! the PyTorch baseline measured in the same run are in `docs/benchmarks.md`.
#![deny(missing_docs)]

use std::path::PathBuf;

use burn::tensor::{backend::Backend, Distribution, Tensor};
use optedit_models::unet::TIME_IDS;
use optedit_models::{AddedConditions, UNet2DConditionModel};

/// Folder of the full-size SD 1.5 configs (random weights, no files needed).
pub fn sd15_configs() -> PathBuf {
    optedit_fixtures::sd15_configs_dir()
}

/// The full-size UNet of `model` with random weights: `sd15` (the default,
/// `tests/fixtures/sd15-configs`), `sd21` or `sdxl` (the released configs in
/// `benches/configs/`). The benches read the name from
/// `OPTEDIT_BENCH_MODEL`.
///
/// # Panics
/// On another name.
pub fn full_unet<B: Backend>(model: &str, device: &B::Device) -> UNet2DConditionModel<B> {
    let config = match model {
        "sd15" => sd15_configs().join("unet/config.json"),
        "sd21" | "sdxl" => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("configs")
            .join(model)
            .join("unet/config.json"),
        other => panic!("OPTEDIT_BENCH_MODEL={other}: expected sd15, sd21 or sdxl"),
    };
    UNet2DConditionModel::from_config_file(&config, device).expect("full-size unet config")
}

/// SDXL's added conditions for `batch` samples of a `text_time` UNet
/// (random pooled embeddings, uncropped size conditions of a `side`-pixel
/// image); `None` for SD 1.x and 2.x UNets.
pub fn added_conditions<B: Backend>(
    unet: &UNet2DConditionModel<B>,
    batch: usize,
    side: usize,
    device: &B::Device,
) -> Option<AddedConditions<B>> {
    let dims = unet.config.added_conditions()?;
    let s = side as f32;
    let ids: Vec<f32> = (0..batch).flat_map(|_| [s, s, 0.0, 0.0, s, s]).collect();
    Some(AddedConditions {
        text_embeds: Tensor::random(
            [batch, dims.text_embeds],
            Distribution::Normal(0.0, 1.0),
            device,
        ),
        time_ids: Tensor::<B, 1>::from_floats(ids.as_slice(), device).reshape([batch, TIME_IDS]),
    })
}

/// The tiny fixture UNet with its real (fixture) weights.
pub fn tiny_unet<B: Backend>(device: &B::Device) -> UNet2DConditionModel<B> {
    UNet2DConditionModel::load(
        &optedit_fixtures::fixtures_dir().join("tiny-sd/unet"),
        device,
    )
    .expect("tiny unet")
}

/// Standard-normal inputs `(latent, timesteps, context)` for a UNet forward.
pub fn unet_inputs<B: Backend>(
    unet: &UNet2DConditionModel<B>,
    batch: usize,
    latent: usize,
    device: &B::Device,
) -> (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 3>) {
    B::seed(device, 0);
    let x = Tensor::random(
        [batch, unet.config.in_channels, latent, latent],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let t = Tensor::from_data(
        if batch == 1 {
            vec![500.0f32]
        } else {
            (0..batch)
                .map(|i| if i % 2 == 0 { 999.0 } else { 500.0 })
                .collect()
        }
        .as_slice(),
        device,
    );
    let c = Tensor::random(
        [batch, 77, unet.config.cross_attention_dim],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    (x, t, c)
}

/// Sets the kernels' compute dtype that `OPTEDIT_BENCH_DTYPE` names
/// (`f32`, `bf16` or `auto`; default f32), the convolution path that
/// `OPTEDIT_BENCH_CONV` names (below) and the weight cache's bound that
/// `OPTEDIT_BENCH_WEIGHT_CACHE` gives in bytes (default: the kernels'
/// default; `0` transforms each weight on every call) for the process, and
/// returns the suffix of the benchmark names (`"_bf16"`, `"_im2col"` for
/// f32 with Winograd off, or `""` for f32; `"_nocache"` appended for a
/// bound of 0).
///
/// # Panics
/// On an unknown name, or bf16 on a CPU without a bf16 unit.
pub fn bench_kernels() -> &'static str {
    use optedit_models::kernels::{set_compute_dtype, ComputeDtype};
    let conv = bench_conv();
    let word = std::env::var("OPTEDIT_BENCH_DTYPE").unwrap_or_default();
    let dtype = match word.as_str() {
        "" => ComputeDtype::F32,
        w => w
            .parse()
            .unwrap_or_else(|e| panic!("OPTEDIT_BENCH_DTYPE={w}: {e}")),
    };
    set_compute_dtype(dtype).unwrap_or_else(|e| panic!("OPTEDIT_BENCH_DTYPE={word}: {e}"));
    let cached = bench_weight_cache();
    match (dtype, conv, cached) {
        (ComputeDtype::Bf16, _, true) => "_bf16",
        (ComputeDtype::Bf16, _, false) => "_bf16_nocache",
        (_, true, true) => "",
        (_, true, false) => "_nocache",
        (_, false, true) => "_im2col",
        (_, false, false) => "_im2col_nocache",
    }
}

/// Applies `OPTEDIT_BENCH_WEIGHT_CACHE` (bytes;
/// `optedit_models::kernels::set_weight_cache_limit`) and returns whether
/// the cache keeps anything.
///
/// # Panics
/// On a value that is not a number.
fn bench_weight_cache() -> bool {
    use optedit_models::kernels::{set_weight_cache_limit, DEFAULT_WEIGHT_CACHE_LIMIT};
    let limit = match std::env::var("OPTEDIT_BENCH_WEIGHT_CACHE").as_deref() {
        Err(_) | Ok("") => DEFAULT_WEIGHT_CACHE_LIMIT,
        Ok(w) => w
            .parse()
            .unwrap_or_else(|e| panic!("OPTEDIT_BENCH_WEIGHT_CACHE={w}: {e}")),
    };
    set_weight_cache_limit(limit);
    limit > 0
}

/// Applies `OPTEDIT_BENCH_CONV` (`auto`, the default: f32 3x3 stride-1
/// convolutions take Winograd's F(2x2, 3x3) where it is faster; `im2col`:
/// every convolution takes im2col, `optedit_models::kernels::set_winograd`)
/// and returns whether Winograd may run.
///
/// # Panics
/// On another value.
fn bench_conv() -> bool {
    let word = std::env::var("OPTEDIT_BENCH_CONV").unwrap_or_default();
    let on = match word.as_str() {
        "" | "auto" => true,
        "im2col" => false,
        other => panic!("OPTEDIT_BENCH_CONV={other}: expected auto or im2col"),
    };
    optedit_models::kernels::set_winograd(on);
    on
}
