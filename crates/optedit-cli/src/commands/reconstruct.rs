//! `optedit reconstruct`: DDIM inversion and reconstruction round trip.

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use image::DynamicImage;
use optedit_cond::image::tensor_to_rgb;
use optedit_edit::{EditConfig, Editor};

use crate::args::ReconstructArgs;
use crate::commands::{Session, Sizing};
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
        Sizing::Full,
        &mut rep,
        &device,
    )?;
    session.note_fit(&args.io.image, quiet);
    let fit = session.fit;
    let sd = session.pipeline.sd();
    let source = rep.phase("prompts", || sd.encode_prompt(&args.source_prompt, None))?;
    let editor = Editor::new(sd, config)?;
    let z0 = rep.phase("encode", || editor.encode(session.image()))?;
    rep.start_stages();
    let inversion = editor.invert(z0, &source, &mut rep)?;
    let trajectory = editor.reconstruct(&inversion, &source, &mut rep)?;
    let decoded = rep.phase("decode", || editor.decode(trajectory.last().clone()))?;
    let recon = tensor_to_rgb(decoded)?;
    let original = session.input.to_rgb8();
    let psnr = io::psnr(&fit.apply(&original), &recon);
    let full = fit.restore(&original, &recon);
    rep.phase("write", || {
        output.write(&DynamicImage::ImageRgb8(full.clone()))
    })?;
    println!(
        "PSNR {psnr:.2} dB ({}x{} reconstruction vs input)",
        fit.crop[2], fit.crop[3]
    );
    rep.print_summary(&format!("wrote {}", output.path().display()));
    Ok(())
}
