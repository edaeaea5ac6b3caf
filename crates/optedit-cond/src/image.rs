//! Images in and out: reading files, size checks, resampling, and the
//! ControlNet condition tensor.

use std::path::Path;

use burn::tensor::{backend::Backend, Tensor, TensorData};
use image::{DynamicImage, GrayImage, RgbImage};

use crate::error::{CondError, Result};

/// Pixels per latent cell of Stable Diffusion 1.5 (its VAE and ControlNets
/// downsample by 8). Other models differ (the demo model's factor is 4): the
/// builders here accept any positive size, and the ControlNet checks that a
/// condition is exactly its factor times the latent size.
pub const LATENT_SCALE: u32 = 8;

/// Reads and decodes an image file (PNG, JPEG or WebP).
pub fn read_image(path: &Path) -> Result<DynamicImage> {
    let bytes = std::fs::read(path).map_err(|source| CondError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let image = image::load_from_memory(&bytes).map_err(|source| CondError::ImageDecode {
        path: path.to_path_buf(),
        source,
    })?;
    ensure_nonempty(&path.display().to_string(), image.width(), image.height())?;
    Ok(image)
}

/// Reads an image file as 8-bit RGB (alpha dropped, grey replicated).
pub fn read_rgb(path: &Path) -> Result<RgbImage> {
    Ok(read_image(path)?.to_rgb8())
}

/// Reads an image file as 8-bit grey.
pub fn read_gray(path: &Path) -> Result<GrayImage> {
    Ok(read_image(path)?.to_luma8())
}

/// Fails with [`CondError::EmptyImage`] when the image has no pixels.
pub fn ensure_nonempty(argument: &str, width: u32, height: u32) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(CondError::EmptyImage {
            argument: argument.into(),
            width,
            height,
        });
    }
    Ok(())
}

/// A ControlNet condition: a non-empty RGB image (a ControlNet takes it at
/// its condition factor times the latent size, 8x for SD 1.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionImage {
    image: RgbImage,
}

impl ConditionImage {
    /// Wraps `image` after checking that it has pixels.
    pub fn new(image: RgbImage) -> Result<Self> {
        ensure_nonempty("condition image", image.width(), image.height())?;
        Ok(Self { image })
    }

    /// A grey map replicated to three channels.
    pub fn from_gray(image: &GrayImage) -> Result<Self> {
        Self::new(DynamicImage::ImageLuma8(image.clone()).to_rgb8())
    }

    /// The image.
    pub fn image(&self) -> &RgbImage {
        &self.image
    }

    /// The image, unwrapped.
    pub fn into_image(self) -> RgbImage {
        self.image
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.image.width()
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.image.height()
    }

    /// `(height, width)` of the latent this condition goes with under a
    /// ControlNet whose condition factor is `factor` ([`LATENT_SCALE`] for
    /// SD 1.5); `None` when `factor` is 0 or a side is not a multiple of it.
    pub fn latent_size(&self, factor: u32) -> Option<(u32, u32)> {
        (factor > 0 && self.height() % factor == 0 && self.width() % factor == 0)
            .then(|| (self.height() / factor, self.width() / factor))
    }

    /// The tensor the ControlNet takes: `[1, 3, H, W]`, values in `[0, 1]`.
    pub fn to_tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 4> {
        rgb_to_tensor(&self.image, device)
    }
}

/// Any RGB image as a `[1, 3, H, W]` tensor in `[0, 1]` (value / 255).
pub fn rgb_to_tensor<B: Backend>(image: &RgbImage, device: &B::Device) -> Tensor<B, 4> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let mut planar = vec![0f32; 3 * w * h];
    for (i, px) in image.pixels().enumerate() {
        for c in 0..3 {
            planar[c * w * h + i] = f32::from(px[c]) / 255.0;
        }
    }
    Tensor::from_data(TensorData::new(planar, [1, 3, h, w]), device)
}

/// Nearest-neighbour resampling that only ever copies input pixels: output
/// pixel `x` takes input pixel `floor((x + 1/2) * in / out)` (pixel centres),
/// computed in integers. Fails on an empty input.
pub fn resize_nearest<P: image::Pixel>(
    image: &image::ImageBuffer<P, Vec<P::Subpixel>>,
    width: u32,
    height: u32,
) -> Result<image::ImageBuffer<P, Vec<P::Subpixel>>> {
    ensure_nonempty("image to resize", image.width(), image.height())?;
    let (sw, sh) = (u64::from(image.width()), u64::from(image.height()));
    let source =
        |d: u32, s: u64, n: u32| (((2 * u64::from(d) + 1) * s) / (2 * u64::from(n))) as u32;
    Ok(image::ImageBuffer::from_fn(width, height, |x, y| {
        *image.get_pixel(source(x, sw, width), source(y, sh, height))
    }))
}

/// Resampling of a binary mask that keeps thin strokes: an output pixel is the
/// maximum of the input pixels its footprint covers (at least one).
pub fn resize_max(mask: &GrayImage, width: u32, height: u32) -> GrayImage {
    let (sw, sh) = (u64::from(mask.width()), u64::from(mask.height()));
    let span = |d: u32, s: u64, n: u32| {
        let (d, n) = (u64::from(d), u64::from(n));
        let start = d * s / n;
        let end = ((d + 1) * s).div_ceil(n).max(start + 1).min(s);
        (start as u32, end as u32)
    };
    GrayImage::from_fn(width, height, |x, y| {
        let (x0, x1) = span(x, sw, width);
        let (y0, y1) = span(y, sh, height);
        let mut best = 0u8;
        for yy in y0..y1 {
            for xx in x0..x1 {
                best = best.max(mask.get_pixel(xx, yy)[0]);
            }
        }
        image::Luma([best])
    })
}

/// Smooth (bilinear, antialiased when shrinking) resampling of an RGB image.
pub fn resize_smooth(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    if image.dimensions() == (width, height) {
        return image.clone();
    }
    image::imageops::resize(image, width, height, image::imageops::FilterType::Triangle)
}
