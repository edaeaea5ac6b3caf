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
//! The [`Editor`](crate::Editor) therefore runs every forward-only stage
//! (encoding, inversion, mask estimation, plain denoising steps, DiffEdit,
//! SDEdit, decoding) on the inner backend (`B::InnerBackend`, through
//! [`SdPipeline::inner`](crate::SdPipeline::inner)), where nothing is
//! registered; only gradient steps run on the autodiff backend, and their
//! `backward` frees their graph. Users of the editor never need
//! [`release_graphs`].
//!
//! Your own forward-only loops should do the same (run them on
//! `SdPipeline::inner()`'s models). Where that is not possible,
//! [`release_graphs`] triggers the sweep on purpose.

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
