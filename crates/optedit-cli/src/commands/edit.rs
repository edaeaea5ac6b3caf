//! `optedit edit`: the whole method, or a baseline.

use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use image::DynamicImage;
use optedit_edit::{Editor, EstimatedMask, FullMask, MaskSource, UserMask};

use super::intermediates::{self, Intermediates};
use super::{input_files, mask_options, MaskChoice, Session};
use crate::args::{EditArgs, Method};
use crate::controls::ControlSpec;
use crate::io::{self, Crop, Output};
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
    if method == Method::Sdedit && args.mask.mask.is_some() {
        return Err(UsageError(
            "--mask has no effect with --method sdedit (SDEdit uses no mask)".into(),
        )
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
    let mask_image = mask_file.map(io::read_image).transpose()?;

    let quiet = args.io.quiet;
    let mut rep = Reporter::new(quiet);
    let canny = (args.controls.canny_low, args.controls.canny_high);
    let session = Session::<B>::open(&args.model, &args.io.image, specs, canny, &mut rep, &device)?;
    session.note_crop(&args.io.image, quiet);
    let crop = session.crop;
    let (source, condition) = rep.phase("prompts", || session.condition(&args.prompts, specs))?;

    let options = mask_options(args.mask.mask_dilate, args.mask.mask_blur);
    let mut mask_source: Box<dyn MaskSource<B>> = match (&choice, mask_image) {
        (MaskChoice::File(path), Some(img)) => {
            let pixels = user_mask_pixels(&img, &crop);
            let mask = UserMask::new(pixels, crop.width as usize, crop.height as usize)
                .map_err(|e| anyhow::anyhow!("--mask {}: {e}", path.display()))?;
            Box::new(mask.with_options(options))
        }
        (MaskChoice::Full, _) => Box::new(FullMask),
        _ => Box::new(EstimatedMask {
            options,
            ..EstimatedMask::default()
        }),
    };

    let editor = Editor::new(&session.pipeline, config)?;
    let image = session.image.clone();
    rep.start_stages();
    let (result, mask, guidance): (Tensor<B, 4>, Option<Tensor<B, 4>>, Option<Tensor<B, 4>>) =
        match method {
            Method::Optimise => {
                let out =
                    editor.edit(image, &source, &condition, mask_source.as_mut(), &mut rep)?;
                rep.set_stage_times(&out.timings);
                if out.mask_empty && !quiet {
                    eprintln!("note: the mask is empty, so the result is the plain reconstruction (try --mask none or a mask file)");
                }
                (
                    out.image,
                    Some(out.mask),
                    out.guidance.map(|g| g.last().clone()),
                )
            }
            Method::Diffedit => {
                let out =
                    editor.diffedit(image, &source, &condition, mask_source.as_mut(), &mut rep)?;
                (out.image, out.mask, None)
            }
            Method::Sdedit => {
                let out = editor.sdedit(image, &condition, &mut rep)?;
                (out.image, out.mask, None)
            }
        };
    rep.finish();

    let original = session.input.to_rgb8();
    let edited = crop.paste(&original, &io::tensor_to_image(result)?);
    rep.phase("write", || {
        output.write(&DynamicImage::ImageRgb8(edited.clone()))
    })?;

    if let Some(dir) = &args.save_intermediates {
        let guidance_image = match guidance {
            Some(latent) => {
                Some(crop.paste(&original, &io::tensor_to_image(editor.decode(latent)?)?))
            }
            None => None,
        };
        let factor = session.pipeline.vae_scale();
        let mask_image = mask
            .map(|m| io::mask_to_image(m, factor))
            .transpose()?
            .map(|m| crop.embed_gray(&m));
        let all = Intermediates {
            input: &original,
            result: &edited,
            mask: mask_image.as_ref(),
            guidance: guidance_image.as_ref(),
            conditions: specs
                .iter()
                .map(|s| s.condition.kind())
                .zip(&session.conditions)
                .collect(),
        };
        rep.phase("intermediates", || intermediates::write(dir, &all))?;
    }
    let (w, h) = original.dimensions();
    rep.print_summary(&format!("wrote {} ({w}x{h})", output.path().display()));
    Ok(())
}

/// A mask image as values in `[0, 1]` at the crop's size: one the input's
/// size is cropped like it, any other size resized.
fn user_mask_pixels(image: &DynamicImage, crop: &Crop) -> Vec<f32> {
    let gray = if crop.is_full_size((image.width(), image.height())) {
        crop.apply(image).to_luma8()
    } else {
        image.to_luma8()
    };
    let gray = if gray.dimensions() == (crop.width, crop.height) {
        gray
    } else {
        optedit_cond::image::resize_max(&gray, crop.width, crop.height)
    };
    gray.pixels().map(|p| f32::from(p[0]) / 255.0).collect()
}
