//! # optedit-world
//!
//! A small deterministic procedural world: the demo world of issue 7. Each
//! scene is a 128x128 RGB image of one to three coloured shapes and one
//! stick figure on a smooth, patterned background. It exists to train a
//! small latent-diffusion model in minutes and to evaluate edits against a
//! known ground truth, in the spirit of procedural shape datasets such as
//! dSprites and CLEVR (Johnson et al., arXiv 1612.06890).
//!
//! A [`SceneSpec`] fully describes a scene and is drawn from a seed by
//! [`SceneSpec::sample`], bit-identically on every platform (a ChaCha8 stream
//! and plain IEEE arithmetic only, no `libm`). From it come:
//!
//! - [`SceneSpec::render`]: the anti-aliased image, a mask per object, the
//!   figure's mask and its 18 OpenPose (COCO) body keypoints ([`Rendered`]);
//! - [`SceneSpec::caption`]: an English caption from a small regular grammar,
//!   parsed back by [`parse_caption`] (see [`caption`] for the grammar);
//! - edits that change one thing and keep the rest: [`SceneSpec::with_object_colour`],
//!   [`SceneSpec::with_object_shape`], [`SceneSpec::with_pose`]. Outside the
//!   edited object's mask (or the old and new figure masks) the rendered
//!   images are identical, so an edit's ground truth is exact.
//!
//! Images are deliberately smooth (no pixel noise, stripes of period >= 12
//! px with raised-cosine profiles, anti-aliased edges) so a small VAE can
//! reconstruct them well. Train and held-out scenes use disjoint seeds
//! ([`scene_seed`]).
//!
//! This crate does not depend on burn nor on `optedit-cond` (which does); the
//! keypoints come as plain coordinates ([`Rendered::keypoints_normalised`],
//! [`Rendered::openpose_keypoints_2d`]) that `optedit_cond::pose::BodyPose`
//! is built from.
//!
//! ```
//! use optedit_world::{parse_caption, Colour, PoseClass, SceneSpec, IMAGE_SIZE};
//!
//! let spec = SceneSpec::sample(7);
//! let scene = spec.render();
//! assert_eq!(scene.image.dimensions(), (IMAGE_SIZE, IMAGE_SIZE));
//! assert_eq!(scene.object_masks.len(), spec.objects.len());
//!
//! let caption = spec.caption();
//! assert_eq!(parse_caption(&caption)?.pose, spec.figure.pose);
//!
//! // Recolour the first object: only pixels inside its mask change.
//! let edited = spec.with_object_colour(0, Colour::Blue)?.render();
//! for (x, y, px) in scene.image.enumerate_pixels() {
//!     if scene.object_masks[0].get_pixel(x, y).0[0] == 0 {
//!         assert_eq!(edited.image.get_pixel(x, y), px);
//!     }
//! }
//! let waving = spec.with_pose(PoseClass::Waving);
//! assert_eq!(waving.figure.centre, spec.figure.centre);
//! # Ok::<(), optedit_world::WorldError>(())
//! ```

#![deny(missing_docs)]

pub mod background;
pub mod caption;
pub mod colour;
pub mod error;
pub mod figure;
mod math;
pub mod render;
pub mod shape;
pub mod spec;
pub mod split;

pub use background::{Background, Pattern, PatternKind, NUM_PATTERNS};
pub use caption::{parse_caption, parse_object_phrase, CaptionParts};
pub use colour::{BackgroundColour, Colour, NUM_BACKGROUND_COLOURS, NUM_COLOURS};
pub use error::{Result, WorldError};
pub use figure::{Figure, PoseClass, FIGURE_RGB, KEYPOINT_NAMES, LIMBS, NUM_KEYPOINTS, NUM_POSES};
pub use render::Rendered;
pub use shape::{Shape, NUM_SHAPES};
pub use spec::{Object, SampleOptions, SceneSpec, MAX_OBJECTS};
pub use split::{mix, scene_seed, Split};

/// Side of every scene image, in pixels.
pub const IMAGE_SIZE: u32 = 128;
