//! [`conv2d`]: dispatch of the convolution kernels in `conv.rs` (im2col)
//! and `winograd.rs`, with the autodiff node of `weight_op.rs`.

use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use burn_flex::FlexTensor;

use super::conv::{self, Spec};
use super::weight_op::{apply, WeightOp};
use super::winograd::Weight;
use super::{flex, slice};

/// `conv.forward(x)` for a burn `Conv2d` module.
///
/// On `Flex` and `Autodiff<Flex, _>` with `f32` tensors, a convolution with
/// one group, no dilation and explicit (or no) padding runs the kernel of
/// this module: im2col tiles and matrix products (in the current
/// [`compute_dtype`](super::compute_dtype)) written straight into the
/// output, or, for f32 3x3 stride-1 convolutions with at least 256 2x2
/// output tiles, Winograd's F(2x2, 3x3) ([`set_winograd`](super::set_winograd));
/// and one autodiff node whose backward pass computes only the gradients
/// its inputs need. Anything else (and every other backend) calls
/// `conv.forward(x)`.
///
/// # Panics
/// As `conv.forward` does, when `x`'s channels do not match the weight or
/// the padded input is smaller than the kernel.
pub fn conv2d<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let Some(spec) = spec(conv, &x) else {
        return conv.forward(x);
    };
    let weight = conv.weight.val();
    let bias = conv.bias.as_ref().map(|b| b.val());
    apply(ConvOp(spec), x, weight, bias, |x| conv.forward(x))
}

/// The kernel's shape description, or `None` when the convolution is one
/// the kernel does not cover (groups, dilation, `Same` padding, a shape
/// mismatch or an empty tensor), which then goes to burn.
fn spec<B: Backend>(conv: &Conv2d<B>, x: &Tensor<B, 4>) -> Option<Spec> {
    let [n, ci, h, w] = x.dims();
    let [co, wci, kh, kw] = conv.weight.dims();
    let (top, left, bottom, right) = match conv.padding {
        PaddingConfig2d::Explicit(t, l, b, r) => (t, l, b, r),
        PaddingConfig2d::Valid => (0, 0, 0, 0),
        PaddingConfig2d::Same => return None,
    };
    let [sh, sw] = conv.stride;
    let (eh, ew) = (h + top + bottom, w + left + right);
    let bias_ok = conv.bias.as_ref().is_none_or(|b| b.dims() == [co]);
    let fits = conv.groups == 1
        && conv.dilation == [1, 1]
        && wci == ci
        && [n, ci, h, w, co, kh, kw, sh, sw].iter().all(|&d| d > 0)
        && eh >= kh
        && ew >= kw
        && bias_ok;
    fits.then(|| Spec {
        n,
        ci,
        h,
        w,
        co,
        kh,
        kw,
        stride: [sh, sw],
        pad: [top, left],
        oh: (eh - kh) / sh + 1,
        ow: (ew - kw) / sw + 1,
    })
}

/// A weight with the tensor that holds it, so that values derived from it
/// are kept (`weight_cache.rs`).
fn held(weight: &FlexTensor) -> Weight<'_> {
    Weight {
        values: slice(weight),
        owner: Some(weight),
    }
}

/// The convolution of one shape.
#[derive(Debug, Clone)]
struct ConvOp(Spec);

impl WeightOp for ConvOp {
    fn forward(
        &self,
        x: &FlexTensor,
        weight: &FlexTensor,
        bias: Option<&FlexTensor>,
    ) -> FlexTensor {
        let s = self.0;
        let out = conv::forward(slice(x), held(weight), bias.map(slice), s);
        flex(out, &[s.n, s.co, s.oh, s.ow])
    }

    fn gradients(
        &self,
        x: &FlexTensor,
        weight: &FlexTensor,
        grad: &FlexTensor,
        want: [bool; 3],
    ) -> [Option<FlexTensor>; 3] {
        let s = self.0;
        let [dx, dw, db] = conv::backward(slice(x), held(weight), slice(grad), s, want);
        [
            dx.map(|v| flex(v, &[s.n, s.ci, s.h, s.w])),
            dw.map(|v| flex(v, &[s.co, s.ci, s.kh, s.kw])),
            db.map(|v| flex(v, &[s.co])),
        ]
    }
}
