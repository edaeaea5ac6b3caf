//! The regions the judge reads: the judged box of an edit and the mask
//! operations behind it. A mask pixel is *inside* when its value is above
//! 127.
//!
//! The judge never sees the answer of an edit: the region it reads is the
//! bounding box around a thing's source *and* target masks
//! ([`judged_box`]), the same for every method, which says where to look
//! but not what shape or pose to expect.

use image::{GrayImage, Luma};

/// Pixels by which the judged box grows the bounding box of the thing's
/// source and target masks.
pub const JUDGED_BOX_MARGIN: u32 = 2;

/// The judged box of a thing: the bounding box of the union of `masks` (the
/// thing's source and target masks), grown by [`JUDGED_BOX_MARGIN`] and
/// clamped to the image. The same for every method of a case; it does not
/// encode the target's shape or pose beyond its extent together with the
/// source's. Empty when every mask is (or when there is none: then
/// [`IMAGE_SIZE`](optedit_world::IMAGE_SIZE) square).
pub fn judged_box(masks: &[&GrayImage]) -> GrayImage {
    let (w, h) = masks
        .first()
        .map(|m| m.dimensions())
        .unwrap_or((optedit_world::IMAGE_SIZE, optedit_world::IMAGE_SIZE));
    let Some((x0, y0, x1, y1)) = masks
        .iter()
        .filter_map(|m| extent(m))
        .reduce(|a, b| (a.0.min(b.0), a.1.min(b.1), a.2.max(b.2), a.3.max(b.3)))
    else {
        return GrayImage::new(w, h);
    };
    let m = JUDGED_BOX_MARGIN;
    let (x0, y0) = (x0.saturating_sub(m), y0.saturating_sub(m));
    let (x1, y1) = ((x1 + m).min(w - 1), (y1 + m).min(h - 1));
    GrayImage::from_fn(w, h, |x, y| {
        Luma([if (x0..=x1).contains(&x) && (y0..=y1).contains(&y) {
            255
        } else {
            0
        }])
    })
}

/// The extent `(x0, y0, x1, y1)` of a mask's inside pixels, inclusive
/// (`None` if it has none).
pub fn extent(region: &GrayImage) -> Option<(u32, u32, u32, u32)> {
    let mut e: Option<(u32, u32, u32, u32)> = None;
    for (x, y, p) in region.enumerate_pixels() {
        if p[0] > 127 {
            e = Some(match e {
                None => (x, y, x, y),
                Some((a, b, c, d)) => (a.min(x), b.min(y), c.max(x), d.max(y)),
            });
        }
    }
    e
}

/// Dilates a binary mask by `r` pixels (square structuring element).
pub fn dilate(mask: &GrayImage, r: u32) -> GrayImage {
    if r == 0 {
        return mask.clone();
    }
    let (w, h) = mask.dimensions();
    let r = r as i64;
    GrayImage::from_fn(w, h, |x, y| {
        let (x, y) = (x as i64, y as i64);
        for yy in (y - r).max(0)..=(y + r).min(h as i64 - 1) {
            for xx in (x - r).max(0)..=(x + r).min(w as i64 - 1) {
                if mask.get_pixel(xx as u32, yy as u32)[0] > 127 {
                    return image::Luma([255]);
                }
            }
        }
        image::Luma([0])
    })
}

/// The bounding box of a mask, filled (empty for an empty mask).
pub fn bounding_box(mask: &GrayImage) -> GrayImage {
    let (w, h) = mask.dimensions();
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for (x, y, p) in mask.enumerate_pixels() {
        if p[0] > 127 {
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
    }
    GrayImage::from_fn(w, h, |x, y| {
        image::Luma([if x >= x0 && x <= x1 && y >= y0 && y <= y1 {
            255
        } else {
            0
        }])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use optedit_world::{SceneSpec, Shape};

    fn count(m: &GrayImage) -> usize {
        m.pixels().filter(|p| p[0] > 127).count()
    }

    fn inside(m: &GrayImage, x: u32, y: u32) -> bool {
        m.get_pixel(x, y)[0] > 127
    }

    #[test]
    fn the_box_covers_both_masks_and_no_more_than_their_extent() {
        let spec = SceneSpec::sample(3);
        let r = spec.render();
        let other = Shape::ALL
            .into_iter()
            .find(|&s| s != spec.objects[0].shape)
            .unwrap();
        let t = spec.with_object_shape(0, other).unwrap().render();
        let (a, b) = (&r.object_masks[0], &t.object_masks[0]);
        let bx = judged_box(&[a, b]);
        for (x, y, p) in a.enumerate_pixels().chain(b.enumerate_pixels()) {
            if p[0] > 127 {
                assert!(inside(&bx, x, y));
            }
        }
        let (x0, y0, x1, y1) = extent(&bx).unwrap();
        assert_eq!(
            count(&bx) as u32,
            (x1 - x0 + 1) * (y1 - y0 + 1),
            "a filled box"
        );
        // Symmetric in source and target.
        assert_eq!(bx, judged_box(&[b, a]));
        // The bounding box of the union grown by the margin (square dilation).
        let union = GrayImage::from_fn(a.width(), a.height(), |x, y| {
            Luma([if inside(a, x, y) || inside(b, x, y) {
                255
            } else {
                0
            }])
        });
        let grown = dilate(&bounding_box(&union), JUDGED_BOX_MARGIN);
        assert_eq!(bx, grown);
        // A thing at the border is clamped to the image; no mask, no box.
        let corner = GrayImage::from_fn(128, 128, |x, y| {
            Luma([if x < 3 && y < 3 { 255 } else { 0 }])
        });
        assert_eq!(count(&judged_box(&[&corner])), 25);
        assert_eq!(count(&judged_box(&[&GrayImage::new(128, 128)])), 0);
        assert_eq!(count(&bounding_box(&GrayImage::new(8, 8))), 0);
        assert_eq!(extent(&GrayImage::new(8, 8)), None);
    }
}
