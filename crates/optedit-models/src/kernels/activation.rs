//! [`silu`] and [`gelu`] as single vectorised, multi-threaded passes, with
//! an autodiff node each that keeps only the input; [`geglu`] fuses the
//! GEGLU feed-forward's `h * gelu(gate)` (diffusers `GEGLU` in
//! `models/activations.py`) into one pass over the projection's output, so
//! neither half is copied out of it and the gradient comes back as one
//! contiguous tensor (measured: in an SD 1.5 gradient step, the chunked
//! halves' strided multiplication, forward, backward and recomputation, was
//! about 7% of the samples).
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
use super::{contiguous, flex, on, path, rows_per_job, slice, zeros, Path};

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

#[inline(always)]
fn geglu_body(h: &[f32], gate: &[f32], y: &mut [f32]) {
    for ((y, &h), &x) in y.iter_mut().zip(h).zip(gate) {
        *y = h * x * phi1(x);
    }
}

#[inline(always)]
fn geglu_grad_body(h: &[f32], gate: &[f32], g: &[f32], dh: &mut [f32], dgate: &mut [f32]) {
    for ((((dh, dgate), &h), &x), &g) in dh.iter_mut().zip(dgate).zip(h).zip(gate).zip(g) {
        let p = phi1(x);
        *dh = g * x * p;
        *dgate = g * h * (p + x * FRAC_1_SQRT_2PI * exp1(-0.5 * x * x));
    }
}

dispatch!(geglu_slice, geglu_body, (h: &[f32], gate: &[f32], y: &mut [f32]) -> ());
dispatch!(geglu_grad_slice, geglu_grad_body, (h: &[f32], gate: &[f32], g: &[f32], dh: &mut [f32], dgate: &mut [f32]) -> ());
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
        let mut y = zeros(x.len());
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
        let mut out = zeros(x.len());
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

/// GEGLU's gate: `h * gelu(gate)` where `h` and `gate` are the first and
/// second halves of `x`'s last dimension (diffusers `GEGLU.forward` after
/// its projection). The output's last dimension is half of `x`'s. On
/// backends without the kernel: burn's `chunk`, the [`gelu`] above and a
/// multiplication.
///
/// # Panics
/// If `x`'s last dimension is odd (the models build the projection with
/// an even width, so this is a bug, not bad input).
pub(crate) fn geglu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let width = x.dims()[D - 1];
    assert!(
        width % 2 == 0,
        "geglu: the last dimension ({width}) must hold two equal halves"
    );
    match path::<B>(x.dtype()) {
        Path::Flex => on::<B, Flex, D, 1>([x], |[x]| geglu_flex(x)),
        Path::Tracked => on::<B, Autodiff<Flex, NoCheckpointing>, D, 1>([x], |[x]| {
            tracked_geglu::<NoCheckpointing>(x)
        }),
        Path::TrackedBalanced => on::<B, Autodiff<Flex, BalancedCheckpointing>, D, 1>([x], |[x]| {
            tracked_geglu::<BalancedCheckpointing>(x)
        }),
        Path::Other => {
            let mut parts = x.chunk(2, D - 1);
            let gate = parts.pop().expect("two halves");
            let hidden = parts.pop().expect("two halves");
            hidden * gelu(gate)
        }
    }
}

/// The forward pass on a Flex tensor.
fn geglu_flex(x: FlexTensor) -> FlexTensor {
    let x = contiguous(x);
    let mut shape = x.layout().shape().to_vec();
    let inner = shape.last().copied().unwrap_or(0) / 2;
    *shape.last_mut().expect("a rank of at least one") = inner;
    let xs = slice(&x);
    let mut y = zeros(xs.len() / 2);
    if inner > 0 {
        let rows = rows_per_job(2 * inner, CHUNK);
        y.par_chunks_mut(rows * inner)
            .zip(xs.par_chunks(rows * 2 * inner))
            .for_each(|(y, x)| {
                for (y, x) in y.chunks_mut(inner).zip(x.chunks(2 * inner)) {
                    let (h, gate) = x.split_at(inner);
                    geglu_slice(h, gate, y);
                }
            });
    }
    flex(y, &shape)
}

/// The autodiff node of [`geglu`]: keeps the input, returns its gradient
/// as one tensor of the input's shape (`[dh | dgate]` per row).
#[derive(Debug)]
struct GegluNode;

impl Backward<Flex, 1> for GegluNode {
    type State = NodeId;

    fn backward(self, ops: Ops<NodeId, 1>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let x = contiguous(checkpointer.retrieve_node_output::<FlexTensor>(ops.state));
        let Some(node) = parent else {
            return;
        };
        let shape = x.layout().shape().to_vec();
        let inner = shape.last().copied().unwrap_or(0) / 2;
        let (xs, g) = (slice(&x), slice(&grad));
        let mut out = zeros(xs.len());
        if inner > 0 {
            let rows = rows_per_job(2 * inner, CHUNK);
            out.par_chunks_mut(rows * 2 * inner)
                .zip(
                    xs.par_chunks(rows * 2 * inner)
                        .zip(g.par_chunks(rows * inner)),
                )
                .for_each(|(out, (x, g))| {
                    let rows = out.chunks_mut(2 * inner).zip(x.chunks(2 * inner));
                    for ((out, x), g) in rows.zip(g.chunks(inner)) {
                        let (h, gate) = x.split_at(inner);
                        let (dh, dgate) = out.split_at_mut(inner);
                        geglu_grad_slice(h, gate, g, dh, dgate);
                    }
                });
        }
        grads.register::<Flex>(node.id, flex(out, &shape));
    }
}

fn tracked_geglu<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
) -> FloatTensor<Autodiff<Flex, C>> {
    match GegluNode
        .prepare::<C>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let state = prep.checkpoint(&x);
            prep.finish(state, geglu_flex(x.primitive))
        }
        OpsKind::UnTracked(prep) => prep.finish(geglu_flex(x.primitive)),
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

    /// `h * gelu(gate)` from burn's own operations: the reference.
    fn geglu_reference<B: Backend>(x: Tensor<B, 3>) -> Tensor<B, 3> {
        let mut parts = x.chunk(2, 2);
        let gate = parts.pop().expect("two halves");
        let hidden = parts.pop().expect("two halves");
        hidden * burn::tensor::activation::gelu(gate)
    }

    /// `[2, 37, 2 * 45]`, as a non-contiguous view (`inner` 45 is not a
    /// multiple of any vector width), wide values included.
    fn geglu_input<B: Backend>(device: &B::Device) -> Tensor<B, 3> {
        let x = Tensor::<B, 3>::random([2, 90, 37], Distribution::Normal(0.0, 3.0), device)
            .swap_dims(1, 2);
        let wide = Tensor::<B, 3>::from_floats([[[-30.0, -9.0, -1.0, 0.0, 2.5, 30.0]]], device);
        x.slice_assign([0..1, 0..1, 40..46], wide.clone())
            .slice_assign([1..2, 3..4, 0..6], wide)
    }

    fn geglu_gradients<B: burn::tensor::backend::AutodiffBackend>() {
        let device = Default::default();
        let x = geglu_input::<B>(&device).require_grad();
        let weights = Tensor::<B, 3>::random([2, 37, 45], Distribution::Normal(0.0, 1.0), &device);
        let run = |f: fn(Tensor<B, 3>) -> Tensor<B, 3>| {
            let y = f(x.clone());
            let grads = (y.clone() * weights.clone()).sum().backward();
            (
                y.inner().into_data(),
                x.grad(&grads).expect("gradient").into_data(),
            )
        };
        let (y, g) = run(geglu);
        let (y_ref, g_ref) = run(geglu_reference);
        assert_eq!(y.shape, y_ref.shape);
        y.assert_approx_eq::<f32>(&y_ref, Tolerance::absolute(1e-4));
        g.assert_approx_eq::<f32>(&g_ref, Tolerance::absolute(1e-4));
    }

    #[test]
    fn geglu_forward_matches_burn() {
        let device = Default::default();
        let x = geglu_input::<Flex>(&device);
        let y = geglu(x.clone());
        assert_eq!(y.dims(), [2, 37, 45]);
        y.into_data()
            .assert_approx_eq::<f32>(&geglu_reference(x).into_data(), Tolerance::absolute(1e-4));
    }

    #[test]
    fn geglu_gradients_match_burn_with_and_without_checkpointing() {
        geglu_gradients::<Autodiff<Flex>>();
        geglu_gradients::<Autodiff<Flex, BalancedCheckpointing>>();
    }
}
