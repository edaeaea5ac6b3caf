//! The subcommands, and what the model-based ones share: reading the input,
//! loading the models, fitting the input to them, and building the
//! condition images.

pub mod batch;
pub mod edges;
pub mod edit;
pub mod eval;
mod intermediates;
pub mod mask;
pub mod pose_render;
pub mod reconstruct;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::{backend::AutodiffBackend, Tensor};
use image::DynamicImage;
use optedit::conditions;
use optedit::images::Fit;
use optedit::Pipeline;
use optedit_cond::image::rgb_to_signed_tensor;
use optedit_cond::{ConditionImage, PromptEmbeddings};
use optedit_edit::{ControlCondition, EditCondition, MaskOptions};

use crate::args::{ModelArgs, PromptArgs};
use crate::controls::ControlSpec;
use crate::models;
use crate::progress::Reporter;
use crate::UsageError;

/// What `--mask` asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum MaskChoice {
    /// Estimated (DiffEdit-style).
    Auto,
    /// The whole image.
    Full,
    /// A mask image.
    File(PathBuf),
}

impl MaskChoice {
    /// From the flag's value (absent = `auto`).
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            None | Some("auto") => Self::Auto,
            Some("none") => Self::Full,
            Some(path) => Self::File(PathBuf::from(path)),
        }
    }
}

/// Dilation and blur in latent pixels.
pub fn mask_options(dilate: usize, blur: usize) -> MaskOptions {
    MaskOptions { dilate, blur }
}

/// The input files of a run (checked against the output path).
pub fn input_files<'a>(
    image: &'a Path,
    specs: &'a [ControlSpec],
    extra: Option<&'a Path>,
) -> Vec<&'a Path> {
    let mut inputs = vec![image];
    inputs.extend(specs.iter().filter_map(|s| s.condition.file()));
    inputs.extend(extra);
    inputs
}

/// How a command sizes its input for the models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sizing {
    /// The input's size, only centre-cropped to the VAE's factor.
    Full,
    /// Scaled down to at most this side first (`None`: the model's
    /// default, [`Pipeline::default_max_side`]).
    AtMost(Option<u32>),
}

/// The loaded models and the prepared input of a model-based command.
pub struct Session<B: AutodiffBackend> {
    /// Stable Diffusion and the distinct ControlNets.
    pub pipeline: Pipeline<B>,
    /// For each group, the index of its ControlNet in the pipeline.
    pub net_of: Vec<usize>,
    /// The input image as read (upright by its EXIF orientation).
    pub input: DynamicImage,
    /// The longest side the models see (`None`: no limit).
    pub max_side: Option<u32>,
    /// How the input is fitted to the models (and the result put back).
    pub fit: Fit,
    /// Condition image of each group, at the model's input size.
    pub conditions: Vec<ConditionImage>,
}

impl<B: AutodiffBackend> Session<B> {
    /// Reads the input and the condition files (cheap failures first), then
    /// loads the models, fits the input to them as `sizing` says, and builds
    /// the condition images at the model's input size.
    pub fn open(
        model: &ModelArgs,
        image: &Path,
        specs: &[ControlSpec],
        canny: (f64, f64),
        sizing: Sizing,
        reporter: &mut Reporter,
        device: &B::Device,
    ) -> Result<Self> {
        let input = optedit::images::read(image)?;
        let size = (input.width(), input.height());
        let sources = specs
            .iter()
            .map(|s| Ok(conditions::read_source(&s.condition, size)?))
            .collect::<Result<Vec<_>>>()?;
        let (pipeline, net_of) = reporter.phase("load", || -> Result<_> {
            let pipeline = models::load_pipeline::<B>(&model.model, device)?;
            models::add_controlnets(pipeline, specs)
        })?;
        let max_side = match sizing {
            Sizing::Full => None,
            Sizing::AtMost(n) => n.or_else(|| pipeline.default_max_side()),
        };
        let factor = pipeline.sd().vae_scale() as u32;
        if let Sizing::AtMost(Some(n)) = sizing {
            if n < factor {
                return Err(UsageError(format!(
                    "--max-size {n}: smaller than the model's VAE factor {factor}"
                ))
                .into());
            }
        }
        let fit = Fit::new(size.0, size.1, max_side, factor)
            .with_context(|| image.display().to_string())?;
        let conditions = specs
            .iter()
            .zip(&sources)
            .map(|(spec, source)| {
                Ok(conditions::condition_image(
                    source,
                    &spec.condition,
                    &input,
                    &fit,
                    canny,
                )?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            pipeline,
            net_of,
            input,
            max_side,
            fit,
            conditions,
        })
    }

    /// The model's input, `[1, 3, H, W]` in `[-1, 1]`.
    pub fn image(&self) -> Tensor<B, 4> {
        rgb_to_signed_tensor::<B>(
            &self.fit.apply(&self.input.to_rgb8()),
            &self.pipeline.sd().device,
        )
    }

    /// Source embeddings and the edit condition (target prompt + ControlNets).
    pub fn condition(
        &self,
        prompts: &PromptArgs,
        specs: &[ControlSpec],
    ) -> Result<(PromptEmbeddings<B>, EditCondition<'_, B>)> {
        let p = self.pipeline.sd();
        let source = p.encode_prompt(&prompts.source_prompt, None)?;
        let target = p.encode_prompt(&prompts.prompt, prompts.negative_prompt.as_deref())?;
        let nets = self.pipeline.controlnets();
        let controls = specs
            .iter()
            .zip(&self.conditions)
            .zip(&self.net_of)
            .map(|((spec, image), &i)| {
                ControlCondition::new(&nets[i], image.to_tensor::<B>(&p.device))
                    .with_scale(spec.scale)
            })
            .collect();
        Ok((
            source,
            EditCondition {
                prompt: target,
                controls,
            },
        ))
    }

    /// Tells (on stderr, unless quiet) when the input was scaled or cropped.
    pub fn note_fit(&self, image: &Path, quiet: bool) {
        let f = &self.fit;
        let (w, h) = f.size();
        if quiet || (w, h) == (f.width, f.height) {
            return;
        }
        let scaled = if f.is_scaled() {
            format!(
                "scaled to {}x{} (--max-size), then ",
                f.scaled_width, f.scaled_height
            )
        } else {
            String::new()
        };
        eprintln!(
            "note: {} is {}x{}; the models see it {scaled}centre-cropped to {w}x{h}; the result is put back at {}x{} and the cropped-off border keeps its original pixels",
            image.display(),
            f.width,
            f.height,
            f.width,
            f.height
        );
    }
}
