//! Prompt encoding: prompts and negative prompts to the CLIP embeddings the
//! UNet and ControlNet cross-attend to, as diffusers' `encode_prompt` makes them
//! (ids padded to 77, no attention mask, `last_hidden_state`).

use std::path::Path;

use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor};
use optedit_models::{ClipTextModel, ClipTextOutput};

use crate::error::{CondError, Result};
use crate::tokenizer::ClipTokenizer;

/// Conditional and unconditional embeddings for classifier-free guidance.
#[derive(Debug, Clone)]
pub struct PromptEmbeddings<B: Backend> {
    /// Embeddings of the prompts, `[prompts, 77, hidden]`.
    pub cond: Tensor<B, 3>,
    /// Embeddings of the negative prompts (the empty prompt by default),
    /// `[prompts, 77, hidden]`.
    pub uncond: Tensor<B, 3>,
    /// SDXL's pooled embeddings (the UNet's `text_embeds`); `None` for
    /// single-encoder models (SD 1.x and 2.x).
    pub pooled: Option<PooledEmbeddings<B>>,
}

/// SDXL's pooled text embeddings of the prompts and of the negative prompts
/// (`pooled_prompt_embeds`, `negative_pooled_prompt_embeds`).
#[derive(Debug, Clone)]
pub struct PooledEmbeddings<B: Backend> {
    /// Of the prompts, `[prompts, projection_dim]`.
    pub cond: Tensor<B, 2>,
    /// Of the negative prompts, `[prompts, projection_dim]`.
    pub uncond: Tensor<B, 2>,
}

impl<B: Backend> PooledEmbeddings<B> {
    /// `[uncond; cond]` along the batch, the order of
    /// [`PromptEmbeddings::concat`].
    pub fn concat(&self) -> Tensor<B, 2> {
        Tensor::cat(vec![self.uncond.clone(), self.cond.clone()], 0)
    }

    /// Detached from any autodiff graph.
    pub fn detach(self) -> Self {
        Self {
            cond: self.cond.detach(),
            uncond: self.uncond.detach(),
        }
    }
}

impl<B: AutodiffBackend> PooledEmbeddings<B> {
    /// The same embeddings on the inner (forward-only) backend; shares
    /// the data.
    pub fn inner(&self) -> PooledEmbeddings<B::InnerBackend> {
        PooledEmbeddings {
            cond: self.cond.clone().inner(),
            uncond: self.uncond.clone().inner(),
        }
    }
}

impl<B: AutodiffBackend> PromptEmbeddings<B> {
    /// The same embeddings on the inner (forward-only) backend; shares
    /// the data.
    pub fn inner(&self) -> PromptEmbeddings<B::InnerBackend> {
        PromptEmbeddings {
            cond: self.cond.clone().inner(),
            uncond: self.uncond.clone().inner(),
            pooled: self.pooled.as_ref().map(PooledEmbeddings::inner),
        }
    }

    /// Embeddings computed on the inner backend, as untracked tensors of
    /// this one (no autodiff graph).
    pub fn from_inner(inner: PromptEmbeddings<B::InnerBackend>) -> Self {
        Self {
            cond: Tensor::from_inner(inner.cond),
            uncond: Tensor::from_inner(inner.uncond),
            pooled: inner.pooled.map(|p| PooledEmbeddings {
                cond: Tensor::from_inner(p.cond),
                uncond: Tensor::from_inner(p.uncond),
            }),
        }
    }
}

impl<B: Backend> PromptEmbeddings<B> {
    /// Token embeddings without pooled ones (single-encoder models).
    pub fn new(cond: Tensor<B, 3>, uncond: Tensor<B, 3>) -> Self {
        Self {
            cond,
            uncond,
            pooled: None,
        }
    }

    /// Detached from any autodiff graph.
    pub fn detach(self) -> Self {
        Self {
            cond: self.cond.detach(),
            uncond: self.uncond.detach(),
            pooled: self.pooled.map(PooledEmbeddings::detach),
        }
    }

    /// `[uncond; cond]` along the batch, the order diffusers' pipelines feed
    /// the UNet for classifier-free guidance.
    pub fn concat(&self) -> Tensor<B, 3> {
        Tensor::cat(vec![self.uncond.clone(), self.cond.clone()], 0)
    }

    /// Number of prompts.
    pub fn len(&self) -> usize {
        self.cond.dims()[0]
    }

    /// Whether there are no prompts (never true for embeddings this crate makes).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Tokenizer plus CLIP text encoder.
#[derive(Debug)]
pub struct PromptEncoder<B: Backend> {
    tokenizer: ClipTokenizer,
    text_encoder: ClipTextModel<B>,
    device: B::Device,
}

impl<B: AutodiffBackend> PromptEncoder<B> {
    /// The same encoder on the inner (forward-only) backend: prompts are
    /// encoded without autodiff bookkeeping. Shares the weights.
    pub fn inner(&self) -> PromptEncoder<B::InnerBackend> {
        PromptEncoder {
            tokenizer: self.tokenizer.clone(),
            text_encoder: self.text_encoder.valid(),
            device: self.device.clone(),
        }
    }
}

impl<B: Backend> PromptEncoder<B> {
    /// Pairs a tokenizer with a text encoder living on `device`.
    pub fn new(
        tokenizer: ClipTokenizer,
        text_encoder: ClipTextModel<B>,
        device: B::Device,
    ) -> Self {
        Self {
            tokenizer,
            text_encoder,
            device,
        }
    }

    /// Loads `tokenizer/` and `text_encoder/` folders.
    pub fn load(tokenizer_dir: &Path, text_encoder_dir: &Path, device: &B::Device) -> Result<Self> {
        let tokenizer = ClipTokenizer::from_dir(tokenizer_dir)?;
        let text_encoder = ClipTextModel::load(text_encoder_dir, device)?;
        Ok(Self::new(tokenizer, text_encoder, device.clone()))
    }

    /// Loads the `tokenizer/` and `text_encoder/` subfolders of a diffusers
    /// Stable Diffusion folder.
    pub fn from_pipeline_dir(dir: &Path, device: &B::Device) -> Result<Self> {
        Self::load(&dir.join("tokenizer"), &dir.join("text_encoder"), device)
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &ClipTokenizer {
        &self.tokenizer
    }

    /// The text encoder.
    pub fn text_encoder(&self) -> &ClipTextModel<B> {
        &self.text_encoder
    }

    /// Padded token ids of `prompts`, `[prompts.len(), 77]`.
    pub fn input_ids(&self, prompts: &[&str]) -> Result<Tensor<B, 2, Int>> {
        self.tokenizer.input_ids(prompts, &self.device)
    }

    /// Everything the text encoder returns for `prompts`, in one batch.
    pub fn encode_output(&self, prompts: &[&str]) -> Result<ClipTextOutput<B>> {
        Ok(self.text_encoder.forward(self.input_ids(prompts)?)?)
    }

    /// `last_hidden_state` of `prompts`, `[prompts.len(), 77, hidden]`.
    pub fn encode(&self, prompts: &[&str]) -> Result<Tensor<B, 3>> {
        Ok(self.encode_output(prompts)?.last_hidden_state)
    }

    /// Conditional and unconditional embeddings of one prompt; the negative
    /// prompt defaults to the empty string. One encoder pass.
    pub fn encode_with_negative(
        &self,
        prompt: &str,
        negative_prompt: Option<&str>,
    ) -> Result<PromptEmbeddings<B>> {
        self.encode_batch_with_negative(&[prompt], negative_prompt.map(|n| vec![n]).as_deref())
    }

    /// Conditional and unconditional embeddings of several prompts in one
    /// encoder pass. `negative_prompts`, when given, must have one entry per
    /// prompt; otherwise every prompt gets the empty negative prompt.
    pub fn encode_batch_with_negative(
        &self,
        prompts: &[&str],
        negative_prompts: Option<&[&str]>,
    ) -> Result<PromptEmbeddings<B>> {
        let negatives = negatives_for(prompts, negative_prompts)?;
        let all: Vec<&str> = negatives.iter().chain(prompts.iter()).copied().collect();
        let hidden = self.encode(&all)?;
        let n = prompts.len();
        Ok(PromptEmbeddings::new(
            hidden.clone().narrow(0, n, n),
            hidden.narrow(0, 0, n),
        ))
    }
}

/// The negative prompt of each prompt: `negative_prompts` (one per prompt),
/// or the empty prompt for every one. Errors on no prompts or a count
/// mismatch.
pub(crate) fn negatives_for<'a>(
    prompts: &[&str],
    negative_prompts: Option<&[&'a str]>,
) -> Result<Vec<&'a str>> {
    if prompts.is_empty() {
        return Err(CondError::invalid("prompts", "no prompt to encode"));
    }
    match negative_prompts {
        Some(n) if n.len() != prompts.len() => Err(CondError::invalid(
            "negative_prompts",
            format!("{} negative prompts for {} prompts", n.len(), prompts.len()),
        )),
        Some(n) => Ok(n.to_vec()),
        None => Ok(vec![""; prompts.len()]),
    }
}
