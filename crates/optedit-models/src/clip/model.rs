use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::sigmoid;
use burn::tensor::{backend::Backend, Int, Tensor};

use super::config::ClipTextConfig;
use crate::blocks::linear;
use crate::config::read_config;
use crate::error::{ModelError, Result};
use crate::kernels;
use crate::kernels::gelu;
use crate::kernels::multi_head_attention;
use crate::loader::{find_weights, load_strict};
use crate::names::Library;
use crate::saver::{save_weights, SaveFormat, WeightPrecision};

/// Token and position embeddings.
#[derive(Module, Debug)]
pub struct ClipEmbeddings<B: Backend> {
    /// `[vocab, hidden]`.
    pub token_embedding: Embedding<B>,
    /// `[positions, hidden]`.
    pub position_embedding: Embedding<B>,
}

/// Multi-head self-attention with biases.
#[derive(Module, Debug)]
pub struct ClipAttention<B: Backend> {
    /// Query projection.
    pub q_proj: Linear<B>,
    /// Key projection.
    pub k_proj: Linear<B>,
    /// Value projection.
    pub v_proj: Linear<B>,
    /// Output projection.
    pub out_proj: Linear<B>,
    /// Number of heads.
    pub heads: usize,
}

/// The MLP of an encoder layer.
#[derive(Module, Debug)]
pub struct ClipMlp<B: Backend> {
    /// Up projection.
    pub fc1: Linear<B>,
    /// Down projection.
    pub fc2: Linear<B>,
    /// `true`: quick GELU `x * sigmoid(1.702 x)`; `false`: exact GELU.
    pub quick_gelu: bool,
}

/// A pre-norm transformer layer with causal self-attention.
#[derive(Module, Debug)]
pub struct ClipEncoderLayer<B: Backend> {
    /// Attention.
    pub self_attn: ClipAttention<B>,
    /// Norm before attention.
    pub layer_norm1: LayerNorm<B>,
    /// MLP.
    pub mlp: ClipMlp<B>,
    /// Norm before the MLP.
    pub layer_norm2: LayerNorm<B>,
}

/// The stack of encoder layers.
#[derive(Module, Debug)]
pub struct ClipEncoder<B: Backend> {
    /// The layers.
    pub layers: Vec<ClipEncoderLayer<B>>,
}

/// `text_model` of `CLIPTextModel`.
#[derive(Module, Debug)]
pub struct ClipTextTransformer<B: Backend> {
    /// Embeddings.
    pub embeddings: ClipEmbeddings<B>,
    /// Encoder.
    pub encoder: ClipEncoder<B>,
    /// Final norm.
    pub final_layer_norm: LayerNorm<B>,
}

/// The CLIP text encoder; the root holds `text_model` as transformers does.
#[derive(Module, Debug)]
pub struct ClipTextModel<B: Backend> {
    /// The transformer.
    pub text_model: ClipTextTransformer<B>,
    /// The config the model was built from.
    #[module(skip)]
    pub config: ClipTextConfig,
}

/// `CLIPTextModelWithProjection` (SDXL's `text_encoder_2`): the text
/// transformer plus a bias-free projection of the pooled state.
#[derive(Module, Debug)]
pub struct ClipTextModelWithProjection<B: Backend> {
    /// The transformer.
    pub text_model: ClipTextTransformer<B>,
    /// `[hidden] -> [projection_dim]`, no bias.
    pub text_projection: Linear<B>,
    /// The config the model was built from.
    #[module(skip)]
    pub config: ClipTextConfig,
}

/// What [`ClipTextModelWithProjection`] returns.
#[derive(Debug, Clone)]
pub struct ClipTextProjectionOutput<B: Backend> {
    /// `text_projection` of the pooled state (the final-norm state at the
    /// end-of-text position), `[batch, projection_dim]`: SDXL's pooled
    /// prompt embedding.
    pub text_embeds: Tensor<B, 2>,
    /// The transformer's outputs (`pooler_output` is the unprojected
    /// pooled state).
    pub text: ClipTextOutput<B>,
}

/// What the text encoder returns.
#[derive(Debug, Clone)]
pub struct ClipTextOutput<B: Backend> {
    /// Final-norm output, `[batch, tokens, hidden]` (what SD conditions on).
    pub last_hidden_state: Tensor<B, 3>,
    /// `last_hidden_state` at the end-of-text position, `[batch, hidden]`.
    pub pooler_output: Tensor<B, 2>,
    /// The embeddings and the output of every layer (before the final norm):
    /// `num_hidden_layers + 1` tensors, as transformers' `hidden_states`.
    /// `hidden_states[len - 2]` is the penultimate layer ("clip skip").
    pub hidden_states: Vec<Tensor<B, 3>>,
}

impl<B: Backend> ClipTextOutput<B> {
    /// `hidden_states[-2]`: the penultimate layer's output, before the final
    /// norm, `[batch, tokens, hidden]` (what SDXL conditions on).
    pub fn penultimate_hidden_state(&self) -> Tensor<B, 3> {
        let n = self.hidden_states.len();
        // At least two: the embeddings and one layer (validated config).
        self.hidden_states[n.saturating_sub(2)].clone()
    }
}

/// Reads and validates `dir/config.json` of a text encoder folder.
fn read_clip_config(dir: &Path) -> Result<ClipTextConfig> {
    let path = dir.join("config.json");
    let config: ClipTextConfig = read_config(&path)?;
    config.validate(&path)?;
    Ok(config)
}

impl<B: Backend> ClipMlp<B> {
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let h = kernels::linear(&self.fc1, x);
        let h = if self.quick_gelu {
            h.clone() * sigmoid(h.mul_scalar(1.702))
        } else {
            gelu(h)
        };
        kernels::linear(&self.fc2, h)
    }
}

impl<B: Backend> ClipEncoderLayer<B> {
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let h = self.layer_norm1.forward(x.clone());
        let a = &self.self_attn;
        let attn = multi_head_attention(
            kernels::linear(&a.q_proj, h.clone()),
            kernels::linear(&a.k_proj, h.clone()),
            kernels::linear(&a.v_proj, h),
            a.heads,
            true,
        );
        let x = x + kernels::linear(&a.out_proj, attn);
        self.mlp.forward(self.layer_norm2.forward(x.clone())) + x
    }
}

impl<B: Backend> ClipTextTransformer<B> {
    /// Builds the transformer from a (validated) config with random weights.
    fn new(config: &ClipTextConfig, device: &B::Device) -> Self {
        let d = config.hidden_size;
        let ln = || {
            LayerNormConfig::new(d)
                .with_epsilon(config.layer_norm_eps)
                .init(device)
        };
        let layers = (0..config.num_hidden_layers)
            .map(|_| ClipEncoderLayer {
                self_attn: ClipAttention {
                    q_proj: linear(d, d, true, device),
                    k_proj: linear(d, d, true, device),
                    v_proj: linear(d, d, true, device),
                    out_proj: linear(d, d, true, device),
                    heads: config.num_attention_heads,
                },
                layer_norm1: ln(),
                mlp: ClipMlp {
                    fc1: linear(d, config.intermediate_size, true, device),
                    fc2: linear(config.intermediate_size, d, true, device),
                    quick_gelu: config.hidden_act == "quick_gelu",
                },
                layer_norm2: ln(),
            })
            .collect();
        Self {
            embeddings: ClipEmbeddings {
                token_embedding: EmbeddingConfig::new(config.vocab_size, d).init(device),
                position_embedding: EmbeddingConfig::new(config.max_position_embeddings, d)
                    .init(device),
            },
            encoder: ClipEncoder { layers },
            final_layer_norm: ln(),
        }
    }

    /// Encodes token ids `[batch, tokens]` (tokens at most
    /// `max_position_embeddings`) with the causal mask only (no padding mask,
    /// as Stable Diffusion does).
    fn forward(
        &self,
        config: &ClipTextConfig,
        input_ids: Tensor<B, 2, Int>,
    ) -> Result<ClipTextOutput<B>> {
        let [batch, len] = input_ids.dims();
        let ids: Vec<i64> = input_ids
            .to_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .map_err(|e| ModelError::InvalidInput {
                argument: "input_ids".into(),
                message: format!("{e:?}"),
            })?;
        if len == 0 || len > config.max_position_embeddings {
            return Err(ModelError::InvalidInput {
                argument: "input_ids".into(),
                message: format!(
                    "{len} tokens; the encoder takes 1 to {}",
                    config.max_position_embeddings
                ),
            });
        }
        if let Some(bad) = ids
            .iter()
            .find(|&&i| i < 0 || i as usize >= config.vocab_size)
        {
            return Err(ModelError::InvalidInput {
                argument: "input_ids".into(),
                message: format!(
                    "token id {bad} outside the vocabulary of {}",
                    config.vocab_size
                ),
            });
        }
        let device = input_ids.device();
        let tm = self;
        let positions = Tensor::<B, 1, Int>::arange(0..len as i64, &device).unsqueeze_dim::<2>(0);
        let pos = tm.embeddings.position_embedding.forward(positions);
        let mut x = tm.embeddings.token_embedding.forward(input_ids) + pos;
        let mut hidden_states = vec![x.clone()];
        for layer in &tm.encoder.layers {
            x = layer.forward(x);
            hidden_states.push(x.clone());
        }
        let last = tm.final_layer_norm.forward(x);
        let pool_index: Vec<i64> = ids
            .chunks(len)
            .enumerate()
            .map(|(b, row)| (b * len + pool_position(config, row)) as i64)
            .collect();
        let d = config.hidden_size;
        let pooled = last.clone().reshape([batch * len, d]).select(
            0,
            Tensor::<B, 1, Int>::from_data(pool_index.as_slice(), &device),
        );
        Ok(ClipTextOutput {
            last_hidden_state: last,
            pooler_output: pooled,
            hidden_states,
        })
    }
}

impl<B: Backend> ClipTextModel<B> {
    /// Builds the model from a config with random weights.
    pub fn from_config(config: ClipTextConfig, device: &B::Device) -> Result<Self> {
        config.validate(Path::new("<config>"))?;
        Ok(Self {
            text_model: ClipTextTransformer::new(&config, device),
            config,
        })
    }

    /// Reads a config file and builds the model with random weights.
    pub fn from_config_file(path: &Path, device: &B::Device) -> Result<Self> {
        let config: ClipTextConfig = read_config(path)?;
        config.validate(path)?;
        Self::from_config(config, device)
    }

    /// Loads a transformers `text_encoder/` folder (`config.json`,
    /// `model[.fp16].safetensors`).
    pub fn load(dir: &Path, device: &B::Device) -> Result<Self> {
        let mut model = Self::from_config(read_clip_config(dir)?, device)?;
        load_strict(
            &mut model,
            &find_weights(dir, "model")?,
            Library::Transformers,
        )?;
        Ok(model)
    }

    /// Writes the weights as `model.safetensors` in `dir` under their
    /// diffusers names (the inverse of [`load`](Self::load); `config.json` is
    /// the caller's). Returns the file written.
    pub fn save_weights(&self, dir: &Path, precision: WeightPrecision) -> Result<PathBuf> {
        let path = dir.join("model.safetensors");
        let format = SaveFormat {
            library: Library::Transformers,
            precision,
            conv_proj: false,
        };
        save_weights(self, &path, format)?;
        Ok(path)
    }

    /// Encodes token ids `[batch, tokens]` (tokens at most
    /// `max_position_embeddings`) with the causal mask only (no padding mask,
    /// as Stable Diffusion does).
    pub fn forward(&self, input_ids: Tensor<B, 2, Int>) -> Result<ClipTextOutput<B>> {
        self.text_model.forward(&self.config, input_ids)
    }
}

impl<B: Backend> ClipTextModelWithProjection<B> {
    /// Builds the model from a config with random weights.
    pub fn from_config(config: ClipTextConfig, device: &B::Device) -> Result<Self> {
        config.validate(Path::new("<config>"))?;
        Ok(Self {
            text_model: ClipTextTransformer::new(&config, device),
            text_projection: linear(config.hidden_size, config.projection_dim, false, device),
            config,
        })
    }

    /// Reads a config file and builds the model with random weights.
    pub fn from_config_file(path: &Path, device: &B::Device) -> Result<Self> {
        let config: ClipTextConfig = read_config(path)?;
        config.validate(path)?;
        Self::from_config(config, device)
    }

    /// Loads a transformers `text_encoder_2/` folder (`config.json`,
    /// `model[.fp16].safetensors`) strictly, with the same tensor names as
    /// [`ClipTextModel::load`] plus `text_projection.weight`.
    pub fn load(dir: &Path, device: &B::Device) -> Result<Self> {
        let mut model = Self::from_config(read_clip_config(dir)?, device)?;
        load_strict(
            &mut model,
            &find_weights(dir, "model")?,
            Library::Transformers,
        )?;
        Ok(model)
    }

    /// Encodes token ids `[batch, tokens]` as [`ClipTextModel::forward`]
    /// does and projects the pooled state (`text_embeds`). The pooling
    /// position follows transformers 5: the first `eos_token_id`, or the
    /// argmax id for the legacy `eos_token_id == 2`.
    pub fn forward(&self, input_ids: Tensor<B, 2, Int>) -> Result<ClipTextProjectionOutput<B>> {
        let text = self.text_model.forward(&self.config, input_ids)?;
        Ok(ClipTextProjectionOutput {
            text_embeds: kernels::linear(&self.text_projection, text.pooler_output.clone()),
            text,
        })
    }
}

/// transformers' pooling position: the (first) argmax id for the legacy
/// `eos_token_id == 2`, else the first end-of-text id (0 if none).
fn pool_position(config: &ClipTextConfig, row: &[i64]) -> usize {
    if config.eos_token_id == 2 {
        let max = row.iter().copied().max().unwrap_or(0);
        row.iter().position(|&v| v == max).unwrap_or(0)
    } else {
        row.iter()
            .position(|&v| v == config.eos_token_id)
            .unwrap_or(0)
    }
}
