//! `--save-intermediates`: the mask, the guidance image, the condition
//! images and a side-by-side comparison, all PNG.

use std::path::Path;

use anyhow::Result;
use image::{DynamicImage, GrayImage, RgbImage};
use optedit::images::write as write_png;
use optedit_cond::ConditionImage;

use crate::io::side_by_side;

/// What an edit can show.
pub struct Intermediates<'a> {
    /// The input image.
    pub input: &'a RgbImage,
    /// The result (the input's size).
    pub result: &'a RgbImage,
    /// The mask up-sampled to the input's size (absent for SDEdit).
    pub mask: Option<&'a GrayImage>,
    /// The decoded end of the guidance trajectory, when one was made.
    pub guidance: Option<&'a RgbImage>,
    /// Each group's condition kind and image (what its ControlNet saw).
    pub conditions: Vec<(&'static str, &'a ConditionImage)>,
}

/// Writes `mask.png`, `guidance.png`, `condition-<n>-<kind>.png` and
/// `side-by-side.png` (input | mask | result; a white mask when there is
/// none) into `dir`.
pub fn write(dir: &Path, all: &Intermediates<'_>) -> Result<()> {
    if let Some(mask) = all.mask {
        write_png(
            &dir.join("mask.png"),
            &DynamicImage::ImageLuma8(mask.clone()),
        )?;
    }
    if let Some(guidance) = all.guidance {
        write_png(
            &dir.join("guidance.png"),
            &DynamicImage::ImageRgb8(guidance.clone()),
        )?;
    }
    for (i, (kind, image)) in all.conditions.iter().enumerate() {
        let path = dir.join(format!("condition-{}-{kind}.png", i + 1));
        write_png(&path, &DynamicImage::ImageRgb8(image.image().clone()))?;
    }
    let (w, h) = all.input.dimensions();
    let mask = match all.mask {
        Some(m) => DynamicImage::ImageLuma8(m.clone()).to_rgb8(),
        None => RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255])),
    };
    let row = side_by_side(&[all.input, &mask, all.result]);
    write_png(&dir.join("side-by-side.png"), &DynamicImage::ImageRgb8(row))?;
    Ok(())
}
