//! Masks out of tensors, and before/after grids (image tensors become
//! images by `optedit_cond::image::tensor_to_rgb`).

use burn::tensor::{backend::Backend, Tensor};
use image::{DynamicImage, GrayImage, Luma, Rgb, RgbImage};

/// Gap between grid cells, pixels.
pub const GAP: u32 = 2;

fn values<B: Backend>(t: Tensor<B, 4>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("f32 data")
}

fn to_u8(v: f32) -> u8 {
    (v * 255.0).round().clamp(0.0, 255.0) as u8
}

/// A latent mask `[1, 1, h, w]` in `[0, 1]` as a grey image up-sampled
/// (nearest) by `factor`.
pub fn mask_to_image<B: Backend>(mask: Tensor<B, 4>, factor: usize) -> GrayImage {
    let [_, _, h, w] = mask.dims();
    let v = values(mask);
    let f = factor.max(1) as u32;
    GrayImage::from_fn(w as u32 * f, h as u32 * f, |x, y| {
        Luma([to_u8(v[(y / f) as usize * w + (x / f) as usize])])
    })
}

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
    use burn::backend::Flex;
    use burn::tensor::TensorData;

    #[test]
    fn masks_become_images() {
        let device = Default::default();
        let m =
            Tensor::<Flex, 4>::from_data(TensorData::new(vec![0.0f32, 1.0], [1, 1, 1, 2]), &device);
        let g = mask_to_image(m, 4);
        assert_eq!(g.dimensions(), (8, 4));
        assert_eq!((g.get_pixel(3, 3)[0], g.get_pixel(4, 0)[0]), (0, 255));
    }

    #[test]
    fn grid_lays_out_rows() {
        let a = RgbImage::from_pixel(4, 3, Rgb([1, 2, 3]));
        let g = grid(&[vec![a.clone(), a.clone()], vec![a.clone()]]);
        assert_eq!(g.dimensions(), (4 + GAP + 4, 3 + GAP + 3));
        assert_eq!(g.get_pixel(4 + GAP, 3 + GAP).0, [255, 255, 255]);
        assert_eq!(g.get_pixel(0, 3 + GAP).0, [1, 2, 3]);
    }
}
