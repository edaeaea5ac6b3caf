//! Arbitrary bytes as an image file, used as an edit mask and as a scribble:
//! decoding and mask parsing return typed errors, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use optedit_edit::UserMask;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mask.png");
    std::fs::write(&path, data).expect("write");
    let Ok(img) = optedit_cond::image::read_gray(&path) else { return };
    let (w, h) = img.dimensions();
    if (w as u64) * (h as u64) > 1 << 20 {
        return;
    }
    let pixels: Vec<f32> = img.pixels().map(|p| p.0[0] as f32 / 255.0).collect();
    if let Ok(mask) = UserMask::new(pixels, w as usize, h as usize) {
        let _ = mask.to_latent::<burn::backend::Flex>(8, &Default::default());
    }
    if let Ok(rgb) = optedit_cond::image::read_rgb(&path) {
        let _ = optedit_cond::scribble::scribble_map(&rgb.into(), &Default::default());
    }
});
