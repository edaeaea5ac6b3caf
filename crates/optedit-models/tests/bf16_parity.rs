//! bf16 compute (`ComputeDtype::Bf16`: operands rounded to bf16, sums in
//! f32) against the diffusers f32 goldens, over the model cases of the
//! fixture set, on `Flex` and `Autodiff<Flex>`.
//!
//! The tolerance is on the whole output, not per element: the relative L2
//! error `|got - want| / |want|` must stay below [`REL_L2`] ([`REL_L2_VAE`]
//! for the VAE, whose decoder stacks about thirty 3x3 convolutions). bf16
//! keeps 8 significant bits (relative rounding 2^-9 = 0.2% per operand);
//! measured on the committed fixtures and on a set of other shapes: CLIP
//! 0.4%, UNet outputs 0.5-0.8%, UNet gradients 1.1%, ControlNet 0.6-1.0%,
//! VAE 1.0-2.0% (each test prints its errors). A wrong packing, a wrong tile
//! or a lost accumulation gives errors near 100%. Each output must also differ from the golden by
//! more than f32 rounding (relative L2 above [`F32_NOISE`]), which proves
//! the bf16 kernels ran.
//!
//! The compute dtype is process-wide, so every test in this binary runs in
//! bf16; on a CPU without AMX or AVX512-BF16 the tests check instead that
//! bf16 is refused with a typed error.

mod common;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use common::{added, residuals, unet};
use optedit_fixtures::{
    cases_with_prefix, values, Case, Golden, TestAutodiffBackend as AD, TestBackend as B,
};
use optedit_models::kernels::{bf16_unit, set_compute_dtype, ComputeDtype};
use optedit_models::{
    AutoencoderKL, ClipTextModel, ControlNetModel, ModelError, UNet2DConditionModel,
};

/// Largest relative L2 error of a bf16 output against the f32 golden.
const REL_L2: f64 = 2e-2;
/// The same for the VAE.
const REL_L2_VAE: f64 = 5e-2;
/// Smallest relative L2 error that shows bf16 arithmetic (f32 parity of
/// these cases is near 1e-7).
const F32_NOISE: f64 = 1e-5;

/// Sets bf16 for the process; `false` (after checking the refusal) on a
/// CPU without a bf16 unit.
fn bf16() -> bool {
    match bf16_unit() {
        Some(_) => {
            set_compute_dtype(ComputeDtype::Bf16).expect("bf16 on a CPU with a bf16 unit");
            true
        }
        None => {
            let err = set_compute_dtype(ComputeDtype::Bf16).unwrap_err();
            assert!(
                matches!(&err, ModelError::InvalidInput { argument, .. } if argument == "dtype"),
                "{err}"
            );
            false
        }
    }
}

/// Checks output `name` of `case` against the golden and prints the error.
fn check<Bk: Backend, const D: usize>(case: &Case, g: &Golden, name: &str, got: &Tensor<Bk, D>) {
    check_within(case, g, name, got, REL_L2)
}

/// [`check`] with the bound `bound`.
fn check_within<Bk: Backend, const D: usize>(
    case: &Case,
    g: &Golden,
    name: &str,
    got: &Tensor<Bk, D>,
    bound: f64,
) {
    let want = &g.get(name).values;
    let got = values(got);
    assert_eq!(got.len(), want.len(), "{}: {name} size", case.case);
    let diff: f64 = got.iter().zip(want).map(|(a, b)| (a - b) * (a - b)).sum();
    let norm: f64 = want.iter().map(|b| b * b).sum();
    let rel = (diff / norm.max(f64::MIN_POSITIVE)).sqrt();
    eprintln!("{} {name}: relative L2 error {rel:.2e}", case.case);
    assert!(
        rel <= bound,
        "{}: {name} relative L2 error {rel:.3e} above {bound:e}",
        case.case
    );
    assert!(
        rel >= F32_NOISE,
        "{}: {name} relative L2 error {rel:.3e}: no bf16 rounding seen",
        case.case
    );
}

#[test]
fn unet_forward_cases_in_bf16() {
    if !bf16() {
        return;
    }
    let device = Default::default();
    for case in cases_with_prefix("unet_forward") {
        let g = case.load();
        let model = unet::<B>(&case);
        let out = model
            .forward_with_conditions(
                g.tensor("input.sample", &device),
                g.tensor("input.timestep", &device),
                g.tensor("input.encoder_hidden_states", &device),
                added(&case, &g).as_ref(),
                residuals(&case, &g).as_ref(),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", case.case));
        let name = case.outputs.keys().next().expect("one output");
        check(&case, &g, name, &out);
    }
}

/// The gradient of a plain MSE on the noise prediction w.r.t. the latent,
/// through the bf16 backward passes of the convolution, attention and
/// linear kernels.
#[test]
fn unet_gradient_cases_in_bf16() {
    if !bf16() {
        return;
    }
    let device = Default::default();
    for case in cases_with_prefix("unet_grad") {
        let g = case.load();
        let model = UNet2DConditionModel::<AD>::load(&case.model_dir(), &device).unwrap();
        let z: Tensor<AD, 4> = g.tensor::<AD, 4>("input.z", &device).require_grad();
        let target: Tensor<AD, 4> = g.tensor("input.target", &device);
        let eps = model
            .forward(
                z.clone(),
                g.tensor("input.timestep", &device),
                g.tensor("input.encoder_hidden_states", &device),
            )
            .unwrap();
        let loss = (eps.clone() - target).powi_scalar(2).mean();
        let grad = z.grad(&loss.backward()).unwrap();
        check(&case, &g, "output.eps", &eps.inner());
        check(&case, &g, "output.grad_mse", &grad);
    }
}

#[test]
fn vae_cases_in_bf16() {
    if !bf16() {
        return;
    }
    let device = Default::default();
    for case in cases_with_prefix("vae_decode") {
        let g = case.load();
        let vae = AutoencoderKL::<B>::load(&case.model_dir(), &device).unwrap();
        let image = vae.decode(g.tensor("input.latent", &device)).unwrap();
        check_within(&case, &g, "output.image", &image, REL_L2_VAE);
    }
    for case in cases_with_prefix("vae_encode") {
        let g = case.load();
        let vae = AutoencoderKL::<B>::load(&case.model_dir(), &device).unwrap();
        let dist = vae.encode(g.tensor("input.image", &device)).unwrap();
        check_within(&case, &g, "output.mean", &dist.mean, REL_L2_VAE);
    }
}

#[test]
fn clip_and_controlnet_cases_in_bf16() {
    if !bf16() {
        return;
    }
    let device = Default::default();
    for case in cases_with_prefix("clip_text_encoder") {
        if case.case.starts_with("clip_text_encoder_with_projection") {
            continue;
        }
        let g = case.load();
        let ids = g.get("input.input_ids");
        let ids =
            Tensor::<B, 2, Int>::from_data(TensorData::new(ids.i64s(), ids.shape.clone()), &device);
        let clip = ClipTextModel::<B>::load(&case.model_dir(), &device).unwrap();
        let out = clip.forward(ids).unwrap();
        check(
            &case,
            &g,
            "output.last_hidden_state",
            &out.last_hidden_state,
        );
    }
    for case in cases_with_prefix("controlnet_forward") {
        let g = case.load();
        let cn = ControlNetModel::<B>::load(&case.model_dir(), &device).unwrap();
        let res = cn
            .forward_with_conditions(
                g.tensor("input.sample", &device),
                g.tensor("input.timestep", &device),
                g.tensor("input.encoder_hidden_states", &device),
                g.tensor("input.controlnet_cond", &device),
                g.get("input.conditioning_scale").values[0],
                added(&case, &g).as_ref(),
            )
            .unwrap();
        check(&case, &g, "output.mid_block_res_sample", &res.mid);
    }
}

/// `kernels::linear` in bf16 against burn's f32 `Linear::forward`: values
/// and the gradients of input, weight and bias (the three products of the
/// backward pass read the weight and the input transposed).
#[test]
fn linear_values_and_gradients_in_bf16() {
    use burn::module::AutodiffModule;
    use burn::nn::LinearConfig;
    use burn::tensor::Distribution;
    use optedit_models::kernels::linear;
    if !bf16() {
        return;
    }
    let device = Default::default();
    let layer = LinearConfig::new(48, 80).init::<AD>(&device);
    let x = Tensor::<AD, 3>::random([2, 37, 48], Distribution::Normal(0.0, 1.0), &device);
    let c = Tensor::<AD, 3>::random([2, 37, 80], Distribution::Normal(0.0, 1.0), &device);
    let run = |bf16: bool| {
        let x = x.clone().require_grad();
        let y = if bf16 {
            linear(&layer, x.clone())
        } else {
            layer.forward(x.clone())
        };
        let grads = (y.clone() * c.clone()).sum().backward();
        let w = layer.weight.val();
        let b = layer.bias.as_ref().unwrap().val();
        (
            values(&y.inner()),
            values(&x.grad(&grads).unwrap()),
            values(&w.grad(&grads).unwrap()),
            values(&b.grad(&grads).unwrap()),
        )
    };
    let (ours, reference) = (run(true), run(false));
    let pairs = [
        ("y", &ours.0, &reference.0),
        ("dx", &ours.1, &reference.1),
        ("dweight", &ours.2, &reference.2),
        ("dbias", &ours.3, &reference.3),
    ];
    for (name, got, want) in pairs {
        let diff: f64 = got
            .iter()
            .zip(want.iter())
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        let norm: f64 = want.iter().map(|b| b * b).sum();
        let rel = (diff / norm).sqrt();
        eprintln!("linear {name}: relative L2 error {rel:.2e}");
        assert!(rel <= REL_L2, "linear {name}: {rel:.3e}");
        // The bias gradient is a sum in f32 either way.
        if name != "dbias" {
            assert!(
                rel >= F32_NOISE,
                "linear {name}: {rel:.3e}: no bf16 rounding seen"
            );
        }
    }
    // Inference modules take the same path.
    let plain = layer.valid();
    let xi = x.inner();
    let got = values(&linear(&plain, xi.clone()));
    let want = values(&plain.forward(xi));
    let diff: f64 = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        diff > 0.0 && diff < 0.1,
        "inner linear: max difference {diff}"
    );
}
