//! Arbitrary bytes as a photo through the facade's photo path: read
//! (any format, EXIF orientation), fit to the model (scale, crop to the
//! VAE factor), put back at the input's size and written by extension.
//! Bad input is a typed error, never a panic; nothing is written for it.
#![no_main]

use image::DynamicImage;
use libfuzzer_sys::fuzz_target;
use optedit::images::{self, Fit};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("photo.jpg");
    std::fs::write(&path, data).expect("write");
    let Ok(photo) = images::read(&path) else { return };
    let photo = photo.to_rgb8();
    let (w, h) = photo.dimensions();
    if u64::from(w) * u64::from(h) > 1 << 22 {
        return;
    }
    let Ok(fit) = Fit::new(w, h, Some(64), 8) else { return };
    let model_input = fit.apply(&photo);
    assert_eq!(model_input.dimensions(), fit.size());
    let back = fit.restore(&photo, &model_input);
    assert_eq!(back.dimensions(), (w, h));
    for name in ["out.png", "out.jpg", "out.webp"] {
        images::write(dir.path().join(name), &DynamicImage::ImageRgb8(back.clone()))
            .expect("a fitted photo writes");
    }
});
