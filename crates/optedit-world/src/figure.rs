//! The stick figure: pose classes, keypoints in OpenPose order, and the limbs
//! and head it is drawn with.

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Result, WorldError};
use crate::math::{self, Vec2};

/// Number of body keypoints (the OpenPose COCO-18 body model).
pub const NUM_KEYPOINTS: usize = 18;

/// Number of pose classes.
pub const NUM_POSES: usize = 4;

/// Names of the 18 keypoints, in OpenPose order (the figure's right side is
/// on the image's left: it faces the viewer).
pub const KEYPOINT_NAMES: [&str; NUM_KEYPOINTS] = [
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
];

/// The keypoint pairs drawn as limbs (lines [`LIMB_WIDTH`] wide): shoulders,
/// arms, a V-shaped torso (neck to each hip), legs and the neck up to the
/// nose. The face keypoints lie inside the head disc.
pub const LIMBS: [(usize, usize); 13] = [
    (1, 2),
    (2, 3),
    (3, 4),
    (1, 5),
    (5, 6),
    (6, 7),
    (1, 8),
    (8, 9),
    (9, 10),
    (1, 11),
    (11, 12),
    (12, 13),
    (1, 0),
];

/// Width of a limb line in pixels.
pub const LIMB_WIDTH: f32 = 3.0;

/// Head disc radius as a fraction of the figure height.
pub const HEAD_RADIUS: f32 = 0.085;

/// Largest jitter of a keypoint, as a fraction of the figure height, on each axis.
pub const JITTER: f32 = 0.025;

/// The figure's colour (near-black, darker than every background shade).
pub const FIGURE_RGB: [u8; 3] = [30, 30, 30];

/// What the figure is doing with its arms; legs and head are the same in
/// every class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoseClass {
    /// Both arms hanging down beside the torso.
    ArmsDown,
    /// Both arms raised in a V above the head.
    ArmsUp,
    /// Both arms stretched out horizontally.
    ArmsOut,
    /// The right arm down, the left (image right) upper arm out and forearm up.
    Waving,
}

/// Keypoints shared by every pose, in figure units: x across from the body
/// axis, y down from the top of the head, 1 = figure height. Arms are filled
/// in per class.
const BASE: [Vec2; NUM_KEYPOINTS] = [
    (0.0, 0.10),    // nose
    (0.0, 0.20),    // neck
    (-0.12, 0.23),  // right shoulder
    (0.0, 0.0),     // right elbow (per class)
    (0.0, 0.0),     // right wrist (per class)
    (0.12, 0.23),   // left shoulder
    (0.0, 0.0),     // left elbow (per class)
    (0.0, 0.0),     // left wrist (per class)
    (-0.07, 0.56),  // right hip
    (-0.085, 0.78), // right knee
    (-0.10, 0.985), // right ankle
    (0.07, 0.56),   // left hip
    (0.085, 0.78),  // left knee
    (0.10, 0.985),  // left ankle
    (-0.03, 0.075), // right eye
    (0.03, 0.075),  // left eye
    (-0.062, 0.09), // right ear
    (0.062, 0.09),  // left ear
];

/// Keypoints of the face (nose, eyes, ears), jittered together with the head.
const FACE: [usize; 5] = [0, 14, 15, 16, 17];

impl PoseClass {
    /// Every pose class, in [`index`](Self::index) order.
    pub const ALL: [PoseClass; NUM_POSES] = [
        PoseClass::ArmsDown,
        PoseClass::ArmsUp,
        PoseClass::ArmsOut,
        PoseClass::Waving,
    ];

    /// Stable class index in `0..NUM_POSES`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// What the caption says after "a figure" ("with raised arms", "waving").
    pub fn phrase(self) -> &'static str {
        match self {
            PoseClass::ArmsDown => "with lowered arms",
            PoseClass::ArmsUp => "with raised arms",
            PoseClass::ArmsOut => "with outstretched arms",
            PoseClass::Waving => "waving",
        }
    }

    /// Parses a pose phrase, with or without the leading "a figure"
    /// ("a figure waving", "with raised arms"; ASCII case-insensitive).
    pub fn from_phrase(phrase: &str) -> Result<Self> {
        let words: Vec<String> = phrase
            .split_whitespace()
            .map(|w| w.to_ascii_lowercase())
            .collect();
        let rest = match words.as_slice() {
            [a, f, rest @ ..] if (a == "a" || a == "the") && f == "figure" => rest,
            [f, rest @ ..] if f == "figure" => rest,
            rest => rest,
        };
        let rest = rest.join(" ");
        Self::ALL
            .into_iter()
            .find(|p| p.phrase() == rest)
            .ok_or_else(|| WorldError::UnknownWord {
                kind: "pose phrase",
                word: phrase.to_owned(),
            })
    }

    /// (elbow, wrist) of the right arm, then of the left arm, in figure units.
    fn arms(self) -> [Vec2; 4] {
        const DOWN_R: [Vec2; 2] = [(-0.16, 0.39), (-0.18, 0.54)];
        const DOWN_L: [Vec2; 2] = [(0.16, 0.39), (0.18, 0.54)];
        match self {
            PoseClass::ArmsDown => [DOWN_R[0], DOWN_R[1], DOWN_L[0], DOWN_L[1]],
            PoseClass::ArmsUp => [(-0.21, 0.08), (-0.26, -0.07), (0.21, 0.08), (0.26, -0.07)],
            PoseClass::ArmsOut => [(-0.28, 0.22), (-0.44, 0.21), (0.28, 0.22), (0.44, 0.21)],
            PoseClass::Waving => [DOWN_R[0], DOWN_R[1], (0.28, 0.21), (0.31, 0.03)],
        }
    }

    /// The 18 keypoints of this class, un-jittered, in figure units.
    fn template(self) -> [Vec2; NUM_KEYPOINTS] {
        let mut k = BASE;
        let arms = self.arms();
        k[3] = arms[0];
        k[4] = arms[1];
        k[6] = arms[2];
        k[7] = arms[3];
        k
    }
}

/// The one stick figure of a scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// What the arms are doing.
    pub pose: PoseClass,
    /// Pixel position of the point halfway between the top of the head and
    /// the ankles, on the body axis.
    pub centre: (f32, f32),
    /// Pixels from the top of the head to the ankles.
    pub height: f32,
    /// Seed of the per-keypoint jitter; the same seed gives the same offsets
    /// in every pose class.
    pub jitter_seed: u64,
}

/// The parts the figure is drawn with, in pixels.
#[derive(Debug, Clone)]
pub(crate) struct Skeleton {
    /// Keypoints in OpenPose order.
    pub(crate) keypoints: [Vec2; NUM_KEYPOINTS],
    /// Head disc centre.
    pub(crate) head: Vec2,
    /// Head disc radius.
    pub(crate) head_radius: f32,
}

impl Skeleton {
    /// Signed distance to the drawn figure (limbs and head), negative inside.
    pub(crate) fn sd(&self, p: Vec2) -> f32 {
        let mut d = math::point_distance(p, self.head) - self.head_radius;
        for &(a, b) in &LIMBS {
            let s = math::segment_distance(p, self.keypoints[a], self.keypoints[b]);
            d = d.min(s - 0.5 * LIMB_WIDTH);
        }
        d
    }

    /// Bounding box `(x0, y0, x1, y1)` of the drawn figure.
    pub(crate) fn bounds(&self) -> (f32, f32, f32, f32) {
        let h = 0.5 * LIMB_WIDTH;
        let mut b = (
            self.head.0 - self.head_radius,
            self.head.1 - self.head_radius,
            self.head.0 + self.head_radius,
            self.head.1 + self.head_radius,
        );
        for k in &self.keypoints {
            b = (
                b.0.min(k.0 - h),
                b.1.min(k.1 - h),
                b.2.max(k.0 + h),
                b.3.max(k.1 + h),
            );
        }
        b
    }
}

impl Figure {
    /// The jitter offsets (figure units), one per keypoint; the face keypoints
    /// share the nose's offset so they stay inside the head.
    fn jitter(&self) -> [Vec2; NUM_KEYPOINTS] {
        let mut rng = ChaCha8Rng::seed_from_u64(self.jitter_seed);
        let mut j = [(0.0, 0.0); NUM_KEYPOINTS];
        for o in &mut j {
            *o = (
                math::uniform(&mut rng, -JITTER, JITTER),
                math::uniform(&mut rng, -JITTER, JITTER),
            );
        }
        for &f in &FACE[1..] {
            j[f] = j[0];
        }
        j
    }

    /// The figure drawn in `pose` (its own position, height and jitter).
    pub(crate) fn skeleton_as(&self, pose: PoseClass) -> Skeleton {
        let t = pose.template();
        let j = self.jitter();
        let h = self.height;
        let mut keypoints = [(0.0, 0.0); NUM_KEYPOINTS];
        for i in 0..NUM_KEYPOINTS {
            keypoints[i] = (
                self.centre.0 + (t[i].0 + j[i].0) * h,
                self.centre.1 + (t[i].1 + j[i].1 - 0.5) * h,
            );
        }
        let nose = keypoints[0];
        Skeleton {
            keypoints,
            head: (nose.0, nose.1 - 0.01 * h),
            head_radius: HEAD_RADIUS * h,
        }
    }

    /// The figure as drawn.
    pub(crate) fn skeleton(&self) -> Skeleton {
        self.skeleton_as(self.pose)
    }

    /// The 18 keypoints in pixel coordinates of the 128x128 image, OpenPose
    /// order (x across, y down; pixel `(i, j)` covers `[i, i+1) x [j, j+1)`).
    pub fn keypoints(&self) -> [(f32, f32); NUM_KEYPOINTS] {
        self.skeleton().keypoints
    }

    /// Bounding box `(x0, y0, x1, y1)` in pixels (the drawn figure) of the figure
    /// in each pose class, united: a pose edit never leaves this box.
    pub fn envelope(&self) -> (f32, f32, f32, f32) {
        let mut b = (
            f32::INFINITY,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NEG_INFINITY,
        );
        for pose in PoseClass::ALL {
            let s = self.skeleton_as(pose).bounds();
            b = (b.0.min(s.0), b.1.min(s.1), b.2.max(s.2), b.3.max(s.3));
        }
        b
    }
}

/// Bounds `(x0, y0, x1, y1)` in figure units (relative to the centre, 1 =
/// height) that the drawn figure of any pose, jitter and height `>= min_height`
/// stays within.
pub(crate) fn unit_envelope(min_height: f32) -> (f32, f32, f32, f32) {
    let mut b = (
        f32::INFINITY,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NEG_INFINITY,
    );
    for pose in PoseClass::ALL {
        for (x, y) in pose.template() {
            let y = y - 0.5;
            b = (b.0.min(x), b.1.min(y), b.2.max(x), b.3.max(y));
        }
    }
    let head_top = 0.10 - 0.01 - HEAD_RADIUS - 0.5;
    let pad = JITTER + 0.5 * LIMB_WIDTH / min_height;
    (b.0 - pad, b.1.min(head_top) - pad, b.2 + pad, b.3 + pad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(pose: PoseClass) -> Figure {
        Figure {
            pose,
            centre: (64.0, 64.0),
            height: 60.0,
            jitter_seed: 9,
        }
    }

    #[test]
    fn phrases_round_trip() {
        for (i, p) in PoseClass::ALL.into_iter().enumerate() {
            assert_eq!(p.index(), i);
            assert_eq!(PoseClass::from_phrase(p.phrase()).unwrap(), p);
            assert_eq!(
                PoseClass::from_phrase(&format!("a figure {}", p.phrase())).unwrap(),
                p
            );
        }
        assert!(PoseClass::from_phrase("a figure dancing").is_err());
    }

    #[test]
    fn classes_differ_in_the_arms_only() {
        let down = figure(PoseClass::ArmsDown).keypoints();
        for pose in &PoseClass::ALL[1..] {
            let k = figure(*pose).keypoints();
            let moved: Vec<usize> = (0..NUM_KEYPOINTS).filter(|&i| down[i] != k[i]).collect();
            assert!(!moved.is_empty());
            assert!(
                moved.iter().all(|i| [3, 4, 6, 7].contains(i)),
                "{pose:?} moved {moved:?}"
            );
            // Distinct silhouettes: some wrist moves by more than 10 px.
            let far = [4, 7]
                .iter()
                .any(|&w| crate::math::point_distance(down[w], k[w]) > 10.0);
            assert!(far, "{pose:?}");
        }
    }

    #[test]
    fn face_stays_in_the_head_and_envelope_holds() {
        let (x0, y0, x1, y1) = unit_envelope(50.0);
        for seed in 0..200 {
            for pose in PoseClass::ALL {
                let f = Figure {
                    pose,
                    centre: (64.0, 64.0),
                    height: 50.0,
                    jitter_seed: seed,
                };
                let s = f.skeleton();
                for &i in &FACE {
                    assert!(crate::math::point_distance(s.keypoints[i], s.head) < s.head_radius);
                }
                let b = s.bounds();
                assert!(b.0 >= 64.0 + x0 * 50.0 && b.2 <= 64.0 + x1 * 50.0);
                assert!(b.1 >= 64.0 + y0 * 50.0 && b.3 <= 64.0 + y1 * 50.0);
            }
        }
    }
}
