//! [`multi_head_attention`]: dispatch and the autodiff node of the tiled
//! attention kernel in `attention.rs`.

use std::sync::Arc;

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
use burn::tensor::Tensor;
use burn_flex::FlexTensor;

use super::attention::{self, Spec};
use super::{contiguous, flex, on, path, register, saved, slice, Path};

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
///
/// # Panics
/// As burn's tensor operations do, when `heads` does not divide the width or
/// `k` and `v` do not match `q`'s batch and width.
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
    // The kernel reads through raw pointers: anything but matching shapes
    // and dtypes goes to burn's attention (which reports its own errors).
    let same_dtype = k.dtype() == q.dtype() && v.dtype() == q.dtype();
    let shapes = k.dims() == [batch, m, inner] && v.dims() == [batch, m, inner];
    let fits = heads > 0 && heads * dim == inner && n > 0 && m > 0 && same_dtype && shapes;
    match path::<B>(q.dtype()) {
        _ if !fits => reference_attention(q, k, v, heads, causal),
        Path::Flex => on::<B, Flex, 3, 3>([q, k, v], |[q, k, v]| flex_forward(q, k, v, spec).0),
        Path::Tracked => on::<B, Autodiff<Flex, NoCheckpointing>, 3, 3>([q, k, v], |t| {
            tracked::<NoCheckpointing>(t, spec)
        }),
        Path::TrackedBalanced => {
            on::<B, Autodiff<Flex, BalancedCheckpointing>, 3, 3>([q, k, v], |t| {
                tracked::<BalancedCheckpointing>(t, spec)
            })
        }
        Path::Other => reference_attention(q, k, v, heads, causal),
    }
}

/// The same function through burn's `attention`: the projections split into
/// `[batch, heads, tokens, dim]` and merged back, as the models did before
/// the kernel (the reference of the kernel's tests and benches).
///
/// # Panics
/// Under the same conditions as [`multi_head_attention`].
pub fn reference_attention<B: Backend>(
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

/// Forward pass on `Flex`: the output and the row log-sum-exp.
fn flex_forward(q: FlexTensor, k: FlexTensor, v: FlexTensor, spec: Spec) -> (FlexTensor, Vec<f32>) {
    let (q, k, v) = (contiguous(q), contiguous(k), contiguous(v));
    let (out, lse) = attention::forward(slice(&q), slice(&k), slice(&v), spec);
    (flex(out, &[spec.batch, spec.n, spec.heads * spec.dim]), lse)
}

/// The autodiff node of [`multi_head_attention`].
#[derive(Debug)]
struct AttentionNode;

/// What the backward pass needs besides the inputs.
#[derive(Debug, Clone)]
struct Saved {
    inputs: [NodeId; 3],
    out: FlexTensor,
    lse: Arc<Vec<f32>>,
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
        let [q, k, v] = saved(inputs, checkpointer);
        let (dq, dk, dv) = attention::backward(
            slice(&q),
            slice(&k),
            slice(&v),
            slice(&contiguous(out)),
            &lse,
            slice(&grad),
            spec,
        );
        let like = |values, t: &FlexTensor| flex(values, t.layout().shape());
        let values = [like(dq, &q), like(dk, &k), like(dv, &v)];
        register(ops.parents.map(|p| p.map(|node| node.id)), values, grads);
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
                lse: Arc::new(lse),
                spec,
            };
            prep.finish(saved, out)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(flex_forward(q.primitive, k.primitive, v.primitive, spec).0)
        }
    }
}
