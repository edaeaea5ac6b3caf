//! Several instructions at once: text + pose + Canny edges (two ControlNets,
//! the edges one active for the first 60% of the steps only), compared with
//! the DiffEdit and SDEdit baselines on the same condition.
//!
//! ```text
//! cargo run --release -p optedit-examples --example multi_condition [SD_FOLDER POSE_CN [EDGES_CN]]
//! ```

use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
use burn::backend::{Autodiff, Flex};
use burn::module::Module;
use optedit_cond::canny::canny_condition;
use optedit_cond::pose::{parse_keypoint_list, Coordinates};
use optedit_cond::pose_render::pose_condition;
use optedit_edit::{
    ControlCondition, EditCondition, Editor, EstimatedMask, FullMask, SdPipeline, Silent,
};
use optedit_examples::{
    controlnet_dir, example_config, image_size, input_image, model_dir, save_png,
};
use optedit_models::ControlNetModel;

/// Balanced checkpointing recomputes memory-bound operations in the backward
/// pass instead of keeping them: less peak memory, same speed and numbers.
type B = Autodiff<Flex, BalancedCheckpointing>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Default::default();
    let pipeline = SdPipeline::<B>::load(&model_dir(), &device)?;
    let pose_cn = ControlNetModel::<B>::load(&controlnet_dir(), &device)?.no_grad();
    let edges_dir = std::env::args()
        .nth(3)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(controlnet_dir);
    let edges_cn = ControlNetModel::<B>::load(&edges_dir, &device)?.no_grad();
    let size = image_size(&pipeline);
    let image = input_image::<B>(size, &device);

    // A two-keypoint-missing figure as a plain [x, y, confidence] list.
    let mut rows = vec![[0.5, 0.5, 1.0]; 18];
    for (i, row) in rows.iter_mut().enumerate() {
        row[1] = 0.2 + 0.035 * i as f64;
    }
    rows[16][2] = 0.0;
    rows[17][2] = 0.0;
    let pose = pose_condition(
        &parse_keypoint_list(&serde_json_rows(&rows), Coordinates::Normalized)?,
        size as u32,
        size as u32,
    )?;
    let rgb = optedit_cond::image::tensor_to_rgb(image.clone())?;
    let edges = canny_condition(&image::DynamicImage::ImageRgb8(rgb), 100.0, 200.0, None)?;

    let source = pipeline.encode_prompt("a photo", None)?;
    let target = EditCondition::text(pipeline.encode_prompt("a dancer on a stage", None)?)
        .with_control(ControlCondition::new(&pose_cn, pose.to_tensor(&device)))
        .with_control(
            ControlCondition::new(&edges_cn, edges.to_tensor(&device))
                .with_scale(0.5)
                .with_range(0.0, 0.6),
        );
    let editor = Editor::new(&pipeline, example_config())?;
    let ours = editor.edit(image.clone(), &source, &target, &mut FullMask, &mut Silent)?;
    let diffedit = editor.diffedit(
        image.clone(),
        &source,
        &target,
        &mut EstimatedMask::default(),
        &mut Silent,
    )?;
    let sdedit = editor.sdedit(image, &target, &mut Silent)?;

    let dir = std::env::temp_dir().join("optedit-multi-condition");
    std::fs::create_dir_all(&dir)?;
    save_png(&ours.image, &dir.join("optimise.png"))?;
    save_png(&diffedit.image, &dir.join("diffedit.png"))?;
    save_png(&sdedit.image, &dir.join("sdedit.png"))?;
    println!("wrote {}", dir.display());
    Ok(())
}

fn serde_json_rows(rows: &[[f64; 3]]) -> String {
    let inner: Vec<String> = rows
        .iter()
        .map(|r| format!("[{}, {}, {}]", r[0], r[1], r[2]))
        .collect();
    format!("[{}]", inner.join(", "))
}
