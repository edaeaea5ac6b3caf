//! A custom loss through the `EditLoss` trait: a total-variation smoothness
//! term on the predicted clean latent inside the mask, added to the method's
//! objective with its own weight.
//!
//! ```text
//! cargo run --release -p optedit-examples --example custom_loss [SD_FOLDER]
//! ```

use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{backend::Backend, Tensor};
use optedit_edit::{EditCondition, EditLoss, Editor, FullMask, LossInputs, Objective, SdPipeline};
use optedit_examples::{
    example_config, image_size, input_image, model_dir, print_progress, save_png,
};

/// Balanced checkpointing recomputes memory-bound operations in the backward
/// pass instead of keeping them: less peak memory, same speed and numbers.
type B = Autodiff<Flex, BalancedCheckpointing>;

/// Mean squared difference between horizontal and vertical neighbours of the
/// predicted clean latent, weighted by the mask.
struct Smoothness;

impl<Bk: Backend> EditLoss<Bk> for Smoothness {
    fn name(&self) -> &str {
        "smoothness"
    }

    fn loss(&self, i: &LossInputs<'_, Bk>) -> Option<Tensor<Bk, 1>> {
        let x = i.pred_original.clone() * i.mask.clone();
        let [_, _, h, w] = x.dims();
        let dx = x.clone().narrow(3, 1, w - 1) - x.clone().narrow(3, 0, w - 1);
        let dy = x.clone().narrow(2, 1, h - 1) - x.narrow(2, 0, h - 1);
        Some(dx.powi_scalar(2).mean() + dy.powi_scalar(2).mean())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Default::default();
    let pipeline = SdPipeline::<B>::load(&model_dir(), &device)?;
    let image = input_image::<B>(image_size(&pipeline), &device);
    let source = pipeline.encode_prompt("a photo of a lake", None)?;
    let target = EditCondition::text(pipeline.encode_prompt("a painting of a lake", None)?);
    let config = example_config();
    let objective = Objective::method(config.lambda).with(0.1, Smoothness);
    let editor = Editor::new(&pipeline, config)?;
    let out = editor.edit_with_objective(
        image,
        &source,
        &target,
        &mut FullMask,
        &objective,
        &mut print_progress,
    )?;
    let path = std::env::temp_dir().join("optedit-custom-loss.png");
    save_png(&out.image, &path)?;
    println!("wrote {}", path.display());
    Ok(())
}
