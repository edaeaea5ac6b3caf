//! Photos in and out: reading any file the `image` crate reads, upright by
//! its EXIF orientation ([`read`]); fitting it to the model ([`Fit`]: at most
//! a maximum side, sides a multiple of the VAE's factor) and putting the
//! result back at the input's size; writing by the output's extension
//! ([`write()`]: png, jpg, webp), atomically.
//!
//! Resampling and codecs are the `image` crate's; the tensor conversion is
//! `optedit_cond::image`'s, the one place it is written.

use std::io::{BufWriter, Write};
use std::path::Path;

use image::{DynamicImage, GrayImage, ImageEncoder, RgbImage};

use crate::error::{Error, Result};

/// Reads an image file (PNG, JPEG or WebP), turned upright by its EXIF
/// orientation.
pub fn read(path: impl AsRef<Path>) -> Result<DynamicImage> {
    Ok(optedit_cond::image::read_image(path.as_ref())?)
}

/// How an input of one size becomes the model's input and back: scaled down
/// (never up) so that its longer side is at most `max_side`, then
/// centre-cropped to multiples of the VAE's `factor`. The border the crop
/// drops keeps the input's pixels in [`Fit::restore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    /// The input's width.
    pub width: u32,
    /// The input's height.
    pub height: u32,
    /// The scaled input's width (the input's when not scaled).
    pub scaled_width: u32,
    /// The scaled input's height.
    pub scaled_height: u32,
    /// The crop of the scaled input the model sees: left, top, width,
    /// height.
    pub crop: [u32; 4],
}

impl Fit {
    /// The fit of a `width x height` input. `max_side` `None` keeps the
    /// size.
    ///
    /// # Errors
    /// An empty input, a zero `factor`, or a `max_side` or input smaller
    /// than `factor`.
    pub fn new(width: u32, height: u32, max_side: Option<u32>, factor: u32) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(Error::argument(
                "image",
                format!("{width}x{height} has no pixels"),
            ));
        }
        if factor == 0 {
            return Err(Error::argument("factor", "must be at least 1"));
        }
        let (mut sw, mut sh) = (width, height);
        if let Some(max) = max_side {
            if max < factor {
                return Err(Error::argument(
                    "max_side",
                    format!("{max} is smaller than the VAE's factor {factor}"),
                ));
            }
            let long = width.max(height);
            if long > max {
                let scale = f64::from(max) / f64::from(long);
                sw = ((f64::from(width) * scale).round() as u32).clamp(1, max);
                sh = ((f64::from(height) * scale).round() as u32).clamp(1, max);
            }
        }
        let (cw, ch) = (sw / factor * factor, sh / factor * factor);
        if cw == 0 || ch == 0 {
            return Err(Error::argument(
                "image",
                format!("{width}x{height} is too small: both sides must be at least {factor} pixels once scaled"),
            ));
        }
        Ok(Self {
            width,
            height,
            scaled_width: sw,
            scaled_height: sh,
            crop: [(sw - cw) / 2, (sh - ch) / 2, cw, ch],
        })
    }

    /// The model's input size (the crop's width and height).
    pub fn size(&self) -> (u32, u32) {
        (self.crop[2], self.crop[3])
    }

    /// Whether the input is scaled.
    pub fn is_scaled(&self) -> bool {
        (self.scaled_width, self.scaled_height) != (self.width, self.height)
    }

    /// The model's input: `image` (the input's size) scaled and cropped.
    pub fn apply(&self, image: &RgbImage) -> RgbImage {
        let [x, y, w, h] = self.crop;
        if !self.is_scaled() {
            return image::imageops::crop_imm(image, x, y, w, h).to_image();
        }
        let scaled = image::imageops::resize(
            image,
            self.scaled_width,
            self.scaled_height,
            image::imageops::FilterType::Lanczos3,
        );
        image::imageops::crop_imm(&scaled, x, y, w, h).to_image()
    }

    /// A mask or condition of any size at the model's input size: one of the
    /// input's size is fitted like the input, any other resized to it.
    pub fn apply_gray(&self, mask: &GrayImage) -> GrayImage {
        let fitted = if mask.dimensions() == (self.width, self.height) {
            let scaled =
                optedit_cond::image::resize_max(mask, self.scaled_width, self.scaled_height);
            let [x, y, w, h] = self.crop;
            image::imageops::crop_imm(&scaled, x, y, w, h).to_image()
        } else {
            mask.clone()
        };
        let (w, h) = self.size();
        if fitted.dimensions() == (w, h) {
            fitted
        } else {
            optedit_cond::image::resize_max(&fitted, w, h)
        }
    }

    /// The crop's rectangle in the input's pixels: left, top, width, height.
    fn region(&self) -> [u32; 4] {
        let [x, y, w, h] = self.crop;
        let sx = f64::from(self.width) / f64::from(self.scaled_width);
        let sy = f64::from(self.height) / f64::from(self.scaled_height);
        let left = (f64::from(x) * sx).round() as u32;
        let top = (f64::from(y) * sy).round() as u32;
        let right = ((f64::from(x + w) * sx).round() as u32).min(self.width);
        let bottom = ((f64::from(y + h) * sy).round() as u32).min(self.height);
        [left, top, right - left, bottom - top]
    }

    /// `edited` (the model's size) back at the input's size: scaled to the
    /// crop's region of the input and pasted into a copy of `original`, so
    /// the border keeps the input's pixels.
    pub fn restore(&self, original: &RgbImage, edited: &RgbImage) -> RgbImage {
        let [x, y, w, h] = self.region();
        let scaled = if edited.dimensions() == (w, h) {
            edited.clone()
        } else {
            image::imageops::resize(edited, w, h, image::imageops::FilterType::Lanczos3)
        };
        let mut out = original.clone();
        image::imageops::replace(&mut out, &scaled, i64::from(x), i64::from(y));
        out
    }

    /// A mask of the model's size back at the input's size (0 outside the
    /// crop).
    pub fn restore_gray(&self, mask: &GrayImage) -> GrayImage {
        let [x, y, w, h] = self.region();
        let scaled = optedit_cond::image::resize_max(mask, w, h);
        let mut out = GrayImage::new(self.width, self.height);
        image::imageops::replace(&mut out, &scaled, i64::from(x), i64::from(y));
        out
    }
}

/// The formats [`write()`] chooses by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// PNG (lossless).
    Png,
    /// JPEG at quality 95.
    Jpeg,
    /// WebP (lossless: the `image` crate's WebP encoder).
    WebP,
}

impl Format {
    /// The format `path`'s extension names (case-insensitive).
    pub fn of(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("png") => Ok(Format::Png),
            Some("jpg" | "jpeg") => Ok(Format::Jpeg),
            Some("webp") => Ok(Format::WebP),
            _ => Err(Error::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// Writes `image` to `path` in the format its extension names, through a
/// temporary file in the same folder renamed over `path` once complete: no
/// partial file is ever left.
pub fn write(path: impl AsRef<Path>, image: &DynamicImage) -> Result<()> {
    let path = path.as_ref();
    let format = Format::of(path)?;
    let io = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let encode = |source| Error::Encode {
        path: path.to_path_buf(),
        source,
    };
    let tmp = optedit_cond::file::temp_beside(path).map_err(io)?;
    {
        let mut w = BufWriter::new(tmp.as_file());
        let (width, height) = (image.width(), image.height());
        let (bytes, colour) = match image {
            DynamicImage::ImageLuma8(g) => (g.as_raw().clone(), image::ExtendedColorType::L8),
            other => (other.to_rgb8().into_raw(), image::ExtendedColorType::Rgb8),
        };
        match format {
            Format::Png => image::codecs::png::PngEncoder::new(&mut w)
                .write_image(&bytes, width, height, colour),
            Format::Jpeg => image::codecs::jpeg::JpegEncoder::new_with_quality(&mut w, 95)
                .write_image(&bytes, width, height, colour),
            Format::WebP => image::codecs::webp::WebPEncoder::new_lossless(&mut w)
                .write_image(&bytes, width, height, colour),
        }
        .map_err(encode)?;
        w.flush().map_err(io)?;
    }
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}
