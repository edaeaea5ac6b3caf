//! `optedit reconstruct`: DDIM inversion and reconstruction round trip.

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use image::DynamicImage;
use optedit_edit::{EditConfig, Editor};

use crate::args::ReconstructArgs;
use crate::commands::Session;
use crate::io::{self, Output};
use crate::progress::Reporter;
use crate::UsageError;

/// Runs `optedit reconstruct` on backend `B`; prints the PSNR of the
/// reconstruction vs the input (over the crop the models saw) on stdout.
pub fn run<B: AutodiffBackend>(args: &ReconstructArgs, device: B::Device) -> Result<()> {
    let config = EditConfig {
        num_steps: args.steps,
        strength: args.strength,
        ..EditConfig::default()
    };
    config.validate().map_err(|e| UsageError(e.to_string()))?;
    let output = Output::prepare(&args.io.output, &[&args.io.image])?;
    let quiet = args.io.quiet;
    let mut rep = Reporter::new(quiet);
    let session = Session::<B>::open(
        &args.model,
        &args.io.image,
        &[],
        (0.0, 0.0),
        &mut rep,
        &device,
    )?;
    session.note_crop(&args.io.image, quiet);
    let crop = session.crop;
    let source = rep.phase("prompts", || {
        session.pipeline.encode_prompt(&args.source_prompt, None)
    })?;
    let editor = Editor::new(&session.pipeline, config)?;
    let z0 = rep.phase("encode", || editor.encode(session.image.clone()))?;
    rep.start_stages();
    let inversion = editor.invert(z0, &source, &mut rep)?;
    let trajectory = editor.reconstruct(&inversion, &source, &mut rep)?;
    let decoded = rep.phase("decode", || editor.decode(trajectory.last().clone()))?;
    let recon = io::tensor_to_image(decoded)?;
    let original = session.input.to_rgb8();
    let psnr = io::psnr(&crop.apply(&session.input).to_rgb8(), &recon);
    let full = crop.paste(&original, &recon);
    rep.phase("write", || {
        output.write(&DynamicImage::ImageRgb8(full.clone()))
    })?;
    println!(
        "PSNR {psnr:.2} dB ({}x{} reconstruction vs input)",
        crop.width, crop.height
    );
    rep.print_summary(&format!("wrote {}", output.path().display()));
    Ok(())
}
