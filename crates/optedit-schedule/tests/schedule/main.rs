//! The scheduler crate's integration tests, one binary: the API, parity with
//! diffusers and properties.

mod api;
mod parity;
mod properties;
