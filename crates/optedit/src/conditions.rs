//! ControlNet conditions from files: an OpenPose JSON, a scribble, an edge
//! map (or the Canny edges of the input), a layout map; read
//! ([`read_source`]) and turned into the condition image the ControlNet
//! takes at the model's input size ([`condition_image`]), fitted like the
//! input ([`Fit`]). The `optedit` command and [`crate::batch`] build their
//! conditions here; the image operations themselves are
//! [`optedit_cond`]'s.

use std::path::{Path, PathBuf};

use image::DynamicImage;
use optedit_cond::layout::{layout_condition, LayoutOptions};
use optedit_cond::scribble::{scribble_condition, ScribbleOptions};
use optedit_cond::{pose, pose_render, BodyPose, CondError, ConditionImage};

use crate::error::{Error, Result};
use crate::images::Fit;

/// The low Canny threshold of [`Condition::EdgesAuto`] by default (the
/// Canny ControlNet annotator's).
pub const CANNY_LOW: f64 = 100.0;
/// The high Canny threshold of [`Condition::EdgesAuto`] by default.
pub const CANNY_HIGH: f64 = 200.0;

/// What a ControlNet is conditioned on.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Condition {
    /// An OpenPose JSON file.
    Pose(PathBuf),
    /// A scribble drawing (either polarity).
    Scribble(PathBuf),
    /// The Canny edges of the input image.
    EdgesAuto,
    /// An edge-map image.
    Edges(PathBuf),
    /// A layout / segmentation map (its colours are labels).
    Layout(PathBuf),
}

impl Condition {
    /// Short name (`pose`, `scribble`, `edges`, `layout`; used in file
    /// names).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Pose(_) => "pose",
            Self::Scribble(_) => "scribble",
            Self::EdgesAuto | Self::Edges(_) => "edges",
            Self::Layout(_) => "layout",
        }
    }

    /// The file it reads, if any.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::Pose(p) | Self::Scribble(p) | Self::Edges(p) | Self::Layout(p) => Some(p),
            Self::EdgesAuto => None,
        }
    }

    /// How errors name it: its file, or `edges auto`.
    pub fn name(&self) -> String {
        self.file()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "edges auto".into())
    }
}

/// A condition read from disk, before the input's fit is known.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Source {
    /// Poses, already normalised.
    Pose(Vec<BodyPose>),
    /// An image (scribble, edge map or layout).
    Image(DynamicImage),
    /// The Canny edges of the input.
    EdgesAuto,
}

/// Reads `condition`'s file; pose pixel coordinates are relative to the
/// file's canvas size, else to `image_size` (the input's).
pub fn read_source(condition: &Condition, image_size: (u32, u32)) -> Result<Source> {
    Ok(match condition {
        Condition::Pose(p) => Source::Pose(read_pose(p, image_size)?),
        Condition::EdgesAuto => Source::EdgesAuto,
        Condition::Scribble(p) | Condition::Edges(p) | Condition::Layout(p) => {
            Source::Image(crate::images::read(p)?)
        }
    })
}

/// Reads OpenPose JSON: coordinates relative to its `canvas_width/height`
/// when present; else normalised when all within `[0, 1]`; else pixels of
/// `size`.
pub fn read_pose(path: &Path, size: (u32, u32)) -> Result<Vec<BodyPose>> {
    let text = std::fs::read_to_string(path).map_err(|source| CondError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| CondError::Json {
        source_name: path.display().to_string(),
        message: e.to_string(),
    })?;
    let has_canvas = value.get("canvas_width").is_some_and(|v| !v.is_null());
    let pixels = !has_canvas
        && value["people"].as_array().is_some_and(|people| {
            people.iter().any(|p| {
                p["pose_keypoints_2d"].as_array().is_some_and(|k| {
                    k.chunks(3).any(|c| {
                        let f =
                            |i: usize| c.get(i).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
                        f(2) > 0.0 && (f(0) > 1.0 || f(1) > 1.0)
                    })
                })
            })
        });
    Ok(pose::read_openpose_json(path, pixels.then_some(size))?)
}

/// The part of `image` (the scaled input's size) the model sees.
fn crop_scaled(image: &DynamicImage, fit: &Fit) -> DynamicImage {
    let [x, y, w, h] = fit.crop;
    image.crop_imm(x, y, w, h)
}

/// The condition image at the model's input size: sources the input's size
/// are fitted like it (scaled and cropped; layout maps nearest, as their
/// colours are labels), other sizes resized to the model's size; poses are
/// drawn at the scaled size; `EdgesAuto` is the Canny of the fitted input
/// with thresholds `canny` (low, high).
///
/// # Errors
/// [`Error::ConditionImage`], naming the condition, when the image cannot
/// be built.
pub fn condition_image(
    source: &Source,
    condition: &Condition,
    input: &DynamicImage,
    fit: &Fit,
    canny: (f64, f64),
) -> Result<ConditionImage> {
    let size = fit.size();
    let input_size = (fit.width, fit.height);
    let fitted = |img: &DynamicImage, nearest: bool| -> Result<DynamicImage, CondError> {
        if (img.width(), img.height()) != input_size {
            Ok(img.clone())
        } else if nearest && fit.is_scaled() {
            let scaled = optedit_cond::image::resize_nearest(
                &img.to_rgb8(),
                fit.scaled_width,
                fit.scaled_height,
            )?;
            Ok(crop_scaled(&DynamicImage::ImageRgb8(scaled), fit))
        } else {
            Ok(DynamicImage::ImageRgb8(fit.apply(&img.to_rgb8())))
        }
    };
    let out = match (source, condition) {
        (Source::Pose(people), _) => pose_render::render_body_poses(
            people,
            fit.scaled_width,
            fit.scaled_height,
        )
        .and_then(|scaled| {
            ConditionImage::new(crop_scaled(&DynamicImage::ImageRgb8(scaled), fit).to_rgb8())
        }),
        (Source::EdgesAuto, _) => optedit_cond::canny::canny_condition(
            &DynamicImage::ImageRgb8(fit.apply(&input.to_rgb8())),
            canny.0,
            canny.1,
            None,
        ),
        (Source::Image(img), Condition::Scribble(_)) => fitted(img, false).and_then(|img| {
            scribble_condition(
                &img,
                &ScribbleOptions {
                    size: Some(size),
                    ..ScribbleOptions::default()
                },
            )
        }),
        (Source::Image(img), Condition::Layout(_)) => fitted(img, true).and_then(|img| {
            layout_condition(
                &img,
                &LayoutOptions {
                    size: Some(size),
                    max_colors: None,
                },
            )
        }),
        (Source::Image(img), _) => ConditionImage::from_gray(&fit.apply_gray(&img.to_luma8())),
    };
    out.map_err(|source| Error::ConditionImage {
        condition: condition.name(),
        source,
    })
}
