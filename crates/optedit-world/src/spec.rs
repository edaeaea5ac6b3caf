//! Scene descriptions: sampling from a seed, checking and editing.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::background::{Background, Pattern, MIN_STRIPE_PERIOD};
use crate::colour::{BackgroundColour, Colour};
use crate::error::{Result, WorldError};
use crate::figure::{unit_envelope, Figure, PoseClass, Skeleton};
use crate::math::{self, below, uniform};
use crate::shape::{Shape, REACH};
use crate::IMAGE_SIZE;

/// Most objects in a scene.
pub const MAX_OBJECTS: usize = 3;

/// Range of object sizes drawn by [`SceneSpec::sample`], pixels.
pub const OBJECT_SIZES: (f32, f32) = (26.0, 44.0);

/// Range of figure heights drawn by [`SceneSpec::sample`], pixels.
pub const FIGURE_HEIGHTS: (f32, f32) = (50.0, 70.0);

/// How far the figure mask extends past the drawn figure, pixels.
pub const FIGURE_MASK_DILATION: f32 = 2.0;

/// Smallest gap in pixels between two masks (objects and figure) of a sampled scene.
pub const MASK_GAP: f32 = 2.0;

/// Placement tries per object before it is dropped.
const PLACEMENT_TRIES: usize = 64;

/// Whole-scene attempts of [`SceneSpec::sample_with`] to reach a forced object count.
const SCENE_ATTEMPTS: usize = 256;

/// One coloured shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Object {
    /// Its shape.
    pub shape: Shape,
    /// Its colour.
    pub colour: Colour,
    /// Pixel position of its centre (the centroid for a triangle).
    pub centre: (f32, f32),
    /// Nominal size in pixels: the diameter of a circle (see [`Shape`] for the others).
    pub size: f32,
}

impl Object {
    /// The caption phrase, "a red circle".
    pub fn phrase(&self) -> String {
        format!("a {} {}", self.colour.word(), self.shape.word())
    }

    /// Exact area of the shape in square pixels (its mask is about half a
    /// perimeter larger: it holds every pixel the anti-aliased edge touches).
    pub fn area(&self) -> f32 {
        self.shape.outline(self.centre, self.size).area()
    }

    /// How far from the centre the object's mask can reach whatever its shape.
    fn reach(&self) -> f32 {
        REACH * self.size + 0.5
    }
}

/// Options of [`SceneSpec::sample_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SampleOptions {
    /// Exactly this many objects (`1..=MAX_OBJECTS`); `None` draws 1 to 3 as
    /// [`SceneSpec::sample`] does.
    pub objects: Option<usize>,
}

/// Everything a scene is rendered from. Rendering, captions and masks are
/// pure functions of it.
///
/// A sampled scene holds 1 to [`MAX_OBJECTS`] objects of pairwise different
/// colours, and one figure. Every object is placed clear of the figure drawn
/// in *any* pose class and with room for any shape of its size, so
/// [`with_pose`](Self::with_pose) and [`with_object_shape`](Self::with_object_shape)
/// never make masks overlap or leave the image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneSpec {
    /// The background.
    pub background: Background,
    /// The objects, in drawing order (not left to right; see
    /// [`left_to_right`](Self::left_to_right)).
    pub objects: Vec<Object>,
    /// The figure.
    pub figure: Figure,
}

fn pick<T: Copy, const N: usize>(rng: &mut impl RngCore, all: [T; N]) -> T {
    all[below(rng, N as u32) as usize]
}

fn skeletons(figure: &Figure) -> Vec<Skeleton> {
    PoseClass::ALL
        .into_iter()
        .map(|p| figure.skeleton_as(p))
        .collect()
}

fn clear_of_figure(skeletons: &[Skeleton], centre: (f32, f32), reach: f32) -> bool {
    let need = reach + FIGURE_MASK_DILATION + MASK_GAP;
    skeletons.iter().all(|s| s.sd(centre) >= need)
}

fn clear_of_objects(objects: &[Object], centre: (f32, f32), reach: f32) -> bool {
    objects
        .iter()
        .all(|o| math::point_distance(o.centre, centre) >= o.reach() + reach + MASK_GAP)
}

impl SceneSpec {
    /// The scene of `seed`: identical on every platform (only integer and
    /// plain IEEE arithmetic on a ChaCha8 stream). The object count is drawn
    /// from 1 to 3; an object that finds no room in a bounded number of
    /// tries is dropped (about 35 % of scenes have 1 object, 49 % 2, 16 % 3),
    /// and a draw left with none is redrawn from the same stream.
    pub fn sample(seed: u64) -> SceneSpec {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let wanted = 1 + below(&mut rng, MAX_OBJECTS as u32) as usize;
        // Not even one object fits in about 1 draw in 700 (a large figure and
        // a large first object); such a draw is redrawn from the same stream.
        let mut spec = draw(&mut rng, wanted);
        for _ in 1..SCENE_ATTEMPTS {
            if !spec.objects.is_empty() {
                break;
            }
            spec = draw(&mut rng, wanted);
        }
        spec
    }

    /// As [`sample`](Self::sample), with options. With `objects: Some(n)` the
    /// scene is redrawn (from the same seeded stream) until `n` objects fit,
    /// so it generally differs from `sample(seed)`; it fails only if that
    /// takes too many attempts.
    pub fn sample_with(seed: u64, options: &SampleOptions) -> Result<SceneSpec> {
        let Some(n) = options.objects else {
            return Ok(Self::sample(seed));
        };
        if !(1..=MAX_OBJECTS).contains(&n) {
            return Err(WorldError::ObjectCount {
                count: n,
                max: MAX_OBJECTS,
            });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..SCENE_ATTEMPTS {
            let spec = draw(&mut rng, n);
            if spec.objects.len() == n {
                return Ok(spec);
            }
        }
        Err(WorldError::Placement {
            seed,
            requested: n,
            attempts: SCENE_ATTEMPTS,
        })
    }

    /// Object indices ordered left to right by centre (ties by index): the
    /// order captions list them in.
    pub fn left_to_right(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.objects.len()).collect();
        order.sort_by(|&a, &b| {
            self.objects[a]
                .centre
                .0
                .total_cmp(&self.objects[b].centre.0)
                .then(a.cmp(&b))
        });
        order
    }

    /// The object at `index`.
    pub fn object(&self, index: usize) -> Result<&Object> {
        self.objects.get(index).ok_or(WorldError::ObjectIndex {
            index,
            count: self.objects.len(),
        })
    }

    /// The caption phrase of object `index` ("a red circle").
    pub fn object_phrase(&self, index: usize) -> Result<String> {
        Ok(self.object(index)?.phrase())
    }

    /// The same scene with object `index` recoloured.
    pub fn with_object_colour(&self, index: usize, colour: Colour) -> Result<SceneSpec> {
        self.object(index)?;
        let mut spec = self.clone();
        spec.objects[index].colour = colour;
        Ok(spec)
    }

    /// The same scene with object `index` reshaped (same centre and size).
    pub fn with_object_shape(&self, index: usize, shape: Shape) -> Result<SceneSpec> {
        self.object(index)?;
        let mut spec = self.clone();
        spec.objects[index].shape = shape;
        Ok(spec)
    }

    /// The same scene with the figure in another pose: same position, height
    /// and jitter seed (so the same per-keypoint offsets).
    pub fn with_pose(&self, pose: PoseClass) -> SceneSpec {
        let mut spec = self.clone();
        spec.figure.pose = pose;
        spec
    }

    /// Checks the invariants of a sampled scene: 1 to [`MAX_OBJECTS`] objects,
    /// finite positive sizes, objects and figure (in every pose) inside the
    /// image, masks apart by [`MASK_GAP`]. Scenes read from elsewhere should
    /// pass it before being rendered (rendering never panics, but masks of
    /// an invalid scene may overlap).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(WorldError::InvalidSpec(m));
        let n = self.objects.len();
        if !(1..=MAX_OBJECTS).contains(&n) {
            return bad(format!("{n} objects, expected 1..={MAX_OBJECTS}"));
        }
        let side = IMAGE_SIZE as f32;
        let f = &self.figure;
        if !(f.height.is_finite()
            && f.height > 0.0
            && f.centre.0.is_finite()
            && f.centre.1.is_finite())
        {
            return bad(format!("figure height {} at {:?}", f.height, f.centre));
        }
        let (x0, y0, x1, y1) = f.envelope();
        let d = FIGURE_MASK_DILATION;
        if x0 - d < 0.0 || y0 - d < 0.0 || x1 + d > side || y1 + d > side {
            return bad(format!(
                "figure envelope {:?} leaves the image",
                (x0, y0, x1, y1)
            ));
        }
        match self.background.pattern {
            Pattern::Stripes { angle, period } if !(angle.is_finite() && period >= 1.0) => {
                return bad(format!("stripes angle {angle} period {period}"))
            }
            Pattern::Gradient { angle } if !angle.is_finite() => {
                return bad(format!("gradient angle {angle}"))
            }
            _ => {}
        }
        let skel = skeletons(f);
        for (i, o) in self.objects.iter().enumerate() {
            let (cx, cy) = o.centre;
            if !(o.size.is_finite() && o.size > 0.0 && cx.is_finite() && cy.is_finite()) {
                return bad(format!("object {i}: size {} at {:?}", o.size, o.centre));
            }
            let r = o.reach();
            if cx - r < 0.0 || cy - r < 0.0 || cx + r > side || cy + r > side {
                return bad(format!("object {i} leaves the image"));
            }
            if !clear_of_figure(&skel, o.centre, r) {
                return bad(format!("object {i} is too close to the figure"));
            }
            if !clear_of_objects(&self.objects[..i], o.centre, r) {
                return bad(format!("object {i} is too close to another object"));
            }
        }
        Ok(())
    }

    /// The scene as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a SceneSpec always serialises")
    }

    /// A scene from JSON, [validated](Self::validate).
    pub fn from_json(json: &str) -> Result<SceneSpec> {
        let spec: SceneSpec = serde_json::from_str(json)?;
        spec.validate()?;
        Ok(spec)
    }
}

/// One whole-scene draw with up to `wanted` objects.
fn draw(rng: &mut ChaCha8Rng, wanted: usize) -> SceneSpec {
    let side = IMAGE_SIZE as f32;
    let colour = pick(rng, BackgroundColour::ALL);
    let pattern = match below(rng, 3) {
        0 => Pattern::Stripes {
            angle: uniform(rng, 0.0, 180.0),
            period: uniform(rng, MIN_STRIPE_PERIOD, 24.0),
        },
        1 => Pattern::Gradient {
            angle: uniform(rng, 0.0, 360.0),
        },
        _ => Pattern::Noise {
            grid_seed: rng.next_u64(),
        },
    };
    let height = uniform(rng, FIGURE_HEIGHTS.0, FIGURE_HEIGHTS.1);
    let pose = pick(rng, PoseClass::ALL);
    let jitter_seed = rng.next_u64();
    let (ex0, ey0, ex1, ey1) = unit_envelope(FIGURE_HEIGHTS.0);
    let m = FIGURE_MASK_DILATION + 1.0;
    let cx = uniform(rng, m - ex0 * height, side - m - ex1 * height);
    let cy = uniform(rng, m - ey0 * height, side - m - ey1 * height);
    let figure = Figure {
        pose,
        centre: (cx, cy),
        height,
        jitter_seed,
    };
    let skel = skeletons(&figure);

    let mut palette = Colour::ALL.to_vec();
    let mut objects: Vec<Object> = Vec::with_capacity(wanted);
    for _ in 0..wanted {
        let colour = palette.remove(below(rng, palette.len() as u32) as usize);
        let shape = pick(rng, Shape::ALL);
        for _ in 0..PLACEMENT_TRIES {
            let size = uniform(rng, OBJECT_SIZES.0, OBJECT_SIZES.1);
            let r = REACH * size + 0.5;
            let centre = (
                uniform(rng, r + 1.0, side - r - 1.0),
                uniform(rng, r + 1.0, side - r - 1.0),
            );
            if clear_of_figure(&skel, centre, r) && clear_of_objects(&objects, centre, r) {
                objects.push(Object {
                    shape,
                    colour,
                    centre,
                    size,
                });
                break;
            }
        }
    }
    SceneSpec {
        background: Background { colour, pattern },
        objects,
        figure,
    }
}
