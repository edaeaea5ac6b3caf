//! UNet parity with diffusers over every UNet case of the fixture set.

use optedit_fixtures::{assert_output, cases_with_prefix, Case, Golden, TestBackend as B};
use optedit_models::{ControlResiduals, UNet2DConditionModel};

fn unet(case: &Case) -> UNet2DConditionModel<B> {
    UNet2DConditionModel::load(&case.model_dir(), &Default::default())
        .unwrap_or_else(|e| panic!("{}: {e}", case.case))
}

fn residuals(case: &Case, g: &Golden) -> Option<ControlResiduals<B>> {
    let device = Default::default();
    let down: Vec<_> = case
        .inputs_with_prefix("input.down_block_additional_residual")
        .iter()
        .map(|n| g.tensor::<B, 4>(n, &device))
        .collect();
    let mid = case
        .inputs
        .contains_key("input.mid_block_additional_residual");
    match (down.is_empty(), mid) {
        (true, false) => None,
        (false, true) => Some(ControlResiduals {
            down,
            mid: g.tensor(&"input.mid_block_additional_residual", &device),
        }),
        _ => panic!("{}: down and mid residuals must come together", case.case),
    }
}

/// `unet_forward`, `unet_forward_scalar_t`, `unet_forward_controlnet` and any
/// other `unet_forward*` case: per-sample or scalar timesteps, with or without
/// ControlNet residuals.
#[test]
fn unet_forward_cases() {
    let device = Default::default();
    for case in cases_with_prefix("unet_forward") {
        let g = case.load();
        let model = unet(&case);
        let t = g.tensor::<B, 1>("input.timestep", &device);
        let out = model
            .forward_with_residuals(
                g.tensor("input.sample", &device),
                t,
                g.tensor("input.encoder_hidden_states", &device),
                residuals(&case, &g).as_ref(),
            )
            .unwrap();
        assert_eq!(case.outputs.len(), 1, "{}: one output expected", case.case);
        let name = case.outputs.keys().next().unwrap();
        assert_output(&case, &g, name, &out);
    }
}
