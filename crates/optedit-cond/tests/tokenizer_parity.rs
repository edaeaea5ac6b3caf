//! Parity of the CLIP tokenizer with transformers' `CLIPTokenizer`
//! (`golden/tokenizer.json`): every text, ids exact, with and without special
//! tokens, truncated and padded.

use std::path::PathBuf;

use optedit_cond::{ClipTokenizer, CondError, SpecialTokens};
use optedit_fixtures::{cases_with_prefix, fixtures_dir};
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    bos_token_id: u32,
    eos_token_id: u32,
    pad_token_id: u32,
    model_max_length: usize,
    vocab_size: usize,
    cases: Vec<TextCase>,
}

#[derive(Deserialize)]
struct TextCase {
    text: String,
    ids: Vec<u32>,
    ids_with_special_truncated: Vec<u32>,
    ids_padded_77: Vec<u32>,
}

/// The tokenizer folder of the pipeline the text-encoder cases were made with.
fn tokenizer_dir() -> PathBuf {
    let case = &cases_with_prefix("clip_text_encoder")[0];
    case.model_dir()
        .parent()
        .expect("model folder has a parent")
        .join("tokenizer")
}

fn reference() -> Reference {
    let path = fixtures_dir().join("golden/tokenizer.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_reference_text_tokenizes_exactly() {
    let reference = reference();
    assert!(!reference.cases.is_empty());
    let tok = ClipTokenizer::from_dir(&tokenizer_dir()).unwrap();
    assert_eq!(tok.bos_token_id(), reference.bos_token_id);
    assert_eq!(tok.eos_token_id(), reference.eos_token_id);
    assert_eq!(tok.pad_token_id(), reference.pad_token_id);
    assert_eq!(tok.max_length(), reference.model_max_length);
    assert_eq!(tok.vocab_size(), reference.vocab_size);
    let mut failures = Vec::new();
    for case in &reference.cases {
        let ids = tok.tokenize(&case.text).unwrap();
        let framed = tok.encode(&case.text).unwrap();
        let padded = tok.encode_padded(&case.text).unwrap();
        if ids != case.ids
            || framed != case.ids_with_special_truncated
            || padded != case.ids_padded_77
        {
            failures.push(format!(
                "{:?}\n  got  {ids:?}\n  want {:?}",
                case.text, case.ids
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} texts differ:\n{}",
        failures.len(),
        reference.cases.len(),
        failures.join("\n")
    );
}

#[test]
fn batch_ids_are_padded_rows() {
    let tok = ClipTokenizer::from_dir(&tokenizer_dir()).unwrap();
    let device = Default::default();
    let ids = tok
        .input_ids::<optedit_fixtures::TestBackend>(&["a cat", ""], &device)
        .unwrap();
    assert_eq!(ids.dims(), [2, tok.max_length()]);
    let values: Vec<i64> = ids.to_data().convert::<i64>().to_vec().unwrap();
    assert_eq!(values[0], i64::from(tok.bos_token_id()));
    assert_eq!(values[tok.max_length() + 1], i64::from(tok.eos_token_id()));
    assert!(values[tok.max_length() + 2..]
        .iter()
        .all(|&v| v == i64::from(tok.pad_token_id())));
}

#[test]
fn long_text_is_truncated_to_the_context() {
    let tok = ClipTokenizer::from_dir(&tokenizer_dir()).unwrap();
    let text = "word ".repeat(200);
    let ids = tok.encode_padded(&text).unwrap();
    assert_eq!(ids.len(), tok.max_length());
    assert_eq!(*ids.last().unwrap(), tok.eos_token_id());
}

#[test]
fn literal_special_tokens_map_to_their_ids() {
    let tok = ClipTokenizer::from_dir(&tokenizer_dir()).unwrap();
    let ids = tok.tokenize("a <|endoftext|> b").unwrap();
    assert!(ids.contains(&tok.eos_token_id()), "{ids:?}");
}

#[test]
fn missing_or_malformed_files_are_named() {
    let err = ClipTokenizer::from_dir(&fixtures_dir().join("no-such-tokenizer")).unwrap_err();
    assert!(matches!(err, CondError::TokenizerFile { .. }), "{err}");

    let dir = std::env::temp_dir().join(format!("optedit-cond-tok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("vocab.json"), "{not json").unwrap();
    std::fs::write(dir.join("merges.txt"), "#version: 0.2\n").unwrap();
    let err = ClipTokenizer::from_dir(&dir).unwrap_err();
    assert!(err.to_string().contains("vocab.json"), "{err}");

    std::fs::write(dir.join("vocab.json"), r#"{"a": 0, "<|endoftext|>": 1}"#).unwrap();
    let err = ClipTokenizer::from_dir(&dir).unwrap_err();
    assert!(err.to_string().contains("<|startoftext|>"), "{err}");

    std::fs::write(
        dir.join("vocab.json"),
        r#"{"a": 0, "<|startoftext|>": 1, "<|endoftext|>": 2}"#,
    )
    .unwrap();
    std::fs::write(dir.join("merges.txt"), "#version: 0.2\na b c\n").unwrap();
    let err = ClipTokenizer::from_dir(&dir).unwrap_err();
    assert!(
        err.to_string().contains("merges.txt") && err.to_string().contains("line 2"),
        "{err}"
    );

    std::fs::write(dir.join("merges.txt"), "#version: 0.2\n").unwrap();
    std::fs::write(
        dir.join("tokenizer_config.json"),
        r#"{"model_max_length": 1}"#,
    )
    .unwrap();
    let err = ClipTokenizer::from_dir(&dir).unwrap_err();
    assert!(err.to_string().contains("model_max_length"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn special_tokens_come_from_the_folder() {
    let special = SpecialTokens::from_dir(&tokenizer_dir()).unwrap();
    assert_eq!(special.bos, "<|startoftext|>");
    let reference = reference();
    let tok = ClipTokenizer::from_dir(&tokenizer_dir()).unwrap();
    assert_eq!(tok.special_tokens(), &special);
    assert_eq!(special.max_length, reference.model_max_length);
    assert_eq!(
        reference.pad_token_id == reference.eos_token_id,
        special.pad == special.eos
    );
}
