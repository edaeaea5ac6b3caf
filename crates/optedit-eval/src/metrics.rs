//! The measures of arXiv 2311.16882's evaluation, on 8-bit images: background
//! preservation (PSNR, mean absolute error and SSIM outside the edit
//! region), mask operations, and the Fréchet distance between diagonal
//! Gaussians behind the class-wise feature distance.
//!
//! A mask pixel is *inside* when its value is above 127.
//!
//! [`ssim_outside`] is written here rather than taken from crates.io: the
//! SSIM crates compute a whole-image score (`image-compare` on 8 x 8 box
//! windows, `dssim` multi-scale in a Lab colour space, others on the valid
//! window positions only) and none averages the SSIM map over a region, so
//! the standard single-scale SSIM (Wang et al. 2004: an 11 x 11 Gaussian
//! window of sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255) is computed here
//! with separable filtering (about 60 lines, checked against a direct
//! per-window computation in the tests).

use image::{GrayImage, Luma, RgbImage};
use serde::{Deserialize, Serialize};

pub use optedit_judge::region::{bounding_box, dilate};

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

/// Side of SSIM's Gaussian window, pixels.
pub const SSIM_WINDOW: usize = 11;
/// Standard deviation of SSIM's Gaussian window, pixels.
pub const SSIM_SIGMA: f64 = 1.5;
/// SSIM's luminance constant `C1 = (K1 L)^2`, K1 = 0.01, L = 255.
pub const SSIM_C1: f64 = (0.01 * 255.0) * (0.01 * 255.0);
/// SSIM's contrast constant `C2 = (K2 L)^2`, K2 = 0.03, L = 255.
pub const SSIM_C2: f64 = (0.03 * 255.0) * (0.03 * 255.0);

/// The normalised 1-D Gaussian of SSIM's window (the 2-D window is its
/// outer product).
pub fn ssim_kernel() -> [f64; SSIM_WINDOW] {
    let r = (SSIM_WINDOW / 2) as f64;
    let mut k = [0.0; SSIM_WINDOW];
    for (i, v) in k.iter_mut().enumerate() {
        let d = i as f64 - r;
        *v = (-d * d / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp();
    }
    let sum: f64 = k.iter().sum();
    k.map(|v| v / sum)
}

/// `plane` (`w x h`, row-major) filtered with `k` along x then y, at the
/// positions where the window lies wholly inside: `(w - n + 1) x (h - n +
/// 1)` values, the first centred on pixel `(n / 2, n / 2)`.
fn filter_valid(plane: &[f64], w: usize, h: usize, k: &[f64]) -> Vec<f64> {
    let n = k.len();
    let (ow, oh) = (w + 1 - n, h + 1 - n);
    let mut rows = vec![0.0; ow * h];
    for y in 0..h {
        for x in 0..ow {
            let line = &plane[y * w + x..y * w + x + n];
            rows[y * ow + x] = line.iter().zip(k).map(|(p, g)| p * g).sum();
        }
    }
    let mut out = vec![0.0; ow * oh];
    for y in 0..oh {
        for x in 0..ow {
            out[y * ow + x] = k
                .iter()
                .enumerate()
                .map(|(j, g)| g * rows[(y + j) * ow + x])
                .sum();
        }
    }
    out
}

/// Structural similarity (Wang, Bovik, Sheikh and Simoncelli 2004) between
/// `a` and `b` outside `region`: the SSIM map (11 x 11 Gaussian window of
/// sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255) of each RGB channel, averaged
/// over the channels and over the window positions whose *centre* is
/// outside `region`.
///
/// Colour: the map is computed per RGB channel and averaged, as
/// scikit-image (`channel_axis`) and torchmetrics do for colour images, and
/// as the PSNR and MAE here average over channel values; not on luma.
///
/// Positions: as in Wang et al.'s reference code, scikit-image and
/// torchmetrics, only windows wholly inside the image count, so centres
/// within 5 pixels of the border are left out.
///
/// The region: as PIE-Bench measures "SSIM outside the mask", the region's
/// pixels are set to 0 in both images before filtering, so no pixel of the
/// region affects the value, and a result equal to the input outside the
/// region scores exactly 1.
///
/// `None` when no window position qualifies (an image under 11 pixels on
/// a side, or a region covering every eligible centre).
///
/// # Panics
/// If the images or the region differ in size.
pub fn ssim_outside(a: &RgbImage, b: &RgbImage, region: &GrayImage) -> Option<f64> {
    assert_eq!(a.dimensions(), b.dimensions(), "images of different sizes");
    check_region(a, region);
    let (w, h) = (a.width() as usize, a.height() as usize);
    let n = SSIM_WINDOW;
    if w < n || h < n {
        return None;
    }
    let r = n / 2;
    let (ow, oh) = (w + 1 - n, h + 1 - n);
    let centres: Vec<usize> = (0..ow * oh)
        .filter(|&i| {
            let (x, y) = (i % ow + r, i / ow + r);
            !inside(region.get_pixel(x as u32, y as u32)[0])
        })
        .collect();
    if centres.is_empty() {
        return None;
    }
    let k = ssim_kernel();
    let mut total = 0.0;
    // The region blanked in both images.
    let keep: Vec<f64> = region
        .pixels()
        .map(|m| if inside(m[0]) { 0.0 } else { 1.0 })
        .collect();
    for c in 0..3 {
        let channel = |img: &RgbImage| -> Vec<f64> {
            img.pixels()
                .zip(&keep)
                .map(|(p, k)| f64::from(p[c]) * k)
                .collect()
        };
        let (x, y) = (channel(a), channel(b));
        let product =
            |p: &[f64], q: &[f64]| -> Vec<f64> { p.iter().zip(q).map(|(u, v)| u * v).collect() };
        let filter = |p: &[f64]| filter_valid(p, w, h, &k);
        let (mx, my) = (filter(&x), filter(&y));
        let (xx, yy, xy) = (
            filter(&product(&x, &x)),
            filter(&product(&y, &y)),
            filter(&product(&x, &y)),
        );
        for &i in &centres {
            let (ux, uy) = (mx[i], my[i]);
            let (vx, vy, cxy) = (xx[i] - ux * ux, yy[i] - uy * uy, xy[i] - ux * uy);
            total += ((2.0 * ux * uy + SSIM_C1) * (2.0 * cxy + SSIM_C2))
                / ((ux * ux + uy * uy + SSIM_C1) * (vx + vy + SSIM_C2));
        }
    }
    Some(total / (3 * centres.len()) as f64)
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

    /// SSIM outside `region` straight from the definition: every eligible
    /// window's weighted moments summed directly with the 2-D weights.
    fn ssim_direct(a: &RgbImage, b: &RgbImage, region: &GrayImage) -> Option<f64> {
        let k = ssim_kernel();
        let (w, h) = a.dimensions();
        // A pixel's value, 0 inside the region (blanked in both images).
        let value = |img: &RgbImage, x: u32, y: u32, c: usize| -> f64 {
            if region.get_pixel(x, y)[0] > 127 {
                0.0
            } else {
                f64::from(img.get_pixel(x, y)[c])
            }
        };
        // (weight, a value, b value) of each pixel of the window at (cx, cy).
        let window = |cx: u32, cy: u32, c: usize| -> Vec<(f64, f64, f64)> {
            let mut out = Vec::new();
            for j in 0..11u32 {
                for i in 0..11u32 {
                    let (x, y) = (cx + i - 5, cy + j - 5);
                    out.push((
                        k[i as usize] * k[j as usize],
                        value(a, x, y, c),
                        value(b, x, y, c),
                    ));
                }
            }
            out
        };
        let (mut sum, mut count) = (0.0, 0usize);
        for cy in 5..h.saturating_sub(5) {
            for cx in 5..w.saturating_sub(5) {
                if region.get_pixel(cx, cy)[0] > 127 {
                    continue;
                }
                for c in 0..3 {
                    let win = window(cx, cy, c);
                    let ux: f64 = win.iter().map(|(g, p, _)| g * p).sum();
                    let uy: f64 = win.iter().map(|(g, _, q)| g * q).sum();
                    let vx: f64 = win.iter().map(|(g, p, _)| g * (p - ux).powi(2)).sum();
                    let vy: f64 = win.iter().map(|(g, _, q)| g * (q - uy).powi(2)).sum();
                    let cxy: f64 = win.iter().map(|(g, p, q)| g * (p - ux) * (q - uy)).sum();
                    sum += ((2.0 * ux * uy + SSIM_C1) * (2.0 * cxy + SSIM_C2))
                        / ((ux * ux + uy * uy + SSIM_C1) * (vx + vy + SSIM_C2));
                    count += 1;
                }
            }
        }
        (count > 0).then(|| sum / count as f64)
    }

    /// A 32 x 32 textured image (a different pattern per channel).
    fn textured(seed: u32) -> RgbImage {
        RgbImage::from_fn(32, 32, |x, y| {
            let v = |c: u32| {
                ((x * 7 + y * 13 + c * 31 + seed * 17).wrapping_mul(2_654_435_761) >> 24) as u8
            };
            Rgb([v(0), v(1), v(2)])
        })
    }

    fn left(w: u32) -> GrayImage {
        GrayImage::from_fn(32, 32, |x, _| Luma([if x < w { 255 } else { 0 }]))
    }

    #[test]
    fn ssim_kernel_is_a_normalised_gaussian() {
        let k = ssim_kernel();
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(k[0], k[10]);
        // exp(-1/(2 * 1.5^2)) between the centre and its neighbour.
        assert!((k[6] / k[5] - (-1.0f64 / 4.5).exp()).abs() < 1e-12);
    }

    #[test]
    fn ssim_of_identical_images_is_one() {
        let a = textured(1);
        let none = GrayImage::new(32, 32);
        assert!((ssim_outside(&a, &a, &none).unwrap() - 1.0).abs() < 1e-12);
        assert!((ssim_outside(&a, &a, &left(16)).unwrap() - 1.0).abs() < 1e-12);
        let f = RgbImage::from_pixel(16, 16, Rgb([90, 90, 90]));
        let g = GrayImage::new(16, 16);
        assert!((ssim_outside(&f, &f, &g).unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn ssim_of_a_constant_offset_is_the_luminance_term() {
        // Flat images: no variance, so the contrast-structure term is
        // C2 / C2 = 1 and SSIM is (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 +
        // C1) = (22000 + 6.5025) / (10000 + 12100 + 6.5025) = 0.9954764.
        let (a, b) = (
            RgbImage::from_pixel(16, 16, Rgb([100, 100, 100])),
            RgbImage::from_pixel(16, 16, Rgb([110, 110, 110])),
        );
        let none = GrayImage::new(16, 16);
        let s = ssim_outside(&a, &b, &none).unwrap();
        assert!((s - 0.995_476_444).abs() < 1e-9, "{s}");
        // Only the red channel off: the mean over channels, (s + 1 + 1) / 3.
        let red = RgbImage::from_pixel(16, 16, Rgb([110, 100, 100]));
        let t = ssim_outside(&a, &red, &none).unwrap();
        assert!((t - (s + 2.0) / 3.0).abs() < 1e-9, "{t}");
        // A textured image and its offset copy: lower than 1, symmetric.
        let x = RgbImage::from_fn(32, 32, |i, j| {
            let v = 40 + ((i * 5 + j * 3) % 17) as u8 * 4;
            Rgb([v, v, v])
        });
        let y = RgbImage::from_fn(32, 32, |i, j| {
            let p = x.get_pixel(i, j)[0] + 30;
            Rgb([p, p, p])
        });
        let none = GrayImage::new(32, 32);
        let u = ssim_outside(&x, &y, &none).unwrap();
        assert!(u < 1.0 && u > 0.5, "{u}");
        assert!((u - ssim_outside(&y, &x, &none).unwrap()).abs() < 1e-12);
    }

    #[test]
    fn ssim_matches_the_direct_definition() {
        let (a, b) = (textured(1), textured(2));
        for region in [GrayImage::new(32, 32), left(16), left(3)] {
            let fast = ssim_outside(&a, &b, &region).unwrap();
            let direct = ssim_direct(&a, &b, &region).unwrap();
            assert!((fast - direct).abs() < 1e-9, "{fast} vs {direct}");
        }
        // A noisy copy: high but below 1.
        let noisy = RgbImage::from_fn(32, 32, |x, y| {
            let p = a.get_pixel(x, y);
            let d = if (x + y) % 2 == 0 { 6 } else { 0 };
            Rgb([p[0].saturating_add(d), p[1], p[2].saturating_sub(d)])
        });
        let s = ssim_outside(&a, &noisy, &left(16)).unwrap();
        assert!(s > 0.5 && s < 1.0, "{s}");
        assert!((s - ssim_direct(&a, &noisy, &left(16)).unwrap()).abs() < 1e-9);
    }

    #[test]
    fn ssim_ignores_the_region_beyond_the_window() {
        let a = textured(1);
        let b = textured(3);
        let region = left(16);
        let base = ssim_outside(&a, &b, &region).unwrap();
        // Wreck every pixel of the region, even those next to the outside:
        // the region is blanked in both images, so nothing changes.
        let wrecked = RgbImage::from_fn(32, 32, |x, y| {
            if x < 16 {
                Rgb([255, 0, 128])
            } else {
                *b.get_pixel(x, y)
            }
        });
        assert_eq!(ssim_outside(&a, &wrecked, &region), Some(base));
        // A result equal to the input outside the region scores exactly 1.
        let same_outside = RgbImage::from_fn(32, 32, |x, y| {
            if x < 16 {
                Rgb([0, 255, 0])
            } else {
                *a.get_pixel(x, y)
            }
        });
        assert_eq!(ssim_outside(&a, &same_outside, &region), Some(1.0));
        // A pixel just outside the region does count.
        let near = RgbImage::from_fn(32, 32, |x, y| {
            if x == 16 {
                Rgb([255, 0, 128])
            } else {
                *b.get_pixel(x, y)
            }
        });
        assert_ne!(ssim_outside(&a, &near, &region), Some(base));
        // The region's own windows are not averaged in: the whole-image
        // value (every centre) differs.
        let whole = ssim_outside(&a, &b, &GrayImage::new(32, 32)).unwrap();
        assert!((whole - base).abs() > 1e-3);
    }

    #[test]
    fn ssim_without_eligible_windows_is_none() {
        let small = flat(10);
        assert_eq!(ssim_outside(&small, &small, &GrayImage::new(8, 8)), None);
        let a = textured(1);
        let full = GrayImage::from_pixel(32, 32, Luma([255]));
        assert_eq!(ssim_outside(&a, &a, &full), None);
        // Outside only within the border, where no window fits: none either.
        let frame = GrayImage::from_fn(32, 32, |x, y| {
            Luma([if (5..27).contains(&x) && (5..27).contains(&y) {
                255
            } else {
                0
            }])
        });
        assert_eq!(ssim_outside(&a, &a, &frame), None);
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
