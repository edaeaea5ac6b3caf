//! The measures of arXiv 2311.16882's evaluation, on 8-bit images: background
//! preservation (PSNR and mean absolute error outside the edit region), mask
//! operations, and the Fréchet distance between diagonal Gaussians behind
//! the class-wise feature distance.
//!
//! A mask pixel is *inside* when its value is above 127.

use image::{GrayImage, Luma, RgbImage};
use serde::{Deserialize, Serialize};

pub use optedit_train::stages::classifier::{bounding_box, dilate};

/// PSNR of identical images (or any MSE below `255^2 * 1e-10`), in dB: a
/// finite cap so that means over cases stay finite.
pub const PSNR_CAP_DB: f64 = 100.0;

fn inside(v: u8) -> bool {
    v > 127
}

/// PSNR in dB (peak 255) of a mean squared error on the 0-255 scale, capped
/// at [`PSNR_CAP_DB`].
pub fn psnr_from_mse(mse: f64) -> f64 {
    let floor = 255.0f64.powi(2) * 10f64.powf(-PSNR_CAP_DB / 10.0);
    10.0 * (255.0f64.powi(2) / mse.max(floor)).log10()
}

/// Squared and absolute error sums over the channel values of the pixels
/// where `keep(x, y)`, and their number.
fn errors(a: &RgbImage, b: &RgbImage, keep: impl Fn(u32, u32) -> bool) -> (f64, f64, usize) {
    assert_eq!(a.dimensions(), b.dimensions(), "images of different sizes");
    let (mut sq, mut abs, mut n) = (0.0, 0.0, 0);
    for ((x, y, p), q) in a.enumerate_pixels().zip(b.pixels()) {
        if keep(x, y) {
            for c in 0..3 {
                let d = f64::from(p[c]) - f64::from(q[c]);
                sq += d * d;
                abs += d.abs();
            }
            n += 3;
        }
    }
    (sq, abs, n)
}

fn check_region(a: &RgbImage, region: &GrayImage) {
    assert_eq!(
        a.dimensions(),
        region.dimensions(),
        "region and image of different sizes"
    );
}

/// PSNR in dB over the whole image (capped at [`PSNR_CAP_DB`]).
///
/// # Panics
/// If the images differ in size.
pub fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    let (sq, _, n) = errors(a, b, |_, _| true);
    psnr_from_mse(sq / n.max(1) as f64)
}

/// PSNR in dB over the pixels outside `region` (`None` when there are none).
///
/// # Panics
/// If the images or the region differ in size.
pub fn psnr_outside(a: &RgbImage, b: &RgbImage, region: &GrayImage) -> Option<f64> {
    check_region(a, region);
    let (sq, _, n) = errors(a, b, |x, y| !inside(region.get_pixel(x, y)[0]));
    (n > 0).then(|| psnr_from_mse(sq / n as f64))
}

/// Mean absolute error (0-255 scale, over channel values) outside `region`
/// (`None` when there are no such pixels).
///
/// # Panics
/// If the images or the region differ in size.
pub fn mae_outside(a: &RgbImage, b: &RgbImage, region: &GrayImage) -> Option<f64> {
    check_region(a, region);
    let (_, abs, n) = errors(a, b, |x, y| !inside(region.get_pixel(x, y)[0]));
    (n > 0).then(|| abs / n as f64)
}

/// Erodes a binary mask by `r` pixels (square structuring element; outside
/// the image counts as inside, so masks touching the border keep it).
pub fn erode(mask: &GrayImage, r: u32) -> GrayImage {
    invert(&dilate(&invert(mask), r))
}

/// The complement of a binary mask.
pub fn invert(mask: &GrayImage) -> GrayImage {
    GrayImage::from_fn(mask.width(), mask.height(), |x, y| {
        Luma([if inside(mask.get_pixel(x, y)[0]) {
            0
        } else {
            255
        }])
    })
}

/// The union of binary masks of equal size (an empty mask of `size` when
/// `masks` is empty).
pub fn union<'a>(size: (u32, u32), masks: impl IntoIterator<Item = &'a GrayImage>) -> GrayImage {
    let mut out = GrayImage::new(size.0, size.1);
    for m in masks {
        assert_eq!(m.dimensions(), size, "masks of different sizes");
        for (o, p) in out.pixels_mut().zip(m.pixels()) {
            if inside(p[0]) {
                o[0] = 255;
            }
        }
    }
    out
}

/// Share of pixels inside the mask.
pub fn coverage(mask: &GrayImage) -> f64 {
    let n = mask.pixels().filter(|p| inside(p[0])).count();
    n as f64 / (mask.width() as f64 * mask.height() as f64).max(1.0)
}

/// Intersection over union of two masks (`None` when both are empty).
pub fn iou(a: &GrayImage, b: &GrayImage) -> Option<f64> {
    assert_eq!(a.dimensions(), b.dimensions(), "masks of different sizes");
    let (mut i, mut u) = (0usize, 0usize);
    for (p, q) in a.pixels().zip(b.pixels()) {
        let (x, y) = (inside(p[0]), inside(q[0]));
        i += usize::from(x && y);
        u += usize::from(x || y);
    }
    (u > 0).then(|| i as f64 / u as f64)
}

/// Mean and per-dimension variance of a set of feature vectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    /// Number of vectors.
    pub count: usize,
    /// Per-dimension mean.
    pub mean: Vec<f64>,
    /// Per-dimension variance (unbiased, `n - 1`; 0 for a single vector).
    pub var: Vec<f64>,
}

impl Moments {
    /// The moments of `samples` (`None` when empty).
    ///
    /// # Panics
    /// If the vectors differ in length.
    pub fn of<S: AsRef<[f32]>>(samples: &[S]) -> Option<Self> {
        let first = samples.first()?.as_ref();
        let (n, d) = (samples.len(), first.len());
        let mut mean = vec![0.0; d];
        for s in samples {
            assert_eq!(s.as_ref().len(), d, "feature vectors of different lengths");
            for (m, &v) in mean.iter_mut().zip(s.as_ref()) {
                *m += f64::from(v) / n as f64;
            }
        }
        let mut var = vec![0.0; d];
        if n > 1 {
            for s in samples {
                for ((v, &x), m) in var.iter_mut().zip(s.as_ref()).zip(&mean) {
                    *v += (f64::from(x) - m).powi(2) / (n - 1) as f64;
                }
            }
        }
        Some(Self {
            count: n,
            mean,
            var,
        })
    }
}

/// Fréchet distance between two Gaussians with diagonal covariances:
/// `|mu_a - mu_b|^2 + sum_i (var_a + var_b - 2 sqrt(var_a var_b))`.
///
/// Diagonal, not full, covariances: a class holds a handful of edited
/// samples (a few per class out of a few hundred cases), far fewer than the
/// 128 feature dimensions, so a full covariance would be singular and its
/// matrix square root meaningless; per-dimension variances are estimable
/// from few samples and keep the distance's two parts (mean shift and spread
/// mismatch).
///
/// # Panics
/// If the dimensions differ.
pub fn frechet_diagonal(a: &Moments, b: &Moments) -> f64 {
    assert_eq!(
        a.mean.len(),
        b.mean.len(),
        "moments of different dimensions"
    );
    let shift: f64 = a
        .mean
        .iter()
        .zip(&b.mean)
        .map(|(x, y)| (x - y).powi(2))
        .sum();
    let spread: f64 = a
        .var
        .iter()
        .zip(&b.var)
        .map(|(&x, &y)| x + y - 2.0 * (x.max(0.0) * y.max(0.0)).sqrt())
        .sum();
    shift + spread
}

/// The mean of some values (`None` when empty).
pub fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (mut sum, mut n) = (0.0, 0usize);
    for v in values {
        sum += v;
        n += 1;
    }
    (n > 0).then(|| sum / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn flat(v: u8) -> RgbImage {
        RgbImage::from_pixel(8, 8, Rgb([v, v, v]))
    }

    fn left_half() -> GrayImage {
        GrayImage::from_fn(8, 8, |x, _| Luma([if x < 4 { 255 } else { 0 }]))
    }

    #[test]
    fn psnr_of_identical_images_is_the_cap() {
        let a = flat(90);
        assert_eq!(psnr(&a, &a), PSNR_CAP_DB);
        assert_eq!(psnr_outside(&a, &a, &left_half()), Some(PSNR_CAP_DB));
        assert!(psnr_from_mse(1e-30) <= PSNR_CAP_DB);
    }

    #[test]
    fn psnr_of_a_known_mse() {
        // Every value off by 10: MSE 100, PSNR = 10 log10(255^2 / 100) = 28.13 dB.
        let p = psnr(&flat(100), &flat(110));
        assert!((p - 28.1308).abs() < 1e-3, "{p}");
        // MSE 1: 48.13 dB.
        assert!((psnr(&flat(0), &flat(1)) - 48.1308).abs() < 1e-3);
    }

    #[test]
    fn outside_measures_ignore_the_region() {
        let a = flat(50);
        // b differs wildly inside the left half and by 4 outside it.
        let b = RgbImage::from_fn(8, 8, |x, _| {
            if x < 4 {
                Rgb([255, 0, 255])
            } else {
                Rgb([54, 54, 54])
            }
        });
        let region = left_half();
        assert_eq!(mae_outside(&a, &b, &region), Some(4.0));
        let p = psnr_outside(&a, &b, &region).unwrap();
        assert!((p - psnr_from_mse(16.0)).abs() < 1e-9);
        // The whole-image numbers see the inside.
        assert!(psnr(&a, &b) < p - 10.0);
        // Nothing outside a full region.
        let full = GrayImage::from_pixel(8, 8, Luma([255]));
        assert_eq!(mae_outside(&a, &b, &full), None);
        assert_eq!(psnr_outside(&a, &b, &full), None);
    }

    #[test]
    fn mask_operations() {
        let mut m = GrayImage::new(9, 9);
        for y in 3..6 {
            for x in 3..6 {
                m.put_pixel(x, y, Luma([255]));
            }
        }
        assert!((coverage(&m) - 9.0 / 81.0).abs() < 1e-12);
        assert!((coverage(&dilate(&m, 1)) - 25.0 / 81.0).abs() < 1e-12);
        assert!((coverage(&erode(&m, 1)) - 1.0 / 81.0).abs() < 1e-12);
        assert_eq!(coverage(&erode(&m, 2)), 0.0);
        assert_eq!(erode(&dilate(&m, 2), 2), m);
        let shifted = GrayImage::from_fn(9, 9, |x, y| *m.get_pixel(x.saturating_sub(1), y));
        // 3x3 squares overlapping in 6 pixels: IoU 6 / 12.
        assert!((iou(&m, &shifted).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(iou(&GrayImage::new(2, 2), &GrayImage::new(2, 2)), None);
        let u = union((9, 9), [&m, &shifted]);
        assert!((coverage(&u) - 12.0 / 81.0).abs() < 1e-12);
        assert_eq!(invert(&invert(&m)), m);
    }

    #[test]
    fn frechet_distance_of_diagonal_gaussians() {
        let a = Moments::of(&[vec![0.0f32, 0.0], vec![2.0, 0.0]]).unwrap();
        assert_eq!(a.mean, vec![1.0, 0.0]);
        assert_eq!(a.var, vec![2.0, 0.0]);
        assert_eq!(frechet_diagonal(&a, &a), 0.0);
        // Mean shift only: squared distance of the means.
        let b = Moments {
            count: 2,
            mean: vec![4.0, 4.0],
            var: a.var.clone(),
        };
        assert!((frechet_diagonal(&a, &b) - 25.0).abs() < 1e-12);
        // Spread only: (sqrt(2) - sqrt(8))^2 = 2.
        let c = Moments {
            count: 2,
            mean: a.mean.clone(),
            var: vec![8.0, 0.0],
        };
        assert!((frechet_diagonal(&a, &c) - 2.0).abs() < 1e-12);
        assert!((frechet_diagonal(&c, &a) - 2.0).abs() < 1e-12);
        let single = Moments::of(&[vec![1.0f32, 1.0]]).unwrap();
        assert_eq!(single.var, vec![0.0, 0.0]);
        assert!(Moments::of::<Vec<f32>>(&[]).is_none());
        assert_eq!(mean([1.0, 2.0, 6.0]), Some(3.0));
        assert_eq!(mean([]), None);
    }
}
