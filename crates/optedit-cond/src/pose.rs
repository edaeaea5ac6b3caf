//! Body poses: 18 COCO keypoints per person, read from OpenPose JSON or a plain
//! keypoint list.
//!
//! Coordinates are kept normalised to `[0, 1]` (x across, y down), which is
//! what the ControlNet OpenPose annotator draws from; a keypoint whose
//! confidence is 0 (OpenPose writes `0, 0, 0`) is missing and not drawn.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{CondError, Result};

/// Keypoints of the OpenPose COCO body model.
pub const BODY_KEYPOINTS: usize = 18;

/// Names of the 18 COCO body keypoints, in OpenPose order.
pub const BODY_KEYPOINT_NAMES: [&str; BODY_KEYPOINTS] = [
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

/// Keypoints of OpenPose's BODY_25 model, accepted and mapped to COCO-18.
const BODY25_KEYPOINTS: usize = 25;

/// For each COCO-18 keypoint, its BODY_25 index (BODY_25 adds the mid-hip at
/// 8 and six foot points after the ears).
const BODY25_TO_COCO18: [usize; BODY_KEYPOINTS] = [
    0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
];

/// One keypoint, normalised: `x` in `[0, 1]` across, `y` in `[0, 1]` down.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Keypoint {
    /// Horizontal position, 0 = left edge, 1 = right edge.
    pub x: f64,
    /// Vertical position, 0 = top edge, 1 = bottom edge.
    pub y: f64,
}

/// How the coordinates of a keypoint list are expressed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Coordinates {
    /// Already normalised to `[0, 1]`.
    Normalized,
    /// Pixels of a source image of this size (divided by it to normalise).
    Pixels {
        /// Source width in pixels.
        width: f64,
        /// Source height in pixels.
        height: f64,
    },
}

impl Coordinates {
    fn scale(self, argument: &str) -> Result<(f64, f64)> {
        match self {
            Self::Normalized => Ok((1.0, 1.0)),
            Self::Pixels { width, height } => {
                if !(width.is_finite() && height.is_finite() && width > 0.0 && height > 0.0) {
                    return Err(CondError::out_of_range(
                        argument,
                        format!("source size {width}x{height} must be positive and finite"),
                    ));
                }
                Ok((width, height))
            }
        }
    }
}

/// One person's body: 18 COCO keypoints, `None` where missing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BodyPose {
    /// The keypoints in [`BODY_KEYPOINT_NAMES`] order.
    pub keypoints: [Option<Keypoint>; BODY_KEYPOINTS],
}

impl BodyPose {
    /// Checks that every present keypoint is finite and inside `[0, 1]`.
    pub fn new(keypoints: [Option<Keypoint>; BODY_KEYPOINTS]) -> Result<Self> {
        for (i, k) in keypoints.iter().enumerate() {
            if let Some(k) = k {
                check_unit(&format!("keypoints[{i}].x"), k.x)?;
                check_unit(&format!("keypoints[{i}].y"), k.y)?;
            }
        }
        Ok(Self { keypoints })
    }

    /// From 18 normalised `[x, y, confidence]` rows; a confidence of 0 (or
    /// less) marks the keypoint missing.
    pub fn from_triples(rows: &[[f64; 3]]) -> Result<Self> {
        let flat: Vec<f64> = rows.iter().flatten().copied().collect();
        Self::from_flat(&flat, Coordinates::Normalized, "keypoints")
    }

    /// From a flat `x0, y0, c0, x1, y1, c1, ...` list as OpenPose's
    /// `pose_keypoints_2d`: 54 values (COCO-18) or 75 (BODY_25, mapped to
    /// COCO-18 by dropping the mid-hip and the feet). `argument` names the list
    /// in errors.
    pub fn from_flat(values: &[f64], coordinates: Coordinates, argument: &str) -> Result<Self> {
        let (sx, sy) = coordinates.scale(argument)?;
        let map: Vec<usize> = match values.len() {
            n if n == BODY_KEYPOINTS * 3 => (0..BODY_KEYPOINTS).collect(),
            n if n == BODY25_KEYPOINTS * 3 => BODY25_TO_COCO18.to_vec(),
            n => {
                return Err(CondError::invalid(
                    argument,
                    format!(
                        "{n} values; expected {} (18 COCO keypoints as x, y, confidence) or {} (BODY_25)",
                        BODY_KEYPOINTS * 3,
                        BODY25_KEYPOINTS * 3
                    ),
                ))
            }
        };
        let mut keypoints = [None; BODY_KEYPOINTS];
        for (slot, &src) in keypoints.iter_mut().zip(&map) {
            let (x, y, c) = (values[3 * src], values[3 * src + 1], values[3 * src + 2]);
            let at = |what: usize| format!("{argument}[{}]", 3 * src + what);
            if !c.is_finite() {
                return Err(CondError::out_of_range(
                    at(2),
                    format!("confidence {c} is not finite"),
                ));
            }
            if c <= 0.0 {
                continue;
            }
            let k = Keypoint {
                x: x / sx,
                y: y / sy,
            };
            let hint = match coordinates {
                Coordinates::Normalized => " (pixel coordinates need the source size)",
                Coordinates::Pixels { .. } => " (outside the source image)",
            };
            check_unit(&at(0), k.x).map_err(|e| with_hint(e, hint))?;
            check_unit(&at(1), k.y).map_err(|e| with_hint(e, hint))?;
            *slot = Some(k);
        }
        Ok(Self { keypoints })
    }

    /// Number of keypoints present.
    pub fn present(&self) -> usize {
        self.keypoints.iter().filter(|k| k.is_some()).count()
    }
}

fn check_unit(argument: &str, v: f64) -> Result<()> {
    if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
        return Err(CondError::out_of_range(
            argument,
            format!("normalised coordinate {v} is outside [0, 1]"),
        ));
    }
    Ok(())
}

fn with_hint(e: CondError, hint: &str) -> CondError {
    match e {
        CondError::OutOfRange { argument, message } => CondError::OutOfRange {
            argument,
            message: message + hint,
        },
        other => other,
    }
}

#[derive(Deserialize)]
struct OpenPoseFile {
    people: Vec<OpenPosePerson>,
    #[serde(default)]
    canvas_width: Option<f64>,
    #[serde(default)]
    canvas_height: Option<f64>,
}

#[derive(Deserialize)]
struct OpenPosePerson {
    pose_keypoints_2d: Vec<f64>,
}

/// Parses OpenPose JSON (`{"people": [{"pose_keypoints_2d": [...]}, ...]}`,
/// other fields ignored), one [`BodyPose`] per person.
///
/// Coordinates are pixels of `source_size` when given, else of the file's
/// `canvas_width` x `canvas_height` (written by the ControlNet pose editors),
/// else taken as already normalised.
pub fn parse_openpose_json(text: &str, source_size: Option<(u32, u32)>) -> Result<Vec<BodyPose>> {
    parse_openpose_named(text, source_size, "OpenPose JSON")
}

/// Reads an OpenPose JSON file; see [`parse_openpose_json`].
pub fn read_openpose_json(path: &Path, source_size: Option<(u32, u32)>) -> Result<Vec<BodyPose>> {
    let text = std::fs::read_to_string(path).map_err(|source| CondError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_openpose_named(&text, source_size, &path.display().to_string())
}

fn parse_openpose_named(
    text: &str,
    source_size: Option<(u32, u32)>,
    name: &str,
) -> Result<Vec<BodyPose>> {
    let file: OpenPoseFile = serde_json::from_str(text).map_err(|e| CondError::json(name, e))?;
    let coordinates = match (source_size, file.canvas_width, file.canvas_height) {
        (Some((w, h)), _, _) => Coordinates::Pixels {
            width: f64::from(w),
            height: f64::from(h),
        },
        (None, Some(width), Some(height)) => Coordinates::Pixels { width, height },
        _ => Coordinates::Normalized,
    };
    file.people
        .iter()
        .enumerate()
        .map(|(i, p)| {
            BodyPose::from_flat(
                &p.pose_keypoints_2d,
                coordinates,
                &format!("{name}: people[{i}].pose_keypoints_2d"),
            )
        })
        .collect()
}

/// Parses a plain keypoint list: one person as 18 `[x, y, confidence]` rows
/// (or a flat list of 54 numbers), or several people as a list of those.
pub fn parse_keypoint_list(text: &str, coordinates: Coordinates) -> Result<Vec<BodyPose>> {
    const NAME: &str = "keypoint list";
    let value: Value = serde_json::from_str(text).map_err(|e| CondError::json(NAME, e))?;
    let Value::Array(items) = &value else {
        return Err(CondError::json(NAME, "expected a JSON array"));
    };
    let depth = nesting(&value);
    let people: Vec<&Value> = match depth {
        1 | 2 => vec![&value],
        3 => items.iter().collect(),
        _ => {
            return Err(CondError::json(
                NAME,
                "expected [x, y, c, ...], [[x, y, c], ...] or a list of those per person",
            ))
        }
    };
    people
        .into_iter()
        .enumerate()
        .map(|(i, person)| {
            let argument = if depth == 3 {
                format!("{NAME}[{i}]")
            } else {
                NAME.to_string()
            };
            let flat = flatten_numbers(person).ok_or_else(|| {
                CondError::json(
                    &argument,
                    "every entry must be a number or an [x, y, confidence] row",
                )
            })?;
            BodyPose::from_flat(&flat, coordinates, &argument)
        })
        .collect()
}

/// Depth of the first-element chain of nested arrays (`[1]` is 1).
fn nesting(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.first().map_or(0, nesting),
        _ => 0,
    }
}

/// Numbers of a flat list, or of a list of 3-number rows (not a mix).
fn flatten_numbers(v: &Value) -> Option<Vec<f64>> {
    let items = v.as_array()?;
    if items.iter().all(Value::is_number) {
        return items.iter().map(Value::as_f64).collect();
    }
    let mut out = Vec::with_capacity(items.len() * 3);
    for row in items {
        match row.as_array() {
            Some(r) if r.len() == 3 => {
                for n in r {
                    out.push(n.as_f64()?);
                }
            }
            _ => return None,
        }
    }
    Some(out)
}
