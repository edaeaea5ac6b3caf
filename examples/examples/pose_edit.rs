//! A pose edit: the OpenPose ControlNet with a skeleton rendered from 18
//! COCO keypoints, plus a text prompt, on a user mask (the left half).
//!
//! ```text
//! cargo run --release -p optedit-examples --example pose_edit [SD_FOLDER CONTROLNET_OPENPOSE_FOLDER]
//! ```

use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
use burn::backend::{Autodiff, Flex};
use burn::module::Module;
use optedit_cond::pose::{BodyPose, Keypoint};
use optedit_cond::pose_render::pose_condition;
use optedit_edit::{ControlCondition, EditCondition, Editor, SdPipeline, UserMask};
use optedit_examples::{
    controlnet_dir, example_config, image_size, input_image, model_dir, print_progress, save_png,
};
use optedit_models::ControlNetModel;

/// Balanced checkpointing recomputes memory-bound operations in the backward
/// pass instead of keeping them: less peak memory, same speed and numbers.
type B = Autodiff<Flex, BalancedCheckpointing>;

/// A standing figure in normalised coordinates (COCO order: nose, neck,
/// right shoulder/elbow/wrist, left shoulder/elbow/wrist, right hip/knee/ankle,
/// left hip/knee/ankle, eyes, ears).
fn standing_figure() -> Result<BodyPose, Box<dyn std::error::Error>> {
    let pts = [
        (0.30, 0.15),
        (0.30, 0.25),
        (0.22, 0.25),
        (0.18, 0.38),
        (0.15, 0.50),
        (0.38, 0.25),
        (0.42, 0.38),
        (0.45, 0.50),
        (0.25, 0.52),
        (0.25, 0.70),
        (0.25, 0.88),
        (0.35, 0.52),
        (0.35, 0.70),
        (0.35, 0.88),
        (0.28, 0.13),
        (0.32, 0.13),
        (0.26, 0.14),
        (0.34, 0.14),
    ];
    let mut kps = [None; 18];
    for (i, (x, y)) in pts.into_iter().enumerate() {
        kps[i] = Some(Keypoint { x, y });
    }
    Ok(BodyPose::new(kps)?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Default::default();
    let pipeline = SdPipeline::<B>::load(&model_dir(), &device)?;
    let controlnet = ControlNetModel::<B>::load(&controlnet_dir(), &device)?.no_grad();
    let size = image_size(&pipeline);
    let image = input_image::<B>(size, &device);

    let pose = pose_condition(&[standing_figure()?], size as u32, size as u32)?;
    let source = pipeline.encode_prompt("a person standing in a park", None)?;
    let target =
        EditCondition::text(pipeline.encode_prompt("a person raising their arms in a park", None)?)
            .with_control(ControlCondition::new(&controlnet, pose.to_tensor(&device)));
    let left_half = (0..size * size)
        .map(|i| if i % size < size / 2 { 1.0 } else { 0.0 })
        .collect();
    let mut mask = UserMask::new(left_half, size, size)?;

    let editor = Editor::new(&pipeline, example_config())?;
    let out = editor.edit(image, &source, &target, &mut mask, &mut print_progress)?;
    let dir = std::env::temp_dir().join("optedit-pose-edit");
    std::fs::create_dir_all(&dir)?;
    pose.image().save(dir.join("pose.png"))?;
    save_png(&out.image, &dir.join("result.png"))?;
    println!("wrote {}", dir.display());
    Ok(())
}
