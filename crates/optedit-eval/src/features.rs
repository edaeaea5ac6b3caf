//! The judge (the attribute classifier of `optedit-judge`) and the reference
//! features of real renders behind the class-wise feature distance (the
//! CSFID idea of arXiv 2311.16882: a Fréchet distance between features of
//! edited regions and of real images of the same class, per class).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use image::{GrayImage, RgbImage};
use optedit_cond::image::rgb_batch_to_signed_tensor;
use optedit_judge::classifier::{masks_to_tensor, AttributeClassifier};
use optedit_judge::region::judged_box;
use optedit_world::{scene_seed, Colour, PoseClass, SceneSpec, Shape, Split};
use serde::{Deserialize, Serialize};

use crate::error::{io, EvalError, Result};
use crate::metrics::Moments;
use crate::scenes::Attribute;

/// Held-out scene indices of reference renders start here (cases use
/// indices below [`crate::generate::CASE_INDEX_LIMIT`]).
pub const REFERENCE_INDEX_BASE: u64 = 1 << 62;

/// Default number of reference renders per class.
pub const DEFAULT_REFERENCES_PER_CLASS: usize = 64;

/// Images per classifier batch.
const BATCH: usize = 32;

/// A class of the feature distance: an object's colour and shape, or the
/// figure's pose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum ClassKey {
    /// An object of this colour and shape.
    Object {
        /// Colour.
        colour: Colour,
        /// Shape.
        shape: Shape,
    },
    /// The figure in this pose.
    Pose(PoseClass),
}

impl ClassKey {
    /// Every class: 25 object classes, then 4 poses.
    pub fn all() -> Vec<ClassKey> {
        let objects = Colour::ALL.into_iter().flat_map(|colour| {
            Shape::ALL
                .into_iter()
                .map(move |shape| ClassKey::Object { colour, shape })
        });
        objects
            .chain(PoseClass::ALL.into_iter().map(ClassKey::Pose))
            .collect()
    }

    /// Whether it is a pose class.
    pub fn is_pose(&self) -> bool {
        matches!(self, ClassKey::Pose(_))
    }

    fn number(&self) -> u64 {
        match self {
            ClassKey::Object { colour, shape } => {
                (colour.index() * Shape::ALL.len() + shape.index()) as u64
            }
            ClassKey::Pose(p) => 100 + p.index() as u64,
        }
    }

    /// `per_class` real renders of the class with its region, a judged box
    /// as for edits (around the thing and a version of it in the next shape
    /// or pose, as an edit's box is around source and target): held-out
    /// scenes whose first object is given the class's colour and shape, or
    /// whose figure is put in the class's pose.
    pub fn reference_renders(&self, per_class: usize) -> Vec<(RgbImage, GrayImage)> {
        (0..per_class as u64)
            .map(|k| {
                let seed = scene_seed(
                    Split::HeldOut,
                    REFERENCE_INDEX_BASE + (self.number() << 24) + k,
                );
                let spec = SceneSpec::sample(seed);
                match *self {
                    ClassKey::Object { colour, shape } => {
                        let spec = spec
                            .with_object_colour(0, colour)
                            .and_then(|s| s.with_object_shape(0, shape))
                            .expect("a sampled scene has an object 0");
                        let next = Shape::ALL[(shape.index() + 1) % Shape::ALL.len()];
                        let alt = spec
                            .with_object_shape(0, next)
                            .expect("a sampled scene has an object 0")
                            .render();
                        let r = spec.render();
                        let region = judged_box(&[&r.object_masks[0], &alt.object_masks[0]]);
                        (r.image, region)
                    }
                    ClassKey::Pose(p) => {
                        let spec = spec.with_pose(p);
                        let next = PoseClass::ALL[(p.index() + 1) % PoseClass::ALL.len()];
                        let alt = spec.with_pose(next).render();
                        let r = spec.render();
                        let region = judged_box(&[&r.figure_mask, &alt.figure_mask]);
                        (r.image, region)
                    }
                }
            })
            .collect()
    }
}

impl PartialOrd for ClassKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Object classes (by colour, then shape), then poses, in index order.
impl Ord for ClassKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.number().cmp(&other.number())
    }
}

impl fmt::Display for ClassKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClassKey::Object { colour, shape } => write!(f, "{} {}", colour.word(), shape.word()),
            ClassKey::Pose(p) => write!(f, "figure {}", p.phrase()),
        }
    }
}

impl From<ClassKey> for String {
    fn from(k: ClassKey) -> String {
        k.to_string()
    }
}

impl TryFrom<String> for ClassKey {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        ClassKey::all()
            .into_iter()
            .find(|k| k.to_string() == s)
            .ok_or_else(|| format!("unknown class {s:?}"))
    }
}

/// What the judge says about one region. Each index is a class of the
/// world, or one past them for "nothing recognisable"
/// ([`NOTHING_SHAPE`](optedit_judge::classifier::NOTHING_SHAPE) and so on), which
/// never equals a target.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// Predicted shape class index (or nothing).
    pub shape: usize,
    /// Predicted colour class index (or nothing).
    pub colour: usize,
    /// Predicted pose class index (or nothing).
    pub pose: usize,
    /// The pooled features.
    pub features: Vec<f32>,
}

impl Judgement {
    /// The predicted class index of `attribute`.
    pub fn predicted(&self, attribute: Attribute) -> usize {
        match attribute {
            Attribute::Colour => self.colour,
            Attribute::Shape => self.shape,
            Attribute::Pose => self.pose,
        }
    }
}

/// The attribute classifier as a judge of images and regions.
#[derive(Debug)]
pub struct Judge<B: Backend> {
    model: AttributeClassifier<B>,
    device: B::Device,
}

fn values<B: Backend>(t: Tensor<B, 2>) -> Vec<Vec<f32>> {
    let [n, k] = t.dims();
    let v = t
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("f32 data");
    (0..n).map(|i| v[i * k..(i + 1) * k].to_vec()).collect()
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(0, |best, (i, &x)| if x > v[best] { i } else { best })
}

impl<B: Backend> Judge<B> {
    /// A judge from a classifier.
    pub fn new(model: AttributeClassifier<B>, device: &B::Device) -> Self {
        Self {
            model,
            device: device.clone(),
        }
    }

    /// Loads the classifier's weights (`classifier/model.safetensors`).
    pub fn load(path: &Path, device: &B::Device) -> Result<Self> {
        if !path.is_file() {
            return Err(EvalError::argument(
                "classifier",
                format!(
                    "{}: no such file (the demo pipeline keeps it at classifier/model.safetensors)",
                    path.display()
                ),
            ));
        }
        Ok(Self::new(AttributeClassifier::load(path, device)?, device))
    }

    /// Judges each image with its region (`images[i]` with `masks[i]`), in batches.
    ///
    /// # Panics
    /// If the lists differ in length or the images in size.
    pub fn judge(&self, images: &[&RgbImage], masks: &[&GrayImage]) -> Vec<Judgement> {
        assert_eq!(images.len(), masks.len(), "one mask per image");
        let mut out = Vec::with_capacity(images.len());
        for (imgs, ms) in images.chunks(BATCH).zip(masks.chunks(BATCH)) {
            let o = self.model.forward(
                rgb_batch_to_signed_tensor::<B, _>(imgs, &self.device),
                masks_to_tensor::<B, _>(ms, &self.device),
            );
            let (shape, colour, pose) = (values(o.shape), values(o.colour), values(o.pose));
            for (i, features) in values(o.features).into_iter().enumerate() {
                out.push(Judgement {
                    shape: argmax(&shape[i]),
                    colour: argmax(&colour[i]),
                    pose: argmax(&pose[i]),
                    features,
                });
            }
        }
        out
    }
}

/// Reference feature moments of real renders, per class, for one classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct References {
    /// Fingerprint of the classifier's weights file ([`fingerprint`]).
    pub classifier: String,
    /// Renders per class.
    pub per_class: usize,
    /// Moments by class.
    pub classes: BTreeMap<ClassKey, Moments>,
}

impl References {
    /// No classes yet.
    pub fn new(classifier: String, per_class: usize) -> Self {
        Self {
            classifier,
            per_class,
            classes: BTreeMap::new(),
        }
    }

    /// Computes the classes of `wanted` that are missing; `progress` gets
    /// `(classes done, classes to do)`.
    pub fn complete<B: Backend>(
        &mut self,
        judge: &Judge<B>,
        wanted: &[ClassKey],
        progress: &mut dyn FnMut(usize, usize),
    ) {
        let missing: Vec<ClassKey> = wanted
            .iter()
            .filter(|k| !self.classes.contains_key(k))
            .copied()
            .collect();
        for (i, class) in missing.iter().enumerate() {
            let renders = class.reference_renders(self.per_class);
            let images: Vec<&RgbImage> = renders.iter().map(|(i, _)| i).collect();
            let masks: Vec<&GrayImage> = renders.iter().map(|(_, m)| m).collect();
            let features: Vec<Vec<f32>> = judge
                .judge(&images, &masks)
                .into_iter()
                .map(|j| j.features)
                .collect();
            if let Some(m) = Moments::of(&features) {
                self.classes.insert(*class, m);
            }
            progress(i + 1, missing.len());
        }
    }

    /// Reads a cache written by [`write`](Self::write); `None` if it does not
    /// exist or is for another classifier or per-class count.
    pub fn read_matching(path: &Path, classifier: &str, per_class: usize) -> Result<Option<Self>> {
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let refs: References = serde_json::from_str(&text)
            .map_err(|e| EvalError::argument("references", format!("{}: {e}", path.display())))?;
        Ok((refs.classifier == classifier && refs.per_class == per_class).then_some(refs))
    }

    /// Writes the references as JSON (atomically).
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string(self).expect("references serialise");
        crate::output::write_atomic(path, text.as_bytes())
    }
}

/// A fingerprint of a file's bytes (length and 64-bit FNV-1a hash), to tell
/// whether cached references belong to a classifier.
pub fn fingerprint(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in &bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Ok(format!("{}-{h:016x}", bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_round_trip() {
        let all = ClassKey::all();
        assert_eq!(all.len(), 29);
        for k in all {
            let s: String = k.into();
            assert_eq!(ClassKey::try_from(s).unwrap(), k);
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(serde_json::from_str::<ClassKey>(&json).unwrap(), k);
        }
    }

    #[test]
    fn reference_renders_show_their_class() {
        let k = ClassKey::Object {
            colour: Colour::Yellow,
            shape: Shape::Star,
        };
        let renders = k.reference_renders(3);
        assert_eq!(renders.len(), 3);
        assert_ne!(renders[0].0, renders[1].0, "different scenes");
        let yellow = Colour::Yellow.rgb();
        for (image, mask) in &renders {
            let inside = image
                .enumerate_pixels()
                .filter(|(x, y, _)| mask.get_pixel(*x, *y)[0] > 127);
            assert!(inside.filter(|(_, _, p)| p.0 == yellow).count() > 50);
        }
        assert_eq!(argmax(&[0.1, 3.0, -1.0]), 1);
    }
}
