//! The ControlNet conditions of the demo model, built from a rendered world
//! scene with the conditioning crate (training draws them for the ControlNets,
//! evaluation for the methods it runs):
//!
//! | kind | folder | condition image |
//! |---|---|---|
//! | [`ControlKind::Pose`] | `controlnet-pose` | the OpenPose rendering of the figure's keypoints ([`pose_image`]) |
//! | [`ControlKind::Canny`] | `controlnet-canny` | Canny edges of the image ([`edge_image`]) |
//! | [`ControlKind::Scribble`] | `controlnet-scribble` | white strokes on black: every object's outline and the figure as a stick drawing ([`scribble_image`]) |
//! | [`ControlKind::Layout`] | `controlnet-layout` | a flat-colour semantic map: black background, objects in [`LAYOUT_OBJECT`], the figure in [`LAYOUT_PERSON`] ([`layout_image`]) |
//!
//! The scribble and layout conditions carry shapes and the figure's outline
//! but no colour: an object's colour has to come from the caption.

use image::{DynamicImage, GrayImage, Luma, RgbImage};
use optedit_cond::canny::canny_condition;
use optedit_cond::layout::{layout_map, LayoutOptions};
use optedit_cond::pose_render::render_body_poses;
use optedit_cond::scribble::thicken;
use optedit_cond::{BodyPose, ConditionImage, Keypoint};
use optedit_world::{Rendered, LIMBS};

use optedit_world::IMAGE_SIZE;

use crate::error::Result;

/// Canny thresholds of the edge ControlNet (the annotator's defaults).
pub const CANNY_THRESHOLDS: (f64, f64) = (100.0, 200.0);

/// Radius (pixels) by which the one-pixel outlines of the scribble
/// condition are thickened: 1 gives strokes 3 px across.
pub const SCRIBBLE_THICKEN: u32 = 1;

/// Half the width (pixels) of the figure's strokes in the scribble condition:
/// a pixel whose centre lies this close to a limb, or to the head's circle,
/// is a stroke (strokes 2-3 px across, as the figure's 3 px limbs).
pub const SCRIBBLE_HALF_WIDTH: f32 = 1.25;

/// The layout condition's label of an object (any shape, any colour): RGB
/// (0, 200, 255), a cyan that no world colour is near.
pub const LAYOUT_OBJECT: [u8; 3] = [0, 200, 255];

/// The layout condition's label of the figure: RGB (150, 5, 61), the colour
/// of "person" in the ADE20K palette that SD's segmentation ControlNet reads.
pub const LAYOUT_PERSON: [u8; 3] = [150, 5, 61];

/// The layout condition's background: black.
pub const LAYOUT_BACKGROUND: [u8; 3] = [0, 0, 0];

/// Which ControlNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ControlKind {
    /// OpenPose skeleton of the figure.
    Pose,
    /// Canny edges of the scene.
    Canny,
    /// Scribble: the objects' outlines and the figure's strokes, white on black.
    Scribble,
    /// Layout: a flat-colour semantic map of objects and figure.
    Layout,
}

impl ControlKind {
    /// Every kind.
    pub const ALL: [ControlKind; 4] = [Self::Pose, Self::Canny, Self::Scribble, Self::Layout];

    /// Folder name in the pipeline folder (`controlnet-pose`,
    /// `controlnet-canny`, `controlnet-scribble`, `controlnet-layout`).
    pub fn folder(self) -> &'static str {
        match self {
            Self::Pose => "controlnet-pose",
            Self::Canny => "controlnet-canny",
            Self::Scribble => "controlnet-scribble",
            Self::Layout => "controlnet-layout",
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
    Ok(render_body_poses(&[pose], IMAGE_SIZE, IMAGE_SIZE)?)
}

/// The Canny condition image of a scene.
pub fn edge_image(image: &RgbImage) -> Result<RgbImage> {
    let (lo, hi) = CANNY_THRESHOLDS;
    Ok(canny_condition(&DynamicImage::ImageRgb8(image.clone()), lo, hi, None)?.into_image())
}

/// The one-pixel outline of a mask: its pixels (value > 127) with a
/// 4-neighbour outside it or on the image border.
pub fn mask_outline(mask: &GrayImage) -> GrayImage {
    let (w, h) = mask.dimensions();
    let inside = |x: i64, y: i64| {
        (0..i64::from(w)).contains(&x)
            && (0..i64::from(h)).contains(&y)
            && mask.get_pixel(x as u32, y as u32)[0] > 127
    };
    GrayImage::from_fn(w, h, |x, y| {
        let (x, y) = (i64::from(x), i64::from(y));
        let edge = inside(x, y)
            && [(-1, 0), (1, 0), (0, -1), (0, 1)]
                .iter()
                .any(|&(dx, dy)| !inside(x + dx, y + dy));
        Luma([if edge { 255 } else { 0 }])
    })
}

/// Distance from `p` to the segment `a`-`b`.
fn segment_distance(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (cx, cy) = (a.0 + t * dx - p.0, a.1 + t * dy - p.1);
    (cx * cx + cy * cy).sqrt()
}

/// The head circle of the figure: centred on the nose keypoint, with the
/// radius read off the figure mask straight above the nose (the mask's reach
/// there, less its [`FIGURE_MASK_DILATION`](optedit_world::spec::FIGURE_MASK_DILATION);
/// nothing but the head lies above the nose). `None` without a nose.
fn head_circle(rendered: &Rendered) -> Option<((f32, f32), f32)> {
    let nose = rendered.keypoints[0]?;
    let mask = &rendered.figure_mask;
    let (w, h) = mask.dimensions();
    let (x, y) = (nose.0.floor() as i64, nose.1.floor() as i64);
    if !(0..i64::from(w)).contains(&x) || !(0..i64::from(h)).contains(&y) {
        return None;
    }
    let on = |y: i64| y >= 0 && mask.get_pixel(x as u32, y as u32)[0] > 127;
    let mut top = y;
    while on(top - 1) {
        top -= 1;
    }
    let radius = nose.1 - top as f32 - optedit_world::spec::FIGURE_MASK_DILATION;
    (radius > 0.0).then_some((nose, radius))
}

/// The figure as a stick drawing, white on black: its limbs (the
/// [`LIMBS`] segments between the keypoints, the neck stopping at the head)
/// and the outline of its head, [`SCRIBBLE_HALF_WIDTH`] each side.
pub fn figure_strokes(rendered: &Rendered) -> GrayImage {
    let (w, h) = rendered.figure_mask.dimensions();
    let head = head_circle(rendered);
    let hw = SCRIBBLE_HALF_WIDTH;
    GrayImage::from_fn(w, h, |x, y| {
        let p = (x as f32 + 0.5, y as f32 + 0.5);
        let in_head = head.is_some_and(|(c, r)| {
            let d = ((p.0 - c.0).powi(2) + (p.1 - c.1).powi(2)).sqrt();
            d < r - hw
        });
        let on_head = head.is_some_and(|(c, r)| {
            let d = ((p.0 - c.0).powi(2) + (p.1 - c.1).powi(2)).sqrt();
            (d - r).abs() <= hw
        });
        let on_limb = !in_head
            && LIMBS.iter().any(
                |&(a, b)| match (rendered.keypoints[a], rendered.keypoints[b]) {
                    (Some(a), Some(b)) => segment_distance(p, a, b) <= hw,
                    _ => false,
                },
            );
        Luma([if on_head || on_limb { 255 } else { 0 }])
    })
}

/// The scribble map of a scene: each object's outline (the boundary of its
/// mask, thickened by [`SCRIBBLE_THICKEN`] with the conditioning crate's
/// [`thicken`]) and the figure's strokes ([`figure_strokes`]), white (255)
/// on black (0).
pub fn scribble_map(rendered: &Rendered) -> GrayImage {
    let (w, h) = rendered.figure_mask.dimensions();
    let mut outlines = GrayImage::new(w, h);
    for mask in &rendered.object_masks {
        for (x, y, p) in mask_outline(mask).enumerate_pixels() {
            if p[0] > 0 {
                outlines.put_pixel(x, y, Luma([255]));
            }
        }
    }
    let mut map = thicken(&outlines, SCRIBBLE_THICKEN);
    for (x, y, p) in figure_strokes(rendered).enumerate_pixels() {
        if p[0] > 0 {
            map.put_pixel(x, y, Luma([255]));
        }
    }
    map
}

/// The scribble condition image of a scene ([`scribble_map`] on three
/// channels, as the scribble ControlNet takes it).
pub fn scribble_image(rendered: &Rendered) -> Result<RgbImage> {
    Ok(ConditionImage::from_gray(&scribble_map(rendered))?.into_image())
}

/// The layout condition image of a scene: [`LAYOUT_BACKGROUND`] everywhere,
/// [`LAYOUT_OBJECT`] on every object's mask, [`LAYOUT_PERSON`] on the
/// figure's mask (drawn last, as the figure is drawn over the objects).
/// Passed through the conditioning crate's [`layout_map`] check (at most
/// three colours).
pub fn layout_image(rendered: &Rendered) -> Result<RgbImage> {
    let (w, h) = rendered.figure_mask.dimensions();
    let label = |x: u32, y: u32| {
        if rendered.figure_mask.get_pixel(x, y)[0] > 127 {
            LAYOUT_PERSON
        } else if rendered
            .object_masks
            .iter()
            .any(|m| m.get_pixel(x, y)[0] > 127)
        {
            LAYOUT_OBJECT
        } else {
            LAYOUT_BACKGROUND
        }
    };
    let map = RgbImage::from_fn(w, h, |x, y| image::Rgb(label(x, y)));
    let options = LayoutOptions {
        size: None,
        max_colors: Some(3),
    };
    Ok(layout_map(&DynamicImage::ImageRgb8(map), &options)?)
}

/// The condition image of `kind` for a rendered scene.
pub fn condition_image(kind: ControlKind, rendered: &Rendered) -> Result<RgbImage> {
    match kind {
        ControlKind::Pose => pose_image(&rendered.keypoints),
        ControlKind::Canny => edge_image(&rendered.image),
        ControlKind::Scribble => scribble_image(rendered),
        ControlKind::Layout => layout_image(rendered),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use optedit_world::{Colour, SampleOptions, SceneSpec, Shape};

    fn scene(seed: u64) -> SceneSpec {
        SceneSpec::sample_with(seed, &SampleOptions { objects: Some(3) }).unwrap()
    }

    fn white(map: &GrayImage, x: u32, y: u32) -> bool {
        map.get_pixel(x, y)[0] > 127
    }

    #[test]
    fn scribbles_are_the_outlines_and_the_stick_figure_and_nothing_else() {
        for seed in 0..6 {
            let r = scene(seed).render();
            let map = scribble_map(&r);
            assert_eq!(scribble_image(&r).unwrap().dimensions(), map.dimensions());
            let figure_near = thicken(&r.figure_mask, 1);
            let mut outlines_near = GrayImage::new(128, 128);
            for mask in &r.object_masks {
                let outline = mask_outline(mask);
                // Every outline pixel is a stroke, away from the figure too.
                for (x, y, p) in outline.enumerate_pixels() {
                    if p[0] > 0 {
                        assert!(white(&map, x, y), "seed {seed}: outline gap at {x},{y}");
                    }
                }
                // The inside of the object, 3 px in from its outline, stays black.
                let near = thicken(&outline, 2);
                let mut inside = 0;
                for (x, y, p) in mask.enumerate_pixels() {
                    if p[0] > 127 && near.get_pixel(x, y)[0] == 0 && !white(&figure_near, x, y) {
                        inside += 1;
                        assert!(!white(&map, x, y), "seed {seed}: stroke inside at {x},{y}");
                    }
                }
                assert!(inside > 50, "seed {seed}: {inside} inner pixels");
                for (x, y, p) in thicken(&outline, SCRIBBLE_THICKEN).enumerate_pixels() {
                    if p[0] > 0 {
                        outlines_near.put_pixel(x, y, Luma([255]));
                    }
                }
            }
            // Strokes elsewhere than the outlines (thickened) are the figure's.
            for (x, y, p) in map.enumerate_pixels() {
                if p[0] > 0 && !white(&outlines_near, x, y) {
                    assert!(
                        white(&figure_near, x, y),
                        "seed {seed}: stray stroke {x},{y}"
                    );
                }
            }
            // The figure: every limb but the neck has its middle drawn; the
            // head is a ring (its centre black, its top drawn).
            let k = |i: usize| r.keypoints[i].unwrap();
            for &(a, b) in LIMBS.iter().filter(|&&(a, b)| (a, b) != (1, 0)) {
                let m = ((k(a).0 + k(b).0) / 2.0, (k(a).1 + k(b).1) / 2.0);
                assert!(
                    white(&map, m.0 as u32, m.1 as u32),
                    "seed {seed}: limb {a}-{b}"
                );
            }
            let (c, radius) = head_circle(&r).unwrap();
            assert!(
                (3.0..8.0).contains(&radius),
                "seed {seed}: head radius {radius}"
            );
            assert!(
                !white(&map, c.0 as u32, c.1 as u32),
                "seed {seed}: head filled"
            );
            assert!(
                white(&map, c.0 as u32, (c.1 - radius) as u32),
                "seed {seed}: no head top"
            );
        }
    }

    #[test]
    fn layouts_label_the_masks_and_nothing_else() {
        for seed in 0..6 {
            let r = scene(seed).render();
            let map = layout_image(&r).unwrap();
            let mut counts = [0usize; 3];
            for (x, y, p) in map.enumerate_pixels() {
                let on_figure = r.figure_mask.get_pixel(x, y)[0] > 127;
                let on_object = r.object_masks.iter().any(|m| m.get_pixel(x, y)[0] > 127);
                let want = if on_figure {
                    counts[0] += 1;
                    LAYOUT_PERSON
                } else if on_object {
                    counts[1] += 1;
                    LAYOUT_OBJECT
                } else {
                    counts[2] += 1;
                    LAYOUT_BACKGROUND
                };
                assert_eq!(p.0, want, "seed {seed} at {x},{y}");
            }
            // Figure and objects do not overlap in a valid scene: every
            // object pixel carries the object label.
            let object_area: usize = r
                .object_masks
                .iter()
                .map(|m| m.pixels().filter(|p| p[0] > 127).count())
                .sum();
            assert_eq!(counts[1], object_area, "seed {seed}");
            assert!(counts.iter().all(|&n| n > 100), "seed {seed}: {counts:?}");
        }
        let labels = [LAYOUT_PERSON, LAYOUT_OBJECT, LAYOUT_BACKGROUND];
        for (i, a) in labels.iter().enumerate() {
            assert!(labels[i + 1..].iter().all(|b| a != b));
        }
    }

    /// Scribble and layout show shapes, not colours: recolouring an object
    /// leaves them unchanged, reshaping it changes them.
    #[test]
    fn scribble_and_layout_follow_shapes_not_colours() {
        let spec = scene(11);
        let o = &spec.objects[0];
        let colour = Colour::ALL.into_iter().find(|&c| c != o.colour).unwrap();
        let shape = Shape::ALL.into_iter().find(|&s| s != o.shape).unwrap();
        let recoloured = spec.with_object_colour(0, colour).unwrap().render();
        let reshaped = spec.with_object_shape(0, shape).unwrap().render();
        let r = spec.render();
        for kind in [ControlKind::Scribble, ControlKind::Layout] {
            let base = condition_image(kind, &r).unwrap();
            assert_eq!(
                base,
                condition_image(kind, &recoloured).unwrap(),
                "{kind:?}"
            );
            assert_ne!(base, condition_image(kind, &reshaped).unwrap(), "{kind:?}");
        }
    }

    #[test]
    fn every_kind_has_its_own_folder() {
        let folders: std::collections::BTreeSet<_> =
            ControlKind::ALL.iter().map(|k| k.folder()).collect();
        assert_eq!(folders.len(), 4);
        assert!(folders.contains("controlnet-scribble") && folders.contains("controlnet-layout"));
    }
}
