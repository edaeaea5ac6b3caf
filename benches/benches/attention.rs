//! Multi-head attention forward and forward+backward: optedit's tiled kernel
//! (`kernels::multi_head_attention`, with its own backward pass under
//! `Autodiff`) against burn's `attention` on the same `[batch, tokens,
//! heads * dim]` projections (split into heads and merged back, as the
//! models did before the kernel). Shapes: the demo model's first attention
//! level, SD 1.5's first level at 32 x 32 and 64 x 64 latents (the latter also
//! with one sample and its backward pass, as in an edit's gradient step), and SD 1.5's
//! cross-attention to 77 tokens. `benches/torch/attention.py` measures
//! PyTorch's `scaled_dot_product_attention` at the same shapes.

use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use optedit_models::kernels::{multi_head_attention, reference_attention};

#[cfg(not(feature = "cuda"))]
type Dev = burn::backend::Flex;
#[cfg(feature = "cuda")]
type Dev = burn::backend::Cuda;
type A = Autodiff<Dev>;

/// `(name, batch, n, m, heads, dim, with backward)`.
const SHAPES: [(&str, usize, usize, usize, usize, usize, bool); 5] = [
    ("demo_self_b2_256x256_4x16", 2, 256, 256, 4, 16, true),
    ("sd15_self_b1_1024x1024_8x40", 1, 1024, 1024, 8, 40, true),
    ("sd15_cross_b2_4096x77_8x40", 2, 4096, 77, 8, 40, true),
    ("sd15_self_b2_4096x4096_8x40", 2, 4096, 4096, 8, 40, false),
    ("sd15_self_b1_4096x4096_8x40", 1, 4096, 4096, 8, 40, true),
];

fn attentions(c: &mut Criterion) {
    let device = Default::default();
    for (name, batch, n, m, heads, dim, backward) in SHAPES {
        let mut group = c.benchmark_group(format!("{name}{}", optedit_benches::bench_kernels()));
        group.sample_size(10);
        let d = Distribution::Normal(0.0, 1.0);
        let q = Tensor::<A, 3>::random([batch, n, heads * dim], d, &device);
        let k = Tensor::<A, 3>::random([batch, m, heads * dim], d, &device);
        let v = Tensor::<A, 3>::random([batch, m, heads * dim], d, &device);
        type F = fn(Tensor<Dev, 3>, Tensor<Dev, 3>, Tensor<Dev, 3>, usize) -> Tensor<Dev, 3>;
        type G = fn(Tensor<A, 3>, Tensor<A, 3>, Tensor<A, 3>, usize) -> Tensor<A, 3>;
        let plain: [(&str, F, G); 2] = [
            (
                "burn",
                |q, k, v, h| reference_attention(q, k, v, h, false),
                |q, k, v, h| reference_attention(q, k, v, h, false),
            ),
            (
                "optedit",
                |q, k, v, h| multi_head_attention(q, k, v, h, false),
                |q, k, v, h| multi_head_attention(q, k, v, h, false),
            ),
        ];
        for (label, forward, tracked) in plain {
            let (qi, ki, vi) = (q.clone().inner(), k.clone().inner(), v.clone().inner());
            group.bench_function(format!("{label}_forward"), |b| {
                b.iter(|| {
                    let y = forward(qi.clone(), ki.clone(), vi.clone(), heads);
                    Dev::sync(&device).unwrap();
                    y
                })
            });
            if backward {
                group.bench_function(format!("{label}_forward_backward"), |b| {
                    b.iter(|| {
                        let (q, k, v) = (
                            q.clone().require_grad(),
                            k.clone().require_grad(),
                            v.clone().require_grad(),
                        );
                        let grads = tracked(q.clone(), k, v, heads).sum().backward();
                        let g = q.grad(&grads);
                        A::sync(&device).unwrap();
                        g
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, attentions);
criterion_main!(benches);
