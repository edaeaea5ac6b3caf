//! The models crate's integration tests, one binary: loading, saving and parity
//! with diffusers (the bf16 parity tests have their own binary: the compute
//! dtype is process-wide).

#[path = "../common/mod.rs"]
mod common;

mod loading;
mod parity;
mod saving;
mod unet_parity;
