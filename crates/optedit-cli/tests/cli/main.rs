//! End-to-end tests of the `optedit` binary, one test binary: `edit` and the
//! other commands, `batch`, `eval`.

#[path = "../common/mod.rs"]
mod common;

mod batch;
mod cli;
mod eval;
