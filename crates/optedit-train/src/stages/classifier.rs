//! Stage 5: the evaluation classifier, the judge of edits
//! ([`optedit_judge::classifier`] defines it, loads it and runs it; this
//! stage trains it). A small CNN reads an image and a region mask and names
//! the shape and colour of the object in the region and the pose class of
//! the figure, or says that the region holds nothing recognisable (one extra
//! class per head).
//!
//! The region of an edit is the box around the thing's source and target
//! masks ([`optedit_judge::region::judged_box`]), never the target's
//! outline, so the judge is not shown the answer; see
//! [`super::judge_examples`] for the training examples, the "nothing"
//! outcome and the garbage it learns from.

use std::path::Path;

use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::AdamWConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use optedit_cond::image::rgb_batch_to_signed_tensor;
use optedit_judge::classifier::{
    masks_to_tensor, AttributeClassifier, ClassifierOutput, NOTHING_COLOUR, NOTHING_POSE,
    NOTHING_SHAPE,
};
use optedit_world::SceneSpec;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::judge_examples::{
    example_of, random_example, whole_scene_example, Content, Example, Garbage, Thing, IGNORE,
    WHOLE_SCENE_SHARE,
};
use super::{load_checkpoint, Run, StageOptions, StepLoss};
use crate::data::train_scene_seed;
use crate::error::Result;

const STAGE: u64 = 6;
/// Checkpoint folder name.
const NAME: &str = "classifier";

/// The classifier's logits for a batch of examples.
fn forward_examples<B: Backend>(
    model: &AttributeClassifier<B>,
    ex: &[Example],
    device: &B::Device,
) -> ClassifierOutput<B> {
    let images: Vec<_> = ex.iter().map(|e| &e.image).collect();
    let masks: Vec<_> = ex.iter().map(|e| &e.mask).collect();
    model.forward(
        rgb_batch_to_signed_tensor::<B, _>(&images, device),
        masks_to_tensor::<B, _>(&masks, device),
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
