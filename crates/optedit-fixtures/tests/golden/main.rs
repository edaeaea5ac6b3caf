//! The fixture crate's tests, one binary: every golden case is read, and the
//! DDIM inversion trajectories.

mod coverage;
mod inversion_trajectory;
