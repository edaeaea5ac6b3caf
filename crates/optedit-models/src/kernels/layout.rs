//! [`transpose`]: `x.swap_dims(1, 2)` of a 3-D tensor (the token layout
//! change around diffusers' `Transformer2DModel` and spatial attention,
//! `[b, c, h*w] <-> [b, h*w, c]`), materialised by a tiled, multi-threaded
//! copy, with an autodiff node whose backward is the same copy.
//! [`upsample2x`]: nearest-neighbour up-sampling by two (diffusers
//! `Upsample2D`'s `F.interpolate(scale_factor=2.0, mode="nearest")`), one
//! multi-threaded pass, its backward the sum of each 2 x 2 block.
//!
//! burn 0.21's `Flex` keeps a swap as a view, and the next operation that
//! needs contiguous data copies it: for a batch of one its tiled 2-D copy,
//! for a batch above one (classifier-free guidance) its strided iterator,
//! element by element on one thread. Measured in an SD 1.5 512 x 512 edit
//! (perf, bf16): those copies and the strided element-wise operations they
//! feed were the largest single-threaded cost of a gradient step.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::Tensor;
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::{contiguous, flex, on, path, rows_per_job, slice, zeros, Path};

/// Output rows per parallel job: one cache line of the source's columns.
const ROWS: usize = 16;
/// Source rows per tile: `TILE` lines stay in L1 while `ROWS` output rows
/// read them.
const TILE: usize = 64;

/// `x.swap_dims(1, 2)` in contiguous storage: `[b, r, c] -> [b, c, r]`.
/// On backends without the kernel, burn's `swap_dims` (a view where the
/// backend has them).
pub(crate) fn transpose<B: Backend>(x: Tensor<B, 3>) -> Tensor<B, 3> {
    // The swap is its own adjoint: the gradient is transposed back.
    apply(x, transpose_flex, transpose_flex, |x| x.swap_dims(1, 2))
}

/// `forward` of `x` on Flex, with an autodiff node whose input gradient is
/// `adjoint` of the output gradient (a linear map, so no state is kept);
/// `fallback` on other backends.
fn apply<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    forward: fn(FlexTensor) -> FlexTensor,
    adjoint: fn(FlexTensor) -> FlexTensor,
    fallback: impl FnOnce(Tensor<B, D>) -> Tensor<B, D>,
) -> Tensor<B, D> {
    match path::<B>(x.dtype()) {
        Path::Flex => on::<B, Flex, D, 1>([x], |[x]| forward(x)),
        Path::Tracked => on::<B, Autodiff<Flex, NoCheckpointing>, D, 1>([x], |[x]| {
            tracked::<NoCheckpointing>(x, forward, adjoint)
        }),
        Path::TrackedBalanced => on::<B, Autodiff<Flex, BalancedCheckpointing>, D, 1>([x], |[x]| {
            tracked::<BalancedCheckpointing>(x, forward, adjoint)
        }),
        Path::Other => fallback(x),
    }
}

/// The copy on a Flex tensor.
fn transpose_flex(x: FlexTensor) -> FlexTensor {
    let x = contiguous(x);
    let [b, r, c] = match x.layout().shape().to_vec()[..] {
        [b, r, c] => [b, r, c],
        _ => unreachable!("a rank-3 tensor"),
    };
    let src = slice(&x);
    let mut out = zeros(src.len());
    if r > 0 && c > 0 {
        out.par_chunks_mut(ROWS * r)
            .enumerate()
            .for_each(|(job, rows)| {
                for r0 in (0..r).step_by(TILE) {
                    let r1 = (r0 + TILE).min(r);
                    for (k, row) in rows.chunks_mut(r).enumerate() {
                        // Output row g is column ci of batch bi.
                        let g = job * ROWS + k;
                        let (bi, ci) = (g / c, g % c);
                        let column = &src[bi * r * c + ci..];
                        for (o, rr) in row[r0..r1].iter_mut().zip(r0..r1) {
                            *o = column[rr * c];
                        }
                    }
                }
            });
    }
    flex(out, &[b, c, r])
}

/// The autodiff node of a linear layout map: the input gradient is the
/// adjoint map of the output gradient.
#[derive(Debug)]
struct LinearMapNode(fn(FlexTensor) -> FlexTensor);

impl Backward<Flex, 1> for LinearMapNode {
    type State = ();

    fn backward(self, ops: Ops<(), 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        if let Some(node) = parent {
            grads.register::<Flex>(node.id, (self.0)(grad));
        }
    }
}

fn tracked<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    forward: fn(FlexTensor) -> FlexTensor,
    adjoint: fn(FlexTensor) -> FlexTensor,
) -> FloatTensor<Autodiff<Flex, C>> {
    LinearMapNode(adjoint)
        .prepare::<C>([x.node.clone()])
        .compute_bound()
        .stateless(forward(x.primitive))
}

/// Nearest-neighbour up-sampling by two: `[b, c, h, w] -> [b, c, 2h, 2w]`,
/// each element copied into a 2 x 2 block. On backends without the kernel,
/// [`upsample2x_expand`].
pub(crate) fn upsample2x<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    apply(x, upsample_flex, upsample_grad, upsample2x_expand)
}

/// [`upsample2x`] with burn's operations: `expand` of a reshaped view.
fn upsample2x_expand<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1])
        .expand([b, c, h, 2, w, 2])
        .reshape([b, c, 2 * h, 2 * w])
}

/// `[b, c, h, w]` of a rank-4 Flex tensor.
fn dims4(x: &FlexTensor) -> [usize; 4] {
    match x.layout().shape().to_vec()[..] {
        [b, c, h, w] => [b, c, h, w],
        _ => unreachable!("a rank-4 tensor"),
    }
}

/// Input elements per parallel job.
const JOB: usize = 1 << 13;

/// The up-sampling on a Flex tensor.
fn upsample_flex(x: FlexTensor) -> FlexTensor {
    let x = contiguous(x);
    let [b, c, h, w] = dims4(&x);
    let src = slice(&x);
    let mut out = zeros(src.len() * 4);
    if w > 0 {
        let rows = rows_per_job(w, JOB);
        // Input row i becomes output rows 2i and 2i + 1 (4w elements).
        out.par_chunks_mut(rows * 4 * w)
            .zip(src.par_chunks(rows * w))
            .for_each(|(out, src)| {
                for (pair, row) in out.chunks_mut(4 * w).zip(src.chunks(w)) {
                    let (top, bottom) = pair.split_at_mut(2 * w);
                    for (o, &v) in top.chunks_mut(2).zip(row) {
                        o.fill(v);
                    }
                    bottom.copy_from_slice(top);
                }
            });
    }
    flex(out, &[b, c, 2 * h, 2 * w])
}

/// The backward pass of [`upsample2x`]: each input gradient is the sum of
/// its 2 x 2 block of output gradients.
fn upsample_grad(grad: FlexTensor) -> FlexTensor {
    let grad = contiguous(grad);
    let [b, c, h2, w2] = dims4(&grad);
    let (h, w) = (h2 / 2, w2 / 2);
    let g = slice(&grad);
    let mut out = zeros(b * c * h * w);
    if w > 0 {
        let rows = rows_per_job(w, JOB);
        out.par_chunks_mut(rows * w)
            .zip(g.par_chunks(rows * 4 * w))
            .for_each(|(out, g)| {
                for (row, pair) in out.chunks_mut(w).zip(g.chunks(4 * w)) {
                    let (top, bottom) = pair.split_at(2 * w);
                    let blocks = top.chunks(2).zip(bottom.chunks(2));
                    for (o, (t, u)) in row.iter_mut().zip(blocks) {
                        *o = (t[0] + t[1]) + (u[0] + u[1]);
                    }
                }
            });
    }
    flex(out, &[b, c, h, w])
}

#[cfg(test)]
mod tests {
    use burn::tensor::backend::AutodiffBackend;
    use burn::tensor::{Distribution, Tolerance};

    use super::*;

    /// `[3, 70, 37]` (neither side a multiple of the tile sizes), given as
    /// a non-contiguous view.
    fn input<B: Backend>(device: &B::Device) -> Tensor<B, 3> {
        Tensor::<B, 3>::random([3, 37, 70], Distribution::Normal(0.0, 1.0), device).swap_dims(1, 2)
    }

    #[test]
    fn forward_is_an_exact_swap() {
        let device = Default::default();
        for shape in [[3, 70, 37], [1, 1, 5], [2, 16, 64], [2, 130, 17]] {
            let x = Tensor::<Flex, 3>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            let y = transpose(x.clone());
            assert_eq!(y.dims(), [shape[0], shape[2], shape[1]]);
            assert_eq!(y.into_data(), x.clone().swap_dims(1, 2).into_data());
        }
        let x = input::<Flex>(&device);
        assert_eq!(
            transpose(x.clone()).into_data(),
            x.swap_dims(1, 2).into_data()
        );
    }

    fn gradients<B: AutodiffBackend>() {
        let device = Default::default();
        let x = input::<B>(&device).require_grad();
        let weights = Tensor::<B, 3>::random([3, 37, 70], Distribution::Normal(0.0, 1.0), &device);
        let run = |f: fn(Tensor<B, 3>) -> Tensor<B, 3>| {
            let grads = (f(x.clone()) * weights.clone()).sum().backward();
            x.grad(&grads).expect("gradient").into_data()
        };
        let g = run(transpose);
        g.assert_approx_eq::<f32>(&run(|x| x.swap_dims(1, 2)), Tolerance::absolute(1e-6));
    }

    #[test]
    fn gradients_match_burn_with_and_without_checkpointing() {
        gradients::<Autodiff<Flex>>();
        gradients::<Autodiff<Flex, BalancedCheckpointing>>();
    }

    /// `[2, 3, 5, 7]` as a non-contiguous view.
    fn image<B: Backend>(device: &B::Device) -> Tensor<B, 4> {
        Tensor::<B, 4>::random([2, 3, 7, 5], Distribution::Normal(0.0, 1.0), device).swap_dims(2, 3)
    }

    #[test]
    fn upsampling_copies_each_element_into_its_block() {
        let device = Default::default();
        let x = image::<Flex>(&device);
        let y = upsample2x(x.clone());
        assert_eq!(y.dims(), [2, 3, 10, 14]);
        assert_eq!(y.into_data(), upsample2x_expand(x).into_data());
    }

    fn upsampling_gradients<B: AutodiffBackend>() {
        let device = Default::default();
        let x = image::<B>(&device).require_grad();
        let weights =
            Tensor::<B, 4>::random([2, 3, 10, 14], Distribution::Normal(0.0, 1.0), &device);
        let run = |f: fn(Tensor<B, 4>) -> Tensor<B, 4>| {
            let grads = (f(x.clone()) * weights.clone()).sum().backward();
            x.grad(&grads).expect("gradient").into_data()
        };
        run(upsample2x).assert_approx_eq::<f32>(&run(upsample2x_expand), Tolerance::absolute(1e-5));
    }

    #[test]
    fn upsampling_gradients_match_burn_with_and_without_checkpointing() {
        upsampling_gradients::<Autodiff<Flex>>();
        upsampling_gradients::<Autodiff<Flex, BalancedCheckpointing>>();
    }
}
