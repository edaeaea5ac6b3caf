//! Stage 5: the evaluation classifier, the judge of edits. A small CNN
//! reads an image and a region mask (a fourth input channel) and names the
//! shape and colour of the object in the region and the pose class of the
//! figure, or says that the region holds nothing recognisable (one extra
//! class per head). It judges edits and plain samples (the whole image, for
//! scenes with one object), and its pooled features are the space of the
//! class-wise feature distance (the CSFID idea of arXiv 2311.16882,
//! section 5).
//!
//! The region of an edit is the box around the thing's source and target
//! masks (`judge_examples::judged_box`), never the target's outline, so the
//! judge is not shown the answer; see [`super::judge_examples`] for the
//! training examples, the "nothing" outcome and the garbage it learns from.
//! Features are averaged over the region (mask-weighted pooling).

use std::path::Path;

use burn::module::{AutodiffModule, Module};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::AvgPool2dConfig;
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::optim::AdamWConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use burn_store::{ModuleStore, SafetensorsStore};
use image::GrayImage;
use optedit_models::blocks::norm::group_norm_silu;
use optedit_models::kernels::conv2d;
use optedit_world::SceneSpec;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::judge_examples::{
    example_of, random_example, whole_scene_example, Content, Example, Garbage, Thing,
    COLOUR_CLASSES, IGNORE, NOTHING_COLOUR, NOTHING_POSE, NOTHING_SHAPE, POSE_CLASSES,
    SHAPE_CLASSES, WHOLE_SCENE_SHARE,
};
use super::{load_checkpoint, Run, StageOptions, StepLoss};
use crate::data::{images_to_tensor, train_scene_seed};
use crate::error::{Result, TrainError};

const STAGE: u64 = 6;
/// Checkpoint folder name.
const NAME: &str = "classifier";
/// Width of the pooled feature vector.
pub const FEATURES: usize = 128;

/// One conv + norm + SiLU layer.
#[derive(Module, Debug)]
pub struct ConvBlock<B: Backend> {
    conv: Conv2d<B>,
    norm: GroupNorm<B>,
}

impl<B: Backend> ConvBlock<B> {
    fn new(cin: usize, cout: usize, stride: usize, device: &B::Device) -> Self {
        Self {
            conv: Conv2dConfig::new([cin, cout], [3, 3])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
            norm: GroupNormConfig::new(8, cout).init(device),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        group_norm_silu(&self.norm, conv2d(&self.conv, x))
    }
}

/// The attribute classifier.
#[derive(Module, Debug)]
pub struct AttributeClassifier<B: Backend> {
    blocks: Vec<ConvBlock<B>>,
    shape: Linear<B>,
    colour: Linear<B>,
    pose: Linear<B>,
}

/// Logits of the three heads and the pooled features. Each head's last
/// class is "nothing recognisable" (`judge_examples::NOTHING_*`).
#[derive(Debug, Clone)]
pub struct ClassifierOutput<B: Backend> {
    /// `[n, shapes + 1]`.
    pub shape: Tensor<B, 2>,
    /// `[n, colours + 1]`.
    pub colour: Tensor<B, 2>,
    /// `[n, poses + 1]`.
    pub pose: Tensor<B, 2>,
    /// `[n, FEATURES]`.
    pub features: Tensor<B, 2>,
}

impl<B: Backend> AttributeClassifier<B> {
    /// A fresh classifier.
    pub fn new(device: &B::Device) -> Self {
        let widths = [
            (4, 32, 1),
            (32, 64, 2),
            (64, 64, 1),
            (64, 128, 2),
            (128, 128, 1),
            (128, FEATURES, 2),
        ];
        Self {
            blocks: widths
                .iter()
                .map(|&(i, o, s)| ConvBlock::new(i, o, s, device))
                .collect(),
            shape: LinearConfig::new(FEATURES, SHAPE_CLASSES).init(device),
            colour: LinearConfig::new(FEATURES, COLOUR_CLASSES).init(device),
            pose: LinearConfig::new(FEATURES, POSE_CLASSES).init(device),
        }
    }

    /// `image` `[n, 3, 128, 128]` in `[-1, 1]`, `mask` `[n, 1, 128, 128]` in `[0, 1]`.
    pub fn forward(&self, image: Tensor<B, 4>, mask: Tensor<B, 4>) -> ClassifierOutput<B> {
        let x = Tensor::cat(vec![image, mask.clone().mul_scalar(2.0).sub_scalar(1.0)], 1);
        let mut x = AvgPool2dConfig::new([2, 2])
            .with_strides([2, 2])
            .init()
            .forward(x);
        for b in &self.blocks {
            x = b.forward(x);
        }
        let [n, c, h, w] = x.dims();
        // Mask-weighted average pooling: the features describe the region.
        let [_, _, mh, mw] = mask.dims();
        let (fh, fw) = (mh / h, mw / w);
        let m = AvgPool2dConfig::new([fh, fw])
            .with_strides([fh, fw])
            .init()
            .forward(mask);
        let weight = m.clone().sum_dim(3).sum_dim(2).add_scalar(1e-3);
        let features = (x * m).sum_dim(3).sum_dim(2).div(weight).reshape([n, c]);
        ClassifierOutput {
            shape: self.shape.forward(features.clone()),
            colour: self.colour.forward(features.clone()),
            pose: self.pose.forward(features.clone()),
            features,
        }
    }

    /// Writes the weights to `path` (safetensors, burn names).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut store = SafetensorsStore::from_file(path).overwrite(true);
        store
            .collect_from(self)
            .map_err(|e| TrainError::Checkpoint {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
    }

    /// Reads weights written by [`save`](Self::save), strictly.
    pub fn load(path: &Path, device: &B::Device) -> Result<Self> {
        let mut model = Self::new(device);
        let mut store = SafetensorsStore::from_file(path);
        let fail = |message: String| TrainError::Checkpoint {
            path: path.to_path_buf(),
            message,
        };
        let result = store
            .apply_to::<B, _>(&mut model)
            .map_err(|e| fail(e.to_string()))?;
        if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
            return Err(fail(format!(
                "does not match the classifier: {} errors, missing {:?}, unused {:?}",
                result.errors.len(),
                result.missing,
                result.unused
            )));
        }
        Ok(model)
    }
}

/// A region mask as a `[n, 1, h, w]` tensor in `[0, 1]`.
pub fn masks_to_tensor<B: Backend>(masks: &[GrayImage], device: &B::Device) -> Tensor<B, 4> {
    let (w, h) = masks[0].dimensions();
    let data: Vec<f32> = masks
        .iter()
        .flat_map(|m| m.as_raw().iter().map(|&v| v as f32 / 255.0))
        .collect();
    Tensor::from_data(
        TensorData::new(data, [masks.len(), 1, h as usize, w as usize]),
        device,
    )
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

/// The bounding box of a mask, filled.
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

/// The classifier's logits for a batch of examples.
fn forward_examples<B: Backend>(
    model: &AttributeClassifier<B>,
    ex: &[Example],
    device: &B::Device,
) -> ClassifierOutput<B> {
    let images: Vec<_> = ex.iter().map(|e| e.image.clone()).collect();
    let masks: Vec<_> = ex.iter().map(|e| e.mask.clone()).collect();
    model.forward(
        images_to_tensor::<B>(&images, device),
        masks_to_tensor::<B>(&masks, device),
    )
}

fn example(rng: &mut rand_chacha::ChaCha8Rng) -> Example {
    random_example(&SceneSpec::sample(train_scene_seed(rng)), rng)
}

fn labels<B: Backend>(v: Vec<i64>, device: &B::Device) -> Tensor<B, 1, Int> {
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

/// Cross-entropy over the examples whose label is not [`IGNORE`].
fn masked_ce<B: Backend>(
    logits: Tensor<B, 2>,
    targets: &[i64],
    device: &B::Device,
) -> Option<Tensor<B, 1>> {
    let keep: Vec<i64> = targets
        .iter()
        .enumerate()
        .filter(|(_, &t)| t != IGNORE)
        .map(|(i, _)| i as i64)
        .collect();
    if keep.is_empty() {
        return None;
    }
    let t: Vec<i64> = keep.iter().map(|&i| targets[i as usize]).collect();
    let logits = logits.select(0, labels::<B>(keep, device));
    Some(
        CrossEntropyLossConfig::new()
            .init(device)
            .forward(logits, labels::<B>(t, device)),
    )
}

/// Trains (or resumes) the classifier.
pub fn train<B: AutodiffBackend>(
    dir: &Path,
    options: &StageOptions,
    device: &B::Device,
) -> Result<AttributeClassifier<B::InnerBackend>> {
    options.validate_without_noise()?;
    let optim = AdamWConfig::new().with_weight_decay(0.01);
    let run = Run::<B, _>::start(
        dir,
        NAME,
        options.seed,
        STAGE,
        optim,
        || Ok(AttributeClassifier::new(device)),
        device,
    )?;
    let model = run.fit(NAME, STAGE, &["loss"], options, |model, rng, batch| {
        // One seed per example, drawn in order, then rendered over the cores.
        let seeds: Vec<u64> = (0..batch).map(|_| rng.random()).collect();
        let ex: Vec<Example> = seeds
            .par_iter()
            .map(|&s| example(&mut rand_chacha::ChaCha8Rng::seed_from_u64(s)))
            .collect();
        let out = forward_examples(model, &ex, device);
        let parts = [
            masked_ce(
                out.shape,
                &ex.iter().map(|e| e.shape).collect::<Vec<_>>(),
                device,
            ),
            masked_ce(
                out.colour,
                &ex.iter().map(|e| e.colour).collect::<Vec<_>>(),
                device,
            ),
            masked_ce(
                out.pose,
                &ex.iter().map(|e| e.pose).collect::<Vec<_>>(),
                device,
            ),
        ];
        let loss = parts
            .into_iter()
            .flatten()
            .reduce(|a, b| a + b)
            .expect("every example asks something");
        Ok(StepLoss::single(loss))
    })?;
    Ok(model.valid())
}

/// The classifier of the last checkpoint.
pub fn load_trained<B: AutodiffBackend>(
    dir: &Path,
    device: &B::Device,
) -> Result<AttributeClassifier<B::InnerBackend>> {
    load_checkpoint::<B, _>(dir, NAME, AttributeClassifier::new(device), device)
}

/// The judge measured on held-out scenes, with judged boxes drawn as for
/// edits (around the thing and a random alternative version of it).
#[derive(Debug, Clone, serde::Serialize)]
pub struct HeldOutAccuracy {
    /// Shape head on object boxes and whole one-object scenes showing the
    /// thing as rendered.
    pub shape: f64,
    /// Colour head, likewise.
    pub colour: f64,
    /// Pose head on figure boxes and whole scenes.
    pub pose: f64,
    /// Share of the rendered things (any head asked) judged "nothing".
    pub false_nothing: f64,
    /// For each garbage kind, the share of its examples on which every asked
    /// head says "nothing".
    pub nothing: Vec<(Garbage, f64)>,
    /// For each garbage kind, the share on which some asked head names a
    /// real class (what could score as an edit).
    pub named: Vec<(Garbage, f64)>,
    /// Examples of each content (rendered things, and each garbage kind).
    pub examples_per_content: usize,
}

/// One held-out example showing `content`: a random held-out scene and a
/// random thing of it (or, for rendered things, sometimes the whole scene).
fn held_out_example(content: Content, rng: &mut rand_chacha::ChaCha8Rng) -> Example {
    let index = rng.random::<u32>() as u64;
    let spec = SceneSpec::sample(optedit_world::scene_seed(
        optedit_world::Split::HeldOut,
        index,
    ));
    if content == Content::Thing && spec.objects.len() == 1 && rng.random_bool(WHOLE_SCENE_SHARE) {
        return whole_scene_example(&spec, rng);
    }
    let thing = if rng.random_bool(0.6) {
        Thing::Object(rng.random_range(0..spec.objects.len()))
    } else {
        Thing::Figure
    };
    example_of(&spec, thing, content, rng)
}

/// Predicted classes of each head.
fn predictions<B: Backend>(out: ClassifierOutput<B>) -> [Vec<i64>; 3] {
    [out.shape, out.colour, out.pose].map(|logits| {
        logits
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .into_vec::<i64>()
            .expect("int data")
    })
}

/// Measures `model` on `per_content` held-out examples of rendered things
/// and of each garbage kind (seeded).
pub fn held_out_accuracy<B: Backend>(
    model: &AttributeClassifier<B>,
    per_content: usize,
    seed: u64,
    device: &B::Device,
) -> HeldOutAccuracy {
    use rand::SeedableRng;
    let nothing = [NOTHING_SHAPE, NOTHING_COLOUR, NOTHING_POSE].map(|n| n as i64);
    let contents: Vec<Content> = std::iter::once(Content::Thing)
        .chain(Garbage::ALL.into_iter().map(Content::Garbage))
        .collect();
    let mut hits = [0usize; 3];
    let mut asked = [0usize; 3];
    let mut false_nothing = 0usize;
    let (mut all_nothing, mut named) = (Vec::new(), Vec::new());
    for (k, &content) in contents.iter().enumerate() {
        let mut rng =
            rand_chacha::ChaCha8Rng::seed_from_u64(crate::data::mix(&[seed, STAGE, 1, k as u64]));
        let (mut rejected, mut scored) = (0usize, 0usize);
        let mut done = 0;
        while done < per_content {
            let n = (per_content - done).min(32);
            let ex: Vec<Example> = (0..n)
                .map(|_| held_out_example(content, &mut rng))
                .collect();
            let pred = predictions(forward_examples(model, &ex, device));
            for (i, e) in ex.iter().enumerate() {
                let targets = [e.shape, e.colour, e.pose];
                let heads: Vec<usize> = (0..3).filter(|&h| targets[h] != IGNORE).collect();
                let says_nothing = heads.iter().map(|&h| pred[h][i] == nothing[h]);
                if content == Content::Thing {
                    for &h in &heads {
                        asked[h] += 1;
                        hits[h] += usize::from(pred[h][i] == targets[h]);
                    }
                    false_nothing += usize::from(says_nothing.clone().any(|b| b));
                } else {
                    rejected += usize::from(says_nothing.clone().all(|b| b));
                    scored += usize::from(says_nothing.clone().any(|b| !b));
                }
            }
            done += n;
        }
        if let Content::Garbage(g) = content {
            all_nothing.push((g, rejected as f64 / per_content.max(1) as f64));
            named.push((g, scored as f64 / per_content.max(1) as f64));
        }
    }
    let rate = |h: usize| hits[h] as f64 / asked[h].max(1) as f64;
    HeldOutAccuracy {
        shape: rate(0),
        colour: rate(1),
        pose: rate(2),
        false_nothing: false_nothing as f64 / per_content.max(1) as f64,
        nothing: all_nothing,
        named,
        examples_per_content: per_content,
    }
}
