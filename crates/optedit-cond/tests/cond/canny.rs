//! Canny edges against OpenCV's `cv2.Canny` (exact: OpenCV's Canny is integer
//! arithmetic, which the port reproduces), plus checks of the condition path
//! and of bad input.

use image::{DynamicImage, GrayImage, Luma, RgbImage};
use optedit_cond::canny::{canny, canny_condition, canny_rgb};
use optedit_cond::CondError;
use optedit_fixtures::cases_with_prefix;

fn to_u8(v: &[f64]) -> Vec<u8> {
    v.iter().map(|&x| x as u8).collect()
}

#[test]
fn canny_edges_cases_are_pixel_exact() {
    for case in cases_with_prefix("canny_edges") {
        let golden = case.load();
        let low = case.params["low_threshold"]
            .as_f64()
            .expect("params.low_threshold");
        let high = case.params["high_threshold"]
            .as_f64()
            .expect("params.high_threshold");
        if let Some(aperture) = case.params.get("aperture_size") {
            assert_eq!(aperture.as_u64(), Some(3), "only aperture 3 is ported");
        }
        if let Some(l2) = case.params.get("l2_gradient") {
            assert_eq!(l2.as_bool(), Some(false), "only the L1 gradient is ported");
        }
        let input = golden.get("input.image_gray_uint8");
        let (h, w) = (input.shape[0] as u32, input.shape[1] as u32);
        let image = GrayImage::from_raw(w, h, to_u8(&input.values)).unwrap();
        let edges = canny(&image, low, high).unwrap();
        let want = to_u8(&golden.get("output.edges_uint8").values);
        let diff: Vec<usize> = (0..want.len())
            .filter(|&i| edges.as_raw()[i] != want[i])
            .collect();
        assert!(
            diff.is_empty(),
            "{}: {} of {} pixels differ, first at {:?}",
            case.case,
            diff.len(),
            want.len(),
            diff.first().map(|&i| (i % w as usize, i / w as usize))
        );
        // Thresholds given the other way round are swapped, as OpenCV does.
        assert_eq!(canny(&image, high, low).unwrap(), edges);
    }
}

fn square(w: u32, h: u32) -> GrayImage {
    GrayImage::from_fn(w, h, |x, y| {
        Luma([if (8..24).contains(&x) && (8..24).contains(&y) {
            200
        } else {
            20
        }])
    })
}

#[test]
fn edges_of_a_square_are_a_closed_outline() {
    let edges = canny(&square(32, 32), 50.0, 100.0).unwrap();
    assert!(edges.pixels().all(|p| p[0] == 0 || p[0] == 255));
    // Every side of the square has edge pixels next to it; the flat inside none.
    for i in 10..22 {
        assert!(
            (6..10).any(|x| edges.get_pixel(x, i)[0] == 255),
            "left side at row {i}"
        );
        assert!(
            (6..10).any(|y| edges.get_pixel(i, y)[0] == 255),
            "top side at column {i}"
        );
    }
    assert!((12..20).all(|x| (12..20).all(|y| edges.get_pixel(x, y)[0] == 0)));
    // A flat image has no edges.
    assert!(canny(&GrayImage::from_pixel(16, 16, Luma([90])), 1.0, 2.0)
        .unwrap()
        .pixels()
        .all(|p| p[0] == 0));
}

#[test]
fn colour_images_use_the_strongest_channel() {
    let gray = square(32, 32);
    // The square only in the green channel: same edges as the grey square.
    let rgb = RgbImage::from_fn(32, 32, |x, y| image::Rgb([7, gray.get_pixel(x, y)[0], 7]));
    assert_eq!(
        canny_rgb(&rgb, 50.0, 100.0).unwrap(),
        canny(&gray, 50.0, 100.0).unwrap()
    );
}

#[test]
fn canny_condition_is_three_channel_and_resized() {
    let image = DynamicImage::ImageLuma8(square(32, 32));
    let cond = canny_condition(&image, 50.0, 100.0, None).unwrap();
    assert_eq!((cond.width(), cond.height()), (32, 32));
    assert_eq!(cond.latent_size(8), Some((4, 4)));
    assert_eq!(cond.latent_size(4), Some((8, 8)));
    assert_eq!(cond.latent_size(3), None);
    assert_eq!(cond.latent_size(0), None);
    assert!(cond.image().pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    let cond = canny_condition(&image, 50.0, 100.0, Some((64, 48))).unwrap();
    assert_eq!((cond.width(), cond.height()), (64, 48));
    let t = cond.to_tensor::<optedit_fixtures::TestBackend>(&Default::default());
    assert_eq!(t.dims(), [1, 3, 48, 64]);
    let v = optedit_fixtures::values(&t);
    assert!(v.iter().all(|&x| x == 0.0 || x == 1.0) && v.contains(&1.0));
}

#[test]
fn bad_canny_input_is_a_typed_error() {
    let e = canny(&GrayImage::new(0, 5), 1.0, 2.0).unwrap_err();
    assert!(matches!(e, CondError::EmptyImage { .. }), "{e}");
    let e = canny(&square(8, 8), f64::NAN, 2.0).unwrap_err();
    assert!(
        matches!(&e, CondError::OutOfRange { argument, .. } if argument == "low_threshold"),
        "{e}"
    );
    let e = canny(&square(8, 8), 1.0, -2.0).unwrap_err();
    assert!(
        matches!(&e, CondError::OutOfRange { argument, .. } if argument == "high_threshold"),
        "{e}"
    );
    let image = DynamicImage::ImageLuma8(square(30, 32));
    let sized = |size| canny_condition(&image, 1.0, 2.0, Some(size));
    let e = sized((0, 8)).unwrap_err();
    assert!(matches!(e, CondError::EmptyImage { .. }), "{e}");
    // Any positive size is a condition (a factor-4 model takes 132 px).
    let c = sized((132, 36)).unwrap();
    assert_eq!((c.width(), c.height()), (132, 36));
}
