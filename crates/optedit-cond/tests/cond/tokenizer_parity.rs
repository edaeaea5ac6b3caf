//! Parity of the CLIP tokenizer with transformers' `CLIPTokenizer`
//! (`golden/tokenizer.json`): every text, ids exact, with and without special
//! tokens, truncated and padded.

use std::path::{Path, PathBuf};

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

/// Vocabulary and merges of a tokenizer folder in either layout, read
/// independently of the crate (so the layouts can be written from each other).
fn vocab_and_merges(dir: &Path) -> (serde_json::Value, Vec<(String, String)>) {
    let json = dir.join("tokenizer.json");
    if json.is_file() {
        let doc = optedit_fixtures::shapes::read_json_at(&json);
        let merges = doc["model"]["merges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| match m {
                serde_json::Value::String(s) => {
                    let (a, b) = s.split_once(' ').unwrap();
                    (a.to_owned(), b.to_owned())
                }
                pair => (
                    pair[0].as_str().unwrap().to_owned(),
                    pair[1].as_str().unwrap().to_owned(),
                ),
            })
            .collect();
        (doc["model"]["vocab"].clone(), merges)
    } else {
        let vocab = optedit_fixtures::shapes::read_json_at(&dir.join("vocab.json"));
        let text = std::fs::read_to_string(dir.join("merges.txt")).unwrap();
        let merges = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with("#version"))
            .map(|l| {
                let (a, b) = l.split_once(' ').unwrap();
                (a.to_owned(), b.to_owned())
            })
            .collect();
        (vocab, merges)
    }
}

/// How `tokenizer.json` writes its merges.
#[derive(Clone, Copy, Debug)]
enum MergeStyle {
    /// `"left right"` (tokenizers before 0.20).
    Joined,
    /// `["left", "right"]` (tokenizers 0.20 and later).
    Pairs,
}

/// Writes the fixture tokenizer into `dir` in the two-file layout and into
/// `dir/json-*` as `tokenizer.json` alone (both merge styles), each with the
/// fixture folder's special-token files. Returns the three folders.
fn write_both_layouts(dir: &Path) -> Vec<(String, PathBuf)> {
    let src = tokenizer_dir();
    let (vocab, merges) = vocab_and_merges(&src);
    let copy_specials = |to: &Path| {
        std::fs::create_dir_all(to).unwrap();
        for name in ["tokenizer_config.json", "special_tokens_map.json"] {
            if src.join(name).is_file() {
                std::fs::copy(src.join(name), to.join(name)).unwrap();
            }
        }
    };
    let files = dir.join("files");
    copy_specials(&files);
    std::fs::write(files.join("vocab.json"), vocab.to_string()).unwrap();
    let mut text = String::from("#version: 0.2\n");
    for (a, b) in &merges {
        text.push_str(&format!("{a} {b}\n"));
    }
    std::fs::write(files.join("merges.txt"), text).unwrap();
    let mut folders = vec![("vocab.json + merges.txt".to_owned(), files)];
    for style in [MergeStyle::Joined, MergeStyle::Pairs] {
        let to = dir.join(format!("json-{style:?}"));
        copy_specials(&to);
        let merges: Vec<serde_json::Value> = merges
            .iter()
            .map(|(a, b)| match style {
                MergeStyle::Joined => format!("{a} {b}").into(),
                MergeStyle::Pairs => serde_json::json!([a, b]),
            })
            .collect();
        // The layout transformers 5 saves (model, normaliser and
        // pre-tokenizer of its CLIP converter; the loader reads the model).
        let doc = serde_json::json!({
            "version": "1.0",
            "added_tokens": [],
            "model": {
                "type": "BPE",
                "dropout": null,
                "unk_token": "<|endoftext|>",
                "continuing_subword_prefix": "",
                "end_of_word_suffix": "</w>",
                "fuse_unk": false,
                "byte_fallback": false,
                "ignore_merges": false,
                "vocab": vocab,
                "merges": merges,
            }
        });
        std::fs::write(to.join("tokenizer.json"), doc.to_string()).unwrap();
        folders.push((format!("tokenizer.json, {style:?} merges"), to));
    }
    folders
}

/// The same tokenizer saved as `tokenizer.json` alone (merges as strings or
/// as pairs) and as `vocab.json` + `merges.txt` gives the same ids, and the
/// reference ids, on every reference text and a few prompts.
#[test]
fn both_folder_layouts_give_the_same_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let folders = write_both_layouts(tmp.path());
    let reference = reference();
    let mut texts: Vec<&str> = reference.cases.iter().map(|c| c.text.as_str()).collect();
    texts.extend([
        "a photo of a cat",
        "A red sports car parked near the beach, 8K, f/1.8",
        "café terrace at night -- Van Gogh style!!",
        "",
    ]);
    let tokenizers: Vec<(String, ClipTokenizer)> = folders
        .into_iter()
        .map(|(name, dir)| {
            let tok = ClipTokenizer::from_dir(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, tok)
        })
        .collect();
    let (first_name, first) = &tokenizers[0];
    for (name, tok) in &tokenizers[1..] {
        assert_eq!(tok.vocab_size(), first.vocab_size(), "{name}");
        assert_eq!(tok.special_tokens(), first.special_tokens(), "{name}");
        for text in &texts {
            assert_eq!(
                tok.encode_padded(text).unwrap(),
                first.encode_padded(text).unwrap(),
                "{name} vs {first_name} on {text:?}"
            );
            assert_eq!(
                tok.tokenize(text).unwrap(),
                first.tokenize(text).unwrap(),
                "{name} vs {first_name} on {text:?}"
            );
        }
        for case in &reference.cases {
            assert_eq!(
                tok.tokenize(&case.text).unwrap(),
                case.ids,
                "{name}: {:?}",
                case.text
            );
        }
    }
}

/// Tokenizer folders of the fixture set saved by transformers 5
/// (`tokenizer.json` + `tokenizer_config.json`, e.g. `tiny-sd21/tokenizer`)
/// match the reference ids. They are saved from the same CLIP vocabulary as
/// the reference's tokenizer. A fixture set without such a folder is checked
/// on the in-repository copy of `tiny-sd21/tokenizer`.
#[test]
fn saved_tokenizer_json_folders_match_the_reference() {
    let find = |root: &Path| -> Vec<PathBuf> {
        let mut found = Vec::new();
        for pipeline in std::fs::read_dir(root).unwrap().flatten() {
            let Ok(entries) = std::fs::read_dir(pipeline.path()) else {
                continue;
            };
            for entry in entries.flatten() {
                let dir = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("tokenizer") && dir.join("tokenizer.json").is_file() {
                    found.push(dir);
                }
            }
        }
        found.sort();
        found
    };
    let mut folders = find(&fixtures_dir());
    if folders.is_empty() {
        folders = find(&optedit_fixtures::repo_fixtures_dir());
    }
    assert!(
        !folders.is_empty(),
        "no tokenizer.json folder in {} or the repository's fixtures",
        fixtures_dir().display()
    );
    let reference = reference();
    for dir in &folders {
        let tok = ClipTokenizer::from_dir(dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tok.vocab_size(), reference.vocab_size, "{}", dir.display());
        assert_eq!(tok.bos_token_id(), reference.bos_token_id);
        assert_eq!(tok.eos_token_id(), reference.eos_token_id);
        for case in &reference.cases {
            assert_eq!(
                tok.encode(&case.text).unwrap(),
                case.ids_with_special_truncated,
                "{}: {:?}",
                dir.display(),
                case.text
            );
        }
    }
}

/// Either layout's missing or malformed files are named.
#[test]
fn tokenizer_json_problems_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let err = ClipTokenizer::from_dir(dir).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, CondError::TokenizerFile { .. }), "{err}");
    assert!(
        msg.contains("tokenizer.json") && msg.contains("vocab.json") && msg.contains("merges.txt"),
        "{msg}"
    );

    std::fs::write(dir.join("vocab.json"), "{}").unwrap();
    let err = ClipTokenizer::from_dir(dir).unwrap_err();
    assert!(err.to_string().contains("merges.txt"), "{err}");
    std::fs::remove_file(dir.join("vocab.json")).unwrap();
    std::fs::write(dir.join("merges.txt"), "#version: 0.2\n").unwrap();
    let err = ClipTokenizer::from_dir(dir).unwrap_err();
    assert!(err.to_string().contains("vocab.json"), "{err}");
    std::fs::remove_file(dir.join("merges.txt")).unwrap();

    let json = dir.join("tokenizer.json");
    let check = |doc: &str, wanted: &str| {
        std::fs::write(&json, doc).unwrap();
        let err = ClipTokenizer::from_dir(dir).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, CondError::TokenizerFile { .. }), "{msg}");
        assert!(
            msg.contains("tokenizer.json") && msg.contains(wanted),
            "{msg} (wanted {wanted:?})"
        );
    };
    check("{not json", "not a tokenizers JSON file");
    check(r#"{"version": "1.0"}"#, "model");
    let model = |extra: &str| {
        format!(
            r#"{{"model": {{"type": "BPE", "end_of_word_suffix": "</w>",
                "vocab": {{"a": 0, "b": 1, "ab": 2, "<|startoftext|>": 3, "<|endoftext|>": 4}}{extra}}}}}"#
        )
    };
    check(
        r#"{"model": {"type": "WordPiece", "vocab": {"a": 0}}}"#,
        "WordPiece",
    );
    check(
        r#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}"#,
        "end_of_word_suffix",
    );
    check(&model(""), "model.merges");
    check(&model(r#", "merges": ["a b", "a b c"]"#), "model.merges[1]");
    check(
        &model(r#", "merges": [["a", "b"], ["a"]]"#),
        "model.merges[1]",
    );
    check(
        r#"{"model": {"type": "BPE", "end_of_word_suffix": "</w>", "vocab": {"a": 0}, "merges": []}}"#,
        "<|startoftext|>",
    );
    // Both merge styles of a well-formed file load; special tokens that only
    // `added_tokens` lists are found.
    for merges in [r#"["a b</w>"]"#, r#"[["a", "b</w>"]]"#] {
        std::fs::write(
            &json,
            format!(
                r#"{{"added_tokens": [{{"id": 3, "content": "<|startoftext|>"}},
                    {{"id": 4, "content": "<|endoftext|>"}}],
                "model": {{"type": "BPE", "end_of_word_suffix": "</w>",
                "vocab": {{"a": 0, "b": 1, "ab": 2, "ab</w>": 5, "b</w>": 6}},
                "merges": {merges}}}}}"#
            ),
        )
        .unwrap();
        let tok = ClipTokenizer::from_dir(dir).unwrap();
        assert_eq!(tok.bos_token_id(), 3);
        assert_eq!(tok.tokenize("ab").unwrap(), vec![5], "{merges}");
    }
}
