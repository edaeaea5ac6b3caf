//! Edit conditions: a prompt's embeddings plus any number of ControlNets, each
//! with its condition image, conditioning scale and active step range.

use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use optedit_cond::PromptEmbeddings;
use optedit_models::ControlNetModel;

use crate::error::{EditError, Result};

/// One ControlNet instruction (pose, edges, scribble, layout...).
#[derive(Debug, Clone)]
pub struct ControlCondition<'a, B: Backend> {
    /// The ControlNet.
    pub model: &'a ControlNetModel<B>,
    /// Condition image `[1, 3, 8h, 8w]` in `[0, 1]` (from `optedit-cond`).
    pub image: Tensor<B, 4>,
    /// Conditioning scale (diffusers' `controlnet_conditioning_scale`, default 1).
    pub scale: f64,
    /// Fraction of the steps after which the ControlNet starts (default 0).
    pub start: f64,
    /// Fraction of the steps after which it stops (default 1).
    pub end: f64,
}

impl<'a, B: Backend> ControlCondition<'a, B> {
    /// A ControlNet active over all steps at scale 1.
    pub fn new(model: &'a ControlNetModel<B>, image: Tensor<B, 4>) -> Self {
        Self {
            model,
            image,
            scale: 1.0,
            start: 0.0,
            end: 1.0,
        }
    }

    /// Sets the conditioning scale.
    pub fn with_scale(mut self, scale: f64) -> Self {
        self.scale = scale;
        self
    }

    /// Sets the active fraction of the steps, `0 <= start < end <= 1`.
    pub fn with_range(mut self, start: f64, end: f64) -> Self {
        self.start = start;
        self.end = end;
        self
    }

    /// diffusers' `controlnet_keep`: active at step `i` of `total` unless
    /// `i / total < start` or `(i + 1) / total > end`.
    pub fn active(&self, step: usize, total: usize) -> bool {
        let total = total.max(1) as f64;
        !((step as f64) / total < self.start || ((step + 1) as f64) / total > self.end)
    }

    pub(crate) fn validate(&self, index: usize) -> Result<()> {
        if !(self.scale.is_finite()) {
            return Err(EditError::input(
                format!("controls[{index}].scale"),
                "must be finite",
            ));
        }
        if !(0.0 <= self.start && self.start < self.end && self.end <= 1.0) {
            return Err(EditError::input(
                format!("controls[{index}]"),
                format!(
                    "start {} / end {} must satisfy 0 <= start < end <= 1",
                    self.start, self.end
                ),
            ));
        }
        Ok(())
    }
}

/// What the edit should produce: the target prompt's embeddings (and its
/// negative prompt's, for classifier-free guidance) and the ControlNets.
#[derive(Debug, Clone)]
pub struct EditCondition<'a, B: Backend> {
    /// Target prompt embeddings (`cond`) and negative-prompt embeddings (`uncond`).
    pub prompt: PromptEmbeddings<B>,
    /// ControlNet instructions, applied together (their residuals add up).
    pub controls: Vec<ControlCondition<'a, B>>,
}

impl<'a, B: Backend> EditCondition<'a, B> {
    /// A text-only condition.
    pub fn text(prompt: PromptEmbeddings<B>) -> Self {
        Self {
            prompt,
            controls: Vec::new(),
        }
    }

    /// Adds a ControlNet instruction.
    pub fn with_control(mut self, control: ControlCondition<'a, B>) -> Self {
        self.controls.push(control);
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        self.controls
            .iter()
            .enumerate()
            .try_for_each(|(i, c)| c.validate(i))
    }
}

impl<B: AutodiffBackend> EditCondition<'_, B> {
    /// The condition's ControlNets on the inner backend (shared weights),
    /// for [`inner`](Self::inner) to borrow.
    pub fn inner_nets(&self) -> Vec<ControlNetModel<B::InnerBackend>> {
        self.controls.iter().map(|c| c.model.valid()).collect()
    }

    /// The same condition on the inner (forward-only) backend, with the
    /// ControlNets of [`inner_nets`](Self::inner_nets) (in order).
    pub fn inner<'n>(
        &self,
        nets: &'n [ControlNetModel<B::InnerBackend>],
    ) -> EditCondition<'n, B::InnerBackend> {
        EditCondition {
            prompt: self.prompt.inner(),
            controls: self
                .controls
                .iter()
                .zip(nets)
                .map(|(c, model)| ControlCondition {
                    model,
                    image: c.image.clone().inner(),
                    scale: c.scale,
                    start: c.start,
                    end: c.end,
                })
                .collect(),
        }
    }
}

/// Embeddings of a source prompt (may be the empty prompt).
pub type SourceCondition<B> = PromptEmbeddings<B>;

/// Helper: the embeddings of one prompt repeated `n` times along the batch.
pub(crate) fn repeat_batch<B: Backend, const D: usize>(t: &Tensor<B, D>, n: usize) -> Tensor<B, D> {
    if t.dims()[0] == n {
        t.clone()
    } else {
        t.clone().repeat_dim(0, n)
    }
}
