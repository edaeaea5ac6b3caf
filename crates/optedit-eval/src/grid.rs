//! Before/after grids (image and mask tensors become images by
//! `optedit_cond::image::{tensor_to_rgb, latent_mask_to_gray}`).

use image::{DynamicImage, GrayImage, Rgb, RgbImage};

/// Gap between grid cells, pixels.
pub const GAP: u32 = 2;

/// A grey mask as RGB.
pub fn gray_to_rgb(mask: &GrayImage) -> RgbImage {
    DynamicImage::ImageLuma8(mask.clone()).to_rgb8()
}

/// Rows of images laid out as a grid on a white canvas, [`GAP`] pixels apart
/// (cells are as large as the largest image).
pub fn grid(rows: &[Vec<RgbImage>]) -> RgbImage {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0) as u32;
    let cw = rows.iter().flatten().map(|i| i.width()).max().unwrap_or(0);
    let ch = rows.iter().flatten().map(|i| i.height()).max().unwrap_or(0);
    let n = rows.len() as u32;
    let width = (cols * (cw + GAP)).saturating_sub(GAP).max(1);
    let height = (n * (ch + GAP)).saturating_sub(GAP).max(1);
    let mut out = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    for (r, row) in rows.iter().enumerate() {
        for (c, img) in row.iter().enumerate() {
            let (x, y) = (c as u32 * (cw + GAP), r as u32 * (ch + GAP));
            image::imageops::replace(&mut out, img, i64::from(x), i64::from(y));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_lays_out_rows() {
        let a = RgbImage::from_pixel(4, 3, Rgb([1, 2, 3]));
        let g = grid(&[vec![a.clone(), a.clone()], vec![a.clone()]]);
        assert_eq!(g.dimensions(), (4 + GAP + 4, 3 + GAP + 3));
        assert_eq!(g.get_pixel(4 + GAP, 3 + GAP).0, [255, 255, 255]);
        assert_eq!(g.get_pixel(0, 3 + GAP).0, [1, 2, 3]);
    }
}
