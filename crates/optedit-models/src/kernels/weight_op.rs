//! The dispatch and autodiff nodes shared by the kernels that apply a weight
//! and an optional bias ([`conv2d`](super::conv2d) and
//! [`linear`](super::linear)): one node with a bias and one without, each
//! checkpointing the input and the weight and computing only the gradients
//! its parents ask for.

use std::fmt::Debug;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::Tensor;
use burn_flex::FlexTensor;

use super::{contiguous, from, path, saved, to, Path};

/// A kernel applying a weight and an optional bias to an input, on
/// contiguous `f32` `Flex` tensors.
pub(crate) trait WeightOp: Clone + Debug + Send + Sync + 'static {
    /// The output.
    fn forward(&self, x: &FlexTensor, weight: &FlexTensor, bias: Option<&FlexTensor>)
        -> FlexTensor;

    /// The gradients of the input, weight and bias that `want` asks for,
    /// from the output gradient `grad`.
    fn gradients(
        &self,
        x: &FlexTensor,
        weight: &FlexTensor,
        grad: &FlexTensor,
        want: [bool; 3],
    ) -> [Option<FlexTensor>; 3];
}

/// `op` on `x`, `weight` and `bias` where `B` is `Flex` or `Autodiff<Flex,
/// _>` and all three are `f32`; `fallback(x)` (burn's own operation)
/// otherwise.
pub(crate) fn apply<B: Backend, O: WeightOp, const D: usize, const W: usize>(
    op: O,
    x: Tensor<B, D>,
    weight: Tensor<B, W>,
    bias: Option<Tensor<B, 1>>,
    fallback: impl FnOnce(Tensor<B, D>) -> Tensor<B, D>,
) -> Tensor<B, D> {
    let dtypes_match =
        weight.dtype() == x.dtype() && bias.as_ref().is_none_or(|b| b.dtype() == x.dtype());
    let kind = if dtypes_match {
        path::<B>(x.dtype())
    } else {
        Path::Other
    };
    match kind {
        Path::Flex => from::<Flex, B, D>(forward(
            &op,
            to::<Flex, _, D>(x),
            to::<Flex, _, W>(weight),
            bias.map(to::<Flex, _, 1>),
        )),
        Path::Tracked => {
            type X = Autodiff<Flex, NoCheckpointing>;
            let inputs = (
                to::<X, B, D>(x),
                to::<X, B, W>(weight),
                bias.map(to::<X, B, 1>),
            );
            from::<X, B, D>(tracked::<NoCheckpointing, O>(op, inputs))
        }
        Path::TrackedBalanced => {
            type X = Autodiff<Flex, BalancedCheckpointing>;
            let inputs = (
                to::<X, B, D>(x),
                to::<X, B, W>(weight),
                bias.map(to::<X, B, 1>),
            );
            from::<X, B, D>(tracked::<BalancedCheckpointing, O>(op, inputs))
        }
        Path::Other => fallback(x),
    }
}

/// The autodiff node of a [`WeightOp`] with a bias.
#[derive(Debug)]
struct BiasNode<O>(std::marker::PhantomData<O>);

/// The autodiff node of a [`WeightOp`] without a bias.
#[derive(Debug)]
struct NoBiasNode<O>(std::marker::PhantomData<O>);

/// What the backward pass needs: the checkpointed input and weight, and
/// the operation.
#[derive(Debug, Clone)]
struct Saved<O> {
    inputs: [NodeId; 2],
    op: O,
}

/// The gradients that `want` asks for.
fn gradients<O: WeightOp>(
    state: Saved<O>,
    grad: FlexTensor,
    want: [bool; 3],
    checkpointer: &mut Checkpointer,
) -> [Option<FlexTensor>; 3] {
    let grad = contiguous(grad);
    let [x, weight] = saved(state.inputs, checkpointer);
    state.op.gradients(&x, &weight, &grad, want)
}

fn register_some(parent: Option<NodeId>, value: Option<FlexTensor>, grads: &mut Gradients) {
    if let (Some(id), Some(value)) = (parent, value) {
        grads.register::<Flex>(id, value);
    }
}

impl<O: WeightOp> Backward<Flex, 3> for BiasNode<O> {
    type State = Saved<O>;

    fn backward(
        self,
        ops: Ops<Saved<O>, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<Flex>(&ops.node);
        let parents = ops.parents.map(|p| p.map(|node| node.id));
        let want = parents.map(|p| p.is_some());
        let values = gradients(ops.state, grad, want, checkpointer);
        for (parent, value) in parents.into_iter().zip(values) {
            register_some(parent, value, grads);
        }
    }
}

impl<O: WeightOp> Backward<Flex, 2> for NoBiasNode<O> {
    type State = Saved<O>;

    fn backward(
        self,
        ops: Ops<Saved<O>, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
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

/// The forward pass on `Flex`, on contiguous copies where needed.
fn forward<O: WeightOp>(
    op: &O,
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
) -> FlexTensor {
    let (x, weight) = (contiguous(x), contiguous(weight));
    let bias = bias.map(contiguous);
    op.forward(&x, &weight, bias.as_ref())
}

/// Forward pass on `Autodiff<Flex, C>`, recording [`BiasNode`] or
/// [`NoBiasNode`].
fn tracked<C: CheckpointStrategy, O: WeightOp>(
    op: O,
    (x, weight, bias): Inputs<C>,
) -> FloatTensor<Autodiff<Flex, C>> {
    match bias {
        Some(bias) => {
            let nodes = [x.node.clone(), weight.node.clone(), bias.node.clone()];
            let node = BiasNode::<O>(std::marker::PhantomData);
            match node.prepare::<C>(nodes).compute_bound().stateful() {
                OpsKind::Tracked(mut prep) => {
                    let inputs = [prep.checkpoint(&x), prep.checkpoint(&weight)];
                    let out = forward(&op, x.primitive, weight.primitive, Some(bias.primitive));
                    prep.finish(Saved { inputs, op }, out)
                }
                OpsKind::UnTracked(prep) => prep.finish(forward(
                    &op,
                    x.primitive,
                    weight.primitive,
                    Some(bias.primitive),
                )),
            }
        }
        None => {
            let nodes = [x.node.clone(), weight.node.clone()];
            let node = NoBiasNode::<O>(std::marker::PhantomData);
            match node.prepare::<C>(nodes).compute_bound().stateful() {
                OpsKind::Tracked(mut prep) => {
                    let inputs = [prep.checkpoint(&x), prep.checkpoint(&weight)];
                    let out = forward(&op, x.primitive, weight.primitive, None);
                    prep.finish(Saved { inputs, op }, out)
                }
                OpsKind::UnTracked(prep) => {
                    prep.finish(forward(&op, x.primitive, weight.primitive, None))
                }
            }
        }
    }
}
