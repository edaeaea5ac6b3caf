//! Scribble maps (polarity detection, thresholding, thickening, resizing) and
//! layout maps (nearest-neighbour resizing keeps only input colours), with
//! property tests, plus image reading errors.

use image::{DynamicImage, GrayImage, Luma, Rgb, RgbImage, Rgba, RgbaImage};
use optedit_cond::image::{read_image, resize_max, resize_nearest};
use optedit_cond::layout::{layout_condition, layout_map, palette, LayoutOptions};
use optedit_cond::scribble::{
    detect_polarity, scribble_condition, scribble_map, stroke_mask, thicken, Polarity,
    ScribbleOptions,
};
use optedit_cond::CondError;
use proptest::prelude::*;

/// A drawing with `strokes` pixels in `ink` on `paper`.
fn drawing(w: u32, h: u32, strokes: &[(u32, u32)], ink: [u8; 3], paper: [u8; 3]) -> RgbImage {
    let mut img = RgbImage::from_pixel(w, h, Rgb(paper));
    for &(x, y) in strokes {
        img.put_pixel(x % w, y % h, Rgb(ink));
    }
    img
}

fn lit(mask: &GrayImage) -> Vec<(u32, u32)> {
    mask.enumerate_pixels()
        .filter(|(_, _, p)| p[0] == 255)
        .map(|(x, y, _)| (x, y))
        .collect()
}

proptest! {
    #[test]
    fn both_polarities_give_the_same_white_strokes(
        strokes in prop::collection::vec((0u32..32, 0u32..24), 1..40),
        paper in 180u8..=255,
        ink in 0u8..60,
    ) {
        let dark = drawing(32, 24, &strokes, [ink; 3], [paper; 3]);
        let light = drawing(32, 24, &strokes, [255 - ink; 3], [255 - paper; 3]);
        prop_assert_eq!(detect_polarity(&DynamicImage::ImageRgb8(dark.clone()).to_luma8()), Polarity::DarkOnLight);
        prop_assert_eq!(detect_polarity(&DynamicImage::ImageRgb8(light.clone()).to_luma8()), Polarity::LightOnDark);
        let opts = ScribbleOptions { size: Some((32, 24)), ..Default::default() };
        let a = scribble_map(&DynamicImage::ImageRgb8(dark), &opts).unwrap();
        let b = scribble_map(&DynamicImage::ImageRgb8(light), &opts).unwrap();
        prop_assert_eq!(&a, &b);
        let mut want: Vec<(u32, u32)> = strokes.iter().map(|&(x, y)| (x, y)).collect();
        want.sort_by_key(|&(x, y)| (y, x));
        want.dedup();
        prop_assert_eq!(lit(&a), want);
        prop_assert!(a.pixels().all(|p| p[0] == 0 || p[0] == 255));
    }

    #[test]
    fn thickening_grows_monotonically(
        strokes in prop::collection::vec((0u32..24, 0u32..24), 0..10),
        r in 0u32..4,
    ) {
        let mut mask = GrayImage::new(24, 24);
        for &(x, y) in &strokes {
            mask.put_pixel(x, y, Luma([255]));
        }
        let thin = thicken(&mask, r);
        let thick = thicken(&mask, r + 1);
        for (x, y, p) in mask.enumerate_pixels() {
            if p[0] == 255 {
                prop_assert_eq!(thin.get_pixel(x, y)[0], 255);
            }
            if thin.get_pixel(x, y)[0] == 255 {
                prop_assert_eq!(thick.get_pixel(x, y)[0], 255);
            }
        }
        prop_assert!(thick.pixels().all(|p| p[0] == 0 || p[0] == 255));
    }

    #[test]
    fn nearest_resize_keeps_only_input_colours(
        colors in prop::collection::vec(any::<[u8; 3]>(), 1..6),
        cells in prop::collection::vec(0usize..6, 12 * 10),
        (w, h) in (1u32..9, 1u32..9),
    ) {
        let src = RgbImage::from_fn(12, 10, |x, y| Rgb(colors[cells[(y * 12 + x) as usize] % colors.len()]));
        let out = resize_nearest(&src, w * 8, h * 8).unwrap();
        let input = palette(&src);
        prop_assert!(palette(&out).iter().all(|c| input.contains(c)));
        let map = layout_map(&DynamicImage::ImageRgb8(src.clone()), &LayoutOptions { size: Some((w * 8, h * 8)), max_colors: None }).unwrap();
        prop_assert_eq!(map, out);
    }

    #[test]
    fn max_resize_keeps_every_stroke(
        strokes in prop::collection::vec((0u32..64, 0u32..48), 1..12),
        (w, h) in (1u32..5, 1u32..5),
    ) {
        let mut mask = GrayImage::new(64, 48);
        for &(x, y) in &strokes {
            mask.put_pixel(x, y, Luma([255]));
        }
        let small = resize_max(&mask, w * 8, h * 8);
        // Every stroke pixel lands in a lit output pixel.
        for &(x, y) in &strokes {
            let (ox, oy) = (x * w * 8 / 64, y * h * 8 / 48);
            prop_assert_eq!(small.get_pixel(ox, oy)[0], 255);
        }
    }
}

#[test]
fn coloured_strokes_count_as_strokes() {
    // A red pen on white paper, and the same red pen on black paper.
    let on_white = drawing(16, 16, &[(3, 4), (9, 9)], [230, 20, 20], [250, 250, 250]);
    let on_black = drawing(16, 16, &[(3, 4), (9, 9)], [230, 20, 20], [5, 5, 5]);
    for img in [on_white, on_black] {
        let mask = stroke_mask(&DynamicImage::ImageRgb8(img), Polarity::Auto, 127).unwrap();
        assert_eq!(lit(&mask), vec![(3, 4), (9, 9)]);
    }
}

#[test]
fn transparent_drawings_use_alpha() {
    let mut img = RgbaImage::from_pixel(16, 8, Rgba([0, 0, 0, 0]));
    img.put_pixel(5, 5, Rgba([0, 0, 0, 255]));
    let mask = stroke_mask(&DynamicImage::ImageRgba8(img), Polarity::Auto, 127).unwrap();
    assert_eq!(lit(&mask), vec![(5, 5)]);
}

#[test]
fn thickened_point_is_a_disc() {
    let mut mask = GrayImage::new(11, 11);
    mask.put_pixel(5, 5, Luma([255]));
    assert_eq!(thicken(&mask, 0), mask);
    let disc = thicken(&mask, 2);
    assert_eq!(lit(&disc).len(), 13);
    let opts = ScribbleOptions {
        thickness: 1,
        size: Some((16, 16)),
        polarity: Polarity::DarkOnLight,
        threshold: 127,
    };
    let cond = scribble_condition(
        &DynamicImage::ImageRgb8(drawing(16, 16, &[(8, 8)], [0; 3], [255; 3])),
        &opts,
    )
    .unwrap();
    let on: Vec<(u32, u32)> = cond
        .image()
        .enumerate_pixels()
        .filter(|(_, _, p)| p.0 == [255; 3])
        .map(|(x, y, _)| (x, y))
        .collect();
    assert_eq!(on, vec![(8, 7), (7, 8), (8, 8), (9, 8), (8, 9)]);
}

#[test]
fn layout_passes_through_and_validates() {
    let src = RgbImage::from_fn(16, 8, |x, _| {
        if x < 8 {
            Rgb([120, 120, 70])
        } else {
            Rgb([4, 200, 3])
        }
    });
    let cond = layout_condition(
        &DynamicImage::ImageRgb8(src.clone()),
        &LayoutOptions::default(),
    )
    .unwrap();
    assert_eq!(cond.image(), &src);
    // Upscaling by 2 replicates each pixel into a 2x2 block.
    let big = layout_map(
        &DynamicImage::ImageRgb8(src.clone()),
        &LayoutOptions {
            size: Some((32, 16)),
            max_colors: Some(2),
        },
    )
    .unwrap();
    for (x, y, p) in big.enumerate_pixels() {
        assert_eq!(p, src.get_pixel(x / 2, y / 2));
    }
    let e = layout_map(
        &DynamicImage::ImageRgb8(src.clone()),
        &LayoutOptions {
            size: None,
            max_colors: Some(1),
        },
    )
    .unwrap_err();
    assert!(
        matches!(&e, CondError::InvalidArgument { argument, .. } if argument == "layout image"),
        "{e}"
    );
    let e = layout_map(
        &DynamicImage::ImageRgb8(src),
        &LayoutOptions {
            size: Some((20, 0)),
            max_colors: None,
        },
    )
    .unwrap_err();
    assert!(matches!(e, CondError::EmptyImage { width: 20, .. }), "{e}");
    let e = layout_map(
        &DynamicImage::ImageRgb8(RgbImage::new(0, 0)),
        &LayoutOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, CondError::EmptyImage { .. }), "{e}");
    let e = resize_nearest(&RgbImage::new(0, 3), 8, 8).unwrap_err();
    assert!(matches!(e, CondError::EmptyImage { .. }), "{e}");
}

#[test]
fn bad_scribble_input_is_a_typed_error() {
    let e = stroke_mask(
        &DynamicImage::ImageLuma8(GrayImage::new(4, 0)),
        Polarity::Auto,
        127,
    )
    .unwrap_err();
    assert!(matches!(e, CondError::EmptyImage { .. }), "{e}");
    let img = DynamicImage::ImageRgb8(drawing(12, 12, &[(1, 1)], [0; 3], [255; 3]));
    let e = scribble_map(
        &img,
        &ScribbleOptions {
            size: Some((0, 12)),
            ..ScribbleOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(e, CondError::EmptyImage { width: 0, .. }), "{e}");
    // A size that is not a multiple of 8 is fine (a factor-4 model's).
    assert_eq!(
        scribble_map(&img, &ScribbleOptions::default())
            .unwrap()
            .dimensions(),
        (12, 12)
    );
}

#[test]
fn image_files_are_read_or_named_in_errors() {
    let dir = std::env::temp_dir().join(format!("optedit-cond-img-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("layout.png");
    let src = RgbImage::from_fn(8, 8, |x, y| Rgb([x as u8 * 30, y as u8 * 30, 9]));
    src.save(&png).unwrap();
    assert_eq!(read_image(&png).unwrap().to_rgb8(), src);
    let bogus = dir.join("bogus.png");
    std::fs::write(&bogus, b"not an image").unwrap();
    let e = read_image(&bogus).unwrap_err();
    assert!(
        matches!(e, CondError::ImageDecode { .. }) && e.to_string().contains("bogus.png"),
        "{e}"
    );
    let e = read_image(&dir.join("missing.png")).unwrap_err();
    assert!(
        matches!(e, CondError::Io { .. }) && e.to_string().contains("missing.png"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
