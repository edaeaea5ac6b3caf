//! The README's first command: a real edit with the shipped demo model
//! (`models/optedit-demo`, trained on the procedural world of
//! `optedit-world`). A held-out world scene has one object recoloured by the
//! optimisation-based editor under a user mask (the object's mask, dilated),
//! and `input | mask | result | target` is written side by side.
//!
//! ```text
//! cargo run --release -p optedit-examples --example demo_edit [SCENE] [COLOUR]
//! ```
//!
//! `SCENE` is the index of a held-out world scene (default 3), `COLOUR` the
//! new colour of its leftmost object (default: one no object has).
//! `docs/demo-model.md` says how the model was trained and how well it
//! follows its captions.

use std::time::Instant;

use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
use burn::backend::{Autodiff, Flex};
use image::{GenericImage, RgbImage};
use optedit_cond::image::{rgb_to_signed_tensor, tensor_to_rgb};
use optedit_edit::{EditCondition, EditConfig, Editor, SdPipeline, UserMask};
use optedit_examples::{demo_model_dir, print_progress};
use optedit_world::{scene_seed, Colour, SceneSpec, Split};

/// Balanced checkpointing recomputes memory-bound operations in the backward
/// pass instead of keeping them: less peak memory, same speed and numbers.
type B = Autodiff<Flex, BalancedCheckpointing>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let index: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(3);
    let spec = SceneSpec::sample(scene_seed(Split::HeldOut, index));
    let object = spec.left_to_right()[0];
    let from = spec.objects[object].colour;
    let to = match std::env::args().nth(2) {
        Some(word) => Colour::from_word(&word)?,
        None => *Colour::ALL
            .iter()
            .find(|c| **c != from && !spec.objects.iter().any(|o| o.colour == **c))
            .ok_or("no free colour")?,
    };
    let target = spec.with_object_colour(object, to)?;
    let (source_render, target_render) = (spec.render(), target.render());
    let mask_image = optedit_examples::dilate(&source_render.object_masks[object], 3);
    println!("source: {}\ntarget: {}", spec.caption(), target.caption());

    let device = Default::default();
    let pipeline = SdPipeline::<B>::load(&demo_model_dir(), &device)?;
    let editor = Editor::new(&pipeline, EditConfig::default())?;
    let source = pipeline.encode_prompt(&spec.caption(), None)?;
    let condition = EditCondition::text(pipeline.encode_prompt(&target.caption(), None)?);
    let pixels: Vec<f32> = mask_image
        .as_raw()
        .iter()
        .map(|&v| v as f32 / 255.0)
        .collect();
    let mut mask = UserMask::new(pixels, 128, 128)?;
    let image = rgb_to_signed_tensor::<B>(&source_render.image, &device);
    let out = editor.edit(image, &source, &condition, &mut mask, &mut print_progress)?;

    let result = tensor_to_rgb(out.image)?;
    let mask_rgb = image::DynamicImage::ImageLuma8(mask_image).to_rgb8();
    let mut sheet = RgbImage::new(4 * 128, 128);
    for (i, panel) in [
        &source_render.image,
        &mask_rgb,
        &result,
        &target_render.image,
    ]
    .into_iter()
    .enumerate()
    {
        sheet.copy_from(panel, 128 * i as u32, 0)?;
    }
    let dir = std::path::Path::new("target/optedit-demo");
    std::fs::create_dir_all(dir)?;
    let path = dir.join("edit.png");
    sheet.save(&path)?;
    println!(
        "wrote {} (input | mask | result | target) in {:.1?}",
        path.display(),
        start.elapsed()
    );
    Ok(())
}
