//! The edit crate's integration tests, one binary (the graph-memory tests have
//! their own: they count the process's allocations).

#[path = "../common/mod.rs"]
mod common;

mod behaviour;
mod diffedit_mask;
mod gradient;
mod sd21;
mod sdxl;
mod stages_traits;
