//! Edit cases: the JSONL case-file format, its parser (every error names the
//! line and the field) and its writer.
//!
//! One case a line:
//!
//! ```text
//! {"id":"text-0001","seed":9223372036854775931,"objects":2,
//!  "edit":{"object":0,"colour":"blue"},"controls":[],"mask":"true"}
//! ```
//!
//! | field | meaning |
//! |---|---|
//! | `id` | unique name: letters, digits, `.`, `_`, `+`, `-` |
//! | `seed` | world seed (a number, or a string of digits for JSON readers without 64-bit integers); the source scene is `SceneSpec::sample_with(seed, objects)` |
//! | `objects` | optional object count `1..=3` (absent: `SceneSpec::sample(seed)`) |
//! | `edit` | `object` (index into the scene's objects) with `colour` and/or `shape`, and/or `pose` (a pose phrase such as `"waving"` or `"with raised arms"`, or its snake-case name `"arms_up"`) |
//! | `controls` | ControlNets to condition on, each built from the *target* scene unless said: `"pose"` (OpenPose rendering of its keypoints, `controlnet-pose/`), `"edges"` (its Canny edges, `controlnet-canny/`), `"scribble"` (its objects' outlines and stick figure, white on black, `controlnet-scribble/`), `"layout"` (its flat-colour map of objects and figure, `controlnet-layout/`), `"canny"` (Canny edges of the *source* image, `controlnet-canny/`); default none |
//! | `mask` | `"true"` (union of the edited things' source and target masks), `"dilate:N"`, `"erode:N"` (of it, N pixels), `"box"` (bounding boxes), `"estimated"` (DiffEdit's estimate), `"full"`; default `"true"` |
//! | `prompt` | optional target prompt (default: the target scene's caption) |
//! | `source_prompt` | optional source prompt (default: the source scene's caption) |
//!
//! The case's kind ([`Case::kind`]) follows from `controls` and `edit`, the
//! first row that fits:
//!
//! | kind | controls | edit |
//! |---|---|---|
//! | `scribble` | include `scribble` | any |
//! | `layout` | include `layout` | any |
//! | `multi` | include `pose` and `edges` | an object's colour or shape, and the pose |
//! | `edges` | include `edges` | any |
//! | `text` | any other | an object's colour and/or shape |
//! | `pose` | any other | the figure's pose |
//! | `text+pose` | any other | both |
//!
//! `eval make-cases` makes `edges`, `scribble` and `layout` cases that change
//! one object's shape, and `multi` cases that change an object's colour or
//! shape and the figure's pose.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use optedit_world::{Colour, PoseClass, SampleOptions, SceneSpec, Shape, MAX_OBJECTS};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{io, EvalError, Result};

/// What a case edits, and with which instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CaseKind {
    /// An object's colour and/or shape (the prompt says it).
    Text,
    /// The figure's pose (with the pose ControlNet).
    Pose,
    /// Both.
    TextPose,
    /// An object's shape, with the Canny edges of the target ([`ControlName::Edges`]).
    Edges,
    /// An object's shape, with a scribble of the target ([`ControlName::Scribble`]).
    Scribble,
    /// An object's shape, with the layout of the target ([`ControlName::Layout`]).
    Layout,
    /// Text + pose + edges: an object and the figure's pose, with the pose
    /// and the edges ControlNets together.
    Multi,
}

impl CaseKind {
    /// Every kind.
    pub const ALL: [CaseKind; 7] = [
        CaseKind::Text,
        CaseKind::Pose,
        CaseKind::TextPose,
        CaseKind::Edges,
        CaseKind::Scribble,
        CaseKind::Layout,
        CaseKind::Multi,
    ];

    /// Its name: `text`, `pose`, `text+pose`, `edges`, `scribble`, `layout`,
    /// `multi`.
    pub fn word(self) -> &'static str {
        match self {
            CaseKind::Text => "text",
            CaseKind::Pose => "pose",
            CaseKind::TextPose => "text+pose",
            CaseKind::Edges => "edges",
            CaseKind::Scribble => "scribble",
            CaseKind::Layout => "layout",
            CaseKind::Multi => "multi",
        }
    }

    /// Parses a name (`field` names the argument in the error).
    pub fn parse(word: &str, field: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.word().eq_ignore_ascii_case(word.trim()))
            .ok_or_else(|| unknown(0, field, "case kind", word, Self::ALL.map(|k| k.word())))
    }

    /// The ControlNets a case of this kind made by `eval make-cases`
    /// conditions on.
    pub fn controls(self) -> &'static [ControlName] {
        match self {
            CaseKind::Text => &[],
            CaseKind::Pose | CaseKind::TextPose => &[ControlName::Pose],
            CaseKind::Edges => &[ControlName::Edges],
            CaseKind::Scribble => &[ControlName::Scribble],
            CaseKind::Layout => &[ControlName::Layout],
            CaseKind::Multi => &[ControlName::Pose, ControlName::Edges],
        }
    }
}

impl fmt::Display for CaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// A ControlNet of the demo pipeline, with the image it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ControlName {
    /// OpenPose skeleton of the target scene's figure (`controlnet-pose/`).
    Pose,
    /// Canny edges of the *source* image (`controlnet-canny/`).
    Canny,
    /// Canny edges of the *target* render (`controlnet-canny/`).
    Edges,
    /// Scribble of the target scene: its objects' outlines and stick figure,
    /// white on black (`controlnet-scribble/`).
    Scribble,
    /// Layout of the target scene: objects and figure as flat label colours
    /// on black (`controlnet-layout/`).
    Layout,
}

impl ControlName {
    /// Every control.
    pub const ALL: [ControlName; 5] = [
        ControlName::Pose,
        ControlName::Canny,
        ControlName::Edges,
        ControlName::Scribble,
        ControlName::Layout,
    ];

    /// Its name in case files: `pose`, `canny`, `edges`, `scribble`, `layout`.
    pub fn word(self) -> &'static str {
        match self {
            ControlName::Pose => "pose",
            ControlName::Canny => "canny",
            ControlName::Edges => "edges",
            ControlName::Scribble => "scribble",
            ControlName::Layout => "layout",
        }
    }

    /// The demo model's ControlNet kind (folder name, condition builder):
    /// `canny` and `edges` share the Canny ControlNet.
    pub fn kind(self) -> optedit_judge::ControlKind {
        use optedit_judge::ControlKind;
        match self {
            ControlName::Pose => ControlKind::Pose,
            ControlName::Canny | ControlName::Edges => ControlKind::Canny,
            ControlName::Scribble => ControlKind::Scribble,
            ControlName::Layout => ControlKind::Layout,
        }
    }

    /// Whether its image is built from the target scene (all but `canny`).
    pub fn from_target(self) -> bool {
        self != ControlName::Canny
    }
}

/// Which edit mask the method is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaskSpec {
    /// The union of the edited things' source and target masks.
    True,
    /// The true mask dilated by this many pixels.
    Dilate(u32),
    /// The true mask eroded by this many pixels.
    Erode(u32),
    /// The bounding box of each edited thing's true mask.
    Box,
    /// DiffEdit's estimated mask (`optedit_edit::EstimatedMask`).
    Estimated,
    /// The whole image.
    Full,
}

/// The accepted mask words (for error messages).
const MASK_WORDS: [&str; 6] = ["true", "dilate:N", "erode:N", "box", "estimated", "full"];

impl MaskSpec {
    /// Parses `true`, `dilate:N`, `erode:N`, `box`, `estimated` or `full`;
    /// `line` and `field` name the place in errors (line 0: an argument).
    pub fn parse(text: &str, line: usize, field: &str) -> Result<Self> {
        let t = text.trim().to_ascii_lowercase();
        let radius = |n: &str| {
            n.trim()
                .parse::<u32>()
                .ok()
                .filter(|&r| r <= 64)
                .ok_or_else(|| {
                    EvalError::case(
                        line,
                        field,
                        format!("{text:?}: the radius must be a whole number of pixels in 0..=64"),
                    )
                })
        };
        Ok(match t.as_str() {
            "true" => MaskSpec::True,
            "box" => MaskSpec::Box,
            "estimated" => MaskSpec::Estimated,
            "full" => MaskSpec::Full,
            _ => match t.split_once(':') {
                Some(("dilate", n)) => MaskSpec::Dilate(radius(n)?),
                Some(("erode", n)) => MaskSpec::Erode(radius(n)?),
                _ => return Err(unknown(line, field, "mask", text, MASK_WORDS)),
            },
        })
    }
}

impl fmt::Display for MaskSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaskSpec::True => f.write_str("true"),
            MaskSpec::Dilate(r) => write!(f, "dilate:{r}"),
            MaskSpec::Erode(r) => write!(f, "erode:{r}"),
            MaskSpec::Box => f.write_str("box"),
            MaskSpec::Estimated => f.write_str("estimated"),
            MaskSpec::Full => f.write_str("full"),
        }
    }
}

/// The instruction of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CaseEdit {
    /// The edited object (with `colour` and/or `shape`).
    pub object: Option<usize>,
    /// Its new colour.
    pub colour: Option<Colour>,
    /// Its new shape.
    pub shape: Option<Shape>,
    /// The figure's new pose.
    pub pose: Option<PoseClass>,
}

/// One edit case.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// Unique name.
    pub id: String,
    /// World seed of the source scene.
    pub seed: u64,
    /// Object count of the source scene (`None`: as `SceneSpec::sample` draws it).
    pub objects: Option<usize>,
    /// What to change.
    pub edit: CaseEdit,
    /// ControlNets to condition on.
    pub controls: Vec<ControlName>,
    /// The mask given to the method.
    pub mask: MaskSpec,
    /// Target prompt (default: the target scene's caption).
    pub prompt: Option<String>,
    /// Source prompt (default: the source scene's caption).
    pub source_prompt: Option<String>,
}

impl Case {
    /// What the case edits and with which instruction, from `edit` and
    /// `controls` (the module's table): `scribble` or `layout` among the
    /// controls make a scribble or layout case; `pose` and `edges` with an
    /// object and a pose edit make a multi-condition case, `edges` otherwise
    /// an edges case; without those the edit decides (text, pose, text+pose).
    pub fn kind(&self) -> CaseKind {
        let has = |c| self.controls.contains(&c);
        let (object, pose) = (self.edit.object.is_some(), self.edit.pose.is_some());
        if has(ControlName::Scribble) {
            CaseKind::Scribble
        } else if has(ControlName::Layout) {
            CaseKind::Layout
        } else if has(ControlName::Edges) {
            if object && pose && has(ControlName::Pose) {
                CaseKind::Multi
            } else {
                CaseKind::Edges
            }
        } else {
            match (object, pose) {
                (true, true) => CaseKind::TextPose,
                (false, true) => CaseKind::Pose,
                _ => CaseKind::Text,
            }
        }
    }

    /// The source scene.
    pub fn source_spec(&self) -> Result<SceneSpec> {
        Ok(SceneSpec::sample_with(
            self.seed,
            &SampleOptions {
                objects: self.objects,
            },
        )?)
    }

    /// The target scene: `source` with the edit applied.
    pub fn target_spec(&self, source: &SceneSpec) -> Result<SceneSpec> {
        let mut spec = source.clone();
        if let Some(i) = self.edit.object {
            if let Some(c) = self.edit.colour {
                spec = spec.with_object_colour(i, c)?;
            }
            if let Some(s) = self.edit.shape {
                spec = spec.with_object_shape(i, s)?;
            }
        }
        if let Some(p) = self.edit.pose {
            spec = spec.with_pose(p);
        }
        Ok(spec)
    }

    /// The case as one JSON line (the format [`parse_cases`] reads).
    pub fn to_json_line(&self) -> String {
        #[derive(Serialize)]
        struct EditOut {
            #[serde(skip_serializing_if = "Option::is_none")]
            object: Option<usize>,
            #[serde(skip_serializing_if = "Option::is_none")]
            colour: Option<&'static str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            shape: Option<&'static str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pose: Option<&'static str>,
        }
        #[derive(Serialize)]
        struct CaseOut<'a> {
            id: &'a str,
            seed: u64,
            #[serde(skip_serializing_if = "Option::is_none")]
            objects: Option<usize>,
            edit: EditOut,
            controls: Vec<&'static str>,
            mask: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            prompt: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            source_prompt: Option<&'a str>,
        }
        let out = CaseOut {
            id: &self.id,
            seed: self.seed,
            objects: self.objects,
            edit: EditOut {
                object: self.edit.object,
                colour: self.edit.colour.map(Colour::word),
                shape: self.edit.shape.map(Shape::word),
                pose: self.edit.pose.map(PoseClass::phrase),
            },
            controls: self.controls.iter().map(|c| c.word()).collect(),
            mask: self.mask.to_string(),
            prompt: self.prompt.as_deref(),
            source_prompt: self.source_prompt.as_deref(),
        };
        serde_json::to_string(&out).expect("a case always serialises")
    }
}

fn unknown<const N: usize>(
    line: usize,
    field: &str,
    kind: &'static str,
    word: &str,
    vocabulary: [&str; N],
) -> EvalError {
    EvalError::UnknownWord {
        line,
        field: field.into(),
        kind,
        word: word.into(),
        vocabulary: vocabulary.iter().map(|w| w.to_string()).collect(),
    }
}

/// Parses a colour word, naming `line` and `field` in the error.
pub fn parse_colour(word: &str, line: usize, field: &str) -> Result<Colour> {
    Colour::from_word(word)
        .map_err(|_| unknown(line, field, "colour", word, Colour::ALL.map(Colour::word)))
}

/// Parses a shape word, naming `line` and `field` in the error.
pub fn parse_shape(word: &str, line: usize, field: &str) -> Result<Shape> {
    Shape::from_word(word)
        .map_err(|_| unknown(line, field, "shape", word, Shape::ALL.map(Shape::word)))
}

/// Parses a pose phrase (`"waving"`, `"a figure with raised arms"`) or its
/// snake-case name (`"arms_up"`), naming `line` and `field` in the error.
pub fn parse_pose(word: &str, line: usize, field: &str) -> Result<PoseClass> {
    if let Ok(p) = PoseClass::from_phrase(word) {
        return Ok(p);
    }
    let quoted = format!("{:?}", word.trim().to_ascii_lowercase());
    PoseClass::ALL
        .into_iter()
        .find(|p| serde_json::to_string(p).is_ok_and(|s| s == quoted))
        .ok_or_else(|| {
            unknown(
                line,
                field,
                "pose",
                word,
                PoseClass::ALL.map(PoseClass::phrase),
            )
        })
}

const FIELDS: [&str; 8] = [
    "id",
    "seed",
    "objects",
    "edit",
    "controls",
    "mask",
    "prompt",
    "source_prompt",
];
const EDIT_FIELDS: [&str; 4] = ["object", "colour", "shape", "pose"];

fn check_keys(obj: &Map<String, Value>, allowed: &[&str], line: usize, prefix: &str) -> Result<()> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(EvalError::case(
            line,
            format!("{prefix}{k}"),
            format!("unknown field; expected one of: {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

fn string<'v>(v: Option<&'v Value>, line: usize, field: &str) -> Result<Option<&'v str>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(EvalError::case(
            line,
            field,
            format!("expected a string, got {other}"),
        )),
    }
}

fn count(v: Option<&Value>, line: usize, field: &str) -> Result<Option<usize>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some() => {
            Ok(Some(n.as_u64().expect("checked") as usize))
        }
        Some(other) => Err(EvalError::case(
            line,
            field,
            format!("expected a non-negative integer, got {other}"),
        )),
    }
}

fn seed(v: Option<&Value>, line: usize) -> Result<u64> {
    match v {
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64().expect("checked")),
        Some(Value::String(s)) if s.trim().parse::<u64>().is_ok() => {
            Ok(s.trim().parse().expect("checked"))
        }
        None => Err(EvalError::case(line, "seed", "missing")),
        Some(other) => Err(EvalError::case(
            line,
            "seed",
            format!("expected an integer in 0..=2^64-1 (or a string of digits), got {other}"),
        )),
    }
}

fn parse_edit(v: Option<&Value>, line: usize) -> Result<CaseEdit> {
    let obj = match v {
        Some(Value::Object(o)) => o,
        None => return Err(EvalError::case(line, "edit", "missing")),
        Some(other) => {
            return Err(EvalError::case(
                line,
                "edit",
                format!("expected an object, got {other}"),
            ))
        }
    };
    check_keys(obj, &EDIT_FIELDS, line, "edit.")?;
    let edit = CaseEdit {
        object: count(obj.get("object"), line, "edit.object")?,
        colour: string(obj.get("colour"), line, "edit.colour")?
            .map(|w| parse_colour(w, line, "edit.colour"))
            .transpose()?,
        shape: string(obj.get("shape"), line, "edit.shape")?
            .map(|w| parse_shape(w, line, "edit.shape"))
            .transpose()?,
        pose: string(obj.get("pose"), line, "edit.pose")?
            .map(|w| parse_pose(w, line, "edit.pose"))
            .transpose()?,
    };
    let attrs = edit.colour.is_some() || edit.shape.is_some();
    match (edit.object.is_some(), attrs) {
        (true, false) => Err(EvalError::case(
            line,
            "edit.object",
            "names an object but gives it no `colour` or `shape`",
        )),
        (false, true) => Err(EvalError::case(
            line,
            if edit.colour.is_some() {
                "edit.colour"
            } else {
                "edit.shape"
            },
            "needs `object` (the index of the object to change)",
        )),
        (false, false) if edit.pose.is_none() => Err(EvalError::case(
            line,
            "edit",
            "edits nothing: give `object` with `colour`/`shape`, and/or `pose`",
        )),
        _ => Ok(edit),
    }
}

fn parse_controls(v: Option<&Value>, line: usize) -> Result<Vec<ControlName>> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(EvalError::case(
                line,
                "controls",
                format!("expected a list, got {other}"),
            ))
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("controls[{i}]");
        let word = string(Some(item), line, &field)?.unwrap_or_default();
        let c = ControlName::ALL
            .into_iter()
            .find(|c| c.word().eq_ignore_ascii_case(word.trim()))
            .ok_or_else(|| {
                unknown(
                    line,
                    &field,
                    "control",
                    word,
                    ControlName::ALL.map(ControlName::word),
                )
            })?;
        if out.contains(&c) {
            return Err(EvalError::case(
                line,
                field,
                format!("{:?} is listed twice", c.word()),
            ));
        }
        out.push(c);
    }
    Ok(out)
}

fn check_id(id: &str, line: usize) -> Result<()> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-');
    if id.is_empty() || id.len() > 100 || !id.chars().all(ok) || id.starts_with('.') {
        return Err(EvalError::case(
            line,
            "id",
            format!("{id:?}: ids are 1 to 100 letters, digits, '.', '_', '+' or '-' (not starting with '.'), as they name files"),
        ));
    }
    Ok(())
}

/// Checks the edit against the source scene: the object exists and something changes.
fn check_against_scene(case: &Case, line: usize) -> Result<()> {
    let field = if case.objects.is_some() {
        "objects"
    } else {
        "seed"
    };
    let spec = case
        .source_spec()
        .map_err(|e| EvalError::case(line, field, e.to_string()))?;
    let e = &case.edit;
    let mut changes = e.pose.is_some_and(|p| p != spec.figure.pose);
    if let Some(i) = e.object {
        let o = spec.objects.get(i).ok_or_else(|| {
            EvalError::case(
                line,
                "edit.object",
                format!(
                    "index {i}, but the scene of seed {} has {} objects",
                    case.seed,
                    spec.objects.len()
                ),
            )
        })?;
        changes |= e.colour.is_some_and(|c| c != o.colour) || e.shape.is_some_and(|s| s != o.shape);
    }
    if !changes {
        return Err(EvalError::case(
            line,
            "edit",
            "changes nothing: the source scene already looks like that",
        ));
    }
    Ok(())
}

/// Parses one case line (`line` is its 1-based number, for errors).
pub fn parse_case(text: &str, line: usize) -> Result<Case> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| EvalError::case(line, "line", format!("not valid JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| EvalError::case(line, "line", "expected a JSON object"))?;
    check_keys(obj, &FIELDS, line, "")?;
    let id =
        string(obj.get("id"), line, "id")?.ok_or_else(|| EvalError::case(line, "id", "missing"))?;
    check_id(id, line)?;
    let objects = count(obj.get("objects"), line, "objects")?;
    if let Some(n) = objects {
        if !(1..=MAX_OBJECTS).contains(&n) {
            return Err(EvalError::case(
                line,
                "objects",
                format!("{n}: must be in 1..={MAX_OBJECTS}"),
            ));
        }
    }
    let mask = match string(obj.get("mask"), line, "mask")? {
        Some(m) => MaskSpec::parse(m, line, "mask")?,
        None => MaskSpec::True,
    };
    let prompt = |field: &str| -> Result<Option<String>> {
        let p = string(obj.get(field), line, field)?;
        if p.is_some_and(|p| p.trim().is_empty()) {
            return Err(EvalError::case(
                line,
                field,
                "is empty (leave it out for the scene's caption)",
            ));
        }
        Ok(p.map(str::to_owned))
    };
    let case = Case {
        id: id.to_owned(),
        seed: seed(obj.get("seed"), line)?,
        objects,
        edit: parse_edit(obj.get("edit"), line)?,
        controls: parse_controls(obj.get("controls"), line)?,
        mask,
        prompt: prompt("prompt")?,
        source_prompt: prompt("source_prompt")?,
    };
    check_against_scene(&case, line)?;
    Ok(case)
}

/// Parses a JSONL case file's text: one case per non-blank line, ids unique.
pub fn parse_cases(text: &str) -> Result<Vec<Case>> {
    let mut cases = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let case = parse_case(raw, line)?;
        if let Some(first) = seen.insert(case.id.clone(), line) {
            return Err(EvalError::case(
                line,
                "id",
                format!("{:?} is already the id of line {first}", case.id),
            ));
        }
        cases.push(case);
    }
    Ok(cases)
}

/// Reads and parses a JSONL case file.
pub fn read_cases(path: &Path) -> Result<Vec<Case>> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    parse_cases(&text)
}

/// The cases as JSONL text (one line each, trailing newline).
pub fn cases_to_jsonl(cases: &[Case]) -> String {
    cases.iter().map(|c| c.to_json_line() + "\n").collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use optedit_world::{scene_seed, Split};

    fn seed_with_objects(n: usize) -> u64 {
        scene_seed(Split::HeldOut, 17 + n as u64)
    }

    fn line(edit: &str) -> String {
        format!(
            r#"{{"id":"c1","seed":{},"objects":2,"edit":{edit},"controls":["pose"],"mask":"dilate:4"}}"#,
            seed_with_objects(2)
        )
    }

    fn field_of(e: EvalError) -> (usize, String) {
        match e {
            EvalError::Case { line, field, .. } | EvalError::UnknownWord { line, field, .. } => {
                (line, field)
            }
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn round_trips_through_json() {
        let spec =
            SceneSpec::sample_with(seed_with_objects(2), &SampleOptions { objects: Some(2) })
                .unwrap();
        let other = Colour::ALL
            .into_iter()
            .find(|&c| c != spec.objects[1].colour)
            .unwrap();
        let text = line(&format!(
            r#"{{"object":1,"colour":"{}","pose":"waving"}}"#,
            other.word()
        ));
        let case = parse_case(&text, 1).unwrap();
        assert_eq!(case.kind(), CaseKind::TextPose);
        assert_eq!(case.mask, MaskSpec::Dilate(4));
        assert_eq!(case.controls, vec![ControlName::Pose]);
        let again = parse_case(&case.to_json_line(), 1).unwrap();
        assert_eq!(again, case);
    }

    #[test]
    fn errors_name_line_and_field() {
        let bad = [
            (line(r#"{"object":0,"colour":"teal"}"#), "edit.colour"),
            (line(r#"{"object":0,"shape":"hexagon"}"#), "edit.shape"),
            (line(r#"{"pose":"dancing"}"#), "edit.pose"),
            (
                line(r#"{"object":5,"colour":"red","shape":"star"}"#),
                "edit.object",
            ),
            (line(r#"{"colour":"red"}"#), "edit.colour"),
            (line(r#"{}"#), "edit"),
            (line(r#"{"object":0,"color":"red"}"#), "edit.color"),
            (
                r#"{"id":"a b","seed":1,"edit":{"pose":"waving"}}"#.to_string(),
                "id",
            ),
            (
                r#"{"id":"a","seed":-1,"edit":{"pose":"waving"}}"#.to_string(),
                "seed",
            ),
            (
                r#"{"id":"a","seed":1,"objects":4,"edit":{"pose":"waving"}}"#.to_string(),
                "objects",
            ),
            (
                r#"{"id":"a","seed":1,"edit":{"pose":"waving"},"mask":"blob"}"#.to_string(),
                "mask",
            ),
            (
                r#"{"id":"a","seed":1,"edit":{"pose":"waving"},"mask":"dilate:x"}"#.to_string(),
                "mask",
            ),
            (
                r#"{"id":"a","seed":1,"edit":{"pose":"waving"},"controls":["depth"]}"#.to_string(),
                "controls[0]",
            ),
            (
                r#"{"id":"a","seed":1,"edit":{"pose":"waving"},"controls":["pose","pose"]}"#
                    .to_string(),
                "controls[1]",
            ),
            (
                r#"{"id":"a","seed":1,"edit":{"pose":"waving"},"prompt":" "}"#.to_string(),
                "prompt",
            ),
            (
                r#"{"id":"a","seed":1,"edit":{"pose":"waving"} "#.to_string() + "x",
                "line",
            ),
        ];
        for (text, field) in bad {
            let doc = format!("\n{text}\n");
            let e = parse_cases(&doc).expect_err(&text);
            assert_eq!(field_of(e), (2, field.to_string()), "{text}");
        }
        let e = parse_case(&line(r#"{"object":0,"colour":"teal"}"#), 3).unwrap_err();
        let message = e.to_string();
        for word in [
            "line 3",
            "edit.colour",
            "teal",
            "red, green, blue, yellow, purple",
        ] {
            assert!(message.contains(word), "{word:?} not in {message:?}");
        }
    }

    #[test]
    fn no_op_edits_and_duplicate_ids_are_refused() {
        let spec = SceneSpec::sample(5);
        let same = format!(
            r#"{{"id":"a","seed":5,"edit":{{"object":0,"colour":"{}"}}}}"#,
            spec.objects[0].colour.word()
        );
        assert_eq!(
            field_of(parse_case(&same, 1).unwrap_err()),
            (1, "edit".into())
        );
        let other = PoseClass::ALL
            .into_iter()
            .find(|&p| p != spec.figure.pose)
            .unwrap();
        let ok = format!(
            r#"{{"id":"a","seed":"5","edit":{{"pose":"{}"}}}}"#,
            other.phrase()
        );
        let twice = format!("{ok}\n{ok}\n");
        assert_eq!(field_of(parse_cases(&twice).unwrap_err()), (2, "id".into()));
        assert_eq!(parse_cases(&ok).unwrap()[0].seed, 5);
    }

    /// Every control round-trips under its case-file name, and the kind
    /// follows from edit and controls as the module's table says.
    #[test]
    fn new_controls_round_trip_and_decide_the_kind() {
        let spec =
            SceneSpec::sample_with(seed_with_objects(2), &SampleOptions { objects: Some(2) })
                .unwrap();
        let shape = Shape::ALL
            .into_iter()
            .find(|&s| s != spec.objects[0].shape)
            .unwrap();
        let pose = PoseClass::ALL
            .into_iter()
            .find(|&p| p != spec.figure.pose)
            .unwrap();
        let object = format!(r#""object":0,"shape":"{}""#, shape.word());
        let both = format!(r#"{object},"pose":"{}""#, pose.phrase());
        let pose_only = format!(r#""pose":"{}""#, pose.phrase());
        let rows: [(&str, &str, CaseKind); 12] = [
            (&object, r#"[]"#, CaseKind::Text),
            (&object, r#"["canny"]"#, CaseKind::Text),
            (&pose_only, r#"["pose"]"#, CaseKind::Pose),
            (&both, r#"["pose","canny"]"#, CaseKind::TextPose),
            (&object, r#"["edges"]"#, CaseKind::Edges),
            (&both, r#"["edges"]"#, CaseKind::Edges),
            (&object, r#"["scribble"]"#, CaseKind::Scribble),
            (&object, r#"["LAYOUT"]"#, CaseKind::Layout),
            (&both, r#"["pose","edges"]"#, CaseKind::Multi),
            (&both, r#"["edges","pose"]"#, CaseKind::Multi),
            (&both, r#"["pose","edges","scribble"]"#, CaseKind::Scribble),
            (&pose_only, r#"["pose","edges"]"#, CaseKind::Edges),
        ];
        for (edit, controls, kind) in rows {
            let text = format!(
                r#"{{"id":"c","seed":{},"objects":2,"edit":{{{edit}}},"controls":{controls}}}"#,
                seed_with_objects(2)
            );
            let case = parse_case(&text, 1).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(case.kind(), kind, "{text}");
            let line = case.to_json_line();
            assert!(
                line.contains(&format!(r#""controls":{}"#, controls.to_lowercase())),
                "{line}"
            );
            assert_eq!(parse_case(&line, 1).unwrap(), case);
        }
        for c in ControlName::ALL {
            assert_eq!(c.from_target(), c != ControlName::Canny);
        }
        assert_eq!(ControlName::Edges.kind(), ControlName::Canny.kind());
        assert_eq!(ControlName::Scribble.kind().folder(), "controlnet-scribble");
        assert_eq!(ControlName::Layout.kind().folder(), "controlnet-layout");
    }

    #[test]
    fn kinds_parse_by_name_and_errors_name_the_field() {
        for k in CaseKind::ALL {
            assert_eq!(
                CaseKind::parse(&k.word().to_uppercase(), "--kinds").unwrap(),
                k
            );
            // A made case of kind k conditions on k's controls, and that is
            // enough to tell its kind back.
            let mut case = parse_case(&line(r#"{"pose":"waving"}"#), 1)
                .or_else(|_| parse_case(&line(r#"{"pose":"arms_up"}"#), 1))
                .unwrap();
            case.edit.object = Some(0);
            case.edit.shape = Some(Shape::Star);
            case.controls = k.controls().to_vec();
            if matches!(k, CaseKind::Text) {
                case.edit.pose = None;
            }
            if matches!(k, CaseKind::Pose) {
                case.edit.object = None;
                case.edit.shape = None;
            }
            assert_eq!(case.kind(), k);
        }
        let e = CaseKind::parse("sketch", "--kinds").unwrap_err();
        let message = e.to_string();
        assert_eq!(field_of(e), (0, "--kinds".into()));
        for word in [
            "sketch",
            "edges",
            "scribble",
            "layout",
            "multi",
            "text+pose",
        ] {
            assert!(message.contains(word), "{word:?} not in {message:?}");
        }
        let doc = format!(
            "\n{}\n",
            line(r#"{"pose":"waving"}"#).replace(r#"["pose"]"#, r#"["pose","scribbles"]"#)
        );
        let e = parse_cases(&doc).unwrap_err();
        let message = e.to_string();
        assert_eq!(field_of(e), (2, "controls[1]".into()));
        for word in ["scribbles", "canny", "edges", "scribble", "layout"] {
            assert!(message.contains(word), "{word:?} not in {message:?}");
        }
    }

    #[test]
    fn poses_parse_from_phrases_and_names() {
        assert_eq!(
            parse_pose("a figure waving", 1, "p").unwrap(),
            PoseClass::Waving
        );
        assert_eq!(
            parse_pose("with raised arms", 1, "p").unwrap(),
            PoseClass::ArmsUp
        );
        assert_eq!(parse_pose("arms_out", 1, "p").unwrap(), PoseClass::ArmsOut);
        for spec in ["true", "box", "estimated", "full", "dilate:3", "erode:0"] {
            assert_eq!(MaskSpec::parse(spec, 0, "m").unwrap().to_string(), spec);
        }
    }
}
