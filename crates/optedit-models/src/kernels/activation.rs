//! [`silu`] and [`gelu`] as single vectorised, multi-threaded passes, with
//! an autodiff node each that keeps only the input.
//!
//! SiLU is `x * sigmoid(x)` (diffusers' `nn.SiLU`); GELU is the exact
//! `x * Phi(x)` (`nn.GELU()`, no tanh approximation), with `Phi` from the
//! complementary error function of Numerical Recipes (`erfcc`, fractional
//! error below 1.2e-7), built on the vectorised `exp` of `exp.rs`.

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
use rayon::prelude::*;

use super::exp::{dispatch, exp1};
use super::{contiguous, flex, on, path, slice, Path};

/// Elements per parallel job.
const CHUNK: usize = 1 << 14;
const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// `1 / sqrt(2 pi)`.
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

#[inline(always)]
fn sigmoid1(x: f32) -> f32 {
    1.0 / (1.0 + exp1(-x))
}

/// `Phi(x) = erfc(-x / sqrt 2) / 2`, the standard normal distribution.
#[inline(always)]
fn phi1(x: f32) -> f32 {
    let z = x.abs() * FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let p = 0.170_872_77;
    let p = p * t - 0.822_152_23;
    let p = p * t + 1.488_515_9;
    let p = p * t - 1.135_203_98;
    let p = p * t + 0.278_868_07;
    let p = p * t - 0.186_288_06;
    let p = p * t + 0.096_784_18;
    let p = p * t + 0.374_091_96;
    let p = p * t + 1.000_023_7;
    let p = p * t - 1.265_512_2;
    let half_erfc = 0.5 * t * exp1(p - z * z);
    if x >= 0.0 {
        1.0 - half_erfc
    } else {
        half_erfc
    }
}

#[inline(always)]
fn silu_body(x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = x * sigmoid1(x);
    }
}

#[inline(always)]
fn silu_grad_body(x: &[f32], g: &[f32], out: &mut [f32]) {
    for ((o, &x), &g) in out.iter_mut().zip(x).zip(g) {
        let s = sigmoid1(x);
        *o = g * s * (1.0 + x * (1.0 - s));
    }
}

#[inline(always)]
fn gelu_body(x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = x * phi1(x);
    }
}

#[inline(always)]
fn gelu_grad_body(x: &[f32], g: &[f32], out: &mut [f32]) {
    for ((o, &x), &g) in out.iter_mut().zip(x).zip(g) {
        *o = g * (phi1(x) + x * FRAC_1_SQRT_2PI * exp1(-0.5 * x * x));
    }
}

dispatch!(silu_slice, silu_body, (x: &[f32], y: &mut [f32]) -> ());
dispatch!(silu_grad_slice, silu_grad_body, (x: &[f32], g: &[f32], out: &mut [f32]) -> ());
dispatch!(gelu_slice, gelu_body, (x: &[f32], y: &mut [f32]) -> ());
dispatch!(gelu_grad_slice, gelu_grad_body, (x: &[f32], g: &[f32], out: &mut [f32]) -> ());

/// Which activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Silu,
    Gelu,
}

impl Kind {
    fn forward(self, x: &[f32]) -> Vec<f32> {
        let mut y = vec![0.0f32; x.len()];
        let f = match self {
            Kind::Silu => silu_slice,
            Kind::Gelu => gelu_slice,
        };
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(y, x)| f(x, y));
        y
    }

    fn backward(self, x: &[f32], g: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0f32; x.len()];
        let f = match self {
            Kind::Silu => silu_grad_slice,
            Kind::Gelu => gelu_grad_slice,
        };
        out.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
            .for_each(|(o, (x, g))| f(x, g, o));
        out
    }

    fn flex(self, x: FlexTensor) -> FlexTensor {
        let x = contiguous(x);
        let shape = x.layout().shape().to_vec();
        flex(self.forward(slice(&x)), &shape)
    }
}

/// SiLU, `x * sigmoid(x)`, element-wise (burn's `activation::silu` on
/// backends without the kernel).
pub fn silu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    apply(x, Kind::Silu)
}

/// GELU, `x * Phi(x)` with `Phi` the standard normal distribution function
/// (the exact GELU; burn's `activation::gelu` on backends without the
/// kernel).
pub fn gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    apply(x, Kind::Gelu)
}

fn apply<B: Backend, const D: usize>(x: Tensor<B, D>, kind: Kind) -> Tensor<B, D> {
    match path::<B>(x.dtype()) {
        Path::Flex => on::<B, Flex, D, 1>([x], |[x]| kind.flex(x)),
        Path::Tracked => on::<B, Autodiff<Flex, NoCheckpointing>, D, 1>([x], |[x]| {
            tracked::<NoCheckpointing>(x, kind)
        }),
        Path::TrackedBalanced => on::<B, Autodiff<Flex, BalancedCheckpointing>, D, 1>([x], |[x]| {
            tracked::<BalancedCheckpointing>(x, kind)
        }),
        Path::Other => match kind {
            Kind::Silu => burn::tensor::activation::silu(x),
            Kind::Gelu => burn::tensor::activation::gelu(x),
        },
    }
}

/// The autodiff node of an activation.
#[derive(Debug)]
struct ActivationNode(Kind);

impl Backward<Flex, 1> for ActivationNode {
    type State = NodeId;

    fn backward(self, ops: Ops<NodeId, 1>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let x = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(ops.state));
        if let Some(node) = parent {
            let shape = x.layout().shape().to_vec();
            let values = self.0.backward(slice(&x), slice(&grad));
            grads.register::<Flex>(node.id, flex(values, &shape));
        }
    }
}

fn tracked<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    kind: Kind,
) -> FloatTensor<Autodiff<Flex, C>> {
    match ActivationNode(kind)
        .prepare::<C>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let state = prep.checkpoint(&x);
            prep.finish(state, kind.flex(x.primitive))
        }
        OpsKind::UnTracked(prep) => prep.finish(kind.flex(x.primitive)),
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::{Distribution, Tensor, Tolerance};

    use super::*;

    /// Values from -30 to 30 (both branches of `Phi`, saturated ends), as a
    /// transposed, non-contiguous view.
    fn input<B: Backend>(device: &B::Device) -> Tensor<B, 2> {
        let wide = Tensor::<B, 1>::from_floats(
            [-30.0, -9.0, -3.5, -1.0, -0.3, 0.0, 0.2, 1.0, 2.5, 7.0, 30.0],
            device,
        );
        let random = Tensor::<B, 1>::random([40_033], Distribution::Normal(0.0, 3.0), device);
        Tensor::cat(vec![wide, random], 0)
            .reshape([3, 13_348])
            .swap_dims(0, 1)
    }

    type F<B> = fn(Tensor<B, 2>) -> Tensor<B, 2>;

    fn pairs<B: Backend>() -> [(F<B>, F<B>); 2] {
        [
            (silu, burn::tensor::activation::silu),
            (gelu, burn::tensor::activation::gelu),
        ]
    }

    #[test]
    fn forward_matches_burn() {
        let device = Default::default();
        let x = input::<Flex>(&device);
        for (ours, theirs) in pairs::<Flex>() {
            ours(x.clone())
                .into_data()
                .assert_approx_eq::<f32>(&theirs(x.clone()).into_data(), Tolerance::absolute(1e-5));
        }
    }

    #[test]
    fn gradients_match_burn() {
        type A = Autodiff<Flex>;
        let device = Default::default();
        let x = input::<A>(&device).require_grad();
        let weights = Tensor::<A, 2>::random(x.dims(), Distribution::Normal(0.0, 1.0), &device);
        for (ours, theirs) in pairs::<A>() {
            let run = |f: F<A>| {
                let y = f(x.clone());
                let grads = (y.clone() * weights.clone()).sum().backward();
                (
                    y.inner().into_data(),
                    x.grad(&grads).expect("gradient").into_data(),
                )
            };
            let (y, g) = run(ours);
            let (y_ref, g_ref) = run(theirs);
            y.assert_approx_eq::<f32>(&y_ref, Tolerance::absolute(1e-5));
            g.assert_approx_eq::<f32>(&g_ref, Tolerance::absolute(1e-5));
        }
    }
}
