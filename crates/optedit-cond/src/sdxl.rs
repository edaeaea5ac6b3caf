//! SDXL's text conditioning, as diffusers' `StableDiffusionXLPipeline` makes
//! it (Podell et al., "SDXL: Improving Latent Diffusion Models for
//! High-Resolution Image Synthesis", arXiv 2307.01952):
//!
//! - [`SdxlPromptEncoder`]: both text encoders (`CLIPTextModel` and
//!   `CLIPTextModelWithProjection`) to the prompt embeddings (their
//!   penultimate hidden states, concatenated along the width) and the
//!   pooled embedding (the second encoder's projection), as `encode_prompt`
//!   does, with zero negative embeddings when the folder's
//!   `force_zeros_for_empty_prompt` asks for them;
//! - [`SizeConditions`] and [`sdxl_add_time_ids`]: the six size conditions
//!   (`add_time_ids`) the UNet embeds next to the pooled embedding.

use std::path::Path;

use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use optedit_models::{ClipTextModel, ClipTextModelWithProjection};

use crate::error::{CondError, Result};
use crate::prompt::{negatives_for, PooledEmbeddings, PromptEmbeddings};
use crate::tokenizer::ClipTokenizer;

/// One sample's size conditions, in pixels, as `(height, width)` and
/// `(top, left)` pairs: diffusers' `original_size`,
/// `crops_coords_top_left` and `target_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeConditions {
    /// Size of the image before any crop or resize, `(height, width)`.
    pub original_size: (usize, usize),
    /// Top-left corner of the crop, `(top, left)`.
    pub crop_top_left: (usize, usize),
    /// Size of the generated image, `(height, width)`.
    pub target_size: (usize, usize),
}

impl SizeConditions {
    /// The pipeline's default for an image of `height` x `width`: original
    /// and target size equal, no crop.
    pub fn uncropped(height: usize, width: usize) -> Self {
        Self {
            original_size: (height, width),
            crop_top_left: (0, 0),
            target_size: (height, width),
        }
    }

    /// The row of `add_time_ids`: original height and width, crop top and
    /// left, target height and width.
    pub fn time_ids(&self) -> [f32; 6] {
        let (oh, ow) = self.original_size;
        let (ct, cl) = self.crop_top_left;
        let (th, tw) = self.target_size;
        [oh, ow, ct, cl, th, tw].map(|v| v as f32)
    }
}

/// diffusers' `_get_add_time_ids`, one row per sample: `[rows.len(), 6]`,
/// the UNet's `time_ids`. An empty list is an error.
pub fn sdxl_add_time_ids<B: Backend>(
    rows: &[SizeConditions],
    device: &B::Device,
) -> Result<Tensor<B, 2>> {
    if rows.is_empty() {
        return Err(CondError::invalid("size_conditions", "no row"));
    }
    let values: Vec<f32> = rows.iter().flat_map(|r| r.time_ids()).collect();
    Ok(Tensor::from_data(
        TensorData::new(values, [rows.len(), 6]),
        device,
    ))
}

/// Prompt and pooled embeddings of some texts (one encoding pass).
#[derive(Debug, Clone)]
pub struct SdxlTextEmbeddings<B: Backend> {
    /// Both encoders' penultimate hidden states concatenated along the
    /// width, `[texts, tokens, hidden_1 + hidden_2]` (`prompt_embeds`).
    pub embeds: Tensor<B, 3>,
    /// The second encoder's projected pooled state, `[texts,
    /// projection_dim]` (`pooled_prompt_embeds`, the UNet's `text_embeds`).
    pub pooled: Tensor<B, 2>,
}

/// Conditional and unconditional SDXL embeddings for classifier-free
/// guidance: `encode_prompt`'s four outputs.
#[derive(Debug, Clone)]
pub struct SdxlPromptEmbeddings<B: Backend> {
    /// The prompts' embeddings (`prompt_embeds`).
    pub cond: SdxlTextEmbeddings<B>,
    /// The negative prompts' embeddings, or zeros
    /// (`negative_prompt_embeds`, `negative_pooled_prompt_embeds`).
    pub uncond: SdxlTextEmbeddings<B>,
}

impl<B: Backend> SdxlPromptEmbeddings<B> {
    /// The token embeddings (what the UNet cross-attends to) with the
    /// pooled ones, as one [`PromptEmbeddings`].
    pub fn embeddings(&self) -> PromptEmbeddings<B> {
        PromptEmbeddings {
            cond: self.cond.embeds.clone(),
            uncond: self.uncond.embeds.clone(),
            pooled: Some(self.pooled()),
        }
    }

    /// The pooled embeddings of both halves.
    pub fn pooled(&self) -> PooledEmbeddings<B> {
        PooledEmbeddings {
            cond: self.cond.pooled.clone(),
            uncond: self.uncond.pooled.clone(),
        }
    }

    /// `[uncond; cond]` pooled embeddings along the batch, the order of
    /// [`PromptEmbeddings::concat`].
    pub fn concat_pooled(&self) -> Tensor<B, 2> {
        self.pooled().concat()
    }
}

/// SDXL's two tokenizers and text encoders.
#[derive(Debug)]
pub struct SdxlPromptEncoder<B: Backend> {
    tokenizer: ClipTokenizer,
    text_encoder: ClipTextModel<B>,
    tokenizer_2: ClipTokenizer,
    text_encoder_2: ClipTextModelWithProjection<B>,
    force_zeros_for_empty_prompt: bool,
    device: B::Device,
}

/// `force_zeros_for_empty_prompt` of a pipeline's `model_index.json`
/// (diffusers' default, `true`, when the key is absent).
pub fn force_zeros_for_empty_prompt(model_index: &Path) -> Result<bool> {
    let text = std::fs::read_to_string(model_index).map_err(|source| CondError::Io {
        path: model_index.to_path_buf(),
        source,
    })?;
    let name = model_index.display().to_string();
    let index: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| CondError::json(&name, e))?;
    match index.get("force_zeros_for_empty_prompt") {
        None | Some(serde_json::Value::Null) => Ok(true),
        Some(serde_json::Value::Bool(b)) => Ok(*b),
        Some(other) => Err(CondError::json(
            name,
            format!("force_zeros_for_empty_prompt must be true or false, not {other}"),
        )),
    }
}

impl<B: AutodiffBackend> SdxlPromptEncoder<B> {
    /// The same encoders on the inner (forward-only) backend; shares the
    /// weights.
    pub fn inner(&self) -> SdxlPromptEncoder<B::InnerBackend> {
        SdxlPromptEncoder {
            tokenizer: self.tokenizer.clone(),
            text_encoder: self.text_encoder.valid(),
            tokenizer_2: self.tokenizer_2.clone(),
            text_encoder_2: self.text_encoder_2.valid(),
            force_zeros_for_empty_prompt: self.force_zeros_for_empty_prompt,
            device: self.device.clone(),
        }
    }
}

impl<B: Backend> SdxlPromptEncoder<B> {
    /// Pairs the tokenizers with their text encoders living on `device`;
    /// `force_zeros_for_empty_prompt` as in `model_index.json`.
    pub fn new(
        (tokenizer, text_encoder): (ClipTokenizer, ClipTextModel<B>),
        (tokenizer_2, text_encoder_2): (ClipTokenizer, ClipTextModelWithProjection<B>),
        force_zeros_for_empty_prompt: bool,
        device: B::Device,
    ) -> Self {
        Self {
            tokenizer,
            text_encoder,
            tokenizer_2,
            text_encoder_2,
            force_zeros_for_empty_prompt,
            device,
        }
    }

    /// Loads `tokenizer/`, `text_encoder/`, `tokenizer_2/`,
    /// `text_encoder_2/` and `model_index.json` of a diffusers SDXL folder.
    pub fn from_pipeline_dir(dir: &Path, device: &B::Device) -> Result<Self> {
        Ok(Self::new(
            (
                ClipTokenizer::from_dir(&dir.join("tokenizer"))?,
                ClipTextModel::load(&dir.join("text_encoder"), device)?,
            ),
            (
                ClipTokenizer::from_dir(&dir.join("tokenizer_2"))?,
                ClipTextModelWithProjection::load(&dir.join("text_encoder_2"), device)?,
            ),
            force_zeros_for_empty_prompt(&dir.join("model_index.json"))?,
            device.clone(),
        ))
    }

    /// The first tokenizer (`tokenizer/`).
    pub fn tokenizer(&self) -> &ClipTokenizer {
        &self.tokenizer
    }

    /// The second tokenizer (`tokenizer_2/`).
    pub fn tokenizer_2(&self) -> &ClipTokenizer {
        &self.tokenizer_2
    }

    /// Whether an absent negative prompt gives zero embeddings.
    pub fn force_zeros_for_empty_prompt(&self) -> bool {
        self.force_zeros_for_empty_prompt
    }

    /// Padded token ids of `texts` for both tokenizers.
    pub fn input_ids(&self, texts: &[&str]) -> Result<[Tensor<B, 2, Int>; 2]> {
        Ok([
            self.tokenizer.input_ids(texts, &self.device)?,
            self.tokenizer_2.input_ids(texts, &self.device)?,
        ])
    }

    /// Embeddings of token ids, `ids` for the first encoder and `ids_2` for
    /// the second (same batch and length).
    pub fn encode_ids(
        &self,
        ids: Tensor<B, 2, Int>,
        ids_2: Tensor<B, 2, Int>,
    ) -> Result<SdxlTextEmbeddings<B>> {
        if ids.dims() != ids_2.dims() {
            return Err(CondError::invalid(
                "input_ids_2",
                format!(
                    "shape {:?}, the first encoder's ids are {:?}",
                    ids_2.dims(),
                    ids.dims()
                ),
            ));
        }
        let first = self.text_encoder.forward(ids)?;
        let second = self.text_encoder_2.forward(ids_2)?;
        Ok(SdxlTextEmbeddings {
            embeds: Tensor::cat(
                vec![
                    first.penultimate_hidden_state(),
                    second.text.penultimate_hidden_state(),
                ],
                2,
            ),
            pooled: second.text_embeds,
        })
    }

    /// Embeddings of `texts`, each given to both encoders, in one pass.
    pub fn encode(&self, texts: &[&str]) -> Result<SdxlTextEmbeddings<B>> {
        let [ids, ids_2] = self.input_ids(texts)?;
        self.encode_ids(ids, ids_2)
    }

    /// `encode_prompt` with classifier-free guidance for one prompt.
    pub fn encode_with_negative(
        &self,
        prompt: &str,
        negative_prompt: Option<&str>,
    ) -> Result<SdxlPromptEmbeddings<B>> {
        self.encode_batch_with_negative(&[prompt], negative_prompt.map(|n| vec![n]).as_deref())
    }

    /// `encode_prompt` with classifier-free guidance: without negative
    /// prompts and with `force_zeros_for_empty_prompt`, the unconditional
    /// embeddings are zeros; otherwise the negative prompts (the empty
    /// prompt by default, one per prompt) are encoded in the same pass as
    /// the prompts.
    pub fn encode_batch_with_negative(
        &self,
        prompts: &[&str],
        negative_prompts: Option<&[&str]>,
    ) -> Result<SdxlPromptEmbeddings<B>> {
        let negatives = negatives_for(prompts, negative_prompts)?;
        if negative_prompts.is_none() && self.force_zeros_for_empty_prompt {
            let cond = self.encode(prompts)?;
            let uncond = SdxlTextEmbeddings {
                embeds: cond.embeds.zeros_like(),
                pooled: cond.pooled.zeros_like(),
            };
            return Ok(SdxlPromptEmbeddings { cond, uncond });
        }
        let all: Vec<&str> = negatives.iter().chain(prompts).copied().collect();
        let both = self.encode(&all)?;
        let n = prompts.len();
        let half = |start: usize| SdxlTextEmbeddings {
            embeds: both.embeds.clone().narrow(0, start, n),
            pooled: both.pooled.clone().narrow(0, start, n),
        };
        Ok(SdxlPromptEmbeddings {
            uncond: half(0),
            cond: half(n),
        })
    }
}
