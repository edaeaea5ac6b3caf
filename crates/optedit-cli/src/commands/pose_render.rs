//! `optedit pose-render`: OpenPose JSON to the skeleton image.

use anyhow::Result;
use image::DynamicImage;
use optedit::conditions::read_pose;
use optedit_cond::pose_render::render_body_poses;

use crate::args::PoseRenderArgs;
use crate::io::Output;
use crate::progress::Reporter;

/// Runs `optedit pose-render`.
pub fn run(args: &PoseRenderArgs) -> Result<()> {
    let output = Output::prepare(&args.output, &[&args.pose])?;
    let mut rep = Reporter::new(args.quiet);
    let people = read_pose(&args.pose, (args.width, args.height))?;
    let image = render_body_poses(&people, args.width, args.height)?;
    rep.phase("write", || output.write(&DynamicImage::ImageRgb8(image)))?;
    rep.print_summary(&format!(
        "rendered {} people to {} ({}x{})",
        people.len(),
        output.path().display(),
        args.width,
        args.height
    ));
    Ok(())
}
