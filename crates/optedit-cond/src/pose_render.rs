//! The OpenPose body skeleton as the ControlNet OpenPose annotator draws it
//! (`controlnet_aux.open_pose.util.draw_bodypose`, via `draw_poses`): on a
//! black canvas, for each person in turn, 17 limbs as filled ellipses of
//! half-width 4 in their colour scaled by 0.6, then every present keypoint as
//! a filled circle of radius 4 in its full colour.
//!
//! The geometry is computed in `f64` in the annotator's order (`int()`
//! truncation included) and rasterised with the port of OpenCV's drawing code
//! in `raster`, so the image matches the annotator's pixel for pixel.

use image::RgbImage;

use crate::error::Result;
use crate::image::{ensure_nonempty, ConditionImage};
use crate::pose::{BodyPose, Keypoint, BODY_KEYPOINTS};
use crate::raster::{ellipse_to_polygon, fill_circle, fill_convex_poly, Canvas};

/// The 17 limbs drawn, as pairs of keypoint indices (OpenPose's `limbSeq`,
/// 0-based), in drawing order.
pub const LIMBS: [(usize, usize); 17] = [
    (1, 2),
    (1, 5),
    (2, 3),
    (3, 4),
    (5, 6),
    (6, 7),
    (1, 8),
    (8, 9),
    (9, 10),
    (1, 11),
    (11, 12),
    (12, 13),
    (1, 0),
    (0, 14),
    (14, 16),
    (0, 15),
    (15, 17),
];

/// The annotator's colour table (RGB): limb `i` and keypoint `i` use entry `i`.
pub const COLORS: [[u8; 3]; BODY_KEYPOINTS] = [
    [255, 0, 0],
    [255, 85, 0],
    [255, 170, 0],
    [255, 255, 0],
    [170, 255, 0],
    [85, 255, 0],
    [0, 255, 0],
    [0, 255, 85],
    [0, 255, 170],
    [0, 255, 255],
    [0, 170, 255],
    [0, 85, 255],
    [0, 0, 255],
    [85, 0, 255],
    [170, 0, 255],
    [255, 0, 255],
    [255, 0, 170],
    [255, 0, 85],
];

/// Half-width of a limb ellipse, in pixels (`stickwidth`).
pub const STICK_WIDTH: i32 = 4;

/// Radius of a keypoint circle, in pixels.
pub const JOINT_RADIUS: i64 = 4;

/// Factor applied to a limb's colour.
pub const LIMB_SHADE: f64 = 0.6;

/// Draws one person's skeleton onto `canvas` (limbs, then keypoints).
pub fn draw_body_pose(canvas: &mut RgbImage, pose: &BodyPose) {
    let (w, h) = canvas.dimensions();
    let (wf, hf) = (f64::from(w), f64::from(h));
    let mut canvas = Canvas::new(&mut *canvas, w, h);
    for (&(a, b), color) in LIMBS.iter().zip(COLORS) {
        let (Some(k1), Some(k2)) = (pose.keypoints[a], pose.keypoints[b]) else {
            continue;
        };
        let (center, axes, angle) = limb_ellipse(k1, k2, wf, hf);
        let polygon = ellipse_to_polygon(center, axes, angle, 0, 360, 1);
        // Python: `int(float(c) * 0.6)`.
        let shade = color.map(|c| (f64::from(c) * LIMB_SHADE) as u8);
        fill_convex_poly(&mut canvas, &polygon, shade);
    }
    for (k, color) in pose.keypoints.iter().zip(COLORS) {
        if let Some(k) = k {
            let center = ((k.x * wf) as i64, (k.y * hf) as i64);
            fill_circle(&mut canvas, center, JOINT_RADIUS, color);
        }
    }
}

/// Centre, axes and angle (degrees) of the ellipse of the limb `k1`–`k2`, in
/// the annotator's arithmetic: `X` are rows, `Y` columns, the centre is the
/// mean, the major half-axis half the length, everything truncated by `int()`.
fn limb_ellipse(k1: Keypoint, k2: Keypoint, w: f64, h: f64) -> ((i32, i32), (i32, i32), i32) {
    let (y0, y1) = (k1.x * w, k2.x * w);
    let (x0, x1) = (k1.y * h, k2.y * h);
    let mean_x = (x0 + x1) / 2.0;
    let mean_y = (y0 + y1) / 2.0;
    // Python's `** 0.5`; `sqrt` is correctly rounded, as is glibc's `pow`
    // for these arguments in all but vanishingly rare cases.
    let length = ((x0 - x1) * (x0 - x1) + (y0 - y1) * (y0 - y1)).sqrt();
    // `math.degrees` multiplies by the double 180 / pi.
    let angle = (x0 - x1).atan2(y0 - y1) * (180.0 / std::f64::consts::PI);
    (
        (mean_y as i32, mean_x as i32),
        ((length / 2.0) as i32, STICK_WIDTH),
        angle as i32,
    )
}

/// Renders everyone's skeleton on a black `width x height` canvas, people in
/// order (a later person draws over an earlier one). Any size is accepted.
pub fn render_body_poses(people: &[BodyPose], width: u32, height: u32) -> Result<RgbImage> {
    ensure_nonempty("pose canvas", width, height)?;
    let mut canvas = RgbImage::new(width, height);
    for pose in people {
        draw_body_pose(&mut canvas, pose);
    }
    Ok(canvas)
}

/// The OpenPose ControlNet condition: [`render_body_poses`] at `width` x
/// `height` (the ControlNet's condition factor times the latent size).
pub fn pose_condition(people: &[BodyPose], width: u32, height: u32) -> Result<ConditionImage> {
    ConditionImage::new(render_body_poses(people, width, height)?)
}
