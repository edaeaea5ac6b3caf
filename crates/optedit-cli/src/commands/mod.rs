//! The subcommands, and what the model-based ones share: reading the input,
//! loading the models, cropping, and building the edit condition.

pub mod edges;
pub mod edit;
pub mod eval;
mod intermediates;
pub mod mask;
pub mod pose_render;
pub mod reconstruct;

use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::tensor::{backend::Backend, Tensor};
use image::DynamicImage;
use optedit_cond::{ConditionImage, PromptEmbeddings};
use optedit_edit::{ControlCondition, EditCondition, MaskOptions, SdPipeline};
use optedit_models::ControlNetModel;

use crate::args::{ModelArgs, PromptArgs};
use crate::controls::{self, ControlSpec};
use crate::io::{self, Crop};
use crate::models;
use crate::progress::Reporter;

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

/// The loaded models and the prepared input of a model-based command.
pub struct Session<B: Backend> {
    /// Stable Diffusion.
    pub pipeline: SdPipeline<B>,
    /// Distinct ControlNets.
    pub nets: Vec<ControlNetModel<B>>,
    /// For each group, the index of its ControlNet.
    pub net_of: Vec<usize>,
    /// The input image as read.
    pub input: DynamicImage,
    /// The crop the models see.
    pub crop: Crop,
    /// The cropped input, `[1, 3, H, W]` in `[-1, 1]`.
    pub image: Tensor<B, 4>,
    /// Condition image of each group, at the crop's size.
    pub conditions: Vec<ConditionImage>,
}

impl<B: Backend> Session<B> {
    /// Reads the input and the condition files (cheap failures first), then
    /// loads the models and builds the condition images for the crop.
    pub fn open(
        model: &ModelArgs,
        image: &Path,
        specs: &[ControlSpec],
        canny: (f64, f64),
        reporter: &mut Reporter,
        device: &B::Device,
    ) -> Result<Self> {
        let input = io::read_image(image)?;
        let size = (input.width(), input.height());
        let sources = specs
            .iter()
            .map(|s| controls::read_source(s, size))
            .collect::<Result<Vec<_>>>()?;
        let (pipeline, (nets, net_of)) = reporter.phase("load", || -> Result<_> {
            Ok((
                models::load_pipeline::<B>(&model.model, device)?,
                models::load_controlnets::<B>(specs, device)?,
            ))
        })?;
        let crop = Crop::centre(size.0, size.1, pipeline.vae_scale(), image)?;
        let conditions = specs
            .iter()
            .zip(&sources)
            .map(|(spec, source)| controls::condition_image(source, spec, &input, &crop, canny))
            .collect::<Result<Vec<_>>>()?;
        let tensor = io::image_to_tensor::<B>(&crop.apply(&input).to_rgb8(), device);
        Ok(Self {
            pipeline,
            nets,
            net_of,
            input,
            crop,
            image: tensor,
            conditions,
        })
    }

    /// Source embeddings and the edit condition (target prompt + ControlNets).
    pub fn condition(
        &self,
        prompts: &PromptArgs,
        specs: &[ControlSpec],
    ) -> Result<(PromptEmbeddings<B>, EditCondition<'_, B>)> {
        let p = &self.pipeline;
        let source = p.encode_prompt(&prompts.source_prompt, None)?;
        let target = p.encode_prompt(&prompts.prompt, prompts.negative_prompt.as_deref())?;
        let controls = specs
            .iter()
            .zip(&self.conditions)
            .zip(&self.net_of)
            .map(|((spec, image), &i)| {
                ControlCondition::new(&self.nets[i], image.to_tensor::<B>(&p.device))
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

    /// Tells (on stderr, unless quiet) when the input was cropped.
    pub fn note_crop(&self, image: &Path, quiet: bool) {
        let c = &self.crop;
        if !quiet && !c.is_identity() {
            eprintln!(
                "note: {} is {}x{}; the models see its centred {}x{} crop and the border keeps its original pixels",
                image.display(),
                c.full_width,
                c.full_height,
                c.width,
                c.height
            );
        }
    }
}
