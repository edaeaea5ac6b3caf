//! The two ControlNet conditions of the demo model, built from a world scene
//! with the conditioning crate: the OpenPose rendering of the figure's
//! keypoints and Canny edges of the image.

use image::{DynamicImage, RgbImage};
use optedit_cond::canny::canny_condition;
use optedit_cond::pose_render::render_body_poses;
use optedit_cond::{BodyPose, Keypoint};

use crate::demo::IMAGE_SIZE;
use crate::Result;

/// Canny thresholds of the edge ControlNet (the annotator's defaults).
pub const CANNY_THRESHOLDS: (f64, f64) = (100.0, 200.0);

/// Which ControlNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    /// OpenPose skeleton of the figure.
    Pose,
    /// Canny edges of the scene.
    Canny,
}

impl ControlKind {
    /// Folder name in the pipeline folder (`controlnet-pose`, `controlnet-canny`).
    pub fn folder(self) -> &'static str {
        match self {
            Self::Pose => "controlnet-pose",
            Self::Canny => "controlnet-canny",
        }
    }

    /// Stage id mixed into data seeds.
    pub(crate) fn stage(self) -> u64 {
        match self {
            Self::Pose => 4,
            Self::Canny => 5,
        }
    }
}

/// The figure's keypoints (pixels of the 128x128 image) as a [`BodyPose`].
pub fn body_pose(keypoints: &[Option<(f32, f32)>; 18]) -> Result<BodyPose> {
    let size = IMAGE_SIZE as f64;
    let points = keypoints.map(|k| {
        k.map(|(x, y)| Keypoint {
            x: x as f64 / size,
            y: y as f64 / size,
        })
    });
    Ok(BodyPose::new(points)?)
}

/// The OpenPose condition image of a figure.
pub fn pose_image(keypoints: &[Option<(f32, f32)>; 18]) -> Result<RgbImage> {
    let pose = body_pose(keypoints)?;
    Ok(render_body_poses(
        &[pose],
        IMAGE_SIZE as u32,
        IMAGE_SIZE as u32,
    )?)
}

/// The Canny condition image of a scene.
pub fn edge_image(image: &RgbImage) -> Result<RgbImage> {
    let (lo, hi) = CANNY_THRESHOLDS;
    Ok(canny_condition(&DynamicImage::ImageRgb8(image.clone()), lo, hi, None)?.into_image())
}

/// The condition image of `kind` for a rendered scene.
pub fn condition_image(kind: ControlKind, rendered: &optedit_world::Rendered) -> Result<RgbImage> {
    match kind {
        ControlKind::Pose => pose_image(&rendered.keypoints),
        ControlKind::Canny => edge_image(&rendered.image),
    }
}
