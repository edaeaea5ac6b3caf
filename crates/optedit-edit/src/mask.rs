//! Edit masks at latent resolution (`[1, 1, h, w]`, 1 = may change) and the
//! [`MaskSource`] trait: the user's pixel mask, an estimated DiffEdit-style
//! mask, or the whole image; with dilation and blur options.

use burn::tensor::module::{avg_pool2d, max_pool2d};
use burn::tensor::{backend::Backend, Tensor, TensorData};

use crate::condition::EditCondition;
use crate::diffedit::{estimate_mask, DiffEditMaskConfig, MaskDraws};
use crate::error::{EditError, Result};
use crate::noise::NoiseSource;
use crate::pipeline::SdPipeline;

/// What a mask source may use.
pub struct MaskContext<'a, 'c, B: Backend> {
    /// The models.
    pub pipeline: &'a SdPipeline<B>,
    /// The input image `[1, 3, H, W]` in `[-1, 1]`.
    pub image: &'a Tensor<B, 4>,
    /// Source prompt embeddings.
    pub source: &'a optedit_cond::PromptEmbeddings<B>,
    /// The edit condition.
    pub target: &'a EditCondition<'c, B>,
    /// Classifier-free guidance scale of the edit.
    pub guidance_scale: f64,
    /// Seed for random draws.
    pub seed: u64,
}

/// Produces the edit mask.
pub trait MaskSource<B: Backend> {
    /// The mask `[1, 1, h, w]` in `[0, 1]` at latent resolution.
    fn mask(&mut self, ctx: &MaskContext<'_, '_, B>) -> Result<Tensor<B, 4>>;
}

/// Post-processing of a binary mask, in latent pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MaskOptions {
    /// Grow the mask by this many latent pixels (max filter).
    pub dilate: usize,
    /// Then soften it with a box blur of this radius (0 keeps it binary).
    pub blur: usize,
}

impl MaskOptions {
    /// Applies dilation then blur to `mask` `[1, 1, h, w]`.
    pub fn apply<B: Backend>(&self, mask: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut m = mask;
        if self.dilate > 0 {
            let r = self.dilate;
            m = max_pool2d(m, [2 * r + 1, 2 * r + 1], [1, 1], [r, r], [1, 1], false);
        }
        if self.blur > 0 {
            let r = self.blur;
            m = avg_pool2d(m, [2 * r + 1, 2 * r + 1], [1, 1], [r, r], false, false);
        }
        m
    }
}

/// The whole image may change.
#[derive(Debug, Clone, Copy, Default)]
pub struct FullMask;

impl<B: Backend> MaskSource<B> for FullMask {
    fn mask(&mut self, ctx: &MaskContext<'_, '_, B>) -> Result<Tensor<B, 4>> {
        let [_, _, h, w] = ctx.image.dims();
        let [lh, lw] = ctx.pipeline.latent_size(h, w);
        Ok(Tensor::ones([1, 1, lh, lw], &ctx.pipeline.device))
    }
}

/// A user mask given at pixel resolution (values in `[0, 1]`, row-major
/// `height x width`), reduced to latent resolution by the share of masked
/// pixels in each latent cell (a cell is masked when at least `threshold` of
/// it is), then post-processed.
#[derive(Debug, Clone, PartialEq)]
pub struct UserMask {
    /// Pixel values in `[0, 1]`.
    pub pixels: Vec<f32>,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Share of a latent cell that must be masked (default 0.5).
    pub threshold: f32,
    /// Dilation and blur.
    pub options: MaskOptions,
}

impl UserMask {
    /// A mask from pixel values (checked: length and range).
    pub fn new(pixels: Vec<f32>, width: usize, height: usize) -> Result<Self> {
        if width == 0 || height == 0 || pixels.len() != width * height {
            return Err(EditError::input(
                "mask",
                format!("{} values for a {width}x{height} mask", pixels.len()),
            ));
        }
        if let Some(v) = pixels.iter().find(|v| !(0.0..=1.0).contains(*v)) {
            return Err(EditError::input(
                "mask",
                format!("value {v} outside [0, 1]"),
            ));
        }
        Ok(Self {
            pixels,
            width,
            height,
            threshold: 0.5,
            options: MaskOptions::default(),
        })
    }

    /// Sets dilation and blur.
    pub fn with_options(mut self, options: MaskOptions) -> Self {
        self.options = options;
        self
    }

    /// The mask at latent resolution `[1, 1, h / f, w / f]` for scale `f`.
    pub fn to_latent<B: Backend>(&self, factor: usize, device: &B::Device) -> Result<Tensor<B, 4>> {
        if self.width % factor != 0 || self.height % factor != 0 {
            return Err(EditError::input(
                "mask",
                format!(
                    "{}x{} is not a multiple of {factor}",
                    self.width, self.height
                ),
            ));
        }
        let t = Tensor::<B, 4>::from_data(
            TensorData::new(self.pixels.clone(), [1, 1, self.height, self.width]),
            device,
        );
        let share = avg_pool2d(t, [factor, factor], [factor, factor], [0, 0], true, false);
        let binary = share.greater_equal_elem(self.threshold).float();
        Ok(self.options.apply(binary))
    }
}

impl<B: Backend> MaskSource<B> for UserMask {
    fn mask(&mut self, ctx: &MaskContext<'_, '_, B>) -> Result<Tensor<B, 4>> {
        let [_, _, h, w] = ctx.image.dims();
        if (h, w) != (self.height, self.width) {
            return Err(EditError::input(
                "mask",
                format!("{}x{} but the image is {w}x{h}", self.width, self.height),
            ));
        }
        self.to_latent(ctx.pipeline.vae_scale(), &ctx.pipeline.device)
    }
}

/// A mask estimated from where the edit condition's noise prediction departs
/// from the source condition's (DiffEdit, Couairon et al. arXiv 2210.11427,
/// as diffusers' `generate_mask`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EstimatedMask {
    /// Estimation parameters.
    pub config: DiffEditMaskConfig,
    /// Dilation and blur.
    pub options: MaskOptions,
}

impl<B: Backend> MaskSource<B> for EstimatedMask {
    fn mask(&mut self, ctx: &MaskContext<'_, '_, B>) -> Result<Tensor<B, 4>> {
        let [_, _, h, w] = ctx.image.dims();
        let [lh, lw] = ctx.pipeline.latent_size(h, w);
        let channels = ctx.pipeline.vae.config.latent_channels;
        let mut noise = NoiseSource::new(ctx.seed ^ 0x6d61_736b);
        let shape = [self.config.num_maps, channels, lh, lw];
        let draws = MaskDraws {
            vae_noise: noise.normal(shape, &ctx.pipeline.device),
            add_noise: noise.normal(shape, &ctx.pipeline.device),
        };
        let est = estimate_mask(
            ctx.pipeline,
            ctx.image.clone(),
            ctx.source,
            ctx.target,
            ctx.guidance_scale,
            &self.config,
            draws,
        )?;
        Ok(self.options.apply(est.mask.unsqueeze_dim(1)))
    }
}
