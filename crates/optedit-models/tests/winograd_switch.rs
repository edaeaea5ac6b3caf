//! The Winograd switch and its threshold as a user's build sees them.
//!
//! The unit tests take every 3x3 stride-1 shape through Winograd (the
//! threshold is one tile under `cfg(test)`); this binary links the library
//! as a dependent crate does, with the real threshold of 256 2x2 output
//! tiles, and checks through the public [`conv2d`]:
//! - below the threshold (255 tiles) the result and the input gradient are
//!   those of im2col bit for bit, whatever [`set_winograd`] says;
//! - at the threshold (256 tiles) Winograd runs: its result differs from
//!   im2col's in the last bits (the summation order), and stays within
//!   f32 rounding of it;
//! - `set_winograd(false)` gives im2col's result at any size, and returns
//!   the previous setting.
//!
//! The switch is process-wide, so this binary holds one test.

use burn::module::AutodiffModule;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::{Distribution, Tensor};
use optedit_fixtures::{TestAutodiffBackend as AD, TestBackend as B};
use optedit_models::kernels::{conv2d, set_winograd, winograd};

/// Output and input gradient of `conv` at input `x` (the
/// gradient of `sum(y * r)` for a fixed random `r`).
fn run(conv: &Conv2d<AD>, x: &Tensor<B, 4>, r: &Tensor<B, 4>) -> (Vec<f32>, Vec<f32>) {
    let x = Tensor::<AD, 4>::from_inner(x.clone()).require_grad();
    let y = conv2d(conv, x.clone());
    let loss = (y.clone() * Tensor::from_inner(r.clone())).sum();
    let grads = loss.backward();
    let dx = x.grad(&grads).expect("the input's gradient");
    let values = |t: Tensor<B, 4>| t.into_data().to_vec::<f32>().expect("f32 values");
    (values(y.inner()), values(dx))
}

/// Largest difference between `a` and `b` relative to `b`'s largest
/// magnitude, and whether they are equal bit for bit.
fn compare(a: &[f32], b: &[f32]) -> (f32, bool) {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let worst = a
        .iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
    (worst / scale, same)
}

#[test]
fn winograd_runs_from_256_tiles_and_the_switch_turns_it_off() {
    let device = Default::default();
    let conv: Conv2d<AD> = Conv2dConfig::new([24, 16], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(&device);
    assert!(winograd(), "Winograd is on by default");
    // (rows, columns, 2x2 output tiles): 15 x 17 = 255 tiles, then 16 x 16.
    for (h, w, tiles) in [(30, 34, 255), (32, 32, 256)] {
        let x = Tensor::<B, 4>::random([1, 24, h, w], Distribution::Normal(0.0, 1.0), &device);
        let r = Tensor::<B, 4>::random([1, 16, h, w], Distribution::Normal(0.0, 1.0), &device);
        let (y_on, dx_on) = run(&conv, &x, &r);
        assert!(set_winograd(false), "the previous setting was on");
        let (y_off, dx_off) = run(&conv, &x, &r);
        assert!(!set_winograd(true), "the previous setting was off");
        // With the switch off, the result must also be reproducible.
        assert!(set_winograd(false));
        let (y_again, _) = run(&conv, &x, &r);
        set_winograd(true);
        assert_eq!(
            compare(&y_again, &y_off),
            (0.0, true),
            "{tiles} tiles: im2col twice"
        );
        for (name, on, off) in [
            ("output", &y_on, &y_off),
            ("input gradient", &dx_on, &dx_off),
        ] {
            let (error, same) = compare(on, off);
            if tiles < 256 {
                assert!(
                    same,
                    "{tiles} tiles, {name}: im2col expected, relative error {error}"
                );
            } else {
                assert!(
                    !same,
                    "{tiles} tiles, {name}: Winograd expected, got im2col's bits"
                );
                assert!(
                    error < 1e-5,
                    "{tiles} tiles, {name}: relative error {error}"
                );
            }
        }
    }
    // The module's valid (non-autodiff) copy takes the same path.
    let inner = conv.valid();
    let x = Tensor::<B, 4>::random([1, 24, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let on = conv2d(&inner, x.clone())
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    set_winograd(false);
    let off = conv2d(&inner, x).into_data().to_vec::<f32>().unwrap();
    set_winograd(true);
    let (error, same) = compare(&on, &off);
    assert!(
        !same && error < 1e-5,
        "forward on Flex: relative error {error}, same bits {same}"
    );
}
