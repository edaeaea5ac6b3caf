//! The kernels against burn's own operations, values and gradients.

use burn::backend::autodiff::checkpoint::strategy::{
    BalancedCheckpointing, CheckpointStrategy, NoCheckpointing,
};
use burn::backend::{Autodiff, Flex};
use burn::tensor::{Distribution, Tensor, TensorData, Tolerance};

use super::{multi_head_attention, reference_attention};

/// `ours` against the reference `theirs`, to `tol` times the reference's
/// largest magnitude (and at least `tol`). Two f32 sums of the same terms in
/// a different order differ in proportion to the size of the terms, so a
/// fixed absolute bound fails on large reductions (a weight gradient summed
/// over 900 rows reaches 74 and differs by 1.3e-4 between two correct
/// orders), while a wrong term, index or transposition still differs by the
/// order of the values themselves.
pub(super) fn assert_close(ours: &TensorData, theirs: &TensorData, tol: f64) {
    let scale = theirs.iter::<f32>().fold(1.0f32, |m, v| m.max(v.abs()));
    ours.assert_approx_eq::<f32>(theirs, Tolerance::absolute(tol * f64::from(scale)));
}

/// `(batch, heads, n, m, dim, causal)`: self- and cross-attention, a causal
/// mask, several query tiles (`n * m` above the tile budget), and a causal
/// mask with more queries than keys, whose first rows see nothing.
const SHAPES: [Shape; 5] = [
    (2, 2, 16, 16, 8, false),
    (2, 3, 24, 7, 5, false),
    (1, 2, 9, 9, 4, true),
    (2, 1, 300, 260, 6, false),
    (1, 2, 6, 4, 3, true),
];

fn inputs<B: burn::tensor::backend::Backend>(
    (batch, heads, n, m, dim, _): Shape,
    device: &B::Device,
) -> [Tensor<B, 3>; 3] {
    let inner = heads * dim;
    let d = Distribution::Normal(0.0, 1.5);
    [
        Tensor::random([batch, n, inner], d, device),
        Tensor::random([batch, m, inner], d, device),
        Tensor::random([batch, m, inner], d, device),
    ]
}

#[test]
fn forward_matches_burn_attention() {
    let device = Default::default();
    for shape in SHAPES {
        let [q, k, v] = inputs::<Flex>(shape, &device);
        let ours = multi_head_attention(q.clone(), k.clone(), v.clone(), shape.1, shape.5);
        let burns = reference_attention(q, k, v, shape.1, shape.5);
        assert_close(&ours.into_data(), &burns.into_data(), 1e-5);
    }
}

type Shape = (usize, usize, usize, usize, usize, bool);

/// Kernel against burn's attention on one shape: outputs to `tol`, the
/// gradients of q, k and v of a weighted sum (every output element with its
/// own weight) to `10 * tol`.
fn compare<C: CheckpointStrategy>(shape: Shape, tol: f64) {
    type Ad<C> = Autodiff<Flex, C>;
    let device = Default::default();
    let [q, k, v] = inputs::<Ad<C>>(shape, &device).map(|t| t.require_grad());
    let weights = Tensor::<Ad<C>, 3>::random(
        [shape.0, shape.2, shape.1 * shape.4],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let run = |f: &dyn Fn(_, _, _) -> Tensor<Ad<C>, 3>| {
        let out = f(q.clone(), k.clone(), v.clone());
        let grads = (out.clone() * weights.clone()).sum().backward();
        let g = |t: &Tensor<Ad<C>, 3>| t.grad(&grads).expect("gradient").into_data();
        (out.inner().into_data(), [g(&q), g(&k), g(&v)])
    };
    let (out, grads) = run(&|q, k, v| multi_head_attention(q, k, v, shape.1, shape.5));
    let (ref_out, ref_grads) = run(&|q, k, v| reference_attention(q, k, v, shape.1, shape.5));
    assert_close(&out, &ref_out, tol);
    for (ours, theirs) in grads.iter().zip(&ref_grads) {
        assert_close(ours, theirs, 10.0 * tol);
    }
}

fn gradients_match<C: CheckpointStrategy>() {
    for shape in SHAPES {
        compare::<C>(shape, 1e-5);
    }
}

#[test]
fn gradients_match_burn_attention() {
    gradients_match::<NoCheckpointing>();
}

#[test]
fn gradients_match_burn_attention_under_balanced_checkpointing() {
    gradients_match::<BalancedCheckpointing>();
}

#[test]
fn untracked_inputs_give_no_gradient_and_the_same_output() {
    let device = Default::default();
    let shape = SHAPES[1];
    let [q, k, v] = inputs::<Autodiff<Flex>>(shape, &device);
    let q = q.require_grad();
    let out = multi_head_attention(q.clone(), k.clone(), v.clone(), shape.1, false);
    let grads = out.clone().sum().backward();
    assert!(q.grad(&grads).is_some());
    assert!(k.grad(&grads).is_none());
    let plain = multi_head_attention(q.inner(), k.inner(), v.inner(), shape.1, false);
    out.inner()
        .into_data()
        .assert_approx_eq::<f32>(&plain.into_data(), Tolerance::absolute(0.0));
}

/// Forty shapes drawn from a fixed-seed generator (batch 1-3, heads 1-4,
/// 1-150 queries, 1-150 keys, head width 1-20, causal or not) against burn's
/// attention, forward and gradients: odd sizes, single tokens and tiles that
/// end mid-way.
#[test]
fn random_shapes_match_burn_attention() {
    let mut state = 0x2545_f491_u64;
    let mut draw = |hi: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        1 + (state >> 33) as usize % hi
    };
    for _ in 0..40 {
        let shape = (
            draw(3),
            draw(4),
            draw(150),
            draw(150),
            draw(20),
            draw(2) == 1,
        );
        compare::<NoCheckpointing>(shape, 1e-4);
    }
}

#[test]
fn parallel_fills_write_every_element() {
    // Rows that do not divide a job's share, a buffer above the parallel
    // threshold, an empty row, a small one and a large single value (the
    // fill path).
    for (row, rows) in [
        (vec![1.5f32, -2.0, 3.25], 70_001),
        (vec![], 5),
        (vec![7.0], 3),
        (vec![-0.5], 70_001),
    ] {
        let out = super::rows_of(&row, rows);
        assert_eq!(out.len(), row.len() * rows);
        assert!(out.chunks(row.len().max(1)).all(|c| c == row.as_slice()));
    }
    for len in [0, 10, super::PARALLEL_FILL + 3] {
        let z = super::zeros(len);
        assert_eq!(z.len(), len);
        assert!(z.iter().all(|&v| v == 0.0));
    }
}

/// The f32 `linear` kernel against burn's `Linear::forward` (which it
/// replaces on `Flex`): values, and the gradients of input, weight and bias
/// of a weighted sum, under both checkpointing strategies; shapes with a
/// bias and without, a single row, a batch above the parallel fill, and an
/// input that is a swapped (non-contiguous) view.
fn linear_matches_burn<C: CheckpointStrategy>() {
    use burn::module::AutodiffModule;
    use burn::nn::LinearConfig;
    type Ad<C> = Autodiff<Flex, C>;
    let device = Default::default();
    for (dims, d_out, bias, swapped) in [
        ([2, 37, 48], 80, true, false),
        ([1, 1, 5], 3, false, false),
        ([3, 300, 64], 96, true, false),
        ([2, 19, 24], 40, true, true),
    ] {
        let layer = LinearConfig::new(dims[2], d_out)
            .with_bias(bias)
            .init::<Ad<C>>(&device);
        let d = Distribution::Normal(0.0, 1.0);
        let x = if swapped {
            Tensor::<Ad<C>, 3>::random([dims[0], dims[2], dims[1]], d, &device).swap_dims(1, 2)
        } else {
            Tensor::<Ad<C>, 3>::random(dims, d, &device)
        };
        let c = Tensor::<Ad<C>, 3>::random([dims[0], dims[1], d_out], d, &device);
        let run = |ours: bool| {
            let x = x.clone().require_grad();
            let y = if ours {
                super::linear(&layer, x.clone())
            } else {
                layer.forward(x.clone())
            };
            let grads = (y.clone() * c.clone()).sum().backward();
            let b = layer
                .bias
                .as_ref()
                .map(|b| b.val().grad(&grads).expect("bias gradient").into_data());
            (
                y.inner().into_data(),
                x.grad(&grads).expect("input gradient").into_data(),
                layer
                    .weight
                    .val()
                    .grad(&grads)
                    .expect("weight gradient")
                    .into_data(),
                b,
            )
        };
        let (ours, burns) = (run(true), run(false));
        let tol = 1e-4;
        assert_close(&ours.0, &burns.0, tol);
        assert_close(&ours.1, &burns.1, tol);
        assert_close(&ours.2, &burns.2, tol);
        assert_eq!(ours.3.is_some(), bias);
        if let (Some(a), Some(b)) = (ours.3, burns.3) {
            assert_close(&a, &b, tol);
        }
        // The inference module takes the kernel too, with the same values.
        let plain = layer.valid();
        assert_close(
            &super::linear(&plain, x.clone().inner()).into_data(),
            &burns.0,
            tol,
        );
    }
}

#[test]
fn linear_matches_burn_linear_in_f32() {
    linear_matches_burn::<NoCheckpointing>();
}

#[test]
fn linear_matches_burn_linear_in_f32_under_balanced_checkpointing() {
    linear_matches_burn::<BalancedCheckpointing>();
}
