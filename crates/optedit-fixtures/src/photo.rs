//! What the photo-path tests write into files: the EXIF block a camera
//! records.

/// A big-endian TIFF (EXIF) block holding only the orientation tag (0x0112,
/// a SHORT) with `value` (1-8), as `JpegEncoder::set_exif_metadata` takes it.
pub fn exif_orientation(value: u8) -> Vec<u8> {
    let mut e = b"MM\x00\x2a\x00\x00\x00\x08\x00\x01".to_vec();
    e.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, value, 0, 0]);
    e.extend_from_slice(&[0, 0, 0, 0]);
    e
}
