//! Canny edge maps matching OpenCV's `cv2.Canny(image, low, high)` with its
//! defaults (`apertureSize = 3`, `L2gradient = False`), as the ControlNet Canny
//! annotator calls it.
//!
//! This is a port of OpenCV's algorithm (`imgproc/src/canny.cpp`), not a
//! general Canny: general crates (e.g. `imageproc::edges::canny`) blur with a
//! Gaussian first, use the L2 magnitude and float angles, and so disagree with
//! OpenCV on many pixels. OpenCV's version is all integer:
//!
//! 1. 3x3 Sobel derivatives `dx`, `dy` (border replicated, no pre-blur);
//! 2. magnitude `|dx| + |dy|`; with several channels, per pixel the channel of
//!    largest magnitude (first on ties) supplies magnitude and derivatives;
//! 3. non-maximum suppression against the two neighbours across the gradient,
//!    the direction sector chosen with `tan(22.5°)` in 15-bit fixed point
//!    (`13573`), with OpenCV's mix of strict and non-strict comparisons and
//!    zero magnitude outside the image;
//! 4. thresholds `floor(low)` and `floor(high)` (swapped if `low > high`):
//!    suppression survivors above `high` are edges, those above `low` become
//!    edges when 8-connected to one (hysteresis).
//!
//! Being integer arithmetic, the result is identical to OpenCV's.

use image::{DynamicImage, GrayImage, RgbImage};

use crate::error::{CondError, Result};
use crate::image::{ensure_nonempty, resize_smooth, ConditionImage};

/// `tan(22.5°)` in 15-bit fixed point, rounded (OpenCV's `TG22`).
const TG22: i64 = 13573;

/// Canny edges of a grey image: 255 on edges, 0 elsewhere.
///
/// Thresholds must be finite and non-negative; they are floored and, when
/// `low_threshold > high_threshold`, swapped, as OpenCV does.
pub fn canny(image: &GrayImage, low_threshold: f64, high_threshold: f64) -> Result<GrayImage> {
    let (w, h) = image.dimensions();
    ensure_nonempty("canny image", w, h)?;
    let edges = canny_planes(
        image.as_raw(),
        w as usize,
        h as usize,
        1,
        low_threshold,
        high_threshold,
    )?;
    Ok(GrayImage::from_raw(w, h, edges).expect("one byte a pixel"))
}

/// Canny edges of a colour image with OpenCV's multi-channel rule (the
/// strongest channel's gradient at each pixel), as `cv2.Canny` on an RGB array.
pub fn canny_rgb(image: &RgbImage, low_threshold: f64, high_threshold: f64) -> Result<GrayImage> {
    let (w, h) = image.dimensions();
    ensure_nonempty("canny image", w, h)?;
    let edges = canny_planes(
        image.as_raw(),
        w as usize,
        h as usize,
        3,
        low_threshold,
        high_threshold,
    )?;
    Ok(GrayImage::from_raw(w, h, edges).expect("one byte a pixel"))
}

/// The Canny ControlNet condition: white edges on black, three channels.
///
/// Grey images are processed as one channel, everything else as RGB (what
/// the ControlNet annotator does). With `size`, the image is first resized
/// (bilinear) to `(width, height)`, which the ControlNet takes at its factor
/// times the latent size (8x for SD 1.5).
pub fn canny_condition(
    image: &DynamicImage,
    low_threshold: f64,
    high_threshold: f64,
    size: Option<(u32, u32)>,
) -> Result<ConditionImage> {
    ensure_nonempty("canny image", image.width(), image.height())?;
    let (w, h) = size.unwrap_or((image.width(), image.height()));
    ensure_nonempty("canny condition", w, h)?;
    let edges = match image {
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageLuma16(_) => {
            let gray = image.to_luma8();
            let gray = if gray.dimensions() == (w, h) {
                gray
            } else {
                image::imageops::resize(&gray, w, h, image::imageops::FilterType::Triangle)
            };
            canny(&gray, low_threshold, high_threshold)?
        }
        _ => canny_rgb(
            &resize_smooth(&image.to_rgb8(), w, h),
            low_threshold,
            high_threshold,
        )?,
    };
    ConditionImage::from_gray(&edges)
}

/// Checks a threshold and applies OpenCV's `cvFloor`.
fn threshold(argument: &str, v: f64) -> Result<i64> {
    if !v.is_finite() || v < 0.0 {
        return Err(CondError::out_of_range(
            argument,
            format!("threshold {v} must be finite and non-negative"),
        ));
    }
    Ok(v.floor().min(i32::MAX as f64) as i64)
}

/// 3x3 Sobel derivatives of one channel with replicated borders:
/// `dx = right - left` and `dy = below - above` with weights 1, 2, 1.
fn sobel(src: &[u8], w: usize, h: usize, cn: usize, c: usize) -> (Vec<i32>, Vec<i32>) {
    let at = |x: isize, y: isize| {
        let x = x.clamp(0, w as isize - 1) as usize;
        let y = y.clamp(0, h as isize - 1) as usize;
        i32::from(src[(y * w + x) * cn + c])
    };
    let mut dx = vec![0i32; w * h];
    let mut dy = vec![0i32; w * h];
    for y in 0..h as isize {
        for x in 0..w as isize {
            let i = y as usize * w + x as usize;
            dx[i] = (at(x + 1, y - 1) + 2 * at(x + 1, y) + at(x + 1, y + 1))
                - (at(x - 1, y - 1) + 2 * at(x - 1, y) + at(x - 1, y + 1));
            dy[i] = (at(x - 1, y + 1) + 2 * at(x, y + 1) + at(x + 1, y + 1))
                - (at(x - 1, y - 1) + 2 * at(x, y - 1) + at(x + 1, y - 1));
        }
    }
    (dx, dy)
}

/// Map states of OpenCV's Canny.
const MAYBE: u8 = 0;
const NOT_EDGE: u8 = 1;
const EDGE: u8 = 2;

/// The algorithm on `cn` interleaved channels; returns 0/255 bytes.
fn canny_planes(src: &[u8], w: usize, h: usize, cn: usize, low: f64, high: f64) -> Result<Vec<u8>> {
    let mut low = threshold("low_threshold", low)?;
    let mut high = threshold("high_threshold", high)?;
    if low > high {
        std::mem::swap(&mut low, &mut high);
    }

    // Per pixel: magnitude and the derivatives of the strongest channel.
    let mut mag = vec![0i64; w * h];
    let mut gx = vec![0i32; w * h];
    let mut gy = vec![0i32; w * h];
    for c in 0..cn {
        let (dx, dy) = sobel(src, w, h, cn, c);
        for i in 0..w * h {
            let m = i64::from(dx[i].abs() + dy[i].abs());
            if c == 0 || m > mag[i] {
                mag[i] = m;
                gx[i] = dx[i];
                gy[i] = dy[i];
            }
        }
    }
    let mag_at = |x: isize, y: isize| -> i64 {
        if x < 0 || y < 0 || x >= w as isize || y >= h as isize {
            0
        } else {
            mag[y as usize * w + x as usize]
        }
    };

    // The map has a one-pixel frame that is never an edge.
    let mw = w + 2;
    let mut map = vec![NOT_EDGE; mw * (h + 2)];
    let mut stack: Vec<usize> = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let m = mag[i];
            let (xi, yi) = (x as isize, y as isize);
            let mut keep = false;
            if m > low {
                let (xs, ys) = (i64::from(gx[i]), i64::from(gy[i]));
                let ax = xs.abs();
                let ay = ys.abs() << 15;
                let tg22x = ax * TG22;
                if ay < tg22x {
                    keep = m > mag_at(xi - 1, yi) && m >= mag_at(xi + 1, yi);
                } else {
                    let tg67x = tg22x + (ax << 16);
                    if ay > tg67x {
                        keep = m > mag_at(xi, yi - 1) && m >= mag_at(xi, yi + 1);
                    } else {
                        let s: isize = if (xs ^ ys) < 0 { -1 } else { 1 };
                        keep = m > mag_at(xi - s, yi - 1) && m > mag_at(xi + s, yi + 1);
                    }
                }
            }
            let mi = (y + 1) * mw + x + 1;
            if keep {
                if m > high {
                    map[mi] = EDGE;
                    stack.push(mi);
                } else {
                    map[mi] = MAYBE;
                }
            }
        }
    }

    // Hysteresis: grow edges into 8-connected candidates.
    let offsets = [
        -(mw as isize) - 1,
        -(mw as isize),
        -(mw as isize) + 1,
        -1,
        1,
        mw as isize - 1,
        mw as isize,
        mw as isize + 1,
    ];
    while let Some(mi) = stack.pop() {
        for off in offsets {
            let n = (mi as isize + off) as usize;
            if map[n] == MAYBE {
                map[n] = EDGE;
                stack.push(n);
            }
        }
    }

    let mut out = vec![0u8; w * h];
    for y in 0..h {
        for x in 0..w {
            if map[(y + 1) * mw + x + 1] == EDGE {
                out[y * w + x] = 255;
            }
        }
    }
    Ok(out)
}
