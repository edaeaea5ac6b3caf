//! `optedit mask`: the estimated (DiffEdit) edit mask as a PNG.

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use image::DynamicImage;
use optedit_cond::image::latent_mask_to_gray;
use optedit_edit::{EstimatedMask, MaskContext, MaskSource};

use super::{input_files, mask_options, Session, Sizing};
use crate::args::MaskArgs;
use crate::controls::ControlSpec;
use crate::io::Output;
use crate::progress::Reporter;

/// Runs `optedit mask` on backend `B`: white where the edit may change the
/// image, at the input's size (the cropped-off border is black).
pub fn run<B: AutodiffBackend>(
    args: &MaskArgs,
    specs: &[ControlSpec],
    device: B::Device,
) -> Result<()> {
    let output = Output::prepare(&args.io.output, &input_files(&args.io.image, specs, None))?;
    let quiet = args.io.quiet;
    let mut rep = Reporter::new(quiet);
    let canny = (args.controls.canny_low, args.controls.canny_high);
    let session = Session::<B>::open(
        &args.model,
        &args.io.image,
        specs,
        canny,
        Sizing::Full,
        &mut rep,
        &device,
    )?;
    session.note_fit(&args.io.image, quiet);
    let (source, condition) = rep.phase("prompts", || session.condition(&args.prompts, specs))?;
    let image = session.image();
    let ctx = MaskContext {
        pipeline: session.pipeline.sd(),
        image: &image,
        source: &source,
        target: &condition,
        guidance_scale: args.guidance,
        seed: args.seed,
    };
    let mut estimator = EstimatedMask {
        options: mask_options(args.mask_dilate, args.mask_blur),
        ..EstimatedMask::default()
    };
    let mask = rep.phase("mask", || estimator.mask(&ctx))?;
    let gray = session.fit.restore_gray(&latent_mask_to_gray(
        mask,
        session.pipeline.sd().vae_scale() as u32,
    )?);
    rep.phase("write", || {
        output.write(&DynamicImage::ImageLuma8(gray.clone()))
    })?;
    let (w, h) = gray.dimensions();
    rep.print_summary(&format!("wrote mask {} ({w}x{h})", output.path().display()));
    Ok(())
}
