//! `optedit edit`: the whole method, or a baseline, through the `optedit`
//! facade ([`optedit::Pipeline::edit`]).

use std::path::Path;

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use image::{DynamicImage, GrayImage};
use optedit::{Control, Edited, Instruction, Options};

use super::intermediates::{self, Intermediates};
use super::{input_files, mask_options, MaskChoice, Session, Sizing};
use crate::args::EditArgs;
use crate::controls::ControlSpec;
use crate::io::{self, Output};
use crate::progress::Reporter;
use crate::UsageError;

/// Runs `optedit edit` on backend `B`.
pub fn run<B: AutodiffBackend>(
    args: &EditArgs,
    specs: &[ControlSpec],
    device: B::Device,
) -> Result<()> {
    let config = args.config.edit_config();
    config.validate().map_err(|e| UsageError(e.to_string()))?;
    let method = args.method;
    if !method.uses_mask() && args.mask.mask.is_some() {
        return Err(UsageError(format!(
            "--mask has no effect with --method {method} ({method} uses no mask)"
        ))
        .into());
    }
    let choice = MaskChoice::parse(args.mask.mask.as_deref());
    let mask_file = match &choice {
        MaskChoice::File(p) => Some(p.as_path()),
        _ => None,
    };
    let output = Output::prepare(
        &args.io.output,
        &input_files(&args.io.image, specs, mask_file),
    )?;
    if let Some(dir) = &args.save_intermediates {
        io::prepare_dir(dir)?;
    }
    let mask = match &choice {
        MaskChoice::Auto => optedit::MaskChoice::Estimated,
        MaskChoice::Full => optedit::MaskChoice::Full,
        MaskChoice::File(path) => {
            optedit::MaskChoice::Image(optedit::images::read(path)?.to_luma8())
        }
    };

    let quiet = args.io.quiet;
    let mut rep = Reporter::new(quiet);
    let canny = (args.controls.canny_low, args.controls.canny_high);
    let session = Session::<B>::open(
        &args.model,
        &args.io.image,
        specs,
        canny,
        Sizing::AtMost(args.max_size),
        &mut rep,
        &device,
    )?;
    session.note_fit(&args.io.image, quiet);

    let instruction = Instruction {
        source_prompt: args.prompts.source_prompt.clone(),
        prompt: args.prompts.prompt.clone(),
        negative_prompt: args.prompts.negative_prompt.clone(),
        // The condition images are already at the model's input size.
        controls: specs
            .iter()
            .zip(&session.conditions)
            .zip(&session.net_of)
            .map(|((spec, image), &net)| Control {
                net,
                image: image.image().clone(),
                scale: spec.scale,
            })
            .collect(),
        mask,
    };
    let options = Options {
        method,
        config,
        max_side: session.max_side,
        mask_options: mask_options(args.mask.mask_dilate, args.mask.mask_blur),
        guidance_image: args.save_intermediates.is_some(),
        dtype: args.model.kernel_dtype(),
    };
    rep.start_stages();
    let edited = session
        .pipeline
        .edit(&session.input, &instruction, &options, &mut rep)?;
    debug_assert_eq!(edited.fit, session.fit, "the facade fits the input alike");
    rep.set_stage_times(&edited.timings);
    rep.finish();
    if edited.mask_empty && !quiet {
        eprintln!("note: the mask is empty, so the result is the plain reconstruction (try --mask none or a mask file)");
    }

    rep.phase("write", || {
        output.write(&DynamicImage::ImageRgb8(edited.image.clone()))
    })?;
    if let Some(dir) = &args.save_intermediates {
        let original = session.input.to_rgb8();
        let all = Intermediates {
            input: &original,
            result: &edited.image,
            mask: edited.mask.as_ref(),
            guidance: edited.guidance.as_ref(),
            conditions: specs
                .iter()
                .map(|s| s.condition.kind())
                .zip(&session.conditions)
                .collect(),
        };
        rep.phase("intermediates", || intermediates::write(dir, &all))?;
    }
    rep.finish();
    if args.json {
        let summary = json_summary(output.path(), &edited, method, &rep, args);
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    let (w, h) = edited.image.dimensions();
    rep.print_summary(&format!("wrote {} ({w}x{h})", output.path().display()));
    Ok(())
}

/// The fraction of the image a mask covers (its mean value, 1 = all white).
fn coverage(mask: &GrayImage) -> f64 {
    let n = mask.as_raw().len().max(1) as f64;
    mask.as_raw().iter().map(|&v| f64::from(v)).sum::<f64>() / 255.0 / n
}

/// What `--json` prints: the output, the sizes, the method, the time of
/// each stage and phase, and the mask's coverage.
fn json_summary(
    output: &Path,
    edited: &Edited,
    method: optedit::Method,
    rep: &Reporter,
    args: &EditArgs,
) -> serde_json::Value {
    let fit = &edited.fit;
    let (mw, mh) = fit.size();
    let timings: Vec<serde_json::Value> = rep
        .times()
        .iter()
        .map(|(name, d)| serde_json::json!({ "stage": name, "seconds": d.as_secs_f64() }))
        .collect();
    serde_json::json!({
        "output": output.display().to_string(),
        "input": args.io.image.display().to_string(),
        "input_size": [fit.width, fit.height],
        "scaled_size": [fit.scaled_width, fit.scaled_height],
        "model_size": [mw, mh],
        "method": method.word(),
        "timings": timings,
        "total_seconds": rep.elapsed().as_secs_f64(),
        "mask_coverage": edited.mask.as_ref().map(coverage),
        "mask_empty": edited.mask_empty,
        "intermediates": args.save_intermediates.as_ref().map(|d| d.display().to_string()),
    })
}
