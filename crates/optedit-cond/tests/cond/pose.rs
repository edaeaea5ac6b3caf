//! OpenPose skeletons: the rendering against `controlnet_aux`'s
//! `draw_bodypose` (exact, the OpenCV rasteriser being ported), and parsing of
//! OpenPose JSON and keypoint lists.

use optedit_cond::pose::{
    parse_keypoint_list, parse_openpose_json, read_openpose_json, BODY_KEYPOINTS,
};
use optedit_cond::pose_render::{pose_condition, render_body_poses, COLORS};
use optedit_cond::{BodyPose, CondError, Coordinates, Keypoint};
use optedit_fixtures::{cases_with_prefix, TestBackend as B};

/// Pixels that differ, and how many of those have a neighbour of another
/// colour in the reference (i.e. lie on a shape boundary).
fn differences(got: &[u8], want: &[u8], w: usize, h: usize) -> (usize, usize) {
    let at = |d: &[u8], x: usize, y: usize| {
        [
            d[(y * w + x) * 3],
            d[(y * w + x) * 3 + 1],
            d[(y * w + x) * 3 + 2],
        ]
    };
    let (mut diff, mut boundary) = (0, 0);
    for y in 0..h {
        for x in 0..w {
            if at(got, x, y) == at(want, x, y) {
                continue;
            }
            diff += 1;
            let c = at(want, x, y);
            let on_edge = [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)]
                .iter()
                .any(|&(dx, dy)| {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    nx >= 0
                        && ny >= 0
                        && (nx as usize) < w
                        && (ny as usize) < h
                        && at(want, nx as usize, ny as usize) != c
                });
            boundary += usize::from(on_edge);
        }
    }
    (diff, boundary)
}

#[test]
fn controlnet_pose_render_cases_are_pixel_exact() {
    for case in cases_with_prefix("controlnet_pose_render") {
        let golden = case.load();
        let hw = case.params["canvas_hw"]
            .as_array()
            .expect("params.canvas_hw");
        let (h, w) = (
            hw[0].as_u64().unwrap() as u32,
            hw[1].as_u64().unwrap() as u32,
        );
        let kp = golden.get("input.keypoints");
        assert_eq!(kp.shape, vec![BODY_KEYPOINTS, 3]);
        let rows: Vec<[f64; 3]> = kp.values.chunks(3).map(|r| [r[0], r[1], r[2]]).collect();
        let pose = BodyPose::from_triples(&rows).unwrap();
        if let Some(missing) = case
            .params
            .get("missing_keypoint_index")
            .and_then(|v| v.as_u64())
        {
            assert!(
                pose.keypoints[missing as usize].is_none(),
                "{}: keypoint {missing} should be missing",
                case.case
            );
        }

        let image = render_body_poses(std::slice::from_ref(&pose), w, h).unwrap();
        let want = golden.get("output.pose_image_uint8_hwc");
        assert_eq!(want.shape, vec![h as usize, w as usize, 3]);
        let want: Vec<u8> = want.values.iter().map(|&v| v as u8).collect();
        let (diff, boundary) = differences(image.as_raw(), &want, w as usize, h as usize);
        assert_eq!(
            diff,
            0,
            "{}: {diff} of {} pixels differ ({boundary} on shape boundaries)",
            case.case,
            w * h
        );

        // The condition tensor of the same picture, where the size allows one.
        if w % 8 == 0 && h % 8 == 0 {
            let t = pose_condition(&[pose], w, h)
                .unwrap()
                .to_tensor::<B>(&Default::default());
            assert_eq!(t.dims(), [1, 3, h as usize, w as usize]);
            let v = optedit_fixtures::values(&t);
            let hw = (w * h) as usize;
            // Channel-major: pixel 0's red, then the whole red plane.
            for i in (0..hw).step_by(97) {
                for c in 0..3 {
                    assert_eq!((v[c * hw + i] * 255.0).round() as u8, want[i * 3 + c]);
                }
            }
        }
    }
}

fn full_pose(shift: f64) -> Vec<f64> {
    (0..BODY_KEYPOINTS)
        .flat_map(|i| [0.1 + shift + 0.02 * i as f64, 0.1 + 0.04 * i as f64, 0.9])
        .collect()
}

fn openpose_json(people: &[Vec<f64>], canvas: Option<(u32, u32)>) -> String {
    let people: Vec<String> = people
        .iter()
        .map(|p| {
            format!(r#"{{"person_id": [-1], "pose_keypoints_2d": {p:?}, "face_keypoints_2d": []}}"#)
        })
        .collect();
    let canvas = canvas.map_or(String::new(), |(w, h)| {
        format!(r#", "canvas_width": {w}, "canvas_height": {h}"#)
    });
    format!(
        r#"{{"version": 1.3, "people": [{}]{canvas}}}"#,
        people.join(", ")
    )
}

#[test]
fn openpose_json_with_several_people_and_missing_keypoints() {
    let mut a = full_pose(0.0);
    a[3 * 4..3 * 4 + 3].copy_from_slice(&[0.0, 0.0, 0.0]); // right wrist not detected
    let b = full_pose(0.5);
    let people = parse_openpose_json(&openpose_json(&[a, b], None), None).unwrap();
    assert_eq!(people.len(), 2);
    assert_eq!(people[0].present(), BODY_KEYPOINTS - 1);
    assert!(people[0].keypoints[4].is_none());
    assert_eq!(people[1].present(), BODY_KEYPOINTS);
    assert_eq!(people[1].keypoints[0], Some(Keypoint { x: 0.6, y: 0.1 }));

    // Both people are drawn, the second over the first.
    let image = render_body_poses(&people, 256, 256).unwrap();
    let nose = |p: &BodyPose| {
        p.keypoints[0]
            .map(|k| ((k.x * 256.0) as u32, (k.y * 256.0) as u32))
            .unwrap()
    };
    for p in &people {
        let (x, y) = nose(p);
        assert_eq!(image.get_pixel(x, y).0, COLORS[0]);
    }
    // Nobody: a black canvas.
    let none = parse_openpose_json(r#"{"people": []}"#, None).unwrap();
    assert!(render_body_poses(&none, 16, 8)
        .unwrap()
        .pixels()
        .all(|p| p.0 == [0, 0, 0]));
}

#[test]
fn openpose_pixel_coordinates_are_normalised() {
    let pixels: Vec<f64> = full_pose(0.0)
        .chunks(3)
        .flat_map(|k| [k[0] * 640.0, k[1] * 480.0, k[2]])
        .collect();
    // From the canvas size written in the file...
    let people =
        parse_openpose_json(&openpose_json(&[pixels.clone()], Some((640, 480))), None).unwrap();
    let k = people[0].keypoints[3].unwrap();
    assert!(
        (k.x - 0.16).abs() < 1e-12 && (k.y - 0.22).abs() < 1e-12,
        "{k:?}"
    );
    // ...or from the caller.
    let people =
        parse_openpose_json(&openpose_json(&[pixels.clone()], None), Some((640, 480))).unwrap();
    assert_eq!(people[0].keypoints[3].unwrap(), k);
    // Without either, pixel values are out of range and say so.
    let err = parse_openpose_json(&openpose_json(&[pixels], None), None).unwrap_err();
    assert!(matches!(err, CondError::OutOfRange { .. }), "{err}");
    assert!(
        err.to_string().contains("people[0].pose_keypoints_2d"),
        "{err}"
    );
}

#[test]
fn body25_is_mapped_to_coco18() {
    let mut body25 = vec![0.0; 75];
    for i in 0..25 {
        body25[3 * i..3 * i + 3].copy_from_slice(&[i as f64 / 25.0, 0.5, 1.0]);
    }
    let people = parse_openpose_json(&openpose_json(&[body25], None), None).unwrap();
    let xs: Vec<f64> = people[0]
        .keypoints
        .iter()
        .map(|k| k.unwrap().x * 25.0)
        .collect();
    let want = [
        0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
    ];
    for (x, w) in xs.iter().zip(want) {
        assert!((x - w as f64).abs() < 1e-9);
    }
}

#[test]
fn keypoint_lists_one_or_several_people() {
    let rows: Vec<String> = full_pose(0.0)
        .chunks(3)
        .map(|k| format!("[{}, {}, {}]", k[0], k[1], k[2]))
        .collect();
    let one = format!("[{}]", rows.join(", "));
    let people = parse_keypoint_list(&one, Coordinates::Normalized).unwrap();
    assert_eq!(people.len(), 1);
    let several = format!("[{one}, {one}, {one}]");
    assert_eq!(
        parse_keypoint_list(&several, Coordinates::Normalized)
            .unwrap()
            .len(),
        3
    );
    let flat = format!("{:?}", full_pose(0.0));
    assert_eq!(
        parse_keypoint_list(&flat, Coordinates::Normalized).unwrap(),
        people
    );
    let scaled = parse_keypoint_list(
        &flat,
        Coordinates::Pixels {
            width: 2.0,
            height: 4.0,
        },
    )
    .unwrap();
    assert_eq!(scaled[0].keypoints[0], Some(Keypoint { x: 0.05, y: 0.025 }));
}

#[test]
fn bad_pose_input_is_a_typed_error() {
    let check = |r: Result<Vec<BodyPose>, CondError>, what: &str| {
        let e = r.expect_err(what);
        assert!(!e.to_string().is_empty());
        e
    };
    let e = check(
        parse_openpose_json("{\"people\": [", None),
        "truncated JSON",
    );
    assert!(matches!(e, CondError::Json { .. }), "{e}");
    let e = check(
        parse_openpose_json("{\"persons\": []}", None),
        "no people field",
    );
    assert!(matches!(e, CondError::Json { .. }), "{e}");
    let e = check(
        parse_openpose_json(
            r#"{"people": [{"pose_keypoints_2d": [0.5, 0.5, 1]}]}"#,
            None,
        ),
        "3 values",
    );
    assert!(
        matches!(e, CondError::InvalidArgument { .. }) && e.to_string().contains("54"),
        "{e}"
    );
    let mut nan = full_pose(0.0);
    nan[7] = f64::NAN;
    let e = BodyPose::from_flat(&nan, Coordinates::Normalized, "k").unwrap_err();
    assert!(e.to_string().contains("k[7]"), "{e}");
    let e = BodyPose::from_flat(
        &full_pose(0.0),
        Coordinates::Pixels {
            width: 0.0,
            height: 1.0,
        },
        "k",
    )
    .unwrap_err();
    assert!(matches!(e, CondError::OutOfRange { .. }), "{e}");
    let e = check(
        parse_keypoint_list("[[1, 2], [3, 4]]", Coordinates::Normalized),
        "2-number rows",
    );
    assert!(matches!(e, CondError::Json { .. }), "{e}");
    let e = check(
        parse_keypoint_list("[0.1, [0.1, 0.2, 1]]", Coordinates::Normalized),
        "mixed list",
    );
    assert!(matches!(e, CondError::Json { .. }), "{e}");
    let e = check(parse_keypoint_list("{}", Coordinates::Normalized), "object");
    assert!(matches!(e, CondError::Json { .. }), "{e}");
    let e = check(
        read_openpose_json(std::path::Path::new("/nonexistent/pose.json"), None),
        "no file",
    );
    assert!(
        matches!(e, CondError::Io { .. }) && e.to_string().contains("/nonexistent/pose.json"),
        "{e}"
    );
    let e = BodyPose::new([Some(Keypoint { x: 1.5, y: 0.0 }); BODY_KEYPOINTS]).unwrap_err();
    assert!(e.to_string().contains("keypoints[0].x"), "{e}");
    let e = render_body_poses(&[], 0, 16).unwrap_err();
    assert!(matches!(e, CondError::EmptyImage { .. }), "{e}");
    let e = pose_condition(&[], 100, 0).unwrap_err();
    assert!(matches!(e, CondError::EmptyImage { .. }), "{e}");
    let c = pose_condition(&[], 100, 64).unwrap();
    assert_eq!(c.latent_size(4), Some((16, 25)));
    assert_eq!(c.latent_size(8), None);
}
