//! Arbitrary bytes as a diffusers/transformers `config.json` for every model:
//! parsing and validation must return a typed error, never panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use optedit_models::config::parse_config;
use optedit_models::{AutoencoderKLConfig, ClipTextConfig, ControlNetConfig, UNet2DConditionConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let p = Path::new("fuzz/config.json");
    if let Ok(c) = parse_config::<UNet2DConditionConfig>(text, p) {
        let _ = c.validate(p);
    }
    if let Ok(c) = parse_config::<AutoencoderKLConfig>(text, p) {
        let _ = c.validate(p);
    }
    if let Ok(c) = parse_config::<ClipTextConfig>(text, p) {
        let _ = c.validate(p);
    }
    if let Ok(c) = parse_config::<ControlNetConfig>(text, p) {
        let _ = c.validate(p);
    }
});
