//! Helpers shared by the UNet parity tests: the model of a case, and the
//! ControlNet residuals and SDXL added conditions a case gives.

#![allow(dead_code)]

use burn::tensor::backend::Backend;
use optedit_fixtures::{Case, Golden};
use optedit_models::{AddedConditions, ControlResiduals, UNet2DConditionModel};

/// The UNet of `case`.
pub fn unet<B: Backend>(case: &Case) -> UNet2DConditionModel<B> {
    UNet2DConditionModel::load(&case.model_dir(), &Default::default())
        .unwrap_or_else(|e| panic!("{}: {e}", case.case))
}

/// The ControlNet residuals of `case`, when it has them.
pub fn residuals<B: Backend>(case: &Case, g: &Golden) -> Option<ControlResiduals<B>> {
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

/// SDXL's added conditions (`input.text_embeds` and `input.time_ids`), when
/// the case has them.
pub fn added<B: Backend>(case: &Case, g: &Golden) -> Option<AddedConditions<B>> {
    let device = Default::default();
    match (g.has("input.text_embeds"), g.has("input.time_ids")) {
        (false, false) => None,
        (true, true) => Some(AddedConditions {
            text_embeds: g.tensor("input.text_embeds", &device),
            time_ids: g.tensor("input.time_ids", &device),
        }),
        _ => panic!("{}: text_embeds and time_ids must come together", case.case),
    }
}
