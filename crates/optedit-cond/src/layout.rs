//! Layouts: a segmentation or layout map (flat colour regions, e.g. ADE20K
//! colours for the segmentation ControlNet) passed through unchanged apart
//! from validation and nearest-neighbour resizing, so no new colour is ever
//! blended into a region boundary.

use std::collections::BTreeSet;

use image::{DynamicImage, RgbImage};

use crate::error::{CondError, Result};
use crate::image::{ensure_nonempty, resize_nearest, ConditionImage};

/// How to pass a layout through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayoutOptions {
    /// Output `(width, height)` (the ControlNet's factor times the latent
    /// size, 8x for SD 1.5); `None` keeps the map's size.
    pub size: Option<(u32, u32)>,
    /// Reject maps with more distinct colours than this (a photograph given
    /// by mistake has thousands); `None` accepts any.
    pub max_colors: Option<usize>,
}

/// The distinct colours of an image, sorted.
pub fn palette(image: &RgbImage) -> Vec<[u8; 3]> {
    image
        .pixels()
        .map(|p| p.0)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The layout map: RGB (alpha dropped), checked, resized nearest-neighbour.
pub fn layout_map(layout: &DynamicImage, options: &LayoutOptions) -> Result<RgbImage> {
    ensure_nonempty("layout image", layout.width(), layout.height())?;
    let rgb = layout.to_rgb8();
    if let Some(limit) = options.max_colors {
        let colors = rgb.pixels().map(|p| p.0).collect::<BTreeSet<_>>().len();
        if colors > limit {
            return Err(CondError::invalid(
                "layout image",
                format!(
                    "{colors} distinct colours, more than the {limit} allowed for a layout map"
                ),
            ));
        }
    }
    let (w, h) = options.size.unwrap_or(rgb.dimensions());
    ensure_nonempty("layout size", w, h)?;
    if rgb.dimensions() == (w, h) {
        Ok(rgb)
    } else {
        resize_nearest(&rgb, w, h)
    }
}

/// The layout ControlNet condition.
pub fn layout_condition(layout: &DynamicImage, options: &LayoutOptions) -> Result<ConditionImage> {
    ConditionImage::new(layout_map(layout, options)?)
}
