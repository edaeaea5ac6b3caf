//! What the evaluation judge (the attribute classifier) is trained and
//! tested on: a scene, a *judged box* and the labels it asks about.
//!
//! The judge never sees the answer of an edit: the region it reads is the
//! bounding box around a thing's source *and* target masks
//! ([`judged_box`], in `optedit-judge` with the classifier), the same for
//! every method, which says where to look but not what shape or pose to
//! expect. Training boxes are drawn the same
//! way, around the thing as rendered and an alternative version of it (a
//! random other shape, or pose), so nothing about the box tells which of
//! the two the image shows.
//!
//! Every head has one class more than the world
//! ([`NOTHING_SHAPE`],
//! [`NOTHING_COLOUR`],
//! [`NOTHING_POSE`]),
//! "nothing recognisable in the box". It is trained on the [`Garbage`]
//! kinds: the thing removed (background only), the region blanked with a flat
//! grey, blurred, the thing mostly cut away, and the box's tiles shuffled.
//! So an empty, blurred or broken result cannot score as a correct edit.

use image::{GrayImage, Luma, Rgb, RgbImage};
use optedit_judge::classifier::{NOTHING_COLOUR, NOTHING_POSE, NOTHING_SHAPE};
use optedit_judge::region::{dilate, extent, judged_box};
use optedit_world::{PoseClass, Rendered, SceneSpec, Shape, NUM_POSES, NUM_SHAPES};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Label meaning "not asked" in a head's targets.
pub const IGNORE: i64 = -100;

/// An image in which the judged box holds nothing recognisable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Garbage {
    /// The thing removed: the box shows the background (and whatever else
    /// reaches into it).
    Background,
    /// The thing's region (its mask, its mask and an alternative's, or the
    /// box) filled with a flat grey of 100-180.
    Blank,
    /// The box blurred with a Gaussian of sigma 3-6 px.
    Blurred,
    /// 50-80% of the thing cut away along a random line.
    Partial,
    /// The box cut into 3x3 or 4x4 tiles, shuffled.
    Deformed,
}

impl Garbage {
    /// Every kind.
    pub const ALL: [Garbage; 5] = [
        Garbage::Background,
        Garbage::Blank,
        Garbage::Blurred,
        Garbage::Partial,
        Garbage::Deformed,
    ];

    /// Its name.
    pub fn word(self) -> &'static str {
        match self {
            Garbage::Background => "background",
            Garbage::Blank => "blank",
            Garbage::Blurred => "blurred",
            Garbage::Partial => "partial",
            Garbage::Deformed => "deformed",
        }
    }
}

/// The thing a judged box is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thing {
    /// Object `i` of the scene (its shape and colour are asked).
    Object(usize),
    /// The figure (its pose is asked).
    Figure,
}

/// What an example shows in its box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// The thing as rendered.
    Thing,
    /// Garbage of this kind.
    Garbage(Garbage),
}

/// One example: an image, the region the judge reads and the labels of the
/// heads it asks ([`IGNORE`] for the others).
#[derive(Debug, Clone)]
pub struct Example {
    /// The image.
    pub image: RgbImage,
    /// The region (the judged box, or the whole image).
    pub mask: GrayImage,
    /// Shape label.
    pub shape: i64,
    /// Colour label.
    pub colour: i64,
    /// Pose label.
    pub pose: i64,
    /// What the box shows.
    pub content: Content,
}

fn thing_mask(r: &Rendered, thing: Thing) -> &GrayImage {
    match thing {
        Thing::Object(i) => &r.object_masks[i],
        Thing::Figure => &r.figure_mask,
    }
}

/// The thing's mask in a version of the scene where it is a random other
/// shape or pose (possibly the same): the partner of a judged box.
fn alternative_mask(spec: &SceneSpec, thing: Thing, rng: &mut ChaCha8Rng) -> GrayImage {
    match thing {
        Thing::Object(i) => {
            let s = Shape::ALL[rng.random_range(0..NUM_SHAPES)];
            let r = spec
                .with_object_shape(i, s)
                .expect("the object exists")
                .render();
            r.object_masks[i].clone()
        }
        Thing::Figure => {
            let p = PoseClass::ALL[rng.random_range(0..NUM_POSES)];
            spec.with_pose(p).render().figure_mask
        }
    }
}

fn inside(m: &GrayImage, x: u32, y: u32) -> bool {
    m.get_pixel(x, y)[0] > 127
}

/// `image` with `patch`'s pixels wherever `region` is inside.
fn paste(image: &RgbImage, patch: &RgbImage, region: &GrayImage) -> RgbImage {
    RgbImage::from_fn(image.width(), image.height(), |x, y| {
        if inside(region, x, y) {
            *patch.get_pixel(x, y)
        } else {
            *image.get_pixel(x, y)
        }
    })
}

/// The box cut into `k x k` tiles and shuffled (never the identity).
fn shuffle_tiles(image: &RgbImage, region: &GrayImage, rng: &mut ChaCha8Rng) -> RgbImage {
    let Some((x0, y0, x1, y1)) = extent(region) else {
        return image.clone();
    };
    let k = rng.random_range(3..=4u32);
    let (tw, th) = ((x1 - x0 + 1) / k, (y1 - y0 + 1) / k);
    if tw == 0 || th == 0 {
        return image.clone();
    }
    let n = (k * k) as usize;
    let mut order: Vec<usize> = (0..n).collect();
    while order.iter().enumerate().all(|(i, &j)| i == j) {
        order.shuffle(rng);
    }
    let mut out = image.clone();
    for (dst, &src) in order.iter().enumerate() {
        let (dx, dy) = (x0 + (dst as u32 % k) * tw, y0 + (dst as u32 / k) * th);
        let (sx, sy) = (x0 + (src as u32 % k) * tw, y0 + (src as u32 / k) * th);
        for v in 0..th {
            for u in 0..tw {
                out.put_pixel(dx + u, dy + v, *image.get_pixel(sx + u, sy + v));
            }
        }
    }
    out
}

/// The pixels of `mask` on the near side of a random line, chosen so that
/// 50-80% of them are cut.
fn cut(mask: &GrayImage, rng: &mut ChaCha8Rng) -> GrayImage {
    let angle: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let (c, s) = (angle.cos(), angle.sin());
    let mut proj: Vec<f32> = mask
        .enumerate_pixels()
        .filter(|(_, _, p)| p[0] > 127)
        .map(|(x, y, _)| x as f32 * c + y as f32 * s)
        .collect();
    if proj.is_empty() {
        return mask.clone();
    }
    proj.sort_by(f32::total_cmp);
    let q: f64 = rng.random_range(0.5..0.8);
    let t = proj[((proj.len() - 1) as f64 * q) as usize];
    GrayImage::from_fn(mask.width(), mask.height(), |x, y| {
        Luma([if inside(mask, x, y) && x as f32 * c + y as f32 * s <= t {
            255
        } else {
            0
        }])
    })
}

/// `image` with its box (or a region of it) turned into garbage of `kind`.
fn make_garbage(
    kind: Garbage,
    spec: &SceneSpec,
    r: &Rendered,
    thing: Thing,
    alt: &GrayImage,
    region: &GrayImage,
    rng: &mut ChaCha8Rng,
) -> RgbImage {
    let mask = thing_mask(r, thing);
    match kind {
        Garbage::Background => paste(&r.image, &spec.render_background(), mask),
        Garbage::Blank => {
            let g = rng.random_range(100..=180u8);
            let flat = RgbImage::from_pixel(r.image.width(), r.image.height(), Rgb([g, g, g]));
            let (w, h) = mask.dimensions();
            let fill = match rng.random_range(0..3) {
                0 => GrayImage::from_fn(w, h, |x, y| {
                    Luma([if inside(mask, x, y) || inside(alt, x, y) {
                        255
                    } else {
                        0
                    }])
                }),
                1 => dilate(mask, rng.random_range(0..5)),
                _ => region.clone(),
            };
            paste(&r.image, &flat, &fill)
        }
        Garbage::Blurred => {
            let sigma: f32 = rng.random_range(3.0..6.0);
            paste(&r.image, &image::imageops::blur(&r.image, sigma), region)
        }
        Garbage::Partial => paste(&r.image, &spec.render_background(), &cut(mask, rng)),
        Garbage::Deformed => shuffle_tiles(&r.image, region, rng),
    }
}

/// Mild changes every example may get, garbage or not, so that neither the
/// softness of decoded images nor noise tells the classes apart: a blur of
/// sigma 0.3-1.5 px (40%) and Gaussian-like pixel noise of 1-6 levels (30%).
fn augment(image: RgbImage, rng: &mut ChaCha8Rng) -> RgbImage {
    let mut image = image;
    if rng.random_bool(0.4) {
        image = image::imageops::blur(&image, rng.random_range(0.3..1.5));
    }
    if rng.random_bool(0.3) {
        let sd: f32 = rng.random_range(1.0..6.0);
        for p in image.pixels_mut() {
            for c in p.0.iter_mut() {
                // Sum of three uniforms: close enough to a Gaussian here.
                let u: f32 = (0..3).map(|_| rng.random_range(-1.0f32..1.0)).sum::<f32>();
                *c = (f32::from(*c) + u * sd).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    image
}

/// The example of `thing` in `spec` showing `content`, with its judged box
/// drawn around the thing and a random alternative version of it.
pub fn example_of(
    spec: &SceneSpec,
    thing: Thing,
    content: Content,
    rng: &mut ChaCha8Rng,
) -> Example {
    let r = spec.render();
    let alt = alternative_mask(spec, thing, rng);
    let region = judged_box(&[thing_mask(&r, thing), &alt]);
    let image = match content {
        Content::Thing => r.image.clone(),
        Content::Garbage(kind) => make_garbage(kind, spec, &r, thing, &alt, &region, rng),
    };
    let garbage = matches!(content, Content::Garbage(_));
    let (shape, colour, pose) = match thing {
        Thing::Object(i) => {
            let o = &spec.objects[i];
            if garbage {
                (NOTHING_SHAPE as i64, NOTHING_COLOUR as i64, IGNORE)
            } else {
                (o.shape.index() as i64, o.colour.index() as i64, IGNORE)
            }
        }
        Thing::Figure => {
            let p = if garbage {
                NOTHING_POSE as i64
            } else {
                spec.figure.pose.index() as i64
            };
            (IGNORE, IGNORE, p)
        }
    };
    Example {
        image: augment(image, rng),
        mask: region,
        shape,
        colour,
        pose,
        content,
    }
}

/// A whole one-object scene with the whole image as its region (how
/// `eval quality` judges plain samples): every head asked.
pub fn whole_scene_example(spec: &SceneSpec, rng: &mut ChaCha8Rng) -> Example {
    let r = spec.render();
    let o = &spec.objects[0];
    Example {
        mask: GrayImage::from_pixel(r.image.width(), r.image.height(), Luma([255])),
        image: augment(r.image, rng),
        shape: o.shape.index() as i64,
        colour: o.colour.index() as i64,
        pose: spec.figure.pose.index() as i64,
        content: Content::Thing,
    }
}

/// Share of one-object scenes drawn as whole-scene examples (about a third
/// of scenes have one object, so about 12% of all examples).
pub const WHOLE_SCENE_SHARE: f64 = 0.35;

/// A random example of `spec`: a whole one-object scene
/// ([`WHOLE_SCENE_SHARE`]), else an object (60%) or the figure (40%), shown
/// as rendered (55%) or as one of the garbage kinds (45%, evenly).
pub fn random_example(spec: &SceneSpec, rng: &mut ChaCha8Rng) -> Example {
    if spec.objects.len() == 1 && rng.random_bool(WHOLE_SCENE_SHARE) {
        return whole_scene_example(spec, rng);
    }
    let thing = if rng.random_bool(0.6) {
        Thing::Object(rng.random_range(0..spec.objects.len()))
    } else {
        Thing::Figure
    };
    let content = if rng.random_bool(0.55) {
        Content::Thing
    } else {
        Content::Garbage(Garbage::ALL[rng.random_range(0..Garbage::ALL.len())])
    };
    example_of(spec, thing, content, rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn count(m: &GrayImage) -> usize {
        m.pixels().filter(|p| p[0] > 127).count()
    }

    #[test]
    fn garbage_changes_the_box_and_keeps_the_rest() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let spec = SceneSpec::sample(12);
        let r = spec.render();
        for kind in Garbage::ALL {
            for thing in [Thing::Object(0), Thing::Figure] {
                let alt = thing_mask(&r, thing).clone();
                let region = judged_box(&[&alt]);
                let g = make_garbage(kind, &spec, &r, thing, &alt, &region, &mut rng);
                let mut changed = 0;
                for (x, y, p) in g.enumerate_pixels() {
                    if inside(&region, x, y) {
                        changed += usize::from(p != r.image.get_pixel(x, y));
                    } else if kind != Garbage::Blank {
                        assert_eq!(p, r.image.get_pixel(x, y), "{kind:?} outside the box");
                    }
                }
                let mask = count(thing_mask(&r, thing));
                assert!(
                    changed * 4 > mask,
                    "{kind:?} {thing:?}: {changed} of {mask}"
                );
            }
        }
    }

    #[test]
    fn the_cut_removes_half_to_four_fifths() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let r = SceneSpec::sample(5).render();
        let m = &r.object_masks[0];
        for _ in 0..20 {
            let c = cut(m, &mut rng);
            let share = count(&c) as f64 / count(m) as f64;
            assert!((0.45..=0.85).contains(&share), "{share}");
        }
    }

    #[test]
    fn labels_follow_the_content() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let spec = SceneSpec::sample(8);
        let e = example_of(&spec, Thing::Object(0), Content::Thing, &mut rng);
        assert_eq!(e.shape, spec.objects[0].shape.index() as i64);
        assert_eq!(e.pose, IGNORE);
        let e = example_of(
            &spec,
            Thing::Figure,
            Content::Garbage(Garbage::Partial),
            &mut rng,
        );
        assert_eq!((e.shape, e.pose), (IGNORE, NOTHING_POSE as i64));
    }
}
