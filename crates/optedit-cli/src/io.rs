//! Images in and out: reading, the centre-crop size policy, tensor
//! conversions, and atomic PNG output that never overwrites an input.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::{backend::Backend, Tensor};
use image::{DynamicImage, GrayImage, ImageEncoder, Luma, RgbImage};

use crate::UsageError;

/// Reads an image file (PNG, JPEG or WebP); errors name the file.
pub fn read_image(path: &Path) -> Result<DynamicImage> {
    Ok(optedit_cond::image::read_image(path)?)
}

/// The centred crop whose sides are the largest multiples of `factor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    /// Left edge in the original.
    pub x: u32,
    /// Top edge in the original.
    pub y: u32,
    /// Cropped width.
    pub width: u32,
    /// Cropped height.
    pub height: u32,
    /// Original width.
    pub full_width: u32,
    /// Original height.
    pub full_height: u32,
}

impl Crop {
    /// The crop of a `width x height` image; `what` names the image in errors.
    pub fn centre(width: u32, height: u32, factor: usize, what: &Path) -> Result<Self> {
        let f = factor.max(1) as u32;
        let (cw, ch) = (width / f * f, height / f * f);
        if cw == 0 || ch == 0 {
            bail!(
                "{}: {width}x{height} is too small; both sides must be at least {f} pixels",
                what.display()
            );
        }
        Ok(Self {
            x: (width - cw) / 2,
            y: (height - ch) / 2,
            width: cw,
            height: ch,
            full_width: width,
            full_height: height,
        })
    }

    /// Whether the crop is the whole image.
    pub fn is_identity(&self) -> bool {
        (self.width, self.height) == (self.full_width, self.full_height)
    }

    /// Whether an image of `dims` has the original's size.
    pub fn is_full_size(&self, dims: (u32, u32)) -> bool {
        dims == (self.full_width, self.full_height)
    }

    /// The cropped part of an image of the original's size.
    pub fn apply(&self, image: &DynamicImage) -> DynamicImage {
        image.crop_imm(self.x, self.y, self.width, self.height)
    }

    /// `edited` (the crop's size) pasted into a copy of `original`.
    pub fn paste<P: image::Pixel>(
        &self,
        original: &image::ImageBuffer<P, Vec<P::Subpixel>>,
        edited: &image::ImageBuffer<P, Vec<P::Subpixel>>,
    ) -> image::ImageBuffer<P, Vec<P::Subpixel>> {
        let mut out = original.clone();
        image::imageops::replace(&mut out, edited, i64::from(self.x), i64::from(self.y));
        out
    }

    /// `edited` placed on a black canvas of the original's size.
    pub fn embed_gray(&self, edited: &GrayImage) -> GrayImage {
        self.paste(&GrayImage::new(self.full_width, self.full_height), edited)
    }
}

/// An RGB image as `[1, 3, H, W]` in `[-1, 1]`.
pub fn image_to_tensor<B: Backend>(image: &RgbImage, device: &B::Device) -> Tensor<B, 4> {
    optedit_cond::image::rgb_to_tensor::<B>(image, device)
        .mul_scalar(2.0)
        .sub_scalar(1.0)
}

fn values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("cannot read tensor values: {e:?}"))
}

fn to_u8(v: f32) -> u8 {
    (v * 255.0).round().clamp(0.0, 255.0) as u8
}

/// A `[1, 3, H, W]` tensor in `[-1, 1]` as an RGB image.
pub fn tensor_to_image<B: Backend>(t: Tensor<B, 4>) -> Result<RgbImage> {
    let [_, c, h, w] = t.dims();
    if c != 3 {
        bail!("expected an image tensor with 3 channels, got {c}");
    }
    let v = values(t)?;
    let plane = h * w;
    let raw = (0..plane)
        .flat_map(|i| (0..3).map(move |ch| (ch, i)))
        .map(|(ch, i)| to_u8((v[ch * plane + i] + 1.0) / 2.0))
        .collect();
    Ok(RgbImage::from_raw(w as u32, h as u32, raw).expect("3 bytes a pixel"))
}

/// A latent mask `[1, 1, h, w]` in `[0, 1]` as a grey image up-sampled
/// (nearest) by `factor`.
pub fn mask_to_image<B: Backend>(mask: Tensor<B, 4>, factor: usize) -> Result<GrayImage> {
    let [_, _, h, w] = mask.dims();
    let v = values(mask)?;
    let f = factor.max(1) as u32;
    Ok(GrayImage::from_fn(w as u32 * f, h as u32 * f, |x, y| {
        Luma([to_u8(v[(y / f) as usize * w + (x / f) as usize])])
    }))
}

/// Absolute, symlink-free form of a path that may not exist yet (its folder
/// must).
fn canonical_target(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = fs::canonicalize(path) {
        return Some(p);
    }
    let parent = parent_dir(path);
    Some(fs::canonicalize(parent).ok()?.join(path.file_name()?))
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A checked output path: a `.png` file name in a writable folder that is
/// none of the inputs.
#[derive(Debug, Clone)]
pub struct Output {
    path: PathBuf,
}

impl Output {
    /// Checks `path` before any work is done: extension, not an input, folder
    /// exists and accepts a new file.
    pub fn prepare(path: &Path, inputs: &[&Path]) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if ext.as_deref() != Some("png") {
            return Err(UsageError(format!(
                "output {}: the output is a PNG image and must end in .png",
                path.display()
            ))
            .into());
        }
        if path.file_name().is_none() || path.is_dir() {
            bail!("output {}: is a folder, not a file name", path.display());
        }
        let target = canonical_target(path);
        for input in inputs {
            if let (Some(t), Ok(i)) = (&target, fs::canonicalize(input)) {
                if *t == i {
                    return Err(UsageError(format!(
                        "output {} is the input file {}; refusing to overwrite an input",
                        path.display(),
                        input.display()
                    ))
                    .into());
                }
            }
        }
        let dir = parent_dir(path);
        if !dir.is_dir() {
            let why = if dir.exists() {
                "is not a folder"
            } else {
                "does not exist"
            };
            bail!(
                "cannot write output {}: {} {why}",
                path.display(),
                dir.display()
            );
        }
        // Probe: the folder must accept a new file (the temporary file is
        // removed when dropped).
        temp_in(dir, path).with_context(|| {
            format!(
                "cannot write output {}: folder {} is not writable",
                path.display(),
                dir.display()
            )
        })?;
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `image` as PNG atomically.
    pub fn write(&self, image: &DynamicImage) -> Result<()> {
        write_png(&self.path, image)
    }
}

fn temp_in(dir: &Path, target: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let stem = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{stem}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // An ordinary file's mode (0666 less the umask), not tempfile's 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}

/// Writes `image` to `path` as PNG through a temporary file in the same
/// folder, renamed over `path` once complete: no partial file is ever left.
pub fn write_png(path: &Path, image: &DynamicImage) -> Result<()> {
    let fail = || format!("cannot write {}", path.display());
    let tmp = temp_in(parent_dir(path), path).with_context(fail)?;
    {
        let mut w = BufWriter::new(tmp.as_file());
        let encoder = image::codecs::png::PngEncoder::new(&mut w);
        let (width, height) = (image.width(), image.height());
        match image {
            DynamicImage::ImageLuma8(g) => {
                encoder.write_image(g.as_raw(), width, height, image::ExtendedColorType::L8)
            }
            other => {
                let rgb = other.to_rgb8();
                encoder.write_image(rgb.as_raw(), width, height, image::ExtendedColorType::Rgb8)
            }
        }
        .with_context(fail)?;
        w.flush().with_context(fail)?;
    }
    tmp.as_file().sync_all().with_context(fail)?;
    tmp.persist(path).map_err(|e| e.error).with_context(fail)?;
    Ok(())
}

/// Creates the intermediates folder (checked before any work).
pub fn prepare_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!(
            "--save-intermediates {}: exists and is not a folder",
            dir.display()
        );
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create folder {}", dir.display()))
}

/// Images side by side, left to right, on a black canvas.
pub fn side_by_side(images: &[&RgbImage]) -> RgbImage {
    let width = images.iter().map(|i| i.width()).sum();
    let height = images.iter().map(|i| i.height()).max().unwrap_or(0);
    let mut out = RgbImage::new(width, height);
    let mut x = 0i64;
    for image in images {
        image::imageops::replace(&mut out, *image, x, 0);
        x += i64::from(image.width());
    }
    out
}

/// PSNR in dB between two images of equal size (infinite when identical).
pub fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    let n = a.as_raw().len().max(1) as f64;
    let mse = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / n;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_policy_is_centred_and_bounded() {
        let c = Crop::centre(130, 123, 8, Path::new("x")).unwrap();
        assert_eq!((c.width, c.height), (128, 120));
        assert_eq!((c.x, c.y), (1, 1));
        let c = Crop::centre(128, 128, 8, Path::new("x")).unwrap();
        assert!(c.is_identity());
        assert!(Crop::centre(7, 100, 8, Path::new("x")).is_err());
    }

    #[test]
    fn paste_keeps_the_border() {
        let c = Crop::centre(10, 9, 8, Path::new("x")).unwrap();
        let original = GrayImage::from_pixel(10, 9, Luma([7]));
        let edited = GrayImage::from_pixel(8, 8, Luma([200]));
        let out = c.paste(&original, &edited);
        assert_eq!(out.dimensions(), (10, 9));
        assert_eq!(out.get_pixel(0, 0)[0], 7);
        assert_eq!(out.get_pixel(1, 0)[0], 200);
        assert_eq!(out.get_pixel(9, 8)[0], 7);
    }

    #[test]
    fn psnr_of_identical_images_is_infinite() {
        let a = RgbImage::from_pixel(4, 4, image::Rgb([1, 2, 3]));
        assert!(psnr(&a, &a).is_infinite());
    }
}
