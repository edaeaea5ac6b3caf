//! The CLIP BPE tokenizer of Stable Diffusion, read from a diffusers
//! `tokenizer/` folder in either layout: `tokenizer.json` alone (as
//! transformers 5 saves it) or `vocab.json` + `merges.txt`.
//!
//! It is built with the `tokenizers` crate (the engine behind transformers'
//! `CLIPTokenizer` since transformers 5 and `CLIPTokenizerFast` before), with
//! the pipeline transformers' CLIP converter assembles:
//!
//! 1. normalise: Unicode NFC, every run of whitespace to one space, lower case;
//! 2. split with CLIP's pattern
//!    `'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`, dropping what
//!    lies between matches (whitespace);
//! 3. map every UTF-8 byte to its printable stand-in (GPT-2's byte-level
//!    alphabet);
//! 4. byte-pair merge each piece in merge rank order (`merges.txt`, or
//!    `model.merges` of `tokenizer.json`), the last symbol
//!    of a word carrying the end-of-word marker `</w>`;
//! 5. frame with `<|startoftext|>` … `<|endoftext|>`, truncate to
//!    `model_max_length` (77) and pad with the folder's pad token.
//!
//! Like transformers (and unlike the original OpenAI / open_clip code) it does
//! not run `ftfy.fix_text` or HTML unescaping, so `&amp;` stays three tokens.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use serde::Deserialize;
use serde_json::Value;
use tokenizers::models::bpe::BPE;
use tokenizers::normalizers::replace::ReplacePattern;
use tokenizers::normalizers::{Lowercase, Replace, Sequence as NormalizerSequence, NFC};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::error::{CondError, Result};

/// CLIP's context length: the text encoder takes 77 positions.
pub const CLIP_MAX_LENGTH: usize = 77;

/// CLIP's pre-tokenisation pattern (transformers' `CLIPConverter`).
const CLIP_SPLIT_PATTERN: &str = r"'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

/// A `model_max_length` above this is transformers' "no limit" sentinel.
const NO_LIMIT: f64 = 1e9;

/// The single-file layout transformers 5 saves.
const TOKENIZER_JSON: &str = "tokenizer.json";
/// The vocabulary of the two-file layout.
const VOCAB_JSON: &str = "vocab.json";
/// The merges of the two-file layout.
const MERGES_TXT: &str = "merges.txt";

/// The special tokens and length limit of a tokenizer folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Start-of-text token (`<|startoftext|>`).
    pub bos: String,
    /// End-of-text token (`<|endoftext|>`).
    pub eos: String,
    /// Padding token (`<|endoftext|>` for SD 1.5; `!` for some SD 2 folders).
    pub pad: String,
    /// Unknown-token stand-in (`<|endoftext|>`).
    pub unk: String,
    /// Length of an encoded prompt, special tokens included (77).
    pub max_length: usize,
}

impl Default for SpecialTokens {
    fn default() -> Self {
        Self {
            bos: "<|startoftext|>".into(),
            eos: "<|endoftext|>".into(),
            pad: "<|endoftext|>".into(),
            unk: "<|endoftext|>".into(),
            max_length: CLIP_MAX_LENGTH,
        }
    }
}

impl SpecialTokens {
    /// Reads `tokenizer_config.json` and then `special_tokens_map.json` of
    /// `dir` (either may be absent; a token named in the second wins), falling
    /// back to CLIP's defaults for what neither names.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let mut tokens = Self::default();
        for name in ["tokenizer_config.json", "special_tokens_map.json"] {
            let path = dir.join(name);
            if !path.is_file() {
                continue;
            }
            let json = read_json(&path)?;
            let Value::Object(map) = &json else {
                return Err(tokenizer_file(&path, "expected a JSON object"));
            };
            for (key, slot) in [
                ("bos_token", &mut tokens.bos),
                ("eos_token", &mut tokens.eos),
                ("pad_token", &mut tokens.pad),
                ("unk_token", &mut tokens.unk),
            ] {
                match map.get(key) {
                    None | Some(Value::Null) => {}
                    Some(value) => {
                        *slot = token_content(value).ok_or_else(|| {
                            tokenizer_file(
                                &path,
                                format!("{key} is neither a string nor {{\"content\": string}}"),
                            )
                        })?
                    }
                }
            }
            if let Some(value) = map.get("model_max_length") {
                let n = value
                    .as_f64()
                    .ok_or_else(|| tokenizer_file(&path, "model_max_length is not a number"))?;
                if n < NO_LIMIT {
                    if n < 2.0 || n.fract() != 0.0 {
                        return Err(tokenizer_file(
                            &path,
                            format!("model_max_length {n} must be a whole number of at least 2"),
                        ));
                    }
                    tokens.max_length = n as usize;
                }
            }
        }
        Ok(tokens)
    }
}

/// The CLIP tokenizer: text to the 77 token ids the text encoder takes.
#[derive(Clone)]
pub struct ClipTokenizer {
    inner: Tokenizer,
    special: SpecialTokens,
    bos_id: u32,
    eos_id: u32,
    pad_id: u32,
    vocab_size: usize,
}

impl std::fmt::Debug for ClipTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipTokenizer")
            .field("special", &self.special)
            .field("bos_id", &self.bos_id)
            .field("eos_id", &self.eos_id)
            .field("pad_id", &self.pad_id)
            .field("vocab_size", &self.vocab_size)
            .finish()
    }
}

impl ClipTokenizer {
    /// Loads a diffusers/transformers `tokenizer/` folder in either layout:
    ///
    /// - `tokenizer.json` (what transformers 5 saves, e.g. in SD 2.1 and
    ///   SDXL folders written by diffusers 0.42), or
    /// - `vocab.json` + `merges.txt` (released SD 1.5 folders, older
    ///   transformers),
    ///
    /// with `tokenizer_config.json` and `special_tokens_map.json` where
    /// present (see [`SpecialTokens::from_dir`]). A folder holding both
    /// layouts is read from `tokenizer.json`, as transformers does. Both give
    /// the same ids: the vocabulary and merges of either feed the same CLIP
    /// pipeline.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(tokenizer_file(dir, "not a folder"));
        }
        let special = SpecialTokens::from_dir(dir)?;
        let json = dir.join(TOKENIZER_JSON);
        if json.is_file() {
            return Self::from_tokenizer_json(&json, special);
        }
        let (vocab, merges) = (dir.join(VOCAB_JSON), dir.join(MERGES_TXT));
        match (vocab.is_file(), merges.is_file()) {
            (true, true) => Self::from_files(&vocab, &merges, special),
            (true, false) => Err(tokenizer_file(
                &merges,
                format!("missing: {VOCAB_JSON} needs it (or give {TOKENIZER_JSON} instead)"),
            )),
            (false, true) => Err(tokenizer_file(
                &vocab,
                format!("missing: {MERGES_TXT} needs it (or give {TOKENIZER_JSON} instead)"),
            )),
            (false, false) => Err(tokenizer_file(
                dir,
                format!("holds neither {TOKENIZER_JSON} nor {VOCAB_JSON} + {MERGES_TXT}"),
            )),
        }
    }

    /// Builds the tokenizer from a vocabulary (`{"token": id}`), a merges list
    /// (`#version` header, then one `left right` pair a line, best first) and
    /// the special tokens.
    pub fn from_files(
        vocab_path: &Path,
        merges_path: &Path,
        special: SpecialTokens,
    ) -> Result<Self> {
        let vocab = read_vocab(vocab_path)?;
        let merges = read_merges(merges_path)?;
        Self::from_vocab_and_merges(vocab, merges, special, vocab_path, merges_path)
    }

    /// Builds the tokenizer from a `tokenizers` JSON file (`tokenizer.json`)
    /// holding a CLIP byte-pair model: its `model.vocab` and `model.merges`
    /// (either `"left right"` strings or `["left", "right"]` pairs, as newer
    /// files write them), with the tokens of `added_tokens` that the
    /// vocabulary lacks. The file's model must be a BPE with the end-of-word
    /// suffix `</w>`, as CLIP's is.
    pub fn from_tokenizer_json(path: &Path, special: SpecialTokens) -> Result<Self> {
        let (vocab, merges) = read_tokenizer_json(path)?;
        Self::from_vocab_and_merges(vocab, merges, special, path, path)
    }

    /// The shared constructor; `vocab_path` and `merges_path` name the files
    /// in errors.
    fn from_vocab_and_merges(
        vocab: HashMap<String, u32>,
        merges: Vec<(String, String)>,
        special: SpecialTokens,
        vocab_path: &Path,
        merges_path: &Path,
    ) -> Result<Self> {
        let id_of = |token: &str, role: &str| {
            vocab.get(token).copied().ok_or_else(|| {
                tokenizer_file(
                    vocab_path,
                    format!("the {role} token {token:?} is not in the vocabulary"),
                )
            })
        };
        let bos_id = id_of(&special.bos, "start-of-text")?;
        let eos_id = id_of(&special.eos, "end-of-text")?;
        let pad_id = id_of(&special.pad, "padding")?;
        id_of(&special.unk, "unknown")?;
        if special.max_length < 2 {
            return Err(CondError::invalid(
                "special.max_length",
                format!(
                    "{} leaves no room for the start and end tokens",
                    special.max_length
                ),
            ));
        }
        let vocab_size = vocab.values().map(|&id| id as usize + 1).max().unwrap_or(0);
        let inner = build_pipeline(vocab, merges, &special).map_err(|message| {
            tokenizer_file(
                merges_path,
                format!("cannot build the BPE model: {message}"),
            )
        })?;
        Ok(Self {
            inner,
            special,
            bos_id,
            eos_id,
            pad_id,
            vocab_size,
        })
    }

    /// Token ids of `text` without special tokens, truncation or padding.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| CondError::Tokenize {
                argument: format!("{text:?}"),
                message: e.to_string(),
            })?;
        Ok(encoding.get_ids().to_vec())
    }

    /// `<|startoftext|>`, the ids of `text` cut to `max_length - 2`, and
    /// `<|endoftext|>` (transformers' `truncation=True`, no padding).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self.tokenize(text)?;
        ids.truncate(self.special.max_length - 2);
        ids.insert(0, self.bos_id);
        ids.push(self.eos_id);
        Ok(ids)
    }

    /// [`encode`](Self::encode), padded with the pad token to exactly
    /// `max_length` ids (`padding="max_length"`): what Stable Diffusion feeds
    /// the text encoder.
    pub fn encode_padded(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self.encode(text)?;
        ids.resize(self.special.max_length, self.pad_id);
        Ok(ids)
    }

    /// [`encode_padded`](Self::encode_padded) for several texts.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        texts.iter().map(|t| self.encode_padded(t)).collect()
    }

    /// The padded ids of `texts` as an `Int` tensor `[texts.len(), max_length]`.
    pub fn input_ids<B: Backend>(
        &self,
        texts: &[&str],
        device: &B::Device,
    ) -> Result<Tensor<B, 2, Int>> {
        if texts.is_empty() {
            return Err(CondError::invalid("texts", "no text to encode"));
        }
        let ids: Vec<i64> = self
            .encode_batch(texts)?
            .into_iter()
            .flatten()
            .map(i64::from)
            .collect();
        let data = TensorData::new(ids, [texts.len(), self.special.max_length]);
        Ok(Tensor::from_data(data, device))
    }

    /// Id of `<|startoftext|>`.
    pub fn bos_token_id(&self) -> u32 {
        self.bos_id
    }

    /// Id of `<|endoftext|>`.
    pub fn eos_token_id(&self) -> u32 {
        self.eos_id
    }

    /// Id of the padding token.
    pub fn pad_token_id(&self) -> u32 {
        self.pad_id
    }

    /// Length of an encoded prompt (77).
    pub fn max_length(&self) -> usize {
        self.special.max_length
    }

    /// One more than the largest id of the vocabulary (49408 for CLIP).
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The special tokens the tokenizer was built with.
    pub fn special_tokens(&self) -> &SpecialTokens {
        &self.special
    }
}

/// Assembles normaliser, pre-tokenizer and BPE model as transformers' CLIP
/// converter does.
fn build_pipeline(
    vocab: HashMap<String, u32>,
    merges: Vec<(String, String)>,
    special: &SpecialTokens,
) -> std::result::Result<Tokenizer, String> {
    let bpe = BPE::builder()
        .vocab_and_merges(
            vocab
                .into_iter()
                .collect::<tokenizers::models::bpe::Vocab>(),
            merges,
        )
        .unk_token(special.unk.clone())
        .continuing_subword_prefix(String::new())
        .end_of_word_suffix("</w>".into())
        .fuse_unk(false)
        .build()
        .map_err(|e| e.to_string())?;
    let whitespace =
        Replace::new(ReplacePattern::Regex(r"\s+".into()), " ").map_err(|e| e.to_string())?;
    let split = Split::new(
        SplitPattern::Regex(CLIP_SPLIT_PATTERN.into()),
        SplitDelimiterBehavior::Removed,
        true,
    )
    .map_err(|e| e.to_string())?;
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_normalizer(Some(NormalizerSequence::new(vec![
        NFC.into(),
        whitespace.into(),
        Lowercase.into(),
    ])));
    tokenizer.with_pre_tokenizer(Some(PreTokenizerSequence::new(vec![
        split.into(),
        ByteLevel::new(false, true, true).into(),
    ])));
    let specials: Vec<AddedToken> = [&special.bos, &special.eos, &special.pad, &special.unk]
        .into_iter()
        .map(|t| AddedToken::from(t.clone(), true))
        .collect();
    tokenizer.add_special_tokens(&specials);
    Ok(tokenizer)
}

fn tokenizer_file(path: &Path, message: impl Into<String>) -> CondError {
    CondError::TokenizerFile {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| CondError::Io {
        path: PathBuf::from(path),
        source,
    })
}

fn read_json(path: &Path) -> Result<Value> {
    serde_json::from_str(&read_text(path)?)
        .map_err(|e| tokenizer_file(path, format!("malformed JSON: {e}")))
}

/// A special-token entry: `"<|endoftext|>"` or `{"content": "<|endoftext|>", ...}`.
fn token_content(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => m.get("content")?.as_str().map(str::to_owned),
        _ => None,
    }
}

fn read_vocab(path: &Path) -> Result<HashMap<String, u32>> {
    let vocab: HashMap<String, u32> = serde_json::from_str(&read_text(path)?)
        .map_err(|e| tokenizer_file(path, format!("expected {{\"token\": id}}: {e}")))?;
    if vocab.is_empty() {
        return Err(tokenizer_file(path, "the vocabulary is empty"));
    }
    Ok(vocab)
}

fn read_merges(path: &Path) -> Result<Vec<(String, String)>> {
    let text = read_text(path)?;
    let mut merges = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.starts_with("#version") || line.is_empty() {
            continue;
        }
        let mut parts = line.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty() => {
                merges.push((a.to_owned(), b.to_owned()))
            }
            _ => {
                return Err(tokenizer_file(
                    path,
                    format!("line {} is not a `left right` pair: {line:?}", number + 1),
                ))
            }
        }
    }
    Ok(merges)
}

/// The part of a `tokenizer.json` that the CLIP pipeline takes from it.
#[derive(Deserialize)]
struct TokenizerJson {
    model: Option<BpeJson>,
    #[serde(default)]
    added_tokens: Vec<AddedTokenJson>,
}

/// `model` of a `tokenizer.json`.
#[derive(Deserialize)]
struct BpeJson {
    #[serde(rename = "type")]
    kind: Option<String>,
    vocab: Option<HashMap<String, u32>>,
    merges: Option<Vec<MergeJson>>,
    #[serde(default)]
    end_of_word_suffix: Option<String>,
    #[serde(default)]
    continuing_subword_prefix: Option<String>,
}

/// One merge: `"left right"` (tokenizers before 0.20) or `["left", "right"]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum MergeJson {
    Joined(String),
    Pair(Vec<String>),
}

/// An entry of `added_tokens`.
#[derive(Deserialize)]
struct AddedTokenJson {
    id: u32,
    content: String,
}

/// Vocabulary and merges of a `tokenizer.json` holding a CLIP BPE model.
fn read_tokenizer_json(path: &Path) -> Result<(HashMap<String, u32>, Vec<(String, String)>)> {
    let file: TokenizerJson = serde_json::from_str(&read_text(path)?)
        .map_err(|e| tokenizer_file(path, format!("not a tokenizers JSON file: {e}")))?;
    let model = file
        .model
        .ok_or_else(|| tokenizer_file(path, "has no `model`"))?;
    if let Some(kind) = model.kind.as_deref().filter(|k| *k != "BPE") {
        return Err(tokenizer_file(
            path,
            format!("model.type is {kind:?}; the CLIP tokenizer is a byte-pair model (\"BPE\")"),
        ));
    }
    if model.end_of_word_suffix.as_deref() != Some("</w>") {
        return Err(tokenizer_file(
            path,
            format!(
                "model.end_of_word_suffix is {:?}; a CLIP tokenizer marks word ends with \"</w>\"",
                model.end_of_word_suffix
            ),
        ));
    }
    if let Some(prefix) = model
        .continuing_subword_prefix
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        return Err(tokenizer_file(
            path,
            format!("model.continuing_subword_prefix is {prefix:?}; CLIP's is empty"),
        ));
    }
    let mut vocab = model
        .vocab
        .ok_or_else(|| tokenizer_file(path, "has no model.vocab"))?;
    if vocab.is_empty() {
        return Err(tokenizer_file(path, "model.vocab is empty"));
    }
    for token in file.added_tokens {
        vocab.entry(token.content).or_insert(token.id);
    }
    let merges = model
        .merges
        .ok_or_else(|| tokenizer_file(path, "has no model.merges"))?
        .into_iter()
        .enumerate()
        .map(|(i, merge)| {
            let pair = match merge {
                MergeJson::Joined(line) => {
                    let mut parts = line.split(' ');
                    match (parts.next(), parts.next(), parts.next()) {
                        (Some(a), Some(b), None) => Some((a.to_owned(), b.to_owned())),
                        _ => None,
                    }
                }
                MergeJson::Pair(parts) => match <[String; 2]>::try_from(parts) {
                    Ok([a, b]) => Some((a, b)),
                    Err(_) => None,
                },
            };
            pair.filter(|(a, b)| !a.is_empty() && !b.is_empty())
                .ok_or_else(|| {
                    tokenizer_file(
                        path,
                        format!(
                            "model.merges[{i}] is neither \"left right\" nor [\"left\", \"right\"]"
                        ),
                    )
                })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((vocab, merges))
}
