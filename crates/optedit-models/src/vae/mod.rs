//! `AutoencoderKL` (diffusers `models/autoencoders/autoencoder_kl.py` and
//! `models/autoencoders/vae.py`): the image <-> latent autoencoder of Stable
//! Diffusion.

mod config;
mod model;

pub use config::AutoencoderKLConfig;
pub use model::{
    AutoencoderKL, Decoder, DiagonalGaussian, Encoder, VaeDownBlock, VaeMidBlock, VaeUpBlock,
};
