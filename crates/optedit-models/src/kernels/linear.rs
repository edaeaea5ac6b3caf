//! [`linear`]: a burn `Linear` layer through the kernels' matrix products,
//! so that it follows the [`compute_dtype`](super::compute_dtype).
//!
//! In f32 too: burn 0.21's `Flex` allocates each matmul output as a zeroed
//! byte vector and copies it into an aligned one (page faults and a copy
//! per call; 5% of an SD 1.5 UNet forward+backward in `perf`), makes the
//! transposed weight contiguous in the backward pass, and multiplies a
//! batched input per sample; here the input is one `rows x d_in` matrix
//! and the output is written once.

use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use burn_flex::FlexTensor;
use gemm::Parallelism;

use super::product::product;
use super::weight_op::{apply, WeightOp};
use super::{flex, rows_of, slice, zeros};

/// `linear.forward(x)`: `x . weight + bias` over the last axis of `x`.
///
/// On `Flex` and `Autodiff<Flex, _>` with `f32` tensors, the product runs
/// on the kernels' products in the [`compute_dtype`](super::compute_dtype)
/// (the `gemm` crate in f32, the bf16 kernels in bf16), with one autodiff
/// node whose backward pass computes only the gradients its inputs need.
/// On every other backend it is burn's `linear.forward(x)`.
///
/// # Panics
/// As `linear.forward` does, when the last axis of `x` is not the layer's
/// input width.
pub fn linear<B: Backend, const D: usize>(linear: &Linear<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    let [d_in, d_out] = linear.weight.dims();
    let dims = x.dims();
    let fits = dims[D - 1] == d_in
        && dims.iter().all(|&d| d > 0)
        && d_out > 0
        && linear.bias.as_ref().is_none_or(|b| b.dims() == [d_out]);
    if !fits {
        return linear.forward(x);
    }
    let op = LinearOp {
        shape: dims.to_vec(),
        d_out,
    };
    let bias = linear.bias.as_ref().map(|b| b.val());
    apply(op, x, linear.weight.val(), bias, |x| linear.forward(x))
}

/// A linear layer applied to an input of shape `shape`.
#[derive(Debug, Clone)]
struct LinearOp {
    shape: Vec<usize>,
    d_out: usize,
}

impl LinearOp {
    /// `(rows, d_in, d_out)`: the input as a `rows x d_in` matrix.
    fn dims(&self) -> (usize, usize, usize) {
        let d_in = self.shape[self.shape.len() - 1];
        (
            self.shape.iter().product::<usize>() / d_in,
            d_in,
            self.d_out,
        )
    }
}

impl WeightOp for LinearOp {
    fn forward(
        &self,
        x: &FlexTensor,
        weight: &FlexTensor,
        bias: Option<&FlexTensor>,
    ) -> FlexTensor {
        let (rows, d_in, d_out) = self.dims();
        let mut out = match bias {
            Some(b) => rows_of(slice(b), rows),
            None => zeros(rows * d_out),
        };
        // SAFETY: `out` is rows x d_out, `x` rows x d_in and `weight`
        // d_in x d_out, all contiguous.
        unsafe {
            product(
                (rows, d_out, d_in),
                (out.as_mut_ptr(), (1, d_out as isize)),
                bias.is_some(),
                (slice(x).as_ptr(), (1, d_in as isize)),
                (slice(weight).as_ptr(), (1, d_out as isize)),
                1.0,
                Parallelism::Rayon(0),
            );
        }
        let mut shape = self.shape.clone();
        *shape.last_mut().unwrap_or_else(|| unreachable!("D > 0")) = d_out;
        flex(out, &shape)
    }

    fn gradients(
        &self,
        x: &FlexTensor,
        weight: &FlexTensor,
        grad: &FlexTensor,
        want: [bool; 3],
    ) -> [Option<FlexTensor>; 3] {
        let (rows, d_in, d_out) = self.dims();
        let (x, weight, grad) = (slice(x), slice(weight), slice(grad));
        // dx = grad . weight^T (rows x d_in).
        let dx = want[0].then(|| {
            let mut dx = zeros(rows * d_in);
            // SAFETY: grad is rows x d_out; weight^T is d_out x d_in read
            // from the d_in x d_out weight with swapped strides.
            unsafe {
                product(
                    (rows, d_in, d_out),
                    (dx.as_mut_ptr(), (1, d_in as isize)),
                    false,
                    (grad.as_ptr(), (1, d_out as isize)),
                    (weight.as_ptr(), (d_out as isize, 1)),
                    1.0,
                    Parallelism::Rayon(0),
                );
            }
            flex(dx, &self.shape)
        });
        // dweight = x^T . grad (d_in x d_out).
        let dw = want[1].then(|| {
            let mut dw = vec![0.0f32; d_in * d_out];
            // SAFETY: x^T is d_in x rows read from the rows x d_in input
            // with swapped strides; grad is rows x d_out.
            unsafe {
                product(
                    (d_in, d_out, rows),
                    (dw.as_mut_ptr(), (1, d_out as isize)),
                    false,
                    (x.as_ptr(), (d_in as isize, 1)),
                    (grad.as_ptr(), (1, d_out as isize)),
                    1.0,
                    Parallelism::Rayon(0),
                );
            }
            flex(dw, &[d_in, d_out])
        });
        // dbias = the column sums of grad, in f32.
        let db = want[2].then(|| {
            let mut db = vec![0.0f32; d_out];
            for row in grad.chunks_exact(d_out) {
                for (s, g) in db.iter_mut().zip(row) {
                    *s += g;
                }
            }
            flex(db, &[d_out])
        });
        [dx, dw, db]
    }
}
