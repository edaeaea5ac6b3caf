//! A text-driven edit: "a photo of a cat" -> "a photo of a dog" with the
//! DiffEdit-estimated mask, writing input, mask and result PNGs.
//!
//! ```text
//! cargo run --release -p optedit-examples --example text_edit [SD_FOLDER]
//! ```

use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
use burn::backend::{Autodiff, Flex};
use optedit_edit::{EditCondition, Editor, EstimatedMask, SdPipeline};
use optedit_examples::{
    example_config, image_size, input_image, model_dir, print_progress, save_png,
};

/// Balanced checkpointing recomputes memory-bound operations in the backward
/// pass instead of keeping them: less peak memory, same speed and numbers.
type B = Autodiff<Flex, BalancedCheckpointing>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Default::default();
    let pipeline = SdPipeline::<B>::load(&model_dir(), &device)?;
    let size = image_size(&pipeline);
    let image = input_image::<B>(size, &device);

    let source = pipeline.encode_prompt("a photo of a cat", None)?;
    let target = EditCondition::text(pipeline.encode_prompt("a photo of a dog", None)?);
    let editor = Editor::new(&pipeline, example_config())?;
    let out = editor.edit(
        image.clone(),
        &source,
        &target,
        &mut EstimatedMask::default(),
        &mut print_progress,
    )?;

    let dir = std::env::temp_dir().join("optedit-text-edit");
    std::fs::create_dir_all(&dir)?;
    save_png(&image, &dir.join("input.png"))?;
    if let Some(mask) = &out.mask {
        save_png(
            &optedit_edit::paste_back(
                out.image.ones_like(),
                out.image.ones_like().neg(),
                mask,
                pipeline.vae_scale(),
            ),
            &dir.join("mask.png"),
        )?;
    }
    save_png(&out.image, &dir.join("result.png"))?;
    for (stage, t) in &out.timings {
        println!("{stage:>9}: {t:.2?}");
    }
    println!("wrote {}", dir.display());
    Ok(())
}
