//! Outputs that never overwrite an input, checked before any work and
//! written atomically in the format of their extension (through
//! `optedit::images`, which also reads the inputs and fits them to the
//! model); side-by-side rows and PSNR.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use image::{DynamicImage, RgbImage};
use optedit::images::Format;

use crate::UsageError;

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

/// A checked output path: an image file name (`.png`, `.jpg`, `.jpeg` or
/// `.webp`) in a writable folder that is none of the inputs.
#[derive(Debug, Clone)]
pub struct Output {
    path: PathBuf,
}

impl Output {
    /// Checks `path` before any work is done: extension, not an input, folder
    /// exists and accepts a new file.
    pub fn prepare(path: &Path, inputs: &[&Path]) -> Result<Self> {
        if let Err(e) = Format::of(path) {
            return Err(UsageError(format!("output {e}")).into());
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
        optedit_cond::file::temp_beside(path).with_context(|| {
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

    /// Writes `image` atomically, in the format of the path's extension.
    pub fn write(&self, image: &DynamicImage) -> Result<()> {
        Ok(optedit::images::write(&self.path, image)?)
    }
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
    fn outputs_take_the_image_extensions() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.png", "b.JPG", "c.jpeg", "d.webp"] {
            assert!(
                Output::prepare(&dir.path().join(name), &[]).is_ok(),
                "{name}"
            );
        }
        let e = Output::prepare(&dir.path().join("e.tif"), &[]).unwrap_err();
        assert!(
            e.is::<UsageError>() && e.to_string().contains(".webp"),
            "{e}"
        );
    }

    #[test]
    fn psnr_of_identical_images_is_infinite() {
        let a = RgbImage::from_pixel(4, 4, image::Rgb([1, 2, 3]));
        assert!(psnr(&a, &a).is_infinite());
    }
}
