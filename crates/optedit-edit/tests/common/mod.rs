//! What the edit's integration tests share: the tiny fixture pipelines, the
//! fixture image, a small schedule, masks and latent distances. Every shape
//! comes from the fixture's own files.
#![allow(dead_code)]

use burn::tensor::Tensor;
use optedit_cond::PromptEmbeddings;
use optedit_edit::{
    EditCondition, EditConfig, EditOutput, Editor, GuidanceGradient, MaskSource, Objective,
    SdPipeline, Silent, UserMask,
};
use optedit_fixtures::{
    cases_with_prefix, fixtures_dir, values, TestAutodiffBackend as AD, TestBackend,
};

/// The pipeline folder `name` of the fixture set (`tiny-sd`, `tiny-sd21`).
pub fn load(name: &str) -> SdPipeline<AD> {
    SdPipeline::load(&fixtures_dir().join(name), &Default::default()).unwrap()
}

/// The tiny SD 1.5-style pipeline.
pub fn pipeline() -> SdPipeline<AD> {
    load("tiny-sd")
}

/// The fixture's input image `[1, 3, h, w]` in `[-1, 1]`.
pub fn image() -> Tensor<AD, 4> {
    let case = cases_with_prefix("vae_encode").remove(0);
    case.load().tensor("input.image", &Default::default())
}

/// The fixture image cropped to multiples of `p`'s VAE factor.
pub fn image_for(p: &SdPipeline<AD>) -> Tensor<AD, 4> {
    let x = image();
    let [_, _, h, w] = x.dims();
    let f = p.vae_scale();
    x.narrow(2, 0, h / f * f).narrow(3, 0, w / f * f)
}

/// Height and width of the fixture's input image (not necessarily square).
pub fn image_hw() -> (usize, usize) {
    let [_, _, h, w] = image().dims();
    (h, w)
}

/// A small, fast schedule for the tiny models.
pub fn config() -> EditConfig {
    EditConfig {
        num_steps: 6,
        strength: 1.0,
        t_u: 3,
        k: 2,
        // The tests count gradient steps as t_u * k; the late steps have
        // tests of their own (stages_traits.rs).
        k_late: 0,
        // The exact gradient, through the network (the behaviour tests
        // exercise its graph, checkpointing included); the default held
        // prediction has its own tests (gradient.rs).
        guidance_gradient: GuidanceGradient::Both,
        seed: 7,
        ..EditConfig::default()
    }
}

/// The left half of an `h` x `w` image may change.
pub fn half_mask((h, w): (usize, usize)) -> UserMask {
    let pixels = (0..h * w)
        .map(|i| if i % w < w / 2 { 1.0 } else { 0.0 })
        .collect();
    UserMask::new(pixels, w, h).unwrap()
}

/// Mean squared difference of two latents where `weight` (broadcast over
/// channels) is 1.
pub fn masked_diff(a: &Tensor<AD, 4>, b: &Tensor<AD, 4>, weight: &Tensor<AD, 4>) -> f64 {
    let c = a.dims()[1];
    let w = weight.clone().repeat_dim(1, c);
    let d = values(&(w.clone() * (a.clone() - b.clone()).powi_scalar(2)).sum());
    d[0] / values(&w.sum())[0]
}

/// Mean squared difference.
pub fn mse(a: &Tensor<AD, 4>, b: &Tensor<AD, 4>) -> f64 {
    values(&(a.clone() - b.clone()).powi_scalar(2).mean())[0]
}

/// The source and edit prompts the edit tests use ("a photo of a cat" to
/// "a painting of a dog").
pub fn prompts(p: &SdPipeline<AD>) -> (PromptEmbeddings<AD>, PromptEmbeddings<AD>) {
    (
        p.encode_prompt("a photo of a cat", None).unwrap(),
        p.encode_prompt("a painting of a dog", None).unwrap(),
    )
}

/// The three methods on `x`: the optimised edit under [`half_mask`],
/// DiffEdit with `diffedit_mask` and SDEdit, each checked to return a
/// finite image of `x`'s shape.
pub fn three_methods(
    editor: &Editor<'_, AD>,
    x: &Tensor<AD, 4>,
    source: &PromptEmbeddings<AD>,
    condition: &EditCondition<'_, AD>,
    diffedit_mask: &mut dyn MaskSource<TestBackend>,
) -> (EditOutput<AD>, EditOutput<AD>, EditOutput<AD>) {
    let [_, _, h, w] = x.dims();
    let optimised = editor
        .edit(
            x.clone(),
            source,
            condition,
            &mut half_mask((h, w)),
            &mut Silent,
        )
        .unwrap();
    let diffedit = editor
        .diffedit(x.clone(), source, condition, diffedit_mask, &mut Silent)
        .unwrap();
    let sdedit = editor.sdedit(x.clone(), condition, &mut Silent).unwrap();
    for (name, image) in [
        ("optimise", &optimised.image),
        ("diffedit", &diffedit.image),
        ("sdedit", &sdedit.image),
    ] {
        assert_eq!(image.dims(), x.dims(), "{name}");
        assert!(values(image).iter().all(|v| v.is_finite()), "{name}");
    }
    (optimised, diffedit, sdedit)
}

/// The fixture's text edit (source prompt to target prompt) of the test
/// image with the half mask, under `cfg`.
pub fn text_edit(p: &SdPipeline<AD>, cfg: EditConfig) -> EditOutput<AD> {
    let (src, tgt) = prompts(p);
    Editor::new(p, cfg)
        .unwrap()
        .edit(
            image(),
            &src,
            &EditCondition::text(tgt),
            &mut half_mask(image_hw()),
            &mut Silent,
        )
        .unwrap()
}

/// `editor`'s edit of the test image from the fixture's source prompt to
/// its target prompt with the half mask, under `objective`.
pub fn objective_edit(
    editor: &Editor<'_, AD>,
    objective: &Objective<'_, AD>,
) -> optedit_edit::Result<EditOutput<AD>> {
    let (src, tgt) = prompts(editor.pipeline());
    editor.edit_with_objective(
        image(),
        &src,
        &EditCondition::text(tgt),
        &mut half_mask(image_hw()),
        objective,
        &mut Silent,
    )
}
