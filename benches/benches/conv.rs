//! 2-D convolution forward, forward+backward with the input's gradient only
//! (`*_input_grad`, the weight frozen, as in an edit) and forward+backward
//! with the gradients of input and weight (as in training): burn's `Conv2d::forward` against
//! `optedit_models::kernels::conv2d`, at the demo model's training shape and
//! SD 1.5's shapes (3x3 at each level, the stride-2 down-sampling, a 1x1
//! shortcut). `benches/torch/conv.py` measures PyTorch on the same shapes.
//! `OPTEDIT_BENCH_DTYPE=bf16` runs the kernels in bf16 (`*_bf16` groups);
//! `OPTEDIT_BENCH_CONV=im2col` keeps the f32 3x3 convolutions off
//! Winograd's path (`*_im2col` groups). The module's weight lives through
//! the iterations, so Winograd's filter transform is made once and kept
//! (`OPTEDIT_BENCH_WEIGHT_CACHE=0`, `*_nocache` groups: on every call).

use burn::backend::Autodiff;
use burn::module::{AutodiffModule, Module};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use optedit_models::kernels::conv2d;

#[cfg(not(feature = "cuda"))]
type Dev = burn::backend::Flex;
#[cfg(feature = "cuda")]
type Dev = burn::backend::Cuda;
type A = Autodiff<Dev>;

/// `(name, input [n, c, h, w], output channels, kernel, stride)`.
type Case = (&'static str, [usize; 4], usize, usize, usize);

const CASES: [Case; 7] = [
    ("demo_16x64x32x32_3x3", [16, 64, 32, 32], 64, 3, 1),
    ("sd_2x320x64x64_3x3", [2, 320, 64, 64], 320, 3, 1),
    ("sd_2x320x64x64_3x3_stride2", [2, 320, 64, 64], 320, 3, 2),
    ("sd_2x640x32x32_3x3", [2, 640, 32, 32], 640, 3, 1),
    ("sd_2x1280x16x16_3x3", [2, 1280, 16, 16], 1280, 3, 1),
    ("sd_2x1280x8x8_3x3", [2, 1280, 8, 8], 1280, 3, 1),
    ("sd_2x960x32x32_1x1", [2, 960, 32, 32], 640, 1, 1),
];

fn bench_case(c: &mut Criterion, (name, dims, out, kernel, stride): Case) {
    let device = Default::default();
    let mut group = c.benchmark_group(format!("conv_{name}{}", optedit_benches::bench_kernels()));
    group.sample_size(10);
    let pad = kernel / 2;
    let conv: Conv2d<A> = Conv2dConfig::new([dims[1], out], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .init(&device);
    let x = Tensor::<A, 4>::random(dims, Distribution::Normal(0.0, 1.0), &device);
    let (plain_conv, plain_x) = (conv.valid(), x.clone().inner());
    type F = fn(&Conv2d<A>, Tensor<A, 4>) -> Tensor<A, 4>;
    type P = fn(&Conv2d<Dev>, Tensor<Dev, 4>) -> Tensor<Dev, 4>;
    let burn_nn: (F, P) = (|c, x| c.forward(x), |c, x| c.forward(x));
    let optedit: (F, P) = (|c, x| conv2d(c, x), |c, x| conv2d(c, x));
    for (label, (f, plain)) in [("burn", burn_nn), ("optedit", optedit)] {
        group.bench_function(format!("{label}_forward"), |b| {
            b.iter(|| {
                let y = plain(&plain_conv, plain_x.clone());
                Dev::sync(&device).unwrap();
                y
            })
        });
        let frozen = conv.clone().no_grad();
        group.bench_function(format!("{label}_input_grad"), |b| {
            b.iter(|| {
                let x = x.clone().require_grad();
                let grads = f(&frozen, x.clone()).sum().backward();
                let g = x.grad(&grads);
                A::sync(&device).unwrap();
                g
            })
        });
        group.bench_function(format!("{label}_forward_backward"), |b| {
            b.iter(|| {
                let x = x.clone().require_grad();
                let grads = f(&conv, x.clone()).sum().backward();
                let g = (x.grad(&grads), conv.weight.val().grad(&grads));
                A::sync(&device).unwrap();
                g
            })
        });
    }
    group.finish();
}

fn convs(c: &mut Criterion) {
    for case in CASES {
        bench_case(c, case);
    }
}

criterion_group!(benches, convs);
criterion_main!(benches);
