//! Releasing the autodiff bookkeeping of inference-only work.
//!
//! burn 0.21's autodiff backend registers every operation in its graph
//! store, untracked ones included (their outputs may be needed to recompute
//! a checkpointed operation later). Entries whose tensors are gone are swept
//! only when some `backward` runs (burn PRs #3957 and #4039; an explicit
//! `graph_cleanup` was proposed in #4075 but not merged). A loop that only
//! runs models forward on an `Autodiff<_>` backend (DDIM inversion,
//! DiffEdit, SDEdit, sampling) therefore keeps a few kilobytes per
//! operation, and under `BalancedCheckpointing` the inputs of memory-bound
//! operations too, until the process ends: about 70 MB per DiffEdit case on
//! the demo model, 11 GB over `optedit eval quality`'s 200 generations.
//!
//! [`release_graphs`] triggers that sweep on purpose. The editor calls it
//! after every inference-only denoising or inversion step and after
//! encoding, decoding and mask estimation; call it yourself in your own forward-only loops on an
//! autodiff backend.

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;

/// Frees the autodiff graph entries of every tensor that no longer exists,
/// by running `backward` on a fresh one-element tensor (the only way burn
/// 0.21 offers). Tensors still alive, and graphs they can still
/// differentiate, are untouched; costs microseconds.
pub fn release_graphs<B: AutodiffBackend>(device: &B::Device) {
    let probe = Tensor::<B, 1>::zeros([1], device).require_grad();
    drop(probe.sum().backward());
}
