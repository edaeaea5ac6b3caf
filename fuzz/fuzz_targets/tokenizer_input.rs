//! Arbitrary text through the real CLIP tokenizer: ids always in the
//! vocabulary, always 77 long when padded.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use optedit_cond::ClipTokenizer;

fn tokenizer() -> &'static ClipTokenizer {
    static T: OnceLock<ClipTokenizer> = OnceLock::new();
    T.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-sd/tokenizer");
        ClipTokenizer::from_dir(&dir).expect("tokenizer files")
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(ids) = tokenizer().encode_padded(&text) {
        assert_eq!(ids.len(), 77);
        assert!(ids.iter().all(|&i| (i as usize) < 49408));
    }
});
