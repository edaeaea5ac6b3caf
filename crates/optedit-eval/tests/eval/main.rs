//! The evaluation crate's integration tests, one binary (the memory test has its
//! own: it measures the process).

mod committed_cases;
mod demo_model;
mod harness;
