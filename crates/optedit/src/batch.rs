//! Batch editing: a job file of one edit per line, run with the models
//! loaded once, resumable, and split into shards that processes or
//! machines run with no coordination.
//!
//! # The job file
//! [JSON Lines](https://jsonlines.org): each line is one [`Job`], a JSON
//! object; blank lines are no jobs. Lines are counted from 0 (the first line
//! is line 0): [`Shard`] takes lines by this number, the default output is
//! `<line>.png`, and [`Record::line`] names it.
//!
//! ```json
//! {"image": "photos/cat.jpg", "source_prompt": "a cat", "prompt": "a dog"}
//! {"image": "photos/man.png", "prompt": "a dancer", "mask": "none", "controls": [{"net": 0, "pose": "poses/man.json"}], "output": "dancer.webp"}
//! {"image": "photos/car.png", "prompt": "a red car", "method": "sdedit", "options": {"strength": 0.6, "seed": 3}}
//! ```
//!
//! Input paths (`image`, a mask file, condition files) are relative to the
//! job file's folder (absolute paths are taken as they are); `output` is
//! relative to the output folder, and its extension picks the format
//! ([`crate::images::write()`]). [`JobOptions`] override the runner's
//! [`Options`] field by field; `method` overrides [`Options::method`].
//!
//! # Running
//! [`Runner::run`] edits the lines of its [`Shard`] (all of them by
//! default) with one [`Pipeline`] and writes each result atomically into
//! the output folder, then appends a [`Record`] of the line (status, error,
//! timings, output) to the shard's records file there
//! ([`Shard::records_name`]). A line that fails (a missing image, bad JSON,
//! an unknown method, an edit error) is recorded as an error and the run
//! goes on. With [`Runner::with_resume`] a run continues the records
//! already there: lines recorded as done (their output present, the line
//! unchanged) are skipped, the others (errors included) run again; without
//! it, a folder holding records of an earlier run is refused.
//!
//! # Shards
//! Shard `i/n` takes the lines whose number `l` has `l % n == i`, so `n`
//! processes given `0/n` .. `n-1/n` split one job file with no coordination
//! into one output folder; [`merge`] checks that their records together
//! cover the job file exactly once. `docs/scaling.md` runs the shards as a
//! Kubernetes Indexed Job and with `xargs -P`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use burn::tensor::backend::AutodiffBackend;
use image::DynamicImage;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::conditions::{self, Condition};
use crate::images::{self, Format};
use crate::{
    Control, Error, Instruction, MaskChoice, Method, OptimizerKind, Options, Pipeline, Progress,
    ProgressEvent, Silent,
};
use optedit_edit::LossSpace;

// ---------------------------------------------------------------- jobs ---

/// One line of a job file: an input image, the instruction, the method and
/// options, and where the result goes. Only `image` and `prompt` are
/// required; unknown fields are refused, so that a misspelt option is an
/// error rather than silently the default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Job {
    /// The input image (PNG, JPEG or WebP), relative to the job file's
    /// folder.
    pub image: PathBuf,
    /// What the edited image should show ([`Instruction::prompt`]).
    pub prompt: String,
    /// What the image shows now ([`Instruction::source_prompt`]; default
    /// empty).
    #[serde(default)]
    pub source_prompt: String,
    /// The negative prompt ([`Instruction::negative_prompt`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_prompt: Option<String>,
    /// Where the image may change: `auto` (estimated, the default), `none`
    /// (everywhere) or a mask image (white may change) relative to the job
    /// file's folder ([`MaskChoice`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<String>,
    /// ControlNet conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<JobControl>,
    /// The editor, by its word (`optimise`, `diffedit`, `sdedit`; see
    /// [`Method::word`]); default the runner's.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "word::de",
        serialize_with = "word::ser"
    )]
    pub method: Option<Method>,
    /// Settings that override the runner's for this line.
    #[serde(default, skip_serializing_if = "JobOptions::is_empty")]
    pub options: JobOptions,
    /// The output file, relative to the output folder (subfolders allowed,
    /// no `..`); its extension picks the format. Default `<line>.png`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<PathBuf>,
}

impl Job {
    /// A text edit of `image` to `prompt`, everything else by default.
    pub fn new(image: impl Into<PathBuf>, prompt: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            prompt: prompt.into(),
            source_prompt: String::new(),
            negative_prompt: None,
            mask: None,
            controls: Vec::new(),
            method: None,
            options: JobOptions::default(),
            output: None,
        }
    }

    /// The job as one line of a job file (no newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a job serialises")
    }

    /// Parses one line of a job file.
    ///
    /// # Errors
    /// [`LineError::Parse`] for what is not JSON, [`LineError::Field`]
    /// (naming the field, e.g. `options.steps`) for a bad or unknown field.
    pub fn parse(line: &str) -> Result<Self, LineError> {
        let mut de = serde_json::Deserializer::from_str(line);
        let job = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let field = e.path().to_string();
            let e = e.into_inner();
            let message = json_message(&e);
            if e.is_syntax() || e.is_eof() || field.is_empty() || field == "." {
                LineError::Parse { message }
            } else {
                LineError::Field { field, message }
            }
        })?;
        de.end().map_err(|e| LineError::Parse {
            message: json_message(&e),
        })?;
        Ok(job)
    }

    /// The files it reads, resolved against `base` (the job file's
    /// folder): the image, a mask file, the condition files.
    pub fn inputs(&self, base: &Path) -> Vec<PathBuf> {
        let mut files = vec![base.join(&self.image)];
        files.extend(self.mask_file().map(|m| base.join(m)));
        for c in &self.controls {
            files.extend(
                [&c.pose, &c.scribble, &c.layout]
                    .into_iter()
                    .flatten()
                    .map(|p| base.join(p)),
            );
            files.extend(
                c.edges
                    .iter()
                    .filter(|e| *e != "auto")
                    .map(|e| base.join(e)),
            );
        }
        files
    }

    /// The mask file, when `mask` names one.
    fn mask_file(&self) -> Option<&str> {
        self.mask
            .as_deref()
            .filter(|m| !matches!(*m, "auto" | "none"))
    }

    /// The mask choice of `mask`, a file resolved against `base`.
    fn mask_choice(&self, base: &Path) -> Result<MaskChoice, LineError> {
        Ok(match (self.mask.as_deref(), self.mask_file()) {
            (_, Some(file)) => {
                let path = base.join(file);
                let image = images::read(&path).map_err(|source| LineError::Input {
                    field: "mask".into(),
                    source,
                })?;
                MaskChoice::Image(image.to_luma8())
            }
            (Some("none"), None) => MaskChoice::Full,
            _ => MaskChoice::Estimated,
        })
    }
}

/// serde's message with its position as a column (it is always line 1 of
/// the text parsed, which would read as line 1 of the job file).
fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let at = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&at) {
        Some(m) => format!("{m} (column {})", e.column()),
        None => text,
    }
}

/// One ControlNet condition of a [`Job`]: which ControlNet, and exactly one
/// of `pose`, `scribble`, `edges`, `layout`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct JobControl {
    /// Which ControlNet of the pipeline, by the order they were added
    /// ([`Control::net`]; the `optedit batch` command's `--controlnet`
    /// order). Default 0.
    #[serde(default)]
    pub net: usize,
    /// An OpenPose JSON file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pose: Option<PathBuf>,
    /// A scribble drawing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scribble: Option<PathBuf>,
    /// `auto` (the Canny edges of the input) or an edge-map image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edges: Option<String>,
    /// A layout / segmentation map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<PathBuf>,
    /// Conditioning scale (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// Low Canny threshold of `edges: auto` (default
    /// [`conditions::CANNY_LOW`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canny_low: Option<f64>,
    /// High Canny threshold of `edges: auto` (default
    /// [`conditions::CANNY_HIGH`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canny_high: Option<f64>,
}

impl JobControl {
    /// Its condition, files resolved against `base`; `field` names it in
    /// errors (`controls[1]`).
    fn condition(&self, base: &Path, field: &str) -> Result<Condition, LineError> {
        let mut given = Vec::new();
        if let Some(p) = &self.pose {
            given.push(("pose", Condition::Pose(base.join(p))));
        }
        if let Some(p) = &self.scribble {
            given.push(("scribble", Condition::Scribble(base.join(p))));
        }
        if let Some(e) = &self.edges {
            let c = if e == "auto" {
                Condition::EdgesAuto
            } else {
                Condition::Edges(base.join(e))
            };
            given.push(("edges", c));
        }
        if let Some(p) = &self.layout {
            given.push(("layout", Condition::Layout(base.join(p))));
        }
        match given.len() {
            1 => Ok(given.pop().expect("one").1),
            0 => Err(LineError::Field {
                field: field.into(),
                message: "no condition: give one of pose, scribble, edges, layout".into(),
            }),
            _ => Err(LineError::Field {
                field: field.into(),
                message: format!(
                    "{} conditions ({}); give one per control",
                    given.len(),
                    given.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                ),
            }),
        }
    }
}

/// Settings of one [`Job`] that override the runner's [`Options`]: each
/// one given replaces the field of [`crate::EditConfig`] or [`Options`] it
/// names (the names are the `optedit edit` flags': `steps` is
/// `--steps`, [`crate::EditConfig::num_steps`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct JobOptions {
    /// [`crate::EditConfig::lambda`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda: Option<f64>,
    /// [`crate::EditConfig::num_steps`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    /// [`crate::EditConfig::strength`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strength: Option<f64>,
    /// [`crate::EditConfig::t_u`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t_u: Option<usize>,
    /// [`crate::EditConfig::k`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// [`crate::EditConfig::k_late`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k_late: Option<usize>,
    /// [`crate::EditConfig::k_late_outside_mask`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k_late_outside_mask: Option<bool>,
    /// [`crate::EditConfig::lr`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// [`crate::EditConfig::optimizer`], by its word
    /// ([`OptimizerKind::word`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "word::de",
        serialize_with = "word::ser"
    )]
    pub optimizer: Option<OptimizerKind>,
    /// [`crate::EditConfig::loss_space`], by its word
    /// ([`LossSpace::word`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "word::de",
        serialize_with = "word::ser"
    )]
    pub loss_space: Option<LossSpace>,
    /// [`crate::EditConfig::guidance_scale`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guidance: Option<f64>,
    /// [`crate::EditConfig::inversion_guidance_scale`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inversion_guidance: Option<f64>,
    /// [`crate::EditConfig::seed`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// [`crate::EditConfig::paste_back`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paste_back: Option<bool>,
    /// [`Options::max_side`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u32>,
    /// [`crate::MaskOptions::dilate`] of [`Options::mask_options`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_dilate: Option<usize>,
    /// [`crate::MaskOptions::blur`] of [`Options::mask_options`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_blur: Option<usize>,
}

impl JobOptions {
    /// Whether it overrides nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// `base` with the settings given here replaced.
    pub fn apply(&self, base: &Options) -> Options {
        let mut o = base.clone();
        let c = &mut o.config;
        macro_rules! set {
            ($($from:ident => $to:expr),* $(,)?) => {
                $(if let Some(v) = self.$from { $to = v; })*
            };
        }
        set!(
            lambda => c.lambda,
            steps => c.num_steps,
            strength => c.strength,
            t_u => c.t_u,
            k => c.k,
            k_late => c.k_late,
            k_late_outside_mask => c.k_late_outside_mask,
            lr => c.lr,
            optimizer => c.optimizer,
            loss_space => c.loss_space,
            guidance => c.guidance_scale,
            inversion_guidance => c.inversion_guidance_scale,
            seed => c.seed,
            paste_back => c.paste_back,
            mask_dilate => o.mask_options.dilate,
            mask_blur => o.mask_options.blur,
        );
        if let Some(n) = self.max_size {
            o.max_side = Some(n);
        }
        o
    }
}

/// Serde of the enums named by a word (`Method`, `OptimizerKind`,
/// `LossSpace`), through their own `word` and `from_word`.
mod word {
    use super::*;

    /// An enum with a word for each value.
    pub trait Word: Sized + Copy + 'static {
        /// What the error calls it.
        const WHAT: &'static str;
        /// Every value.
        fn all() -> &'static [Self];
        /// Its word.
        fn word(self) -> &'static str;
        /// The value of a word.
        fn from_word(word: &str) -> Option<Self>;
    }

    macro_rules! word {
        ($t:ty, $what:literal) => {
            impl Word for $t {
                const WHAT: &'static str = $what;
                fn all() -> &'static [Self] {
                    &<$t>::ALL
                }
                fn word(self) -> &'static str {
                    <$t>::word(self)
                }
                fn from_word(word: &str) -> Option<Self> {
                    <$t>::from_word(word)
                }
            }
        };
    }
    word!(Method, "method");
    word!(OptimizerKind, "optimizer");
    word!(LossSpace, "loss space");

    pub fn de<'de, D: Deserializer<'de>, T: Word>(d: D) -> Result<Option<T>, D::Error> {
        let Some(w) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        T::from_word(&w).map(Some).ok_or_else(|| {
            let words: Vec<&str> = T::all().iter().map(|v| v.word()).collect();
            serde::de::Error::custom(format!(
                "unknown {} `{w}`: expected one of {}",
                T::WHAT,
                words.join(", ")
            ))
        })
    }

    pub fn ser<S: Serializer, T: Word>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(v.word()),
            None => s.serialize_none(),
        }
    }
}

/// Why one line of a job file could not be edited: the text of
/// [`Record::error`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// The line is not a JSON object (or not UTF-8).
    #[error("not a job line: {message}")]
    Parse {
        /// What is wrong (serde's message, with the column).
        message: String,
    },
    /// A field is unknown, of the wrong type or out of its range.
    #[error("{field}: {message}")]
    Field {
        /// The field (`options.steps`, `controls[0]`, `output`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// An input (the image, the mask, a condition) could not be read or
    /// built.
    #[error("{field}: {source}")]
    Input {
        /// The field naming the input.
        field: String,
        /// Why.
        #[source]
        source: Error,
    },
    /// The edit failed.
    #[error("edit: {0}")]
    Edit(#[source] Error),
    /// The output could not be written (no partial file is left).
    #[error("output: {0}")]
    Write(#[source] Error),
}

/// Why a job file could not be run, or its records not be merged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The job file could not be read.
    #[error("cannot read job file {}: {source}", path.display())]
    ReadJobs {
        /// The job file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A shard is not `i/n` with `i < n`.
    #[error("shard `{spec}`: {message}")]
    Shard {
        /// The shard as given.
        spec: String,
        /// What is wrong.
        message: String,
    },
    /// The output folder could not be made.
    #[error("cannot make output folder {}: {source}", path.display())]
    OutDir {
        /// The folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The output folder already holds records of this shard and the run
    /// does not resume.
    #[error("{} holds the records of an earlier run; resume it, or choose another output folder", path.display())]
    RecordsExist {
        /// The records file.
        path: PathBuf,
    },
    /// A records file could not be read.
    #[error("cannot read records {}: {source}", path.display())]
    ReadRecords {
        /// The records file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A records file could not be written.
    #[error("cannot write records {}: {source}", path.display())]
    WriteRecords {
        /// The records file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A line of a records file is not a [`Record`] (a shard that was
    /// stopped while writing it has not finished).
    #[error("{}, line {line}: not a record: {message}", path.display())]
    BadRecord {
        /// The records file.
        path: PathBuf,
        /// The line, counted from 1.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Records do not cover the job file exactly once.
    #[error("the records do not cover {} exactly once: {coverage}", jobs.display())]
    Coverage {
        /// The job file.
        jobs: PathBuf,
        /// What is missing, repeated or foreign.
        coverage: Coverage,
    },
}

/// How records fail to cover a job file exactly once ([`merge`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Coverage {
    /// Job lines no record covers.
    pub missing: Vec<usize>,
    /// Job lines recorded more than once, with the file of each record.
    pub duplicated: Vec<(usize, Vec<PathBuf>)>,
    /// Records of lines that are no job of the file (past its end, or
    /// blank), by records file.
    pub unknown: Vec<(PathBuf, usize)>,
    /// Records of a line whose text has changed since (another job file,
    /// or an edited one), by records file.
    pub changed: Vec<(PathBuf, usize)>,
}

impl Coverage {
    /// Whether the records cover the job file exactly once.
    pub fn is_exact(&self) -> bool {
        self.missing.is_empty()
            && self.duplicated.is_empty()
            && self.unknown.is_empty()
            && self.changed.is_empty()
    }
}

/// At most this many items of each kind in a message.
const SHOWN: usize = 10;

fn listed<T>(items: &[T], show: impl Fn(&T) -> String) -> String {
    let mut parts: Vec<String> = items.iter().take(SHOWN).map(show).collect();
    if items.len() > SHOWN {
        parts.push(format!("and {} more", items.len() - SHOWN));
    }
    parts.join(", ")
}

impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!(
                "{} line(s) missing: {}",
                self.missing.len(),
                listed(&self.missing, usize::to_string)
            ));
        }
        if !self.duplicated.is_empty() {
            parts.push(format!(
                "{} line(s) recorded more than once: {}",
                self.duplicated.len(),
                listed(&self.duplicated, |(line, files)| format!(
                    "{line} ({})",
                    files
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            ));
        }
        if !self.unknown.is_empty() {
            parts.push(format!(
                "{} record(s) of no job line: {}",
                self.unknown.len(),
                listed(&self.unknown, |(file, line)| format!(
                    "line {line} in {}",
                    file.display()
                ))
            ));
        }
        if !self.changed.is_empty() {
            parts.push(format!(
                "{} record(s) of a line that has changed since: {}",
                self.changed.len(),
                listed(&self.changed, |(file, line)| format!(
                    "line {line} in {}",
                    file.display()
                ))
            ));
        }
        if parts.is_empty() {
            f.write_str("exact")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

/// One job line as read: its text's hash and the job (or why it is none).
#[derive(Debug)]
struct Line {
    hash: String,
    job: Result<(Job, PathBuf), LineError>,
}

/// A job file, read and parsed line by line: bad lines are kept, with why,
/// to be recorded as errors when they run.
#[derive(Debug)]
pub struct Batch {
    path: PathBuf,
    base: PathBuf,
    lines: BTreeMap<usize, Line>,
}

/// The hash of a job line's text (64-bit FNV-1a, hex): a record names the
/// text it was made from, so that a changed line is run again.
fn line_hash(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// `output`, checked: relative, no `..`, an image extension.
fn check_output(output: &Path) -> Result<PathBuf, String> {
    let normal = output
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !normal || output.file_name().is_none() {
        return Err(format!(
            "{}: must be a file name relative to the output folder, with no `..`",
            output.display()
        ));
    }
    Format::of(output).map_err(|e| e.to_string())?;
    Ok(output.components().collect())
}

impl Batch {
    /// Reads and parses the job file at `path`.
    ///
    /// # Errors
    /// [`BatchError::ReadJobs`] when the file cannot be read; bad lines are
    /// no error here (see [`Batch::job`]).
    pub fn read(path: impl AsRef<Path>) -> Result<Self, BatchError> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|source| BatchError::ReadJobs {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::parse(path, &bytes))
    }

    /// Parses `bytes` as the job file at `path` (whose folder relative
    /// input paths are taken from).
    pub fn parse(path: impl AsRef<Path>, bytes: &[u8]) -> Self {
        let path = path.as_ref().to_path_buf();
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut lines = BTreeMap::new();
        let mut outputs: HashMap<PathBuf, usize> = HashMap::new();
        for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let text = match std::str::from_utf8(raw) {
                Ok(t) => t.trim(),
                Err(e) => {
                    let line = Line {
                        hash: line_hash(&String::from_utf8_lossy(raw)),
                        job: Err(LineError::Parse {
                            message: format!("not UTF-8: {e}"),
                        }),
                    };
                    lines.insert(index, line);
                    continue;
                }
            };
            if text.is_empty() {
                continue;
            }
            let job = Job::parse(text).and_then(|job| {
                let output = match &job.output {
                    Some(o) => check_output(o).map_err(|message| LineError::Field {
                        field: "output".into(),
                        message,
                    })?,
                    None => PathBuf::from(format!("{index}.png")),
                };
                if let Some(first) = outputs.get(&output) {
                    return Err(LineError::Field {
                        field: "output".into(),
                        message: format!("{} is line {first}'s output already", output.display()),
                    });
                }
                outputs.insert(output.clone(), index);
                Ok((job, output))
            });
            lines.insert(
                index,
                Line {
                    hash: line_hash(text),
                    job,
                },
            );
        }
        Self { path, base, lines }
    }

    /// The job file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder relative input paths are taken from (the job file's).
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The numbers of the job lines (blank lines are none), in order.
    pub fn lines(&self) -> impl Iterator<Item = usize> + '_ {
        self.lines.keys().copied()
    }

    /// How many job lines there are.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether there is no job line.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The job of line `line` and its output (relative to the output
    /// folder), or why the line is no job; `None` for a blank line or one
    /// past the end.
    pub fn job(&self, line: usize) -> Option<Result<(&Job, &Path), &LineError>> {
        let l = self.lines.get(&line)?;
        Some(match &l.job {
            Ok((job, output)) => Ok((job, output.as_path())),
            Err(e) => Err(e),
        })
    }

    /// The hash of line `line`'s text ([`Record::job_hash`]).
    pub fn line_hash(&self, line: usize) -> Option<&str> {
        self.lines.get(&line).map(|l| l.hash.as_str())
    }
}

// -------------------------------------------------------------- shards ---

/// Shard `index/count` of a job file: the lines `l` with `l % count ==
/// index`. [`Shard::ALL`] (`0/1`) is every line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: usize,
    count: usize,
}

impl Default for Shard {
    fn default() -> Self {
        Self::ALL
    }
}

impl Shard {
    /// Every line.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`.
    ///
    /// # Errors
    /// [`BatchError::Shard`] unless `index < count`.
    pub fn new(index: usize, count: usize) -> Result<Self, BatchError> {
        if count == 0 || index >= count {
            return Err(BatchError::Shard {
                spec: format!("{index}/{count}"),
                message: "the index must be below the count (0/2 and 1/2 split a file in two)"
                    .into(),
            });
        }
        Ok(Self { index, count })
    }

    /// Its index, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many shards there are.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Whether it takes line `line`.
    pub fn takes(&self, line: usize) -> bool {
        line % self.count == self.index
    }

    /// The name of its records file in the output folder: `records.jsonl`
    /// for [`Shard::ALL`], `records-<i>-of-<n>.jsonl` for the others.
    pub fn records_name(&self) -> String {
        if self.count == 1 {
            "records.jsonl".into()
        } else {
            format!("records-{}-of-{}.jsonl", self.index, self.count)
        }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = BatchError;

    /// Parses `i/n`.
    fn from_str(s: &str) -> Result<Self, BatchError> {
        let bad = |message: &str| BatchError::Shard {
            spec: s.into(),
            message: message.into(),
        };
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| bad("expected INDEX/COUNT, e.g. 0/4"))?;
        let i = i
            .trim()
            .parse()
            .map_err(|_| bad("the index is not a whole number"))?;
        let n = n
            .trim()
            .parse()
            .map_err(|_| bad("the count is not a whole number"))?;
        Shard::new(i, n)
            .map_err(|_| bad("the index must be below the count, which must be 1 or more"))
    }
}

// ------------------------------------------------------------- records ---

/// Whether a line was edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Status {
    /// Edited; the output is written.
    Ok,
    /// Not edited; [`Record::error`] says why.
    Error,
}

/// The wall time of one part of a line's edit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Timing {
    /// `read` (the inputs and conditions), an edit stage
    /// ([`crate::Stage`]: `invert`, `optimise`, ...) or `write`.
    pub stage: String,
    /// Seconds.
    pub seconds: f64,
}

/// What became of one line: one line of a records file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Record {
    /// The job line, counted from 0.
    pub line: usize,
    /// The hash of the line's text ([`Batch::line_hash`]).
    pub job_hash: String,
    /// Whether it was edited.
    pub status: Status,
    /// The output, relative to the output folder (when edited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<PathBuf>,
    /// Why it was not edited ([`LineError`]'s text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The line's wall time in seconds.
    pub seconds: f64,
    /// The time of each part.
    #[serde(default)]
    pub timings: Vec<Timing>,
}

impl Record {
    /// Whether `other` records the same result (line, text, status,
    /// output, error), whatever the times.
    pub fn same_result(&self, other: &Record) -> bool {
        (
            self.line,
            &self.job_hash,
            self.status,
            &self.output,
            &self.error,
        ) == (
            other.line,
            &other.job_hash,
            other.status,
            &other.output,
            &other.error,
        )
    }

    fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).expect("a record serialises");
        s.push('\n');
        s
    }
}

/// Reads a records file.
///
/// # Errors
/// [`BatchError::ReadRecords`], or [`BatchError::BadRecord`] naming the
/// first line that is not a record.
pub fn read_records(path: impl AsRef<Path>) -> Result<Vec<Record>, BatchError> {
    let path = path.as_ref();
    let text = fs::read_to_string(path).map_err(|source| BatchError::ReadRecords {
        path: path.to_path_buf(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| BatchError::BadRecord {
                path: path.to_path_buf(),
                line: i + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

/// Writes `records` to `path`, one per line, atomically.
///
/// # Errors
/// [`BatchError::WriteRecords`].
pub fn write_records(path: impl AsRef<Path>, records: &[Record]) -> Result<(), BatchError> {
    let path = path.as_ref();
    let text: String = records.iter().map(Record::to_line).collect();
    optedit_cond::file::write_atomic(path, text.as_bytes()).map_err(|source| {
        BatchError::WriteRecords {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Checks that the records files `records` (of the shards of `batch`'s
/// runs) together cover its job lines exactly once, each with the line's
/// current text; returns their records in line order.
///
/// # Errors
/// [`BatchError::Coverage`] naming the lines missing, recorded more than
/// once, foreign or changed; a records file that cannot be read or has a
/// line that is not a record.
pub fn merge<P: AsRef<Path>>(batch: &Batch, records: &[P]) -> Result<Vec<Record>, BatchError> {
    let mut by_line: BTreeMap<usize, Vec<(PathBuf, Record)>> = BTreeMap::new();
    let mut coverage = Coverage::default();
    for file in records {
        let file = file.as_ref();
        for record in read_records(file)? {
            match batch.line_hash(record.line) {
                None => coverage.unknown.push((file.to_path_buf(), record.line)),
                Some(h) if h != record.job_hash => {
                    coverage.changed.push((file.to_path_buf(), record.line))
                }
                Some(_) => by_line
                    .entry(record.line)
                    .or_default()
                    .push((file.to_path_buf(), record)),
            }
        }
    }
    for line in batch.lines() {
        match by_line.get(&line).map(Vec::len) {
            None => coverage.missing.push(line),
            Some(1) => {}
            Some(_) => coverage.duplicated.push((
                line,
                by_line[&line].iter().map(|(f, _)| f.clone()).collect(),
            )),
        }
    }
    if !coverage.is_exact() {
        return Err(BatchError::Coverage {
            jobs: batch.path().to_path_buf(),
            coverage,
        });
    }
    Ok(by_line
        .into_values()
        .flat_map(|v| v.into_iter().map(|(_, r)| r))
        .collect())
}

// -------------------------------------------------------------- running ---

/// Receives a batch's progress: the lines (with default methods that do
/// nothing) and, as a [`Progress`], every step of each line's edit.
/// [`Silent`] ignores everything.
pub trait BatchProgress: Progress {
    /// The run starts with `plan`.
    fn start(&mut self, plan: &Plan) {
        let _ = plan;
    }

    /// Line `line` starts.
    fn line(&mut self, line: usize) {
        let _ = line;
    }

    /// Line `record.line` is done and recorded; `Break` stops the run
    /// here (a later resumed run does the rest).
    fn record(&mut self, record: &Record) -> ControlFlow<()> {
        let _ = record;
        ControlFlow::Continue(())
    }
}

impl BatchProgress for Silent {}

/// What a run will do: the lines to edit and the records already done.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Plan {
    /// The shard's records file.
    pub records: PathBuf,
    /// The lines of the shard to edit, in order.
    pub todo: Vec<usize>,
    /// The records of lines done by earlier runs (resuming), kept.
    pub done: Vec<Record>,
    /// Earlier records dropped on resuming: errors, lines whose output is
    /// gone or whose text has changed, repeats and torn lines (a run
    /// stopped while writing one).
    pub dropped: usize,
}

impl Plan {
    /// Makes the output folder `out` and decides what a run of `shard`
    /// into it does: every line of the shard, or (`resume`) those not
    /// recorded as done, the records file rewritten with only the records
    /// kept. Cheap (no model is needed): the `optedit` command plans
    /// before it loads the models.
    ///
    /// # Errors
    /// The folder cannot be made; it holds records of this shard and the
    /// runner does not resume; the records cannot be read or written.
    pub fn make(batch: &Batch, out: &Path, shard: Shard, resume: bool) -> Result<Plan, BatchError> {
        fs::create_dir_all(out).map_err(|source| BatchError::OutDir {
            path: out.to_path_buf(),
            source,
        })?;
        let records = out.join(shard.records_name());
        let shard_lines = batch.lines().filter(|&l| shard.takes(l));
        let existing = match fs::read(&records) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(BatchError::ReadRecords {
                    path: records,
                    source,
                })
            }
        };
        if !resume {
            if !existing.is_empty() {
                return Err(BatchError::RecordsExist { path: records });
            }
            write_records(&records, &[])?;
            return Ok(Plan {
                records,
                todo: shard_lines.collect(),
                done: Vec::new(),
                dropped: 0,
            });
        }
        let mut done = Vec::new();
        let mut seen = HashSet::new();
        let mut dropped = 0;
        for raw in existing.split(|&b| b == b'\n') {
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let keep = serde_json::from_slice::<Record>(raw).ok().filter(|r| {
                r.status == Status::Ok
                    && shard.takes(r.line)
                    && batch.line_hash(r.line) == Some(r.job_hash.as_str())
                    && r.output.as_ref().is_some_and(|o| out.join(o).is_file())
                    && !seen.contains(&r.line)
            });
            match keep {
                Some(r) => {
                    seen.insert(r.line);
                    done.push(r);
                }
                None => dropped += 1,
            }
        }
        if dropped > 0 || existing.last().is_some_and(|&b| b != b'\n') {
            write_records(&records, &done)?;
        }
        Ok(Plan {
            records,
            todo: shard_lines.filter(|l| !seen.contains(l)).collect(),
            done,
            dropped,
        })
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// The shard's records file.
    pub records: PathBuf,
    /// Lines done by earlier runs, skipped.
    pub skipped: usize,
    /// Lines edited now.
    pub ok: usize,
    /// Lines that failed now (recorded as errors).
    pub failed: usize,
    /// Lines of the shard left undone (the run was stopped or limited).
    pub left: usize,
}

/// Runs a job file's lines with one loaded [`Pipeline`] (see the
/// [module docs](self)).
#[derive(Debug)]
pub struct Runner<'p, B: AutodiffBackend> {
    pipeline: &'p Pipeline<B>,
    out: PathBuf,
    shard: Shard,
    resume: bool,
    options: Options,
    limit: Option<usize>,
}

/// Passes events on to `inner`, noting whether it asked to stop.
struct Watch<'a> {
    inner: &'a mut dyn Progress,
    stopped: bool,
}

impl Progress for Watch<'_> {
    fn report(&mut self, event: &ProgressEvent) -> ControlFlow<()> {
        let flow = self.inner.report(event);
        self.stopped |= flow.is_break();
        flow
    }
}

/// The absolute, symlink-free form of `path`, which need not exist yet
/// (its folder must).
fn canonical_target(path: &Path) -> Option<PathBuf> {
    fs::canonicalize(path).ok().or_else(|| {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        Some(fs::canonicalize(parent).ok()?.join(path.file_name()?))
    })
}

/// Every existing input file of a batch's jobs (canonical), with the first
/// line that reads it: no output may be written over one.
fn input_files(batch: &Batch) -> HashMap<PathBuf, usize> {
    let mut files = HashMap::new();
    for line in batch.lines() {
        if let Some(Ok((job, _))) = batch.job(line) {
            for input in job.inputs(batch.base()) {
                if let Ok(c) = fs::canonicalize(&input) {
                    files.entry(c).or_insert(line);
                }
            }
        }
    }
    files
}

impl<'p, B: AutodiffBackend> Runner<'p, B> {
    /// A runner of every line into the folder `out` (made if missing), with
    /// [`Options::default`], not resuming.
    pub fn new(pipeline: &'p Pipeline<B>, out: impl Into<PathBuf>) -> Self {
        Self {
            pipeline,
            out: out.into(),
            shard: Shard::ALL,
            resume: false,
            options: Options::default(),
            limit: None,
        }
    }

    /// Runs only `shard`'s lines.
    pub fn with_shard(mut self, shard: Shard) -> Self {
        self.shard = shard;
        self
    }

    /// Continues the shard's records in the output folder: lines done are
    /// skipped.
    pub fn with_resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    /// The options of every line, before its own ([`JobOptions`],
    /// [`Job::method`]).
    pub fn with_options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Edits at most `limit` lines in this run (`None`: all).
    pub fn with_limit(mut self, limit: Option<usize>) -> Self {
        self.limit = limit;
        self
    }

    /// The output folder.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// The shard's records file.
    pub fn records_path(&self) -> PathBuf {
        self.out.join(self.shard.records_name())
    }

    /// What [`Runner::run`] will do ([`Plan::make`] with this runner's
    /// folder, shard and resume setting).
    ///
    /// # Errors
    /// As [`Plan::make`].
    pub fn plan(&self, batch: &Batch) -> Result<Plan, BatchError> {
        Plan::make(batch, &self.out, self.shard, self.resume)
    }

    /// Runs the shard's lines (see the [module docs](self)), each recorded
    /// as it ends.
    ///
    /// # Errors
    /// What [`Runner::plan`] refuses, or records that cannot be written;
    /// a failing line is no error (it is recorded).
    pub fn run(
        &self,
        batch: &Batch,
        progress: &mut dyn BatchProgress,
    ) -> Result<Summary, BatchError> {
        let plan = self.plan(batch)?;
        self.run_plan(batch, plan, progress)
    }

    /// Runs `plan`, made by [`Runner::plan`] (or by [`Plan::make`] with
    /// this runner's folder and shard): [`Runner::run`] once planned.
    ///
    /// # Errors
    /// Records that cannot be written; a failing line is no error (it is
    /// recorded).
    pub fn run_plan(
        &self,
        batch: &Batch,
        plan: Plan,
        progress: &mut dyn BatchProgress,
    ) -> Result<Summary, BatchError> {
        progress.start(&plan);
        let write_err = |source| BatchError::WriteRecords {
            path: plan.records.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&plan.records)
            .map_err(write_err)?;
        let mut summary = Summary {
            records: plan.records.clone(),
            skipped: plan.done.len(),
            ok: 0,
            failed: 0,
            left: plan.todo.len(),
        };
        let inputs = input_files(batch);
        let budget = self.limit.unwrap_or(usize::MAX);
        for &line in plan.todo.iter().take(budget) {
            progress.line(line);
            let mut watch = Watch {
                inner: &mut *progress,
                stopped: false,
            };
            let record = self.record_line(batch, line, &inputs, &mut watch);
            if watch.stopped {
                break;
            }
            file.write_all(record.to_line().as_bytes())
                .and_then(|()| file.sync_data())
                .map_err(write_err)?;
            summary.left -= 1;
            match record.status {
                Status::Ok => summary.ok += 1,
                Status::Error => summary.failed += 1,
            }
            if progress.record(&record).is_break() {
                break;
            }
        }
        Ok(summary)
    }

    /// Edits line `line` of `batch` and writes its output (never over an
    /// input of any line); the record says how it went (nothing is appended
    /// to the records file).
    pub fn run_line(&self, batch: &Batch, line: usize, progress: &mut dyn Progress) -> Record {
        self.record_line(batch, line, &input_files(batch), progress)
    }

    /// [`Runner::run_line`] with the batch's input files known.
    fn record_line(
        &self,
        batch: &Batch,
        line: usize,
        inputs: &HashMap<PathBuf, usize>,
        progress: &mut dyn Progress,
    ) -> Record {
        let start = Instant::now();
        let mut timings = Vec::new();
        let result = self.edit_line(batch, line, inputs, progress, &mut timings);
        let (status, output, error) = match result {
            Ok(output) => (Status::Ok, Some(output), None),
            Err(e) => (Status::Error, None, Some(e.to_string())),
        };
        Record {
            line,
            job_hash: batch.line_hash(line).unwrap_or_default().into(),
            status,
            output,
            error,
            seconds: start.elapsed().as_secs_f64(),
            timings: timings
                .into_iter()
                .map(|(stage, d): (String, Duration)| Timing {
                    stage,
                    seconds: d.as_secs_f64(),
                })
                .collect(),
        }
    }

    fn edit_line(
        &self,
        batch: &Batch,
        line: usize,
        inputs: &HashMap<PathBuf, usize>,
        progress: &mut dyn Progress,
        timings: &mut Vec<(String, Duration)>,
    ) -> Result<PathBuf, LineError> {
        let (job, output) = match batch.job(line) {
            Some(Ok(j)) => j,
            Some(Err(e)) => return Err(clone_line_error(e)),
            None => {
                return Err(LineError::Parse {
                    message: format!("line {line} is no job of {}", batch.path().display()),
                })
            }
        };
        let target = self.out.join(output);
        if let Some(first) = canonical_target(&target).and_then(|t| inputs.get(&t)) {
            return Err(LineError::Field {
                field: "output".into(),
                message: format!(
                    "{} is an input (of line {first}); refusing to overwrite an input",
                    target.display()
                ),
            });
        }
        let clock = Instant::now();
        let base = batch.base();
        let mut options = job.options.apply(&self.options);
        if let Some(m) = job.method {
            options.method = m;
        }
        let image_path = base.join(&job.image);
        let image = images::read(&image_path).map_err(|source| LineError::Input {
            field: "image".into(),
            source,
        })?;
        let mask = job.mask_choice(base)?;
        let fit = self
            .pipeline
            .fit(image.width(), image.height(), &options)
            .map_err(|source| LineError::Input {
                field: "image".into(),
                source,
            })?;
        let mut controls = Vec::new();
        for (i, c) in job.controls.iter().enumerate() {
            let field = format!("controls[{i}]");
            let condition = c.condition(base, &field)?;
            let input = |source| LineError::Input {
                field: format!("{field}.{}", condition.kind()),
                source,
            };
            let source = conditions::read_source(&condition, (image.width(), image.height()))
                .map_err(input)?;
            let canny = (
                c.canny_low.unwrap_or(conditions::CANNY_LOW),
                c.canny_high.unwrap_or(conditions::CANNY_HIGH),
            );
            let made = conditions::condition_image(&source, &condition, &image, &fit, canny)
                .map_err(input)?;
            controls.push(Control {
                net: c.net,
                image: made.image().clone(),
                scale: c.scale.unwrap_or(1.0),
            });
        }
        timings.push(("read".into(), clock.elapsed()));

        let instruction = Instruction {
            source_prompt: job.source_prompt.clone(),
            prompt: job.prompt.clone(),
            negative_prompt: job.negative_prompt.clone(),
            controls,
            mask,
        };
        let edited = self
            .pipeline
            .edit(&image, &instruction, &options, progress)
            .map_err(LineError::Edit)?;
        timings.extend(edited.timings.iter().map(|(s, d)| (s.to_string(), *d)));

        let clock = Instant::now();
        if let Some(dir) = target.parent() {
            fs::create_dir_all(dir).map_err(|source| {
                LineError::Write(Error::Write {
                    path: target.clone(),
                    source,
                })
            })?;
        }
        images::write(&target, &DynamicImage::ImageRgb8(edited.image)).map_err(LineError::Write)?;
        timings.push(("write".into(), clock.elapsed()));
        Ok(output.to_path_buf())
    }
}

/// A line's stored parse error, again (the stored one stays with the
/// batch).
fn clone_line_error(e: &LineError) -> LineError {
    match e {
        LineError::Field { field, message } => LineError::Field {
            field: field.clone(),
            message: message.clone(),
        },
        LineError::Parse { message } => LineError::Parse {
            message: message.clone(),
        },
        // Not stored: a batch keeps parse and field errors only.
        other => LineError::Parse {
            message: other.to_string(),
        },
    }
}
