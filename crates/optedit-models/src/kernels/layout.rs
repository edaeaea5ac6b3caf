//! [`transpose`]: `x.swap_dims(1, 2)` of a 3-D tensor (the token layout
//! change around diffusers' `Transformer2DModel` and spatial attention,
//! `[b, c, h*w] <-> [b, h*w, c]`), materialised by a tiled, multi-threaded
//! copy, with an autodiff node whose backward is the same copy.
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

use super::{contiguous, flex, on, path, slice, Path};

/// Output rows per parallel job: one cache line of the source's columns.
const ROWS: usize = 16;
/// Source rows per tile: `TILE` lines stay in L1 while `ROWS` output rows
/// read them.
const TILE: usize = 64;

/// `x.swap_dims(1, 2)` in contiguous storage: `[b, r, c] -> [b, c, r]`.
/// On backends without the kernel, burn's `swap_dims` (a view where the
/// backend has them).
pub(crate) fn transpose<B: Backend>(x: Tensor<B, 3>) -> Tensor<B, 3> {
    match path::<B>(x.dtype()) {
        Path::Flex => on::<B, Flex, 3, 1>([x], |[x]| transpose_flex(x)),
        Path::Tracked => {
            on::<B, Autodiff<Flex, NoCheckpointing>, 3, 1>([x], |[x]| tracked::<NoCheckpointing>(x))
        }
        Path::TrackedBalanced => on::<B, Autodiff<Flex, BalancedCheckpointing>, 3, 1>([x], |[x]| {
            tracked::<BalancedCheckpointing>(x)
        }),
        Path::Other => x.swap_dims(1, 2),
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
    let mut out = vec![0.0f32; src.len()];
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

/// The autodiff node of [`transpose`]: the gradient is transposed back.
#[derive(Debug)]
struct TransposeNode;

impl Backward<Flex, 1> for TransposeNode {
    type State = ();

    fn backward(self, ops: Ops<(), 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        if let Some(node) = parent {
            grads.register::<Flex>(node.id, transpose_flex(grad));
        }
    }
}

fn tracked<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
) -> FloatTensor<Autodiff<Flex, C>> {
    TransposeNode
        .prepare::<C>([x.node.clone()])
        .compute_bound()
        .stateless(transpose_flex(x.primitive))
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
}
