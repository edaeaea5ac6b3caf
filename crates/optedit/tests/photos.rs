//! The photo path (issue 24): what phones, cameras and editors write reads
//! as the upright RGB picture a viewer shows, a 12 MP photo fits the model
//! and comes back at its size, and a broken file is a clear error that
//! writes nothing. The expected pixels are built here by hand (the EXIF
//! transforms from the TIFF/EXIF specification), not with the `image`
//! crate's own orientation code.

use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageEncoder, Rgb, RgbImage};
use optedit::images::{self, Fit};
use optedit_fixtures::photo::exif_orientation;

/// An upright `w x h` picture with four coloured quadrants: red top left,
/// green top right, blue bottom left, white bottom right.
fn quadrants(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb(match (x < w / 2, y < h / 2) {
            (true, true) => [255, 0, 0],
            (false, true) => [0, 255, 0],
            (true, false) => [0, 0, 255],
            (false, false) => [255, 255, 255],
        })
    })
}

/// What a camera stores for the upright `u` under EXIF `orientation`
/// (1-8): the stored pixel at `stored(x, y)` is the upright pixel at
/// `(x, y)`, so that a viewer applying the tag shows `u`.
fn stored_for(u: &RgbImage, orientation: u8) -> RgbImage {
    let (w, h) = u.dimensions();
    let swaps = orientation >= 5;
    let (sw, sh) = if swaps { (h, w) } else { (w, h) };
    let mut s = RgbImage::new(sw, sh);
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = match orientation {
                1 => (x, y),
                2 => (w - 1 - x, y),         // mirrored horizontally
                3 => (w - 1 - x, h - 1 - y), // rotated 180
                4 => (x, h - 1 - y),         // mirrored vertically
                5 => (y, x),                 // transposed
                6 => (y, w - 1 - x),         // view turns it 90 clockwise
                7 => (h - 1 - y, w - 1 - x), // transversed
                8 => (h - 1 - y, x),         // view turns it 90 anticlockwise
                _ => unreachable!("orientation {orientation}"),
            };
            s.put_pixel(sx, sy, *u.get_pixel(x, y));
        }
    }
    s
}

/// `image` as a JPEG file at `path`, with the EXIF orientation tag if given.
fn write_jpeg(path: &Path, image: &RgbImage, orientation: Option<u8>) {
    let mut bytes = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90);
    if let Some(o) = orientation {
        enc.set_exif_metadata(exif_orientation(o)).unwrap();
    }
    enc.write_image(
        image.as_raw(),
        image.width(),
        image.height(),
        image::ExtendedColorType::Rgb8,
    )
    .unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Each channel within `tol` of `want`.
fn near(p: Rgb<u8>, want: [u8; 3], tol: u8) -> bool {
    p.0.iter().zip(want).all(|(&a, b)| a.abs_diff(b) <= tol)
}

/// The centres of the four quadrants of `img` match those of `want`.
fn assert_same_quadrants(img: &RgbImage, want: &RgbImage, what: &str) {
    assert_eq!(img.dimensions(), want.dimensions(), "{what}");
    let (w, h) = img.dimensions();
    for (x, y) in [
        (w / 4, h / 4),
        (3 * w / 4, h / 4),
        (w / 4, 3 * h / 4),
        (3 * w / 4, 3 * h / 4),
    ] {
        let (got, exp) = (*img.get_pixel(x, y), *want.get_pixel(x, y));
        assert!(
            near(got, exp.0, 40),
            "{what} at ({x}, {y}): {got:?}, expected {exp:?}"
        );
    }
}

#[test]
fn every_exif_orientation_reads_upright() {
    let dir = tempfile::tempdir().unwrap();
    let upright = quadrants(48, 32);
    for orientation in 1..=8u8 {
        let path = dir.path().join(format!("o{orientation}.jpg"));
        let stored = stored_for(&upright, orientation);
        write_jpeg(&path, &stored, Some(orientation));
        let read = images::read(&path).unwrap().to_rgb8();
        assert_same_quadrants(&read, &upright, &format!("orientation {orientation}"));
        // Read without the tag, the stored pixels come back as stored: the
        // tag is what turns them.
        if orientation != 1 {
            let plain = dir.path().join(format!("p{orientation}.jpg"));
            write_jpeg(&plain, &stored, None);
            assert_ne!(
                images::read(&plain).unwrap().to_rgb8().get_pixel(2, 2),
                upright.get_pixel(2, 2),
                "orientation {orientation} untagged"
            );
        }
    }
}

#[test]
fn a_12_megapixel_rotated_photo_fits_and_comes_back_upright() {
    let dir = tempfile::tempdir().unwrap();
    // 4000 x 3000 stored sideways (EXIF 6): upright it is 3000 x 4000.
    let upright = quadrants(3000, 4000);
    let path = dir.path().join("phone.jpg");
    write_jpeg(&path, &stored_for(&upright, 6), Some(6));
    let photo = images::read(&path).unwrap().to_rgb8();
    assert_same_quadrants(&photo, &upright, "12 MP");
    // At most 768 on the long side, multiples of 8: 576 x 768.
    let fit = Fit::new(photo.width(), photo.height(), Some(768), 8).unwrap();
    assert_eq!(fit.size(), (576, 768));
    let model_input = fit.apply(&photo);
    assert_same_quadrants(&model_input, &quadrants(576, 768), "fitted");
    // An "edit" that inverts the picture, put back and written as JPEG.
    let mut edited = model_input.clone();
    image::imageops::invert(&mut edited);
    let back = fit.restore(&photo, &edited);
    let out = dir.path().join("out.jpg");
    images::write(&out, &DynamicImage::ImageRgb8(back)).unwrap();
    let reread = image::ImageReader::open(&out)
        .unwrap()
        .with_guessed_format()
        .unwrap();
    assert_eq!(reread.format(), Some(image::ImageFormat::Jpeg));
    let reread = reread.decode().unwrap().to_rgb8();
    assert_eq!(reread.dimensions(), (3000, 4000));
    // Inverted red is cyan, at the upright top left.
    assert!(near(*reread.get_pixel(750, 1000), [0, 255, 255], 40));
    // The input is untouched.
    assert_same_quadrants(&images::read(&path).unwrap().to_rgb8(), &upright, "input");
}

#[test]
fn cmyk_jpeg_reads_as_rgb() {
    // Written by Pillow: 16 x 8, left half CMYK (0, 255, 255, 0) = red,
    // right half (255, 255, 0, 0) = blue, with Adobe's APP14 marker.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/cmyk.jpg");
    let img = images::read(&path).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (16, 8));
    assert!(
        near(*img.get_pixel(2, 4), [255, 0, 0], 40),
        "{:?}",
        img.get_pixel(2, 4)
    );
    assert!(
        near(*img.get_pixel(13, 4), [0, 0, 255], 40),
        "{:?}",
        img.get_pixel(13, 4)
    );
}

/// A PNG written with the `png` crate directly: `colour` and `depth` as
/// given, with a palette when `palette` is given.
fn write_png(
    path: &Path,
    (w, h): (u32, u32),
    colour: png::ColorType,
    depth: png::BitDepth,
    palette: Option<Vec<u8>>,
    data: &[u8],
) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(colour);
    enc.set_depth(depth);
    if let Some(p) = palette {
        enc.set_palette(p);
    }
    enc.write_header().unwrap().write_image_data(data).unwrap();
}

#[test]
fn sixteen_bit_palette_and_grey_alpha_pngs_read_as_rgb() {
    let dir = tempfile::tempdir().unwrap();
    // 16-bit RGB, 2 x 1: (65535, 0, 32896) and (0, 257, 65535), big endian.
    let p16 = dir.path().join("deep.png");
    let px: [u16; 6] = [65535, 0, 32896, 0, 257, 65535];
    let bytes: Vec<u8> = px.iter().flat_map(|v| v.to_be_bytes()).collect();
    write_png(
        &p16,
        (2, 1),
        png::ColorType::Rgb,
        png::BitDepth::Sixteen,
        None,
        &bytes,
    );
    let img = images::read(&p16).unwrap().to_rgb8();
    assert_eq!(img.as_raw(), &vec![255, 0, 128, 0, 1, 255]);
    // 4-bit palette, 3 x 1, indices 2, 0, 1 into (red, green, blue).
    let pal = dir.path().join("palette.png");
    let palette = vec![255, 0, 0, 0, 255, 0, 0, 0, 255];
    write_png(
        &pal,
        (3, 1),
        png::ColorType::Indexed,
        png::BitDepth::Four,
        Some(palette),
        &[0x20, 0x10],
    );
    let img = images::read(&pal).unwrap().to_rgb8();
    assert_eq!(img.as_raw(), &vec![0, 0, 255, 255, 0, 0, 0, 255, 0]);
    // Grey with alpha: the grey replicated, the alpha dropped.
    let ga = dir.path().join("grey-alpha.png");
    write_png(
        &ga,
        (2, 1),
        png::ColorType::GrayscaleAlpha,
        png::BitDepth::Eight,
        None,
        &[10, 0, 200, 255],
    );
    let img = images::read(&ga).unwrap().to_rgb8();
    assert_eq!(img.as_raw(), &vec![10, 10, 10, 200, 200, 200]);
}

#[test]
fn broken_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.jpg");
    write_jpeg(&good, &quadrants(64, 48), None);
    let bytes = std::fs::read(&good).unwrap();
    for (name, data) in [
        ("truncated.jpg", bytes[..bytes.len() / 3].to_vec()),
        ("empty.png", Vec::new()),
        ("text.png", b"not an image at all".to_vec()),
        ("header-only.png", b"\x89PNG\r\n\x1a\n".to_vec()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &data).unwrap();
        let e = images::read(&path).unwrap_err();
        assert!(e.to_string().contains(name), "{name}: {e}");
        // The file is left as it was.
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }
    let e = images::read(dir.path().join("missing.jpg")).unwrap_err();
    assert!(e.to_string().contains("missing.jpg"), "{e}");
}
