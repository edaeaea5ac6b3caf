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
//!   pass (flash attention's idea, Dao et al., arXiv 2205.14135). burn 0.21
//!   decomposes attention into matmul, scale, max, subtract, exp, sum and
//!   divide under `Autodiff`, keeping each `[batch, heads, n, m]` result for
//!   the backward pass, and runs `Flex`'s fused attention serially over
//!   `(batch, head)`.

mod attention;
mod exp;

use std::any::{Any, TypeId};

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::module::attention as burn_attention;
use burn::tensor::ops::{AttentionModuleOptions, FloatTensor};
use burn::tensor::{Bytes, DType, Tensor, TensorPrimitive};
use burn_flex::{FlexTensor, Layout};

use attention::Spec;

/// Multi-head scaled dot-product attention over the projections
/// `q` `[batch, n, heads * dim]` and `k`, `v` `[batch, m, heads * dim]`:
/// `softmax(q_h k_h^T / sqrt(dim)) v_h` per head `h`, returned as
/// `[batch, n, heads * dim]`. `causal` hides key `j` from query `i` when
/// `j > i + m - n` (burn's convention; CLIP's causal mask for `n == m`).
///
/// On `Flex` and `Autodiff<Flex, _>` with `f32` tensors this runs the tiled
/// kernel of this module; on any other backend or precision, burn's
/// `attention`. Both compute the same function (the tests compare them,
/// gradients included).
pub fn multi_head_attention<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    heads: usize,
    causal: bool,
) -> Tensor<B, 3> {
    let [batch, n, inner] = q.dims();
    let m = k.dims()[1];
    let dim = inner / heads.max(1);
    let spec = Spec {
        batch,
        heads,
        n,
        m,
        dim,
        scale: 1.0 / (dim as f32).sqrt(),
        causal,
    };
    let fast = heads > 0
        && heads * dim == inner
        && [q.dtype(), k.dtype(), v.dtype()] == [DType::F32; 3]
        && n > 0
        && m > 0;
    if fast {
        let id = TypeId::of::<B>();
        if id == TypeId::of::<Flex>() {
            return on::<B, Flex>([q, k, v], |[q, k, v]| flex_forward(q, k, v, spec).0);
        }
        if id == TypeId::of::<Autodiff<Flex, NoCheckpointing>>() {
            return on::<B, Autodiff<Flex, NoCheckpointing>>([q, k, v], |t| {
                tracked::<NoCheckpointing>(t, spec)
            });
        }
        if id == TypeId::of::<Autodiff<Flex, BalancedCheckpointing>>() {
            return on::<B, Autodiff<Flex, BalancedCheckpointing>>([q, k, v], |t| {
                tracked::<BalancedCheckpointing>(t, spec)
            });
        }
    }
    reference_attention(q, k, v, heads, causal)
}

/// The same function through burn's `attention` (split into heads and back).
pub(crate) fn reference_attention<B: Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
    v: Tensor<B, 3>,
    heads: usize,
    causal: bool,
) -> Tensor<B, 3> {
    let [b, n, inner] = q.dims();
    let m = k.dims()[1];
    let d = inner / heads;
    let split = |t: Tensor<B, 3>, len: usize| t.reshape([b, len, heads, d]).swap_dims(1, 2);
    let options = AttentionModuleOptions {
        scale: None,
        softcap: None,
        is_causal: causal,
    };
    let out = burn_attention(split(q, n), split(k, m), split(v, m), None, None, options);
    out.swap_dims(1, 2).reshape([b, n, inner])
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

/// Runs `f` on the primitives of `tensors` seen as backend `X`; the caller
/// has checked that `B` is `X`.
fn on<B: Backend, X: Backend>(
    tensors: [Tensor<B, 3>; 3],
    f: impl FnOnce([FloatTensor<X>; 3]) -> FloatTensor<X>,
) -> Tensor<B, 3> {
    let as_x = |t: Tensor<B, 3>| {
        cast::<FloatTensor<B>, FloatTensor<X>>(t.into_primitive().tensor())
            .unwrap_or_else(|_| unreachable!("B is X"))
    };
    let out = f(tensors.map(as_x));
    let out =
        cast::<FloatTensor<X>, FloatTensor<B>>(out).unwrap_or_else(|_| unreachable!("B is X"));
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// Contiguous `f32` storage of a `Flex` tensor.
fn contiguous(t: FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .unwrap_or_else(|| unreachable!("contiguous f32 checked by the caller"))
}

fn flex(values: Vec<f32>, shape: [usize; 3]) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(values),
        Layout::contiguous(shape.into()),
        DType::F32,
    )
}

/// Forward pass on `Flex`: the output and the row log-sum-exp.
fn flex_forward(q: FlexTensor, k: FlexTensor, v: FlexTensor, spec: Spec) -> (FlexTensor, Vec<f32>) {
    let (q, k, v) = (contiguous(q), contiguous(k), contiguous(v));
    let (out, lse) = attention::forward(slice(&q), slice(&k), slice(&v), spec);
    (flex(out, [spec.batch, spec.n, spec.heads * spec.dim]), lse)
}

/// The autodiff node of [`multi_head_attention`].
#[derive(Debug)]
struct AttentionNode;

/// What the backward pass needs besides the inputs.
#[derive(Debug, Clone)]
struct Saved {
    inputs: [NodeId; 3],
    out: FlexTensor,
    lse: std::sync::Arc<Vec<f32>>,
    spec: Spec,
}

impl Backward<Flex, 3> for AttentionNode {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let Saved {
            inputs,
            out,
            lse,
            spec,
        } = ops.state;
        let [q, k, v] =
            inputs.map(|id| contiguous(checkpointer.retrieve_node_output::<FlexTensor>(id)));
        let (dq, dk, dv) = attention::backward(
            slice(&q),
            slice(&k),
            slice(&v),
            slice(&contiguous(out)),
            &lse,
            slice(&grad),
            spec,
        );
        let inner = spec.heads * spec.dim;
        let shapes = [
            [spec.batch, spec.n, inner],
            [spec.batch, spec.m, inner],
            [spec.batch, spec.m, inner],
        ];
        for ((parent, values), shape) in ops.parents.into_iter().zip([dq, dk, dv]).zip(shapes) {
            if let Some(node) = parent {
                grads.register::<Flex>(node.id, flex(values, shape));
            }
        }
    }
}

/// Forward pass on `Autodiff<Flex, C>`, recording [`AttentionNode`].
fn tracked<C: CheckpointStrategy>(
    [q, k, v]: [FloatTensor<Autodiff<Flex, C>>; 3],
    spec: Spec,
) -> FloatTensor<Autodiff<Flex, C>> {
    let nodes = [q.node.clone(), k.node.clone(), v.node.clone()];
    match AttentionNode.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let inputs = [
                prep.checkpoint(&q),
                prep.checkpoint(&k),
                prep.checkpoint(&v),
            ];
            let (out, lse) = flex_forward(q.primitive, k.primitive, v.primitive, spec);
            let saved = Saved {
                inputs,
                out: out.clone(),
                lse: std::sync::Arc::new(lse),
                spec,
            };
            prep.finish(saved, out)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(flex_forward(q.primitive, k.primitive, v.primitive, spec).0)
        }
    }
}

#[cfg(test)]
mod tests;
