//! [`conv2d`]: dispatch and the autodiff node of the convolution kernel in
//! `conv.rs`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::{Autodiff, Flex};
use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::Tensor;
use burn_flex::FlexTensor;

use super::conv::{self, Spec};
use super::{contiguous, flex, from, path, saved, slice, to, Path};

/// `conv.forward(x)` for a burn `Conv2d` module.
///
/// On `Flex` and `Autodiff<Flex, _>` with `f32` tensors, a convolution with
/// one group, no dilation and explicit (or no) padding runs the kernel of
/// this module: im2col tiles and `gemm` products written straight into the
/// output, and one autodiff node whose backward pass computes only the
/// gradients its inputs need. Anything else (and every other backend) calls
/// `conv.forward(x)`.
///
/// # Panics
/// As `conv.forward` does, when `x`'s channels do not match the weight or
/// the padded input is smaller than the kernel.
pub fn conv2d<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let Some(spec) = spec(conv, &x) else {
        return conv.forward(x);
    };
    let weight = conv.weight.val();
    let bias = conv.bias.as_ref().map(|b| b.val());
    let dtypes_match =
        weight.dtype() == x.dtype() && bias.as_ref().is_none_or(|b| b.dtype() == x.dtype());
    let kind = if dtypes_match {
        path::<B>(x.dtype())
    } else {
        Path::Other
    };
    match kind {
        Path::Flex => {
            let out = forward(
                to::<Flex, _, 4>(x),
                to::<Flex, _, 4>(weight),
                bias.map(to::<Flex, _, 1>),
                spec,
            );
            from::<Flex, B, 4>(out)
        }
        Path::Tracked => {
            type X = Autodiff<Flex, NoCheckpointing>;
            let inputs = (
                to::<X, B, 4>(x),
                to::<X, B, 4>(weight),
                bias.map(to::<X, B, 1>),
            );
            from::<X, B, 4>(tracked::<NoCheckpointing>(inputs, spec))
        }
        Path::TrackedBalanced => {
            type X = Autodiff<Flex, BalancedCheckpointing>;
            let inputs = (
                to::<X, B, 4>(x),
                to::<X, B, 4>(weight),
                bias.map(to::<X, B, 1>),
            );
            from::<X, B, 4>(tracked::<BalancedCheckpointing>(inputs, spec))
        }
        Path::Other => conv.forward(x),
    }
}

/// The kernel's shape description, or `None` when the convolution is one
/// the kernel does not cover (groups, dilation, `Same` padding, a shape
/// mismatch or an empty tensor), which then goes to burn.
fn spec<B: Backend>(conv: &Conv2d<B>, x: &Tensor<B, 4>) -> Option<Spec> {
    let [n, ci, h, w] = x.dims();
    let [co, wci, kh, kw] = conv.weight.dims();
    let (top, left, bottom, right) = match conv.padding {
        PaddingConfig2d::Explicit(t, l, b, r) => (t, l, b, r),
        PaddingConfig2d::Valid => (0, 0, 0, 0),
        PaddingConfig2d::Same => return None,
    };
    let [sh, sw] = conv.stride;
    let (eh, ew) = (h + top + bottom, w + left + right);
    let bias_ok = conv.bias.as_ref().is_none_or(|b| b.dims() == [co]);
    let fits = conv.groups == 1
        && conv.dilation == [1, 1]
        && wci == ci
        && [n, ci, h, w, co, kh, kw, sh, sw].iter().all(|&d| d > 0)
        && eh >= kh
        && ew >= kw
        && bias_ok;
    fits.then(|| Spec {
        n,
        ci,
        h,
        w,
        co,
        kh,
        kw,
        stride: [sh, sw],
        pad: [top, left],
        oh: (eh - kh) / sh + 1,
        ow: (ew - kw) / sw + 1,
    })
}

fn output_shape(spec: Spec) -> [usize; 4] {
    [spec.n, spec.co, spec.oh, spec.ow]
}

/// Forward pass on `Flex`.
fn forward(x: FlexTensor, weight: FlexTensor, bias: Option<FlexTensor>, spec: Spec) -> FlexTensor {
    let (x, weight) = (contiguous(x), contiguous(weight));
    let bias = bias.map(contiguous);
    let out = conv::forward(slice(&x), slice(&weight), bias.as_ref().map(slice), spec);
    flex(out, &output_shape(spec))
}

/// The autodiff node of [`conv2d`] with a bias.
#[derive(Debug)]
struct ConvNode;

/// The autodiff node of [`conv2d`] without a bias.
#[derive(Debug)]
struct ConvNoBiasNode;

/// What the backward pass needs: the input and weight, and the shape.
#[derive(Debug, Clone)]
struct Saved {
    inputs: [NodeId; 2],
    spec: Spec,
}

/// The gradients of the input, weight and bias that `parents` ask for.
fn gradients(
    state: Saved,
    grad: FlexTensor,
    want: [bool; 3],
    checkpointer: &mut Checkpointer,
) -> [Option<FlexTensor>; 3] {
    let grad = contiguous(grad);
    let Saved { inputs, spec } = state;
    let [x, weight] = saved(inputs, checkpointer);
    let [dx, dw, db] = conv::backward(slice(&x), slice(&weight), slice(&grad), spec, want);
    [
        dx.map(|v| flex(v, &[spec.n, spec.ci, spec.h, spec.w])),
        dw.map(|v| flex(v, &[spec.co, spec.ci, spec.kh, spec.kw])),
        db.map(|v| flex(v, &[spec.co])),
    ]
}

fn register_some(parent: Option<NodeId>, value: Option<FlexTensor>, grads: &mut Gradients) {
    if let (Some(id), Some(value)) = (parent, value) {
        grads.register::<Flex>(id, value);
    }
}

impl Backward<Flex, 3> for ConvNode {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let parents = ops.parents.map(|p| p.map(|node| node.id));
        let want = parents.map(|p| p.is_some());
        let values = gradients(ops.state, grad, want, checkpointer);
        for (parent, value) in parents.into_iter().zip(values) {
            register_some(parent, value, grads);
        }
    }
}

impl Backward<Flex, 2> for ConvNoBiasNode {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let parents = ops.parents.map(|p| p.map(|node| node.id));
        let want = [parents[0].is_some(), parents[1].is_some(), false];
        let [dx, dw, _] = gradients(ops.state, grad, want, checkpointer);
        register_some(parents[0], dx, grads);
        register_some(parents[1], dw, grads);
    }
}

type Inputs<C> = (
    FloatTensor<Autodiff<Flex, C>>,
    FloatTensor<Autodiff<Flex, C>>,
    Option<FloatTensor<Autodiff<Flex, C>>>,
);

/// Forward pass on `Autodiff<Flex, C>`, recording [`ConvNode`] or
/// [`ConvNoBiasNode`].
fn tracked<C: CheckpointStrategy>(
    (x, weight, bias): Inputs<C>,
    spec: Spec,
) -> FloatTensor<Autodiff<Flex, C>> {
    match bias {
        Some(bias) => {
            let nodes = [x.node.clone(), weight.node.clone(), bias.node.clone()];
            match ConvNode.prepare::<C>(nodes).compute_bound().stateful() {
                OpsKind::Tracked(mut prep) => {
                    let inputs = [prep.checkpoint(&x), prep.checkpoint(&weight)];
                    let out = forward(x.primitive, weight.primitive, Some(bias.primitive), spec);
                    prep.finish(Saved { inputs, spec }, out)
                }
                OpsKind::UnTracked(prep) => prep.finish(forward(
                    x.primitive,
                    weight.primitive,
                    Some(bias.primitive),
                    spec,
                )),
            }
        }
        None => {
            let nodes = [x.node.clone(), weight.node.clone()];
            match ConvNoBiasNode
                .prepare::<C>(nodes)
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(mut prep) => {
                    let inputs = [prep.checkpoint(&x), prep.checkpoint(&weight)];
                    let out = forward(x.primitive, weight.primitive, None, spec);
                    prep.finish(Saved { inputs, spec }, out)
                }
                OpsKind::UnTracked(prep) => {
                    prep.finish(forward(x.primitive, weight.primitive, None, spec))
                }
            }
        }
    }
}
