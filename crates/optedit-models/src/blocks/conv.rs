//! How the models run their 2-D convolutions: burn's own `conv2d` op (the
//! default) or an explicit im2col + matrix product built from tensor ops.
//!
//! Both compute the same function (PyTorch's `nn.Conv2d`, cross-correlation).
//! They differ in their gradients' cost on some backends: without its
//! `autotune` feature, burn-cubecl 0.21 computes a convolution's weight
//! gradient with a direct kernel in which each weight element is one GPU
//! thread looping over `batch x height x width` products, so training steps
//! grow linearly with the batch. Through [`ConvAlgorithm::Im2col`] the weight
//! gradient is one matrix product instead (`d_out [c_out, n*h*w]` times the
//! columns' transpose), at the price of a column buffer `k*k` times the
//! input's size. The choice is process-wide ([`set_conv_algorithm`], or the
//! environment variable `OPTEDIT_CONV=im2col`) so that a binary can switch
//! every model it builds without new types.

use std::sync::atomic::{AtomicU8, Ordering};

use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::backend::Backend;
use burn::tensor::ops::PadMode;
use burn::tensor::Tensor;

/// How [`Conv2dExt::apply`] runs a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConvAlgorithm {
    /// burn's `conv2d` op: whatever kernel the backend picks (default).
    #[default]
    Native,
    /// Columns of shifted input slices times the flattened weight: one
    /// matrix product forward and per gradient. Falls back to `Native` for
    /// grouped or dilated convolutions and for `Same` padding.
    Im2col,
}

/// 0 = Native, 1 = Im2col, `UNSET` = not chosen yet (read `OPTEDIT_CONV`).
static ALGORITHM: AtomicU8 = AtomicU8::new(UNSET);
const UNSET: u8 = u8::MAX;

/// Sets the algorithm of every later [`Conv2dExt::apply`] in this process
/// (overriding `OPTEDIT_CONV`).
pub fn set_conv_algorithm(algorithm: ConvAlgorithm) {
    let v = match algorithm {
        ConvAlgorithm::Native => 0,
        ConvAlgorithm::Im2col => 1,
    };
    ALGORITHM.store(v, Ordering::Relaxed);
}

/// The algorithm [`Conv2dExt::apply`] uses now: the last
/// [`set_conv_algorithm`], else the environment variable `OPTEDIT_CONV`
/// (`im2col`; any other value or none means [`ConvAlgorithm::Native`]).
pub fn conv_algorithm() -> ConvAlgorithm {
    let mut v = ALGORITHM.load(Ordering::Relaxed);
    if v == UNSET {
        let from_env =
            std::env::var("OPTEDIT_CONV").is_ok_and(|s| s.eq_ignore_ascii_case("im2col"));
        v = u8::from(from_env);
        // a concurrent set_conv_algorithm wins over the environment
        v = match ALGORITHM.compare_exchange(UNSET, v, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => v,
            Err(current) => current,
        };
    }
    match v {
        1 => ConvAlgorithm::Im2col,
        _ => ConvAlgorithm::Native,
    }
}

/// Runs a [`Conv2d`] with the process-wide [`ConvAlgorithm`]; every
/// convolution of the models goes through it.
pub trait Conv2dExt<B: Backend> {
    /// `x`: `[batch, c_in, h, w]` to `[batch, c_out, h_out, w_out]`.
    fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4>;
}

impl<B: Backend> Conv2dExt<B> for Conv2d<B> {
    fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        match conv_algorithm() {
            ConvAlgorithm::Native => self.forward(x),
            ConvAlgorithm::Im2col => im2col_forward(self, x),
        }
    }
}

/// The convolution `conv` applied to `x` as im2col + one matrix product (see
/// [`ConvAlgorithm::Im2col`]); grouped, dilated and `Same`-padded
/// convolutions run natively.
pub fn im2col_forward<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let (top, left, bottom, right) = match conv.padding {
        PaddingConfig2d::Explicit(t, l, b, r) => (t, l, b, r),
        PaddingConfig2d::Valid => (0, 0, 0, 0),
        PaddingConfig2d::Same => return conv.forward(x),
    };
    if conv.groups != 1 || conv.dilation != [1, 1] {
        return conv.forward(x);
    }
    let [n, c, h, w] = x.dims();
    let [kh, kw] = conv.kernel_size;
    let [sh, sw] = conv.stride;
    let (hp, wp) = (h + top + bottom, w + left + right);
    if hp < kh || wp < kw {
        // let burn report the impossible shape
        return conv.forward(x);
    }
    let (ho, wo) = ((hp - kh) / sh + 1, (wp - kw) / sw + 1);
    // Rows and columns read by the last tap: kh - 1 + sh * ho (the strided
    // taps are cut as [ho, sh] blocks), at most sh - 1 past the padding.
    let (extra_h, extra_w) = (
        (kh - 1 + sh * ho).saturating_sub(hp),
        (kw - 1 + sw * wo).saturating_sub(wp),
    );
    // [c, n, hp, wp]: channels first, so that the columns come out as
    // [c * kh * kw, n * ho * wo] in the weight's own (c, ky, kx) order.
    let x = x.swap_dims(0, 1);
    let x = if top + bottom + left + right + extra_h + extra_w > 0 {
        x.pad(
            [(top, bottom + extra_h), (left, right + extra_w)],
            PadMode::Constant(0.0),
        )
    } else {
        x
    };
    let mut taps = Vec::with_capacity(kh * kw);
    for ky in 0..kh {
        for kx in 0..kw {
            let tap = x
                .clone()
                .slice([0..c, 0..n, ky..ky + sh * ho, kx..kx + sw * wo]);
            let tap = if sh == 1 && sw == 1 {
                tap
            } else {
                tap.reshape([c, n, ho, sh, wo, sw])
                    .slice([0..c, 0..n, 0..ho, 0..1, 0..wo, 0..1])
                    .reshape([c, n, ho, wo])
            };
            taps.push(tap.unsqueeze_dim::<5>(1));
        }
    }
    let cols = if taps.len() == 1 {
        taps.pop().expect("one tap")
    } else {
        Tensor::cat(taps, 1)
    }
    .reshape([c * kh * kw, n * ho * wo]);
    let [c_out, ..] = conv.weight.dims();
    let out = conv
        .weight
        .val()
        .reshape([c_out, c * kh * kw])
        .matmul(cols)
        .reshape([c_out, n, ho, wo]);
    let out = match &conv.bias {
        Some(b) => out + b.val().reshape([c_out, 1, 1, 1]),
        None => out,
    };
    out.swap_dims(0, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;

    type A = Autodiff<Flex>;

    /// Forward values and the input, weight and bias gradients of im2col
    /// against burn's conv2d, on shapes with stride 2, odd sizes and
    /// asymmetric padding.
    #[test]
    fn im2col_matches_native_conv_and_its_gradients() {
        let device = Default::default();
        let cases: [([usize; 4], usize, usize, usize, PaddingConfig2d, bool); 6] = [
            (
                [2, 3, 9, 7],
                5,
                3,
                1,
                PaddingConfig2d::Explicit(1, 1, 1, 1),
                true,
            ),
            (
                [2, 4, 9, 7],
                6,
                3,
                2,
                PaddingConfig2d::Explicit(1, 1, 1, 1),
                true,
            ),
            (
                [1, 4, 8, 10],
                3,
                3,
                2,
                PaddingConfig2d::Explicit(0, 0, 1, 1),
                true,
            ),
            ([3, 5, 6, 5], 2, 1, 1, PaddingConfig2d::Valid, true),
            ([2, 3, 7, 6], 4, 3, 1, PaddingConfig2d::Valid, false),
            (
                [1, 2, 5, 8],
                3,
                2,
                2,
                PaddingConfig2d::Explicit(0, 1, 1, 0),
                true,
            ),
        ];
        for (shape, c_out, k, s, padding, bias) in cases {
            let conv = Conv2dConfig::new([shape[1], c_out], [k, k])
                .with_stride([s, s])
                .with_padding(padding.clone())
                .with_bias(bias)
                .init::<A>(&device);
            let x = Tensor::<A, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device)
                .require_grad();
            let run = |y: Tensor<A, 4>| {
                // a loss with distinct weights per output element
                let weights = y.clone().detach().sin();
                let grads = (y.clone() * weights).sum().backward();
                let gx = x.grad(&grads).expect("x grad");
                let gw = conv.weight.grad(&grads).expect("weight grad");
                let gb = conv
                    .bias
                    .as_ref()
                    .map(|b| b.grad(&grads).expect("bias grad"));
                (y.inner(), gx, gw, gb)
            };
            let want = run(conv.forward(x.clone()));
            let got = run(im2col_forward(&conv, x.clone()));
            let ctx = format!("{shape:?} k{k} s{s} {padding:?}");
            assert_eq!(got.0.dims(), want.0.dims(), "{ctx}");
            let close = |a: Tensor<Flex, 4>, b: Tensor<Flex, 4>, what: &str| {
                let err = (a - b).abs().max().into_scalar();
                assert!(err < 1e-4, "{ctx}: {what} differs by {err}");
            };
            close(got.0, want.0, "output");
            close(got.1, want.1, "input gradient");
            close(got.2, want.2, "weight gradient");
            if let (Some(a), Some(b)) = (got.3, want.3) {
                let err = (a - b).abs().max().into_scalar();
                assert!(err < 1e-4, "{ctx}: bias gradient differs by {err}");
            }
        }
    }
}
