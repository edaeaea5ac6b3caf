//! GroupNorm forward and forward+backward: burn's `GroupNorm::forward`
//! against optedit's row-wise `blocks::norm::group_norm`, at the demo
//! model's training shape (16 x 64 x 32 x 32) and SD 1.5's first-level shape
//! (2 x 320 x 64 x 64), 32 groups.

use burn::backend::Autodiff;
use burn::nn::{GroupNorm, GroupNormConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use optedit_models::blocks::norm::group_norm;

#[cfg(not(feature = "cuda"))]
type Dev = burn::backend::Flex;
#[cfg(feature = "cuda")]
type Dev = burn::backend::Cuda;
type A = Autodiff<Dev>;

fn bench_shape(c: &mut Criterion, dims: [usize; 4]) {
    let device = Default::default();
    let name = format!("group_norm_{}x{}x{}x{}", dims[0], dims[1], dims[2], dims[3]);
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    let norm: GroupNorm<A> = GroupNormConfig::new(32, dims[1]).init(&device);
    let x = Tensor::<A, 4>::random(dims, Distribution::Normal(0.0, 1.0), &device);
    type F = fn(&GroupNorm<A>, Tensor<A, 4>) -> Tensor<A, 4>;
    let burn_nn: F = |n, x| n.forward(x);
    let optedit: F = |n, x| group_norm(n, x);
    for (label, f) in [("burn", burn_nn), ("optedit", optedit)] {
        group.bench_function(format!("{label}_forward"), |b| {
            b.iter(|| {
                let y = f(&norm, x.clone());
                A::sync(&device).unwrap();
                y
            })
        });
        group.bench_function(format!("{label}_forward_backward"), |b| {
            b.iter(|| {
                let x = x.clone().require_grad();
                let grads = f(&norm, x.clone()).sum().backward();
                let g = x.grad(&grads);
                A::sync(&device).unwrap();
                g
            })
        });
    }
    group.finish();
}

fn norms(c: &mut Criterion) {
    bench_shape(c, [16, 64, 32, 32]);
    bench_shape(c, [2, 320, 64, 64]);
}

criterion_group!(benches, norms);
criterion_main!(benches);
