//! `optedit edges`: the Canny edge map (OpenCV's algorithm, as the ControlNet
//! Canny annotator), at the image's size.

use anyhow::Result;
use image::DynamicImage;
use optedit_cond::canny::{canny, canny_rgb};

use crate::args::EdgesArgs;
use crate::io::Output;
use crate::progress::Reporter;

/// Runs `optedit edges`: grey images are processed as one channel, others as
/// RGB (the strongest channel's gradient).
pub fn run(args: &EdgesArgs) -> Result<()> {
    let output = Output::prepare(&args.output, &[&args.image])?;
    let mut rep = Reporter::new(args.quiet);
    let input = optedit::images::read(&args.image)?;
    let (low, high) = (args.canny_low, args.canny_high);
    let edges = match &input {
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageLuma16(_) => canny(&input.to_luma8(), low, high)?,
        other => canny_rgb(&other.to_rgb8(), low, high)?,
    };
    rep.phase("write", || {
        output.write(&DynamicImage::ImageLuma8(edges.clone()))
    })?;
    let (w, h) = edges.dimensions();
    rep.print_summary(&format!("wrote {} ({w}x{h})", output.path().display()));
    Ok(())
}
