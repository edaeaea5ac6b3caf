//! Job files: [`Job`] (one line), its [`JobControl`]s and [`JobOptions`],
//! and [`Batch`], a job file read and parsed line by line.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{BatchError, LineError};
use crate::conditions::Condition;
use crate::images::{self, Format};
use crate::{MaskChoice, Method, OptimizerKind, Options};
use optedit_edit::{GuidanceGradient, LossSpace};

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
    /// What the edited image should show ([`Instruction::prompt`](crate::Instruction::prompt)).
    pub prompt: String,
    /// What the image shows now ([`Instruction::source_prompt`](crate::Instruction::source_prompt); default
    /// empty).
    #[serde(default)]
    pub source_prompt: String,
    /// The negative prompt ([`Instruction::negative_prompt`](crate::Instruction::negative_prompt)).
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
    #[serde(default, skip_serializing_if = "Option::is_none", with = "word")]
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
    pub(super) fn mask_choice(&self, base: &Path) -> Result<MaskChoice, LineError> {
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
    /// ([`Control::net`](crate::Control::net); the `optedit batch` command's `--controlnet`
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
    /// [`crate::conditions::CANNY_LOW`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canny_low: Option<f64>,
    /// High Canny threshold of `edges: auto` (default
    /// [`crate::conditions::CANNY_HIGH`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canny_high: Option<f64>,
}

impl JobControl {
    /// Its condition, files resolved against `base`; `field` names it in
    /// errors (`controls[1]`).
    pub(super) fn condition(&self, base: &Path, field: &str) -> Result<Condition, LineError> {
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
    #[serde(default, skip_serializing_if = "Option::is_none", with = "word")]
    pub optimizer: Option<OptimizerKind>,
    /// [`crate::EditConfig::loss_space`], by its word
    /// ([`LossSpace::word`]).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "word")]
    pub loss_space: Option<LossSpace>,
    /// [`crate::EditConfig::preservation_inside`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preservation_inside: Option<f64>,
    /// [`crate::EditConfig::guidance_gradient`], by its word
    /// ([`GuidanceGradient::word`]).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "word")]
    pub guidance_gradient: Option<GuidanceGradient>,
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
            preservation_inside => c.preservation_inside,
            guidance_gradient => c.guidance_gradient,
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

/// Serde of the enums named by a word ([`optedit_edit::Worded`]: `Method`,
/// `OptimizerKind`, `LossSpace`, `GuidanceGradient`), through their own
/// `word` and `from_word`.
mod word {
    use super::*;
    use optedit_edit::Worded;

    pub fn deserialize<'de, D: Deserializer<'de>, T: Worded>(d: D) -> Result<Option<T>, D::Error> {
        let Some(w) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        T::from_word(&w).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown {} `{w}`: expected one of {}",
                T::WHAT,
                T::words()
            ))
        })
    }

    pub fn serialize<S: Serializer, T: Worded>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(v.word()),
            None => s.serialize_none(),
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

    /// The hash of line `line`'s text ([`Record::job_hash`](super::Record::job_hash)).
    pub fn line_hash(&self, line: usize) -> Option<&str> {
        self.lines.get(&line).map(|l| l.hash.as_str())
    }
}
