//! Group normalisation (Wu & He, arXiv 1803.08494; `torch.nn.GroupNorm` as
//! diffusers uses it) arranged for the CPU backend: every reduction runs over
//! the contiguous last axis and every broadcast repeats one value along it.

use burn::nn::GroupNorm;
use burn::tensor::{backend::Backend, Tensor};

/// `norm` applied to `x` of shape `[N, C, ...]`: the function of
/// [`GroupNorm::forward`] (biased variance, `epsilon` inside the square
/// root, per-channel affine). With an affine norm this is
/// [`crate::kernels::group_norm`] (one fused kernel on `Flex`), otherwise
/// the decomposed version below.
pub fn group_norm<B: Backend, const D: usize>(
    norm: &GroupNorm<B>,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    norm_then(norm, x, false)
}

/// `silu(group_norm(norm, x))`, fused into one kernel where
/// [`crate::kernels::group_norm`] has one.
pub fn group_norm_silu<B: Backend, const D: usize>(
    norm: &GroupNorm<B>,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    norm_then(norm, x, true)
}

fn norm_then<B: Backend, const D: usize>(
    norm: &GroupNorm<B>,
    x: Tensor<B, D>,
    silu: bool,
) -> Tensor<B, D> {
    match (&norm.gamma, &norm.beta) {
        (Some(gamma), Some(beta)) => crate::kernels::group_norm(
            x,
            gamma.val(),
            beta.val(),
            norm.num_groups,
            norm.epsilon,
            silu,
        ),
        _ => {
            let y = group_norm_decomposed(x, None, norm.num_groups, norm.epsilon);
            if silu {
                crate::kernels::silu(y)
            } else {
                y
            }
        }
    }
}

/// Group norm from burn tensor operations, for backends without the fused
/// kernel: statistics on the contiguous view `[N, G, C / G * S]`, then one
/// scale and one shift per row of the view `[N * C, S]` (`S` the spatial
/// size), so that every reduction and broadcast runs along the contiguous
/// last axis. burn's own version broadcasts `gamma` and `beta` over
/// `[1, C, 1, 1]`, whose backward reduces over the batch and spatial axes
/// through strided copies; here the backward reduces rows.
pub(crate) fn group_norm_decomposed<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    affine: Option<(Tensor<B, 1>, Tensor<B, 1>)>,
    groups: usize,
    epsilon: f64,
) -> Tensor<B, D> {
    let shape = x.shape();
    let dims = x.dims();
    let (n, c) = (dims[0], dims[1]);
    let s: usize = dims[2..].iter().product();
    let g = groups;
    let per = c / g;
    let grouped = x.reshape([n, g, per * s]);
    let centred = grouped.clone() - grouped.mean_dim(2);
    let var = centred.clone().square().mean_dim(2);
    let rstd = var.add_scalar(epsilon).sqrt().recip();
    let rows = centred.reshape([n * c, s]);
    let y = match affine {
        Some((gamma, beta)) => {
            let scale = (rstd * gamma.reshape([1, g, per])).reshape([n * c, 1]);
            let shift = beta.reshape([1, c]).expand([n, c]).reshape([n * c, 1]);
            rows * scale + shift
        }
        None => rows * rstd.expand([n, g, per]).reshape([n * c, 1]),
    };
    y.reshape(shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::autodiff::checkpoint::strategy::{
        BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
    };
    use burn::backend::{Autodiff, Flex};
    use burn::module::AutodiffModule;
    use burn::nn::GroupNormConfig;
    use burn::tensor::activation::silu;
    use burn::tensor::Distribution;

    fn max_diff<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
        (a - b).abs().max().into_scalar().elem()
    }

    use burn::tensor::ElementConversion;

    /// Ours (fused kernel for affine norms, decomposed otherwise, with and
    /// without the SiLU) against burn's `GroupNorm` (+ burn's `silu`):
    /// values and the gradients of input, gamma and beta.
    fn matches_burn<C: CheckpointStrategy>() {
        type A<C> = Autodiff<Flex, C>;
        let device = Default::default();
        let cases = [
            (true, [2, 12, 5, 3]),
            (false, [3, 8, 4, 4]),
            (true, [2, 64, 17, 9]),
        ];
        for ((affine, dims), with_silu) in cases.into_iter().flat_map(|c| [(c, false), (c, true)]) {
            let mut norm = GroupNormConfig::new(4, dims[1])
                .with_epsilon(1e-5)
                .with_affine(affine)
                .init::<A<C>>(&device);
            if affine {
                // Non-trivial affine parameters, so a swapped gamma/beta shows.
                let gamma =
                    Tensor::<A<C>, 1>::random([dims[1]], Distribution::Normal(1.0, 0.5), &device);
                let beta =
                    Tensor::<A<C>, 1>::random([dims[1]], Distribution::Normal(0.0, 0.5), &device);
                norm.gamma = Some(burn::module::Param::from_tensor(gamma));
                norm.beta = Some(burn::module::Param::from_tensor(beta));
            }
            // A large mean, so a variance without centring would show.
            let x = Tensor::<A<C>, 4>::random(dims, Distribution::Normal(3.0, 2.0), &device)
                .require_grad();
            let w = Tensor::<A<C>, 4>::random(dims, Distribution::Normal(0.0, 1.0), &device);
            let (ours, burns) = if with_silu {
                (
                    group_norm_silu(&norm, x.clone()),
                    silu(norm.forward(x.clone())),
                )
            } else {
                (group_norm(&norm, x.clone()), norm.forward(x.clone()))
            };
            assert!(max_diff(ours.clone(), burns.clone()) < 1e-5);
            let plain = group_norm(&norm.valid(), x.clone().inner());
            assert!(max_diff(plain, norm.valid().forward(x.clone().inner())) < 1e-5);

            let g_ours = (ours * w.clone()).sum().backward();
            let g_burns = (burns * w).sum().backward();
            let d = max_diff(x.grad(&g_ours).unwrap(), x.grad(&g_burns).unwrap());
            assert!(d < 1e-4, "input gradient differs by {d}");
            if affine {
                for p in [norm.gamma.as_ref().unwrap(), norm.beta.as_ref().unwrap()] {
                    let d = max_diff(
                        p.val().grad(&g_ours).unwrap(),
                        p.val().grad(&g_burns).unwrap(),
                    );
                    assert!(d < 1e-4, "parameter gradient differs by {d}");
                }
            }
        }
    }

    #[test]
    fn matches_burns_group_norm_and_its_gradients() {
        matches_burn::<NoCheckpointing>();
    }

    #[test]
    fn matches_burns_group_norm_under_balanced_checkpointing() {
        matches_burn::<BalancedCheckpointing>();
    }

    #[test]
    fn decomposed_version_matches_burns_group_norm() {
        let device = Default::default();
        let norm = GroupNormConfig::new(4, 12).init::<Flex>(&device);
        let x = Tensor::<Flex, 4>::random([2, 12, 5, 3], Distribution::Normal(3.0, 2.0), &device);
        let affine = Some((
            norm.gamma.as_ref().unwrap().val(),
            norm.beta.as_ref().unwrap().val(),
        ));
        let ours = group_norm_decomposed(x.clone(), affine, 4, norm.epsilon);
        assert!(max_diff(ours, norm.forward(x)) < 1e-5);
    }
}
