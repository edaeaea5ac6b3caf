//! [`Pipeline`]: a diffusers folder (and ControlNet folders) loaded once,
//! then [`Pipeline::edit`] a photo with an [`Instruction`] and [`Options`].

use std::path::Path;
use std::time::Duration;

use burn::module::Module;
use burn::tensor::backend::AutodiffBackend;
use image::{DynamicImage, GrayImage, RgbImage};
use optedit_cond::image::{
    latent_mask_to_gray, rgb_to_signed_tensor, tensor_to_rgb, ConditionImage,
};
use optedit_edit::{
    ControlCondition, EditCondition, EditConfig, Editor, EstimatedMask, FullMask, MaskOptions,
    MaskSource, Method, Progress, SdPipeline, Stage, UserMask,
};
use optedit_models::kernels::{with_compute_dtype, ComputeDtype};
use optedit_models::ControlNetModel;

use crate::error::{Error, Result};
use crate::images::Fit;

/// The longest side [`Options::max_side`] defaults to for full-size Stable
/// Diffusion models (native size 512 or more): SD 1.5 edits well up to
/// about 768 pixels. Models trained larger (SDXL's 1024) keep their native
/// size.
pub const SD_MAX_SIDE: u32 = 768;

/// A Stable Diffusion model folder and its ControlNets, loaded once.
#[derive(Debug)]
pub struct Pipeline<B: AutodiffBackend> {
    sd: SdPipeline<B>,
    controlnets: Vec<ControlNetModel<B>>,
}

/// Refuses what is not a diffusers folder, naming `path`: pickle
/// checkpoints with the safetensors advice, single files with a folder hint.
fn check_folder(path: &Path, argument: &str) -> Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    if !path.exists() {
        return Err(Error::argument(
            argument,
            format!("{}: no such folder", path.display()),
        ));
    }
    optedit_models::loader::refuse_pickle(path)?;
    Err(Error::argument(
        argument,
        format!(
            "{}: not a folder; give a diffusers model folder (with safetensors weights)",
            path.display()
        ),
    ))
}

impl<B: AutodiffBackend> Pipeline<B> {
    /// Loads a diffusers Stable Diffusion folder of either family, told
    /// apart by its `model_index.json`: SD 1.x and 2.x
    /// (`StableDiffusionPipeline`: `unet/`, `vae/`, `text_encoder/`,
    /// `tokenizer/`, `scheduler/`) or SDXL (`StableDiffusionXLPipeline`,
    /// with `text_encoder_2/` and `tokenizer_2/`); see
    /// [`optedit_edit::SdPipeline::load`].
    pub fn load(model: impl AsRef<Path>, device: &B::Device) -> Result<Self> {
        let model = model.as_ref();
        check_folder(model, "model")?;
        Ok(Self {
            sd: SdPipeline::load(model, device)?,
            controlnets: Vec::new(),
        })
    }

    /// Adds a ControlNet folder; [`Control::net`] names it by the order of
    /// these calls (the first is 0).
    pub fn with_controlnet(mut self, folder: impl AsRef<Path>) -> Result<Self> {
        let folder = folder.as_ref();
        check_folder(folder, "controlnet")?;
        let net = ControlNetModel::<B>::load(folder, &self.sd.device)?.no_grad();
        self.controlnets.push(net);
        Ok(self)
    }

    /// The Stable Diffusion models, for the lower-level API of
    /// [`optedit_edit`].
    pub fn sd(&self) -> &SdPipeline<B> {
        &self.sd
    }

    /// The ControlNets, in the order they were added.
    pub fn controlnets(&self) -> &[ControlNetModel<B>] {
        &self.controlnets
    }

    /// The side the UNet was trained at in pixels (its `sample_size` times
    /// the VAE's factor), when its config says.
    pub fn native_side(&self) -> Option<u32> {
        let sample = self.sd.unet.config.sample_size.as_ref()?;
        let side = match sample {
            optedit_models::config::IntOrList::Int(v) => *v,
            optedit_models::config::IntOrList::List(v) => *v.iter().max()?,
        };
        u32::try_from(side * self.sd.vae_scale()).ok()
    }

    /// The longest side an input is scaled down to when [`Options::max_side`]
    /// is `None`: [`SD_MAX_SIDE`] for full-size models, the native side
    /// for smaller ones (the demo model's 128), no limit without a
    /// `sample_size`.
    pub fn default_max_side(&self) -> Option<u32> {
        self.native_side()
            .map(|n| if n >= 512 { SD_MAX_SIDE.max(n) } else { n })
    }

    /// How [`Pipeline::edit`] fits a `width x height` input to the model
    /// under `options` ([`Options::max_side`], else
    /// [`Pipeline::default_max_side`]): the size condition images given
    /// at the model's size must have.
    ///
    /// # Errors
    /// An input or `max_side` too small for the VAE's factor.
    pub fn fit(&self, width: u32, height: u32, options: &Options) -> Result<Fit> {
        let factor = self.sd.vae_scale() as u32;
        let max_side = options.max_side.or_else(|| self.default_max_side());
        Fit::new(width, height, max_side, factor)
    }

    /// Edits `image` as `instruction` says; the result has `image`'s size.
    ///
    /// The image is scaled down to [`Options::max_side`] and centre-cropped
    /// to multiples of the VAE's factor ([`Fit`]); the result is scaled
    /// back and pasted into the input, whose border the crop dropped keeps
    /// its pixels. `progress` sees every step ([`optedit_edit::Silent`]
    /// for none).
    ///
    /// # Errors
    /// A control naming no loaded ControlNet, a mask with SDEdit, bf16 on a
    /// CPU without a bf16 unit, bad
    /// configuration, a model failure or divergence ([`Error`]).
    pub fn edit(
        &self,
        image: &DynamicImage,
        instruction: &Instruction,
        options: &Options,
        progress: &mut dyn Progress,
    ) -> Result<Edited> {
        with_compute_dtype(options.dtype, || {
            self.edit_in_dtype(image, instruction, options, progress)
        })?
    }

    /// [`Pipeline::edit`] in the compute dtype already set.
    fn edit_in_dtype(
        &self,
        image: &DynamicImage,
        instruction: &Instruction,
        options: &Options,
        progress: &mut dyn Progress,
    ) -> Result<Edited> {
        options.config.validate()?;
        if !options.method.uses_mask() && !matches!(instruction.mask, MaskChoice::Estimated) {
            return Err(Error::argument(
                "mask",
                format!(
                    "{} uses no mask; leave it at MaskChoice::Estimated",
                    options.method
                ),
            ));
        }
        let factor = self.sd.vae_scale() as u32;
        let fit = self.fit(image.width(), image.height(), options)?;
        let (w, h) = fit.size();
        let device = &self.sd.device;
        let original = image.to_rgb8();
        let input = fit.apply(&original);

        let config = EditConfig {
            // The guidance image is the guidance stage's clean latent.
            guidance_to_end: options.config.guidance_to_end || options.guidance_image,
            ..options.config.clone()
        };
        let editor = Editor::new(&self.sd, config)?;
        let source = editor.encode_prompt(&instruction.source_prompt, None)?;
        let target =
            editor.encode_prompt(&instruction.prompt, instruction.negative_prompt.as_deref())?;
        let mut controls = Vec::new();
        for (i, control) in instruction.controls.iter().enumerate() {
            let net = self.controlnets.get(control.net).ok_or_else(|| {
                Error::argument(
                    &format!("controls[{i}].net"),
                    format!(
                        "{} names no ControlNet: {} loaded",
                        control.net,
                        self.controlnets.len()
                    ),
                )
            })?;
            let condition = if control.image.dimensions() == (w, h) {
                control.image.clone()
            } else if control.image.dimensions() == (image.width(), image.height()) {
                fit.apply(&control.image)
            } else {
                optedit_cond::image::resize_smooth(&control.image, w, h)
            };
            let condition = ConditionImage::new(condition)?;
            controls.push(
                ControlCondition::new(net, condition.to_tensor::<B>(device))
                    .with_scale(control.scale),
            );
        }
        let condition = EditCondition {
            prompt: target,
            controls,
        };
        let mut mask_source: Box<dyn MaskSource<B::InnerBackend>> = match &instruction.mask {
            MaskChoice::Estimated => Box::new(EstimatedMask {
                options: options.mask_options,
                ..EstimatedMask::default()
            }),
            MaskChoice::Full => Box::new(FullMask),
            MaskChoice::Image(m) => {
                let m = fit.apply_gray(m);
                let pixels = m.pixels().map(|p| f32::from(p[0]) / 255.0).collect();
                Box::new(
                    UserMask::new(pixels, w as usize, h as usize)?
                        .with_options(options.mask_options),
                )
            }
        };

        let tensor = rgb_to_signed_tensor::<B>(&input, device);
        let out = editor.edit_with(
            options.method,
            tensor,
            &source,
            &condition,
            mask_source.as_mut(),
            progress,
        )?;
        let guidance = match &out.guidance {
            Some(g) if options.guidance_image => Some(g.last().clone()),
            _ => None,
        };
        let (result, mask, timings, mask_empty) =
            (out.image, out.mask, out.timings, out.mask_empty);
        let guidance = guidance
            .map(|latent| -> Result<RgbImage> {
                Ok(fit.restore(&original, &tensor_to_rgb(editor.decode(latent)?)?))
            })
            .transpose()?;
        let edited = tensor_to_rgb(result)?;
        let mask = mask
            .map(|m| latent_mask_to_gray(m, factor))
            .transpose()?
            .map(|m| fit.restore_gray(&m));
        Ok(Edited {
            image: fit.restore(&original, &edited),
            model_image: edited,
            mask,
            mask_empty,
            guidance,
            fit,
            timings,
        })
    }
}

/// What to change: the prompts, any ControlNet conditions, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// What the image shows now (the inversion's and the mask's source).
    pub source_prompt: String,
    /// What it should show.
    pub prompt: String,
    /// What it should not show (classifier-free guidance's negative).
    pub negative_prompt: Option<String>,
    /// ControlNet conditions (a pose, edges, a scribble, a layout).
    pub controls: Vec<Control>,
    /// Where the image may change.
    pub mask: MaskChoice,
}

impl Instruction {
    /// A text edit from `source_prompt` to `prompt`, under an estimated mask.
    pub fn new(source_prompt: impl Into<String>, prompt: impl Into<String>) -> Self {
        Self {
            source_prompt: source_prompt.into(),
            prompt: prompt.into(),
            negative_prompt: None,
            controls: Vec::new(),
            mask: MaskChoice::Estimated,
        }
    }

    /// Adds a ControlNet condition.
    pub fn with_control(mut self, control: Control) -> Self {
        self.controls.push(control);
        self
    }

    /// Sets where the image may change.
    pub fn with_mask(mut self, mask: MaskChoice) -> Self {
        self.mask = mask;
        self
    }

    /// Sets the negative prompt.
    pub fn with_negative_prompt(mut self, negative: impl Into<String>) -> Self {
        self.negative_prompt = Some(negative.into());
        self
    }
}

/// One ControlNet condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    /// Which ControlNet, by the order of [`Pipeline::with_controlnet`].
    pub net: usize,
    /// The condition image: the model's input size, the input photo's size
    /// (fitted like it) or any other (resized).
    pub image: RgbImage,
    /// Conditioning scale (1 is the ControlNet's full strength).
    pub scale: f64,
}

/// Where the image may change.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub enum MaskChoice {
    /// Estimated from the two prompts, as DiffEdit does.
    #[default]
    Estimated,
    /// Everywhere.
    Full,
    /// A mask image (white may change): the input's size (fitted like it)
    /// or any other (resized).
    Image(GrayImage),
}

/// How to edit.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Which editor.
    pub method: Method,
    /// Every knob of the edit.
    pub config: EditConfig,
    /// The longest side the model sees; larger inputs are scaled down
    /// (`None`: [`Pipeline::default_max_side`]).
    pub max_side: Option<u32>,
    /// Dilation and blur of the mask (estimated or given), in latent pixels.
    pub mask_options: MaskOptions,
    /// Also decode the end of the guidance trajectory into
    /// [`Edited::guidance`] (one more VAE decode; only
    /// [`Method::Optimise`] with lambda below 1 makes one).
    pub guidance_image: bool,
    /// How the CPU kernels multiply during the edit: f32 (default), or
    /// bf16 operands with f32 accumulation on CPUs with AMX or AVX512-BF16
    /// ([`ComputeDtype::auto`] picks bf16 where it is native). Set
    /// process-wide for the edit's duration
    /// ([`optedit_models::kernels::with_compute_dtype`]); other backends
    /// ignore it.
    pub dtype: ComputeDtype,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            method: Method::Optimise,
            config: EditConfig::default(),
            max_side: None,
            mask_options: MaskOptions::default(),
            guidance_image: false,
            dtype: ComputeDtype::F32,
        }
    }
}

/// An edit's result.
#[derive(Debug, Clone)]
pub struct Edited {
    /// The edited image at the input's size.
    pub image: RgbImage,
    /// The result at the model's size, before it was put back.
    pub model_image: RgbImage,
    /// The mask used, at the input's size (none for SDEdit).
    pub mask: Option<GrayImage>,
    /// Whether the optimisation's mask was empty, so that the result is the
    /// plain reconstruction of the input.
    pub mask_empty: bool,
    /// The decoded end of the guidance trajectory at the input's size, when
    /// [`Options::guidance_image`] asked for it and one was made.
    pub guidance: Option<RgbImage>,
    /// How the input was fitted to the model.
    pub fit: Fit,
    /// Wall time of each stage.
    pub timings: Vec<(Stage, Duration)>,
}

impl Edited {
    /// The whole edit's wall time.
    pub fn total_time(&self) -> Duration {
        self.timings.iter().map(|(_, d)| *d).sum()
    }
}
