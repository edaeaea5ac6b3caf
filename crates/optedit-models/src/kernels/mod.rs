//! Hand-written CPU kernels for burn's `Flex` backend, chosen at run time.
//!
//! The models stay generic over `B: Backend`; a function here checks whether
//! `B` is `Flex` or `Autodiff<Flex, _>` (with either checkpointing strategy)
//! and, for `f32` tensors, runs its own kernel, otherwise burn's operation.
//! On `Autodiff<Flex, _>` the kernel is one autodiff node with its own
//! backward pass (burn's `Backward` trait, as in burn's custom-kernel
//! examples), so a model under gradient keeps a few token-sized tensors
//! instead of every intermediate of the decomposed operation.
//!
//! - [`multi_head_attention`]: tiled attention with a recomputing backward
//!   pass (flash attention's idea, Dao et al., arXiv 2205.14135), its f32
//!   products in register blocks of its own on AVX-512 CPUs. burn 0.21
//!   decomposes attention into matmul, scale, max, subtract, exp, sum and
//!   divide under `Autodiff`, keeping each `[batch, heads, n, m]` result for
//!   the backward pass, and runs `Flex`'s fused attention serially over
//!   `(batch, head)`.
//! - [`group_norm`]: group normalisation, optionally fused with the SiLU
//!   that follows most norms in diffusers' blocks: two passes for the
//!   statistics, one for the output, where the decomposed version makes
//!   about ten tensor operations and keeps their results.
//! - [`silu`] and [`gelu`]: one vectorised, multi-threaded pass forward and
//!   one backward, where burn 0.21 on `Flex` runs a scalar libm `exp` or
//!   `erf` per element on one thread (and SiLU as three operations);
//!   `geglu` (crate-internal) fuses the GEGLU feed-forward's halves,
//!   `h * gelu(gate)`, into one pass that reads the projection in place.
//! - `transpose` (crate-internal): the token layout change around the
//!   transformers and spatial attention as a tiled, multi-threaded copy,
//!   where burn's `Flex` copies a batched swap element by element on one
//!   thread; `upsample2x` likewise for the decoders' nearest up-sampling.
//! - [`conv2d`]: convolution as tiled im2col and `gemm` products written
//!   straight into the output, with a backward pass that computes only the
//!   gradients asked for, where burn's default backward runs a transposed
//!   convolution and a convolution over transposed copies; f32 3x3
//!   stride-1 convolutions at large spatial sizes (forward and input
//!   gradient) by Winograd's F(2x2, 3x3) instead ([`set_winograd`]),
//!   each filter transformed once and kept for both passes
//!   ([`set_weight_cache_limit`]).
//! - [`linear`]: burn's `Linear` as one product (f32 or bf16, below) with
//!   its own backward pass, where burn 0.21's `Flex` matmul allocates and
//!   copies each output and makes the transposed weight contiguous.
//!
//! The matrix products of the convolution, the attention and the linear
//! layers run in the process-wide [`ComputeDtype`] ([`set_compute_dtype`]):
//! f32 through the `gemm` crate, or bf16 operands with f32 accumulation on
//! the CPU's AMX tiles or AVX512-BF16 instructions ([`bf16_unit`]), like
//! PyTorch's `autocast` to bfloat16 on CPU. Norms, softmax and activations
//! keep f32 statistics.

mod activation;
mod attention;
#[cfg(target_arch = "x86_64")]
mod attention_avx512;
mod bf16;
mod conv;
mod conv_op;
mod exp;
mod group_norm;
mod layout;
mod linear;
mod mha;
mod norm_op;
mod precision;
mod product;
mod weight_cache;
mod weight_op;
mod winograd;

use std::any::{Any, TypeId};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{BalancedCheckpointing, NoCheckpointing};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::NodeId;
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Bytes, DType, Tensor, TensorPrimitive};
use burn_flex::{FlexTensor, Layout};

pub(crate) use activation::geglu;
pub use activation::{gelu, silu};
pub use bf16::{bf16_unit, Bf16Unit};
pub use conv_op::conv2d;
pub(crate) use layout::{transpose, upsample2x};
pub use linear::linear;
pub use mha::{multi_head_attention, reference_attention};
pub use norm_op::group_norm;
pub use precision::{compute_dtype, set_compute_dtype, with_compute_dtype, ComputeDtype};
pub use weight_cache::{set_weight_cache_limit, weight_cache_bytes, DEFAULT_WEIGHT_CACHE_LIMIT};
pub use winograd::{set_winograd, winograd};

/// Which kernel path a backend takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// `Flex` itself.
    Flex,
    /// `Autodiff<Flex, NoCheckpointing>`.
    Tracked,
    /// `Autodiff<Flex, BalancedCheckpointing>`.
    TrackedBalanced,
    /// Anything else: burn's own operations.
    Other,
}

/// The kernel path of backend `B` for a tensor of type `dtype`.
fn path<B: Backend>(dtype: DType) -> Path {
    let id = TypeId::of::<B>();
    if dtype != DType::F32 {
        Path::Other
    } else if id == TypeId::of::<Flex>() {
        Path::Flex
    } else if id == TypeId::of::<Autodiff<Flex, NoCheckpointing>>() {
        Path::Tracked
    } else if id == TypeId::of::<Autodiff<Flex, BalancedCheckpointing>>() {
        Path::TrackedBalanced
    } else {
        Path::Other
    }
}

/// Moves a value of type `A` into type `T` when they are the same type.
fn cast<A: 'static, T: 'static>(a: A) -> Result<T, A> {
    let boxed: Box<dyn Any> = Box::new(a);
    match boxed.downcast::<T>() {
        Ok(t) => Ok(*t),
        Err(boxed) => Err(*boxed
            .downcast::<A>()
            .unwrap_or_else(|_| unreachable!("a box keeps its type"))),
    }
}

/// The primitive of `t` seen as backend `X`; the caller has checked that
/// `B` is `X`.
fn to<X: Backend, B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<X> {
    cast::<FloatTensor<B>, FloatTensor<X>>(t.into_primitive().tensor())
        .unwrap_or_else(|_| unreachable!("B is X"))
}

/// The tensor of backend `B` of a primitive of backend `X`; the caller has
/// checked that `B` is `X`.
fn from<X: Backend, B: Backend, const D: usize>(t: FloatTensor<X>) -> Tensor<B, D> {
    let t = cast::<FloatTensor<X>, FloatTensor<B>>(t).unwrap_or_else(|_| unreachable!("B is X"));
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

/// Runs `f` on the primitives of `tensors` seen as backend `X`; the caller
/// has checked that `B` is `X`.
fn on<B: Backend, X: Backend, const D: usize, const N: usize>(
    tensors: [Tensor<B, D>; N],
    f: impl FnOnce([FloatTensor<X>; N]) -> FloatTensor<X>,
) -> Tensor<B, D> {
    from::<X, B, D>(f(tensors.map(to::<X, B, D>)))
}

/// The tensor in contiguous storage (no copy when it already is).
fn contiguous(t: FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

/// The elements of a contiguous `f32` tensor.
fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .unwrap_or_else(|| unreachable!("contiguous f32 checked by the caller"))
}

/// The inputs an autodiff node checkpointed, in contiguous storage.
fn saved<const N: usize>(ids: [NodeId; N], checkpointer: &mut Checkpointer) -> [FlexTensor; N] {
    ids.map(|id| contiguous(checkpointer.retrieve_node_output::<FlexTensor>(id)))
}

/// Registers each gradient for its parent (the parents' ids, `None` for an
/// untracked one).
fn register<const N: usize>(
    parents: [Option<NodeId>; N],
    values: [FlexTensor; N],
    grads: &mut Gradients,
) {
    for (parent, value) in parents.into_iter().zip(values) {
        if let Some(id) = parent {
            grads.register::<Flex>(id, value);
        }
    }
}

/// Whole rows of `width` elements per parallel job of about `elements`
/// elements (at least one row).
fn rows_per_job(width: usize, elements: usize) -> usize {
    (elements / width.max(1)).max(1)
}

/// Buffers from this many elements on are filled by all threads.
const PARALLEL_FILL: usize = 1 << 16;

/// `len` zeros. A large buffer that glibc hands back from its heap (see
/// `allocator`) is zeroed by `calloc` on the calling thread while the
/// others wait; here every thread zeroes its share.
fn zeros(len: usize) -> Vec<f32> {
    if len < PARALLEL_FILL {
        return vec![0.0; len];
    }
    rows_of(&[0.0], len)
}

/// `row` repeated `rows` times (a bias broadcast over the rows of a
/// product's output), written by all threads.
fn rows_of(row: &[f32], rows: usize) -> Vec<f32> {
    use rayon::prelude::*;
    use std::mem::MaybeUninit;
    let len = row.len() * rows;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    if row.is_empty() {
        return out;
    }
    let per_job = rows_per_job(row.len(), PARALLEL_FILL) * row.len();
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(per_job)
        .for_each(|chunk| match row {
            // One value (the zeros): a plain fill, which becomes a memset.
            [v] => chunk.fill(MaybeUninit::new(*v)),
            _ => {
                for slot in chunk.chunks_mut(row.len()) {
                    for (o, &v) in slot.iter_mut().zip(row) {
                        *o = MaybeUninit::new(v);
                    }
                }
            }
        });
    // SAFETY: the first `len` slots were all written above (each chunk's
    // slots are whole multiples of the row, and the loop writes each).
    unsafe { out.set_len(len) };
    out
}

/// A contiguous `f32` tensor of the given shape.
fn flex(values: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(values),
        Layout::contiguous(shape.to_vec().into()),
        DType::F32,
    )
}

#[cfg(all(test, target_arch = "x86_64"))]
mod bf16_tests;
#[cfg(test)]
mod conv_tests;
#[cfg(test)]
mod tests;
