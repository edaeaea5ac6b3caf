//! Arbitrary bytes as OpenPose JSON and as a plain keypoint list, then
//! rendering: typed errors only.
#![no_main]

use libfuzzer_sys::fuzz_target;
use optedit_cond::pose::{parse_keypoint_list, parse_openpose_json, Coordinates};
use optedit_cond::pose_render::render_body_poses;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(poses) = parse_openpose_json(text, Some((64, 64))) {
        let _ = render_body_poses(&poses, 64, 64);
    }
    if let Ok(poses) = parse_keypoint_list(text, Coordinates::Normalized) {
        let _ = render_body_poses(&poses, 32, 48);
    }
});
