//! Scribbles: a user's drawing to the binary map the scribble ControlNet
//! expects — white strokes (255) on black (0).
//!
//! Drawings come either way round: dark strokes on light paper (most sketches)
//! or light strokes on a dark ground. The polarity is detected from the median
//! grey level (the background dominates a drawing) unless given. A pixel is a
//! stroke when, for dark strokes, its darkest channel is below the threshold
//! (ControlNet's own scribble preprocessing: `min(rgb) < 127`), or, for light
//! strokes, its brightest channel is above it. A drawing with transparency is
//! read from its alpha channel instead: opaque pixels are strokes.

use image::{DynamicImage, GrayImage, Luma};

use crate::error::Result;
use crate::image::{ensure_nonempty, resize_max, ConditionImage};

/// Which way round a drawing is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Polarity {
    /// Detect from the median grey level.
    #[default]
    Auto,
    /// Dark strokes on a light background.
    DarkOnLight,
    /// Light strokes on a dark background.
    LightOnDark,
}

/// How to turn a drawing into a scribble map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScribbleOptions {
    /// Which way round the drawing is.
    pub polarity: Polarity,
    /// Grey level separating strokes from background (default 127).
    pub threshold: u8,
    /// Radius in output pixels by which strokes are thickened (0 = as drawn).
    pub thickness: u32,
    /// Output `(width, height)` (the ControlNet's factor times the latent
    /// size, 8x for SD 1.5); `None` keeps the drawing's size.
    pub size: Option<(u32, u32)>,
}

impl Default for ScribbleOptions {
    fn default() -> Self {
        Self {
            polarity: Polarity::Auto,
            threshold: 127,
            thickness: 0,
            size: None,
        }
    }
}

/// The polarity of a grey drawing: light background (median ≥ 128) means dark
/// strokes. Never returns [`Polarity::Auto`].
pub fn detect_polarity(gray: &GrayImage) -> Polarity {
    let mut histogram = [0usize; 256];
    for p in gray.pixels() {
        histogram[usize::from(p[0])] += 1;
    }
    let half = gray.len().div_ceil(2);
    let mut seen = 0;
    let median = histogram
        .iter()
        .position(|&n| {
            seen += n;
            seen >= half
        })
        .unwrap_or(0);
    if median >= 128 {
        Polarity::DarkOnLight
    } else {
        Polarity::LightOnDark
    }
}

/// The binary stroke mask of a drawing at its own size: 255 on strokes.
pub fn stroke_mask(drawing: &DynamicImage, polarity: Polarity, threshold: u8) -> Result<GrayImage> {
    let (w, h) = (drawing.width(), drawing.height());
    ensure_nonempty("scribble drawing", w, h)?;
    if drawing.color().has_alpha() {
        let rgba = drawing.to_rgba8();
        if rgba.pixels().any(|p| p[3] <= threshold) {
            return Ok(GrayImage::from_fn(w, h, |x, y| {
                Luma([if rgba.get_pixel(x, y)[3] > threshold {
                    255
                } else {
                    0
                }])
            }));
        }
    }
    let polarity = match polarity {
        Polarity::Auto => detect_polarity(&drawing.to_luma8()),
        p => p,
    };
    let rgb = drawing.to_rgb8();
    Ok(GrayImage::from_fn(w, h, |x, y| {
        let p = rgb.get_pixel(x, y).0;
        let stroke = match polarity {
            Polarity::LightOnDark => p.iter().max().is_some_and(|&v| v > threshold),
            _ => p.iter().min().is_some_and(|&v| v < threshold),
        };
        Luma([if stroke { 255 } else { 0 }])
    }))
}

/// Dilates the white strokes of `mask` by a disc of `radius` pixels.
pub fn thicken(mask: &GrayImage, radius: u32) -> GrayImage {
    if radius == 0 {
        return mask.clone();
    }
    let r = i64::from(radius);
    let disc: Vec<(i64, i64)> = (-r..=r)
        .flat_map(|dy| (-r..=r).map(move |dx| (dx, dy)))
        .filter(|&(dx, dy)| dx * dx + dy * dy <= r * r)
        .collect();
    let (w, h) = (i64::from(mask.width()), i64::from(mask.height()));
    let mut out = GrayImage::new(mask.width(), mask.height());
    for (x, y, p) in mask.enumerate_pixels() {
        if p[0] == 0 {
            continue;
        }
        for &(dx, dy) in &disc {
            let (nx, ny) = (i64::from(x) + dx, i64::from(y) + dy);
            if (0..w).contains(&nx) && (0..h).contains(&ny) {
                out.put_pixel(nx as u32, ny as u32, Luma([255]));
            }
        }
    }
    out
}

/// The scribble map: strokes found, resized to `options.size` (keeping thin
/// strokes), thickened; white on black.
pub fn scribble_map(drawing: &DynamicImage, options: &ScribbleOptions) -> Result<GrayImage> {
    let mask = stroke_mask(drawing, options.polarity, options.threshold)?;
    let (w, h) = options.size.unwrap_or(mask.dimensions());
    ensure_nonempty("scribble size", w, h)?;
    let mask = if mask.dimensions() == (w, h) {
        mask
    } else {
        resize_max(&mask, w, h)
    };
    Ok(thicken(&mask, options.thickness))
}

/// The scribble ControlNet condition (the map on three channels).
pub fn scribble_condition(
    drawing: &DynamicImage,
    options: &ScribbleOptions,
) -> Result<ConditionImage> {
    ConditionImage::from_gray(&scribble_map(drawing, options)?)
}
