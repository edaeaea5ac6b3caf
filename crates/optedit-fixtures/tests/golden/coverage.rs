//! Every golden case of the fixture folder is read by some test: a case no
//! test knows (a new fixture set, a new generator) fails here, naming it,
//! instead of passing unchecked.

use optedit_fixtures::all_cases;

/// The cases the test suite reads, by name (a trailing `*` matches any
/// rest), and where.
const READ: &[(&str, &str)] = &[
    ("unet_forward", "optedit-models tests/models/parity.rs"),
    (
        "unet_forward_scalar_t",
        "optedit-models tests/models/parity.rs",
    ),
    (
        "unet_forward_controlnet",
        "optedit-models tests/models/parity.rs",
    ),
    (
        "unet_forward_text_embedding",
        "optedit-models tests/models/parity.rs",
    ),
    ("unet_forward_sd21", "optedit-models tests/models/parity.rs"),
    (
        "unet_forward_sdxl",
        "optedit-models tests/models/unet_parity.rs",
    ),
    ("unet_grad", "optedit-models tests/models/parity.rs"),
    (
        "controlnet_forward",
        "optedit-models tests/models/parity.rs",
    ),
    (
        "controlnet_forward_sdxl",
        "optedit-models tests/models/parity.rs",
    ),
    ("vae_encode", "optedit-models tests/models/parity.rs"),
    ("vae_decode", "optedit-models tests/models/parity.rs"),
    (
        "clip_text_encoder",
        "optedit-models tests/models/parity.rs, optedit-cond tests/cond/clip_prompt.rs",
    ),
    (
        "clip_text_encoder_sd21",
        "optedit-models tests/models/parity.rs, optedit-cond tests/cond/clip_prompt.rs",
    ),
    (
        "clip_text_encoder_with_projection_sdxl",
        "optedit-models tests/models/parity.rs, optedit-cond tests/cond/sdxl_prompt.rs",
    ),
    (
        "sdxl_encode_prompt",
        "optedit-cond tests/cond/sdxl_prompt.rs",
    ),
    (
        "sdxl_add_time_ids",
        "optedit-cond tests/cond/sdxl_prompt.rs",
    ),
    (
        "ddim_scheduler_*",
        "optedit-schedule tests/schedule/parity.rs",
    ),
    (
        "ddim_inversion_trajectory",
        "optedit-fixtures tests/golden/inversion_trajectory.rs",
    ),
    (
        "ddim_inversion_trajectory_sd21",
        "optedit-fixtures tests/golden/inversion_trajectory.rs",
    ),
    ("diffedit_mask", "optedit-edit tests/edit/diffedit_mask.rs"),
    ("controlnet_pose_render", "optedit-cond tests/cond/pose.rs"),
    ("canny_edges", "optedit-cond tests/cond/canny.rs"),
];

fn known(name: &str) -> bool {
    READ.iter()
        .any(|(pattern, _)| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *pattern,
        })
}

#[test]
fn every_golden_case_is_read_by_a_test() {
    let unread: Vec<String> = all_cases()
        .into_iter()
        .map(|c| c.case)
        .filter(|name| !known(name))
        .collect();
    assert!(
        unread.is_empty(),
        "golden cases no test reads: {unread:?}; add a test for each (and list it in READ)"
    );
}

#[test]
fn the_list_matches_names_exactly() {
    assert!(known("ddim_scheduler_sd15_50"));
    assert!(known("unet_forward"));
    // A new case that shares a prefix with a known one is still unknown.
    assert!(!known("unet_forward_sdxl_refiner"));
    assert!(!known("clip_text_encoder_with_projection"));
}
