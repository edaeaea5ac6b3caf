//! The convolution kernel against burn's `Conv2d`, values and gradients.

use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::{Autodiff, Flex};
use burn::module::{AutodiffModule, Module};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor, TensorData, Tolerance};

use super::conv::{self, Spec};
use super::conv2d;
use super::tests::assert_close;
use super::winograd::{self, Weight};
use burn_flex::FlexTensor;

/// `(batch, in, h, w, out, [kh, kw], [sh, sw], (top, left, bottom, right), bias)`.
type Case = (
    usize,
    usize,
    usize,
    usize,
    usize,
    [usize; 2],
    [usize; 2],
    (usize, usize, usize, usize),
    bool,
);

/// The models' convolutions (3x3 same, stride-2 down-sampling with
/// symmetric and the VAE encoder's asymmetric padding, 1x1 shortcuts with
/// and without bias) and odd ones: a non-square kernel, a strided 1x1, a
/// 5x5, and uneven padding.
const CASES: [Case; 9] = [
    (2, 3, 8, 8, 5, [3, 3], [1, 1], (1, 1, 1, 1), true),
    (1, 4, 7, 9, 6, [3, 3], [2, 2], (1, 1, 1, 1), true),
    (2, 4, 9, 8, 3, [3, 3], [2, 2], (0, 0, 1, 1), true),
    (3, 6, 5, 7, 4, [1, 1], [1, 1], (0, 0, 0, 0), true),
    (2, 3, 6, 6, 2, [1, 1], [1, 1], (0, 0, 0, 0), false),
    (1, 2, 10, 11, 3, [3, 2], [1, 1], (2, 1, 0, 1), false),
    (2, 5, 9, 9, 4, [1, 1], [2, 2], (0, 0, 0, 0), true),
    (1, 3, 12, 10, 2, [5, 5], [1, 2], (2, 2, 2, 2), true),
    (2, 40, 6, 6, 3, [3, 3], [1, 1], (1, 1, 1, 1), true),
];

fn module<B: Backend>(case: Case, device: &B::Device) -> Conv2d<B> {
    let (_, ci, _, _, co, kernel, stride, (t, l, b, r), bias) = case;
    let mut conv = Conv2dConfig::new([ci, co], kernel)
        .with_stride(stride)
        .with_padding(PaddingConfig2d::Explicit(t, l, b, r))
        .with_bias(bias)
        .init::<B>(device);
    // A non-zero bias, so that its gradient and its broadcast are checked.
    conv.bias = conv.bias.map(|p| {
        p.map(|b| Tensor::random(b.dims(), Distribution::Normal(0.0, 1.0), device).require_grad())
    });
    conv
}

fn input<B: Backend>(case: Case, device: &B::Device) -> Tensor<B, 4> {
    let (n, ci, h, w, ..) = case;
    Tensor::random([n, ci, h, w], Distribution::Normal(0.0, 1.0), device)
}

#[test]
fn forward_matches_burn_conv2d() {
    let device = Default::default();
    for case in CASES {
        let conv = module::<Flex>(case, &device);
        let x = input::<Flex>(case, &device);
        let ours = conv2d(&conv, x.clone()).into_data();
        let burns = conv.forward(x).into_data();
        assert_eq!(ours.shape, burns.shape, "{case:?}");
        assert_close(&ours, &burns, 1e-5);
    }
}

/// Output, and the gradients of input, weight and bias of a weighted sum
/// of the output (every element its own weight).
fn run<C: CheckpointStrategy>(
    conv: &Conv2d<Autodiff<Flex, C>>,
    x: &Tensor<Autodiff<Flex, C>, 4>,
    weights: &Tensor<Autodiff<Flex, C>, 4>,
    f: impl Fn(&Conv2d<Autodiff<Flex, C>>, Tensor<Autodiff<Flex, C>, 4>) -> Tensor<Autodiff<Flex, C>, 4>,
) -> (TensorData, Vec<TensorData>) {
    let out = f(conv, x.clone());
    let grads = (out.clone() * weights.clone()).sum().backward();
    let mut g = vec![
        x.grad(&grads).expect("input gradient").into_data(),
        conv.weight
            .val()
            .grad(&grads)
            .expect("weight gradient")
            .into_data(),
    ];
    if let Some(b) = &conv.bias {
        g.push(b.val().grad(&grads).expect("bias gradient").into_data());
    }
    (out.inner().into_data(), g)
}

fn compare<C: CheckpointStrategy>(case: Case) {
    let device = Default::default();
    let conv = module::<Autodiff<Flex, C>>(case, &device);
    let x = input::<Autodiff<Flex, C>>(case, &device).require_grad();
    let shape = conv.forward(x.clone()).dims();
    let weights = Tensor::random(shape, Distribution::Normal(0.0, 1.0), &device);
    let (out, grads) = run(&conv, &x, &weights, conv2d);
    let (ref_out, ref_grads) = run(&conv, &x, &weights, |c, x| c.forward(x));
    assert_close(&out, &ref_out, 1e-5);
    for (ours, theirs) in grads.iter().zip(&ref_grads) {
        assert_close(ours, theirs, 1e-4);
    }
}

#[test]
fn gradients_match_burn_conv2d() {
    for case in CASES {
        compare::<NoCheckpointing>(case);
    }
}

#[test]
fn gradients_match_burn_conv2d_under_balanced_checkpointing() {
    for case in CASES {
        compare::<BalancedCheckpointing>(case);
    }
}

#[test]
fn untracked_weights_give_only_the_input_gradient() {
    let device = Default::default();
    let case = CASES[0];
    let conv = module::<Autodiff<Flex>>(case, &device).no_grad();
    let x = input::<Autodiff<Flex>>(case, &device).require_grad();
    let grads = conv2d(&conv, x.clone()).sum().backward();
    assert!(x.grad(&grads).is_some());
    assert!(conv.weight.val().grad(&grads).is_none());
    let plain = conv2d(&module_inner(&conv), x.clone().inner());
    let tracked = conv2d(&conv, x.clone()).inner();
    tracked
        .into_data()
        .assert_approx_eq::<f32>(&plain.into_data(), Tolerance::absolute(0.0));
}

fn module_inner(conv: &Conv2d<Autodiff<Flex>>) -> Conv2d<Flex> {
    conv.valid()
}

/// Thirty shapes from a fixed-seed generator (batch 1-3, 1-12 channels in
/// and out, 1-14 rows and columns, kernels 1-4, strides 1-3, padding 0-2 per
/// side, with and without bias) against burn, values and gradients.
#[test]
fn random_shapes_match_burn_conv2d() {
    let mut state = 0x9e37_79b9_u64;
    let mut draw = |hi: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize % hi
    };
    let mut done = 0;
    while done < 30 {
        let kernel = [1 + draw(4), 1 + draw(4)];
        let pad = (draw(3), draw(3), draw(3), draw(3));
        let (h, w) = (1 + draw(14), 1 + draw(14));
        if h + pad.0 + pad.2 < kernel[0] || w + pad.1 + pad.3 < kernel[1] {
            continue;
        }
        let case = (
            1 + draw(3),
            1 + draw(12),
            h,
            w,
            1 + draw(12),
            kernel,
            [1 + draw(3), 1 + draw(3)],
            pad,
            draw(2) == 1,
        );
        compare::<NoCheckpointing>(case);
        done += 1;
    }
}

/// Values from a fixed-seed generator, uniform in `[-1, 1)`.
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// The forward pass and the input gradient of a 3x3 stride-1 convolution
/// summed directly in f64.
fn direct(s: &Spec, x: &[f32], w: &[f32], dy: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let mut y = vec![0.0f64; s.n * s.co * s.oh * s.ow];
    let mut dx = vec![0.0f64; s.n * s.ci * s.h * s.w];
    for b in 0..s.n {
        for o in 0..s.co {
            for oy in 0..s.oh {
                for ox in 0..s.ow {
                    let at = ((b * s.co + o) * s.oh + oy) * s.ow + ox;
                    for c in 0..s.ci {
                        for i in 0..3 {
                            for j in 0..3 {
                                let (Some(iy), Some(ix)) = (
                                    (oy + i).checked_sub(s.pad[0]),
                                    (ox + j).checked_sub(s.pad[1]),
                                ) else {
                                    continue;
                                };
                                if iy >= s.h || ix >= s.w {
                                    continue;
                                }
                                let xi = ((b * s.ci + c) * s.h + iy) * s.w + ix;
                                let wv = f64::from(w[((o * s.ci + c) * 3 + i) * 3 + j]);
                                y[at] += f64::from(x[xi]) * wv;
                                dx[xi] += f64::from(dy[at]) * wv;
                            }
                        }
                    }
                }
            }
        }
    }
    (y, dx)
}

/// Largest difference from the reference, over the reference's largest
/// magnitude.
fn relative_error(ours: &[f32], reference: &[f64]) -> f64 {
    assert_eq!(ours.len(), reference.len());
    let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let diff = ours
        .iter()
        .zip(reference)
        .fold(0.0f64, |m, (a, b)| m.max((f64::from(*a) - b).abs()));
    diff / scale
}

/// Winograd's F(2x2, 3x3) path and the im2col path against a direct f64
/// sum, forward and input gradient, on odd and even sizes, padding 0, 1 and
/// 2 (also uneven), several jobs per sample, and 288 input channels (the
/// rounding grows with the sum's length): Winograd's error stays below
/// 1e-6 of the output's scale and within 3x im2col's (measured: 0.5 to
/// 2.3x im2col's, at most 5.0e-7, at 288 channels, against im2col's 4.5e-7).
#[test]
fn winograd_matches_im2col_and_a_direct_sum() {
    // (n, ci, h, w, co, pad top/left, pad bottom/right)
    let shapes = [
        (2, 5, 9, 8, 4, [1, 1], [1, 1]),
        (1, 3, 7, 7, 6, [0, 0], [0, 0]),
        (1, 4, 6, 5, 3, [2, 1], [0, 2]),
        (3, 2, 2, 3, 2, [1, 1], [1, 1]),
        (1, 288, 10, 11, 7, [1, 1], [1, 1]),
        (2, 24, 16, 16, 40, [1, 1], [1, 1]),
    ];
    for (k, (n, ci, h, w, co, pad, after)) in shapes.into_iter().enumerate() {
        let (oh, ow) = (h + pad[0] + after[0] - 2, w + pad[1] + after[1] - 2);
        let s = Spec {
            n,
            ci,
            h,
            w,
            co,
            kh: 3,
            kw: 3,
            stride: [1, 1],
            pad,
            oh,
            ow,
        };
        let seed = 17 * k as u64 + 1;
        let x = values(n * ci * h * w, seed);
        let weight = values(co * ci * 9, seed + 5);
        let dy = values(n * co * oh * ow, seed + 9);
        let (y, dx) = direct(&s, &x, &weight, &dy);
        let g = winograd::forward_geometry(&s).expect("3x3 stride 1");
        let gi = winograd::input_geometry(&s).expect("padding at most 2");
        let bare = Weight {
            values: &weight,
            owner: None,
        };
        let (wy, wdx) = (
            winograd::forward(&x, bare, None, &g),
            winograd::input_grad(bare, &dy, &gi),
        );
        // Through the cache (one entry, made by the forward pass and read
        // flipped by the input gradient): the same bits.
        let tensor = FlexTensor::from_data(TensorData::new(weight.clone(), [co, ci, 3, 3]));
        let held = Weight {
            values: tensor.as_slice::<f32>().expect("f32"),
            owner: Some(&tensor),
        };
        assert_eq!(winograd::forward(&x, held, None, &g), wy, "{s:?}");
        assert_eq!(winograd::input_grad(held, &dy, &gi), wdx, "{s:?}");
        let errors = [
            (
                "forward",
                relative_error(&wy, &y),
                relative_error(&conv::im2col_forward(&x, &weight, None, s), &y),
            ),
            (
                "input gradient",
                relative_error(&wdx, &dx),
                relative_error(&conv::im2col_input_grad(&weight, &dy, s), &dx),
            ),
        ];
        for (what, ours, im2col) in errors {
            assert!(
                ours < 1e-6 && ours <= 3.0 * im2col.max(1e-7),
                "{what} of {s:?}: Winograd {ours:e}, im2col {im2col:e}"
            );
        }
    }
}
