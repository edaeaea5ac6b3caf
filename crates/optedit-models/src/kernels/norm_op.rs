//! [`group_norm`]: dispatch and the autodiff node of the fused group norm
//! in `group_norm.rs`.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::Tensor;
use burn_flex::FlexTensor;

use super::group_norm::{self, Spec, Stats};
use super::{contiguous, flex, from, path, register, saved, silu, slice, to, Path};
use crate::blocks::norm::group_norm_decomposed;

/// Group normalisation of `x` `[N, C, ...]` in `groups` groups with the
/// per-channel affine `gamma`, `beta` (`[C]`), followed by SiLU when `silu`:
/// `torch.nn.GroupNorm` (biased variance, `eps` inside the square root),
/// optionally fused with the activation diffusers applies after most norms.
///
/// On `Flex` and `Autodiff<Flex, _>` with `f32` tensors this is one fused
/// kernel (and one autodiff node keeping the input and two numbers per
/// group); elsewhere the decomposed version
/// ([`crate::blocks::norm::group_norm`]'s arithmetic) and [`silu`].
///
/// # Panics
/// As burn's tensor operations do, when `x` has fewer than two dimensions,
/// `groups` is zero or does not divide the channels, or `gamma`, `beta` are
/// not `[C]` (the models check all of this when they read their configs).
pub fn group_norm<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    groups: usize,
    eps: f64,
    silu_after: bool,
) -> Tensor<B, D> {
    let dims = x.dims();
    let c = if D > 1 { dims[1] } else { 0 };
    let spec = Spec {
        n: dims[0],
        c,
        s: dims[2.min(D)..].iter().product(),
        groups,
        eps: eps as f32,
        silu: silu_after,
    };
    let fits = D > 1
        && groups > 0
        && c % groups == 0
        && spec.s > 0
        && spec.n > 0
        && gamma.dims() == [c]
        && beta.dims() == [c]
        && gamma.dtype() == x.dtype()
        && beta.dtype() == x.dtype();
    let kind = if fits {
        path::<B>(x.dtype())
    } else {
        Path::Other
    };
    match kind {
        Path::Flex => {
            let out = forward(
                to::<Flex, _, D>(x),
                to::<Flex, _, 1>(gamma),
                to::<Flex, _, 1>(beta),
                spec,
            );
            from::<Flex, B, D>(out.0)
        }
        Path::Tracked => {
            type X = Autodiff<Flex, NoCheckpointing>;
            let inputs = [to::<X, B, D>(x), to::<X, B, 1>(gamma), to::<X, B, 1>(beta)];
            from::<X, B, D>(tracked::<NoCheckpointing>(inputs, spec))
        }
        Path::TrackedBalanced => {
            type X = Autodiff<Flex, BalancedCheckpointing>;
            let inputs = [to::<X, B, D>(x), to::<X, B, 1>(gamma), to::<X, B, 1>(beta)];
            from::<X, B, D>(tracked::<BalancedCheckpointing>(inputs, spec))
        }
        Path::Other => {
            let y = group_norm_decomposed(x, Some((gamma, beta)), groups, eps);
            if silu_after {
                silu(y)
            } else {
                y
            }
        }
    }
}

/// Forward pass on `Flex`: output and statistics.
fn forward(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, spec: Spec) -> (FlexTensor, Stats) {
    let (x, gamma, beta) = (contiguous(x), contiguous(gamma), contiguous(beta));
    let shape = x.layout().shape().to_vec();
    let (y, stats) = group_norm::forward(slice(&x), slice(&gamma), slice(&beta), spec);
    (flex(y, &shape), stats)
}

/// The autodiff node of [`group_norm`].
#[derive(Debug)]
struct GroupNormNode;

/// What the backward pass needs besides the inputs.
#[derive(Debug, Clone)]
struct Saved {
    inputs: [NodeId; 3],
    stats: Arc<Stats>,
    spec: Spec,
}

impl Backward<Flex, 3> for GroupNormNode {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let Saved {
            inputs,
            stats,
            spec,
        } = ops.state;
        let [x, gamma, beta] = saved(inputs, checkpointer);
        let shape = x.layout().shape().to_vec();
        let (dx, dgamma, dbeta) = group_norm::backward(
            slice(&x),
            slice(&gamma),
            slice(&beta),
            &stats,
            slice(&grad),
            spec,
        );
        let values = [
            flex(dx, &shape),
            flex(dgamma, &[spec.c]),
            flex(dbeta, &[spec.c]),
        ];
        register(ops.parents.map(|p| p.map(|node| node.id)), values, grads);
    }
}

/// Forward pass on `Autodiff<Flex, C>`, recording [`GroupNormNode`].
fn tracked<C: CheckpointStrategy>(
    [x, gamma, beta]: [FloatTensor<Autodiff<Flex, C>>; 3],
    spec: Spec,
) -> FloatTensor<Autodiff<Flex, C>> {
    let nodes = [x.node.clone(), gamma.node.clone(), beta.node.clone()];
    match GroupNormNode.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let inputs = [
                prep.checkpoint(&x),
                prep.checkpoint(&gamma),
                prep.checkpoint(&beta),
            ];
            let (y, stats) = forward(x.primitive, gamma.primitive, beta.primitive, spec);
            let saved = Saved {
                inputs,
                stats: Arc::new(stats),
                spec,
            };
            prep.finish(saved, y)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(forward(x.primitive, gamma.primitive, beta.primitive, spec).0)
        }
    }
}
