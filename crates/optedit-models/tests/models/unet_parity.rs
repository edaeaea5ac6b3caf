//! UNet parity with diffusers over every UNet case of the fixture set, on
//! each test backend (`Flex` with optedit's kernels, and burn's `NdArray`
//! with none of them).

use crate::common::{added, residuals, unet};
use optedit_fixtures::{assert_output, cases_with_prefix, Backends};
use optedit_models::{AddedConditions, ModelError};

/// `unet_forward`, `unet_forward_scalar_t`, `unet_forward_controlnet`,
/// `unet_forward_sdxl` and any other `unet_forward*` case: per-sample or
/// scalar timesteps, with or without ControlNet residuals, with SDXL's added
/// conditions where the case has them.
fn unet_forward_cases<T: Backends>() {
    let device = Default::default();
    for case in cases_with_prefix("unet_forward") {
        let g = case.load();
        let model = unet::<T::B>(&case);
        let t = g.tensor::<T::B, 1>("input.timestep", &device);
        let added = added(&case, &g);
        assert_eq!(
            added.is_some(),
            model.config.added_conditions().is_some(),
            "{}: added conditions given exactly to a text_time UNet",
            case.case
        );
        let out = model
            .forward_with_conditions(
                g.tensor("input.sample", &device),
                t,
                g.tensor("input.encoder_hidden_states", &device),
                added.as_ref(),
                residuals(&case, &g).as_ref(),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", case.case));
        assert_eq!(case.outputs.len(), 1, "{}: one output expected", case.case);
        let name = case.outputs.keys().next().unwrap();
        assert_output(&case, &g, name, &out);
    }
}

/// A `text_time` (SDXL) UNet without its added conditions is a typed error,
/// and so are conditions of the wrong width; a batch-wide row broadcasts.
fn sdxl_unet_checks_its_added_conditions<T: Backends>() {
    let device = Default::default();
    let case = optedit_fixtures::case("unet_forward_sdxl");
    let g = case.load();
    let model = unet::<T::B>(&case);
    let sample = || g.tensor::<T::B, 4>("input.sample", &device);
    let t = || g.tensor::<T::B, 1>("input.timestep", &device);
    let ctx = || g.tensor::<T::B, 3>("input.encoder_hidden_states", &device);

    let err = model.forward(sample(), t(), ctx()).unwrap_err();
    assert!(
        matches!(&err, ModelError::MissingConditions { addition_embed_type, .. } if addition_embed_type == "text_time"),
        "{err}"
    );

    let full = added(&case, &g).unwrap();
    let [batch, width] = full.text_embeds.dims();
    let wide = AddedConditions {
        text_embeds: full.text_embeds.clone().narrow(1, 0, width - 1),
        time_ids: full.time_ids.clone(),
    };
    let err = model
        .forward_with_conditions(sample(), t(), ctx(), Some(&wide), None)
        .unwrap_err();
    assert!(
        matches!(&err, ModelError::InvalidInput { argument, .. } if argument == "text_embeds"),
        "{err}"
    );

    // One row for the whole batch equals that row repeated.
    let one = AddedConditions {
        text_embeds: full.text_embeds.clone().narrow(0, 0, 1),
        time_ids: full.time_ids.clone().narrow(0, 0, 1),
    };
    let repeated = AddedConditions {
        text_embeds: one.text_embeds.clone().repeat_dim(0, batch),
        time_ids: one.time_ids.clone().repeat_dim(0, batch),
    };
    let a = model
        .forward_with_conditions(sample(), t(), ctx(), Some(&one), None)
        .unwrap();
    let b = model
        .forward_with_conditions(sample(), t(), ctx(), Some(&repeated), None)
        .unwrap();
    let tol = case.tolerance_for(case.outputs.keys().next().unwrap());
    optedit_fixtures::assert_close(
        "broadcast rows",
        &optedit_fixtures::values(&a),
        &optedit_fixtures::values(&b),
        tol,
    );

    // A UNet without the text_time addition refuses added conditions.
    let plain = unet::<T::B>(&optedit_fixtures::case("unet_forward"));
    let pg = optedit_fixtures::case("unet_forward").load();
    let err = plain
        .forward_with_conditions(
            pg.tensor("input.sample", &device),
            pg.tensor("input.timestep", &device),
            pg.tensor("input.encoder_hidden_states", &device),
            Some(&one),
            None,
        )
        .unwrap_err();
    assert!(
        matches!(&err, ModelError::InvalidInput { argument, .. } if argument == "added_conditions"),
        "{err}"
    );
}

optedit_fixtures::on_each_backend!(unet_forward_cases, sdxl_unet_checks_its_added_conditions);
