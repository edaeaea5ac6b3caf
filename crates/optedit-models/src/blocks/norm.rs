//! Group normalisation (Wu & He, arXiv 1803.08494; `torch.nn.GroupNorm` as
//! diffusers uses it) arranged for the CPU backend: every reduction runs over
//! the contiguous last axis and every broadcast repeats one value along it.

use burn::nn::GroupNorm;
use burn::tensor::{backend::Backend, Tensor};

/// `norm` applied to `x` of shape `[N, C, ...]`: the function of
/// [`GroupNorm::forward`] (biased variance, `epsilon` inside the square
/// root, per-channel affine), computed as statistics on the contiguous view
/// `[N, G, C / G * S]` and then one scale and one shift per row of the view
/// `[N * C, S]` (`S` the spatial size). burn's own version broadcasts `gamma`
/// and `beta` over `[1, C, 1, 1]`, whose backward reduces over the batch and
/// spatial axes through strided copies; here the backward reduces rows.
pub fn group_norm<B: Backend, const D: usize>(
    norm: &GroupNorm<B>,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    let shape = x.shape();
    let dims = x.dims();
    let (n, c) = (dims[0], dims[1]);
    let s: usize = dims[2..].iter().product();
    let g = norm.num_groups;
    let per = c / g;
    let grouped = x.reshape([n, g, per * s]);
    let centred = grouped.clone() - grouped.mean_dim(2);
    let var = centred.clone().square().mean_dim(2);
    let rstd = var.add_scalar(norm.epsilon).sqrt().recip();
    let rows = centred.reshape([n * c, s]);
    let y = match (&norm.gamma, &norm.beta) {
        (Some(gamma), Some(beta)) => {
            let scale = (rstd * gamma.val().reshape([1, g, per])).reshape([n * c, 1]);
            let shift = beta
                .val()
                .reshape([1, c])
                .expand([n, c])
                .reshape([n * c, 1]);
            rows * scale + shift
        }
        _ => rows * rstd.expand([n, g, per]).reshape([n * c, 1]),
    };
    y.reshape(shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::nn::GroupNormConfig;
    use burn::tensor::Distribution;

    type A = Autodiff<Flex>;

    fn max_diff<const D: usize>(a: Tensor<A, D>, b: Tensor<A, D>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    #[test]
    fn matches_burns_group_norm_and_its_gradients() {
        let device = Default::default();
        for (affine, dims) in [(true, [2, 12, 5, 3]), (false, [3, 8, 4, 4])] {
            let mut norm = GroupNormConfig::new(4, dims[1])
                .with_epsilon(1e-5)
                .with_affine(affine)
                .init::<A>(&device);
            if affine {
                // Non-trivial affine parameters, so a swapped gamma/beta shows.
                let gamma =
                    Tensor::<A, 1>::random([dims[1]], Distribution::Normal(1.0, 0.5), &device);
                let beta =
                    Tensor::<A, 1>::random([dims[1]], Distribution::Normal(0.0, 0.5), &device);
                norm.gamma = Some(burn::module::Param::from_tensor(gamma));
                norm.beta = Some(burn::module::Param::from_tensor(beta));
            }
            // A large mean, so a variance without centring would show.
            let x = Tensor::<A, 4>::random(dims, Distribution::Normal(3.0, 2.0), &device)
                .require_grad();
            let w = Tensor::<A, 4>::random(dims, Distribution::Normal(0.0, 1.0), &device);
            let ours = group_norm(&norm, x.clone());
            let burns = norm.forward(x.clone());
            assert!(max_diff(ours.clone(), burns.clone()) < 1e-5);

            let g_ours = (ours * w.clone()).sum().backward();
            let g_burns = (burns * w).sum().backward();
            let gx =
                |g: &<A as burn::tensor::backend::AutodiffBackend>::Gradients| x.grad(g).unwrap();
            let d = (gx(&g_ours) - gx(&g_burns)).abs().max().into_scalar();
            assert!(d < 1e-4, "input gradient differs by {d}");
            if affine {
                for p in [norm.gamma.as_ref().unwrap(), norm.beta.as_ref().unwrap()] {
                    let a = p.val().grad(&g_ours).unwrap();
                    let b = p.val().grad(&g_burns).unwrap();
                    let d = (a - b).abs().max().into_scalar();
                    assert!(d < 1e-4, "parameter gradient differs by {d}");
                }
            }
        }
    }
}
