//! The CLIP text encoder (transformers `models/clip/modeling_clip.py`,
//! `CLIPTextModel` and SDXL's `CLIPTextModelWithProjection`; Radford et
//! al., "Learning Transferable Visual Models From Natural Language
//! Supervision", arXiv 2103.00020), with transformers' tensor names.

mod config;
mod model;

pub use config::ClipTextConfig;
pub use model::{
    ClipAttention, ClipEmbeddings, ClipEncoder, ClipEncoderLayer, ClipMlp, ClipTextModel,
    ClipTextModelWithProjection, ClipTextOutput, ClipTextProjectionOutput, ClipTextTransformer,
};
