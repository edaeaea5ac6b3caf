//! Rasterising a scene: anti-aliased by analytic coverage, with masks and
//! keypoints.

use image::{GrayImage, Luma, Rgb, RgbImage};

use crate::figure::{FIGURE_RGB, NUM_KEYPOINTS};
use crate::math::{coverage, Vec2};
use crate::shape::REACH;
use crate::spec::{SceneSpec, FIGURE_MASK_DILATION};
use crate::IMAGE_SIZE;

/// A rendered scene with its ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The scene, `IMAGE_SIZE x IMAGE_SIZE` sRGB.
    pub image: RgbImage,
    /// One mask per object, in spec order: 255 on every pixel the object
    /// covers at all (anti-aliased edge included), 0 elsewhere.
    pub object_masks: Vec<GrayImage>,
    /// 255 within [`FIGURE_MASK_DILATION`] pixels of the drawn figure (limbs
    /// and head), 0 elsewhere.
    pub figure_mask: GrayImage,
    /// The figure's 18 keypoints in OpenPose order, pixel coordinates (x
    /// across, y down; pixel `(i, j)` covers `[i, i+1) x [j, j+1)`). All are
    /// present; the `Option` matches OpenPose's missing keypoints.
    pub keypoints: [Option<(f32, f32)>; NUM_KEYPOINTS],
}

impl Rendered {
    /// The keypoints normalised to `[0, 1]` (divided by the image side), as
    /// `optedit_cond::pose::Keypoint { x, y }` takes them.
    pub fn keypoints_normalised(&self) -> [Option<(f64, f64)>; NUM_KEYPOINTS] {
        let side = f64::from(IMAGE_SIZE);
        self.keypoints
            .map(|k| k.map(|(x, y)| (f64::from(x) / side, f64::from(y) / side)))
    }

    /// The keypoints as OpenPose's flat `pose_keypoints_2d`: `x, y, confidence`
    /// for each of the 18 keypoints, in pixels, confidence 1 (0, 0, 0 for a
    /// missing one). `optedit_cond::pose::BodyPose::from_flat` reads it with
    /// `Coordinates::Pixels { width: 128.0, height: 128.0 }`.
    pub fn openpose_keypoints_2d(&self) -> Vec<f64> {
        self.keypoints
            .iter()
            .flat_map(|k| match k {
                Some((x, y)) => [f64::from(*x), f64::from(*y), 1.0],
                None => [0.0; 3],
            })
            .collect()
    }
}

/// Pixel index range `lo..hi` covering `[a, b]`, clamped to the image.
fn span(a: f32, b: f32) -> std::ops::Range<usize> {
    let n = IMAGE_SIZE as f32;
    let lo = a.floor().max(0.0).min(n) as usize;
    let hi = (b.ceil() + 1.0).max(0.0).min(n) as usize;
    lo..hi.max(lo)
}

fn centre(x: usize, y: usize) -> Vec2 {
    (x as f32 + 0.5, y as f32 + 0.5)
}

fn blend(px: &mut [f32; 3], rgb: [u8; 3], a: f32) {
    for c in 0..3 {
        px[c] += (f32::from(rgb[c]) - px[c]) * a;
    }
}

/// Rounds a row-major `IMAGE_SIZE^2` float buffer to an 8-bit image.
fn quantise(buf: &[[f32; 3]]) -> RgbImage {
    let n = IMAGE_SIZE as usize;
    let mut image = RgbImage::new(IMAGE_SIZE, IMAGE_SIZE);
    for (i, px) in buf.iter().enumerate() {
        let q = px.map(|v| (v.clamp(0.0, 255.0) + 0.5) as u8);
        image.put_pixel((i % n) as u32, (i / n) as u32, Rgb(q));
    }
    image
}

impl SceneSpec {
    /// The scene's background alone, without objects or figure: exactly the
    /// pixels [`render`](Self::render) draws wherever no object or figure
    /// touches, so pasting it over a thing's mask removes the thing.
    pub fn render_background(&self) -> RgbImage {
        let n = IMAGE_SIZE as usize;
        let mut buf = vec![[0.0f32; 3]; n * n];
        self.background.fill(&mut buf);
        quantise(&buf)
    }

    /// Draws the scene: background, then objects in order, then the figure.
    /// Edges are anti-aliased with a one-pixel linear coverage ramp of the
    /// exact signed distance, so a pixel a shape does not touch keeps exactly
    /// the colour beneath. Never panics, whatever the spec (an invalid one
    /// may give overlapping masks; see [`validate`](Self::validate)).
    pub fn render(&self) -> Rendered {
        let n = IMAGE_SIZE as usize;
        let mut buf = vec![[0.0f32; 3]; n * n];
        self.background.fill(&mut buf);

        let mut object_masks = Vec::with_capacity(self.objects.len());
        for o in &self.objects {
            let outline = o.shape.outline(o.centre, o.size);
            let r = REACH * o.size + 0.5;
            let rgb = o.colour.rgb();
            let mut mask = GrayImage::new(IMAGE_SIZE, IMAGE_SIZE);
            for y in span(o.centre.1 - r, o.centre.1 + r) {
                for x in span(o.centre.0 - r, o.centre.0 + r) {
                    let a = coverage(outline.sd(centre(x, y)));
                    if a > 0.0 {
                        mask.put_pixel(x as u32, y as u32, Luma([255]));
                        blend(&mut buf[y * n + x], rgb, a);
                    }
                }
            }
            object_masks.push(mask);
        }

        let skeleton = self.figure.skeleton();
        let mut figure_mask = GrayImage::new(IMAGE_SIZE, IMAGE_SIZE);
        let (x0, y0, x1, y1) = skeleton.bounds();
        let d = FIGURE_MASK_DILATION;
        for y in span(y0 - d, y1 + d) {
            for x in span(x0 - d, x1 + d) {
                let sd = skeleton.sd(centre(x, y));
                if sd <= d {
                    figure_mask.put_pixel(x as u32, y as u32, Luma([255]));
                }
                let a = coverage(sd);
                if a > 0.0 {
                    blend(&mut buf[y * n + x], FIGURE_RGB, a);
                }
            }
        }

        Rendered {
            image: quantise(&buf),
            object_masks,
            figure_mask,
            keypoints: skeleton.keypoints.map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::Shape;

    /// The background render agrees with the scene outside every mask and
    /// differs inside the things' masks.
    #[test]
    fn background_is_the_scene_without_its_things() {
        for seed in 0..8 {
            let spec = SceneSpec::sample(seed);
            let r = spec.render();
            let bg = spec.render_background();
            let mut inside_differs = 0;
            for (x, y, px) in r.image.enumerate_pixels() {
                let covered = r.figure_mask.get_pixel(x, y)[0] > 0
                    || r.object_masks.iter().any(|m| m.get_pixel(x, y)[0] > 0);
                if covered {
                    inside_differs += usize::from(bg.get_pixel(x, y) != px);
                } else {
                    assert_eq!(bg.get_pixel(x, y), px, "seed {seed} at {x},{y}");
                }
            }
            assert!(inside_differs > 100, "seed {seed}: {inside_differs}");
        }
    }

    /// Each mask's pixel count is the shape's area grown by half its
    /// perimeter (the anti-aliased rim), within 8 %; for circles it is also
    /// pi r^2 within 10 %.
    #[test]
    fn mask_areas_match_the_geometry() {
        let mut checked = 0;
        for seed in 0..300 {
            let spec = SceneSpec::sample(seed);
            let r = spec.render();
            for (o, mask) in spec.objects.iter().zip(&r.object_masks) {
                let outline = o.shape.outline(o.centre, o.size);
                let count = mask.pixels().filter(|p| p.0[0] == 255).count() as f32;
                let expected = outline.area() + 0.5 * outline.perimeter();
                assert!(
                    (count - expected).abs() < 0.08 * expected,
                    "seed {seed} {:?} size {}: {count} px, expected {expected}",
                    o.shape,
                    o.size
                );
                if o.shape == Shape::Circle {
                    let disc = std::f32::consts::PI * (0.5 * o.size).powi(2);
                    assert!(
                        (count - disc).abs() < 0.10 * disc,
                        "seed {seed}: {count} vs {disc}"
                    );
                }
                checked += 1;
            }
        }
        assert!(checked > 300);
    }
}
