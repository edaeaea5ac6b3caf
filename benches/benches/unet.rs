//! UNet forward and forward+backward (w.r.t. the latent) timings: the tiny
//! fixture UNet (batch 2, 16x16) and the full-size SD 1.5 UNet (batch 2 x 4 x
//! 64 x 64 with a 77 x 768 context; forward+backward at batch 1), the shapes
//! of `shared/bench/torch_unet_cpu.py`.
//!
//! `OPTEDIT_BENCH_MODEL=sd15|sd21|sdxl` picks the full-size UNet (default
//! sd15; sd21 and sdxl from the released configs in `benches/configs/`,
//! SDXL with random pooled embeddings and size conditions and its own
//! context width); `OPTEDIT_BENCH_LATENT` changes the full-size latent size
//! (default 64);
//! `OPTEDIT_BENCH_ONLY=tiny|forward|backward` builds and runs one group only
//! (so that `/usr/bin/time -v` reports the peak memory of that one).
//! malloc is tuned as in the binaries (`optedit_models::allocator`);
//! `OPTEDIT_BENCH_MALLOC=default` keeps glibc's defaults.
//! `OPTEDIT_BENCH_CHECKPOINT=balanced` runs the backward group on
//! `Autodiff<_, BalancedCheckpointing>` (the `optedit` binary's backend).
//! `OPTEDIT_BENCH_DTYPE=f32|bf16|auto` sets the kernels' compute dtype
//! (`optedit_models::kernels::set_compute_dtype`; default f32); bf16 groups
//! are named `*_bf16`. `OPTEDIT_BENCH_CONV=im2col` keeps every f32
//! convolution on im2col (no Winograd; groups named `*_im2col`).
//! `OPTEDIT_BENCH_WEIGHT_CACHE=0` transforms each Winograd filter on every
//! call (`optedit_models::kernels::set_weight_cache_limit`; groups named
//! `*_nocache`).

use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::Autodiff;
use burn::module::Module;
use burn::tensor::backend::Backend;
use criterion::{criterion_group, criterion_main, Criterion};
use optedit_benches::{added_conditions, bench_kernels, full_unet, tiny_unet, unet_inputs};

#[cfg(not(feature = "cuda"))]
type Dev = burn::backend::Flex;
#[cfg(feature = "cuda")]
type Dev = burn::backend::Cuda;

fn sync<B: Backend>(device: &B::Device) {
    let _ = B::sync(device);
}

fn only(what: &str) -> bool {
    std::env::var("OPTEDIT_BENCH_ONLY").map_or(true, |v| v.is_empty() || v == what)
}

/// Tunes malloc as the optedit binaries do, unless
/// `OPTEDIT_BENCH_MALLOC=default`.
fn tune_malloc() {
    if std::env::var("OPTEDIT_BENCH_MALLOC").as_deref() != Ok("default") {
        optedit_models::allocator::tune_allocator();
    }
}

fn tiny(c: &mut Criterion) {
    tune_malloc();
    if !only("tiny") {
        return;
    }
    let device = Default::default();
    let unet = tiny_unet::<Dev>(&device);
    let (x, t, ctx) = unet_inputs(&unet, 2, 16, &device);
    c.bench_function(
        &format!("tiny_unet_forward_b2_16x16{}", bench_kernels()),
        |b| {
            b.iter(|| {
                let out = unet.forward(x.clone(), t.clone(), ctx.clone()).unwrap();
                let _ = out.into_data();
            })
        },
    );
}

fn full(c: &mut Criterion) {
    tune_malloc();
    let latent: usize = std::env::var("OPTEDIT_BENCH_LATENT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let model = std::env::var("OPTEDIT_BENCH_MODEL").unwrap_or_else(|_| "sd15".into());
    let device = Default::default();
    let mut group = c.benchmark_group(format!("{model}_unet{}", bench_kernels()));
    group.sample_size(10);
    if only("forward") {
        let unet = full_unet::<Dev>(&model, &device);
        let (x, t, ctx) = unet_inputs(&unet, 2, latent, &device);
        let added = added_conditions(&unet, 2, latent * 8, &device);
        let width = unet.config.cross_attention_dim;
        group.bench_function(format!("forward_b2_{latent}x{latent}_ctx77x{width}"), |b| {
            b.iter(|| {
                let out = unet
                    .forward_with_conditions(
                        x.clone(),
                        t.clone(),
                        ctx.clone(),
                        added.as_ref(),
                        None,
                    )
                    .unwrap();
                let _ = out.into_data();
            })
        });
    }
    if only("backward") {
        match std::env::var("OPTEDIT_BENCH_CHECKPOINT").as_deref() {
            Ok("balanced") => {
                backward::<BalancedCheckpointing>(&mut group, &model, latent, &device)
            }
            Ok("" | "none") | Err(_) => {
                backward::<NoCheckpointing>(&mut group, &model, latent, &device)
            }
            Ok(other) => panic!("OPTEDIT_BENCH_CHECKPOINT={other}: expected none or balanced"),
        }
    }
    group.finish();
}

/// Forward + backward w.r.t. the latent at batch 1, with autodiff
/// checkpointing strategy `C`.
fn backward<C: CheckpointStrategy>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    model: &str,
    latent: usize,
    device: &burn::tensor::Device<Dev>,
) {
    let unet = full_unet::<Autodiff<Dev, C>>(model, device).no_grad();
    let (x, t, ctx) = unet_inputs(&unet, 1, latent, device);
    let added = added_conditions(&unet, 1, latent * 8, device);
    group.bench_function(
        format!("forward_backward_wrt_latent_b1_{latent}x{latent}"),
        |b| {
            b.iter(|| {
                let z = x.clone().require_grad();
                let out = unet
                    .forward_with_conditions(
                        z.clone(),
                        t.clone(),
                        ctx.clone(),
                        added.as_ref(),
                        None,
                    )
                    .unwrap();
                let grads = out.powi_scalar(2).mean().backward();
                let g = z.grad(&grads).unwrap();
                let _ = g.into_data();
                sync::<Dev>(device);
            })
        },
    );
}

criterion_group!(benches, tiny, full);
criterion_main!(benches);
