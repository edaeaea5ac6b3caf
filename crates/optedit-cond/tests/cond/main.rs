//! The conditioning crate's integration tests, one binary: Canny edges, CLIP prompt
//! encoding, pose rendering, scribbles and layouts, SDXL prompts and tokenizer
//! parity.

mod canny;
mod clip_prompt;
mod pose;
mod scribble_layout;
mod sdxl_prompt;
mod tokenizer_parity;
