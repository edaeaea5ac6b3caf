//! A whole evaluation run into a results folder:
//!
//! ```text
//! DIR/run.json          the settings (a resumed run must match them)
//! DIR/cases.jsonl       one CaseRecord per line, rewritten after every case
//! DIR/summary.json      the Summary
//! DIR/summary.md        a markdown table (header + one row)
//! DIR/grid.png          input | mask | result | target render, first N cases
//! DIR/images/ID-*.png   result and mask of the first N cases (for the grid)
//! DIR/references.json   cached reference features (unless elsewhere)
//! ```
//!
//! Every file is written atomically; a folder that already holds results is
//! only continued with `resume` (cases already in `cases.jsonl` are skipped).

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use image::{DynamicImage, RgbImage};
use optedit_edit::{Progress, ProgressEvent};
use serde::{Deserialize, Serialize};

use crate::cases::Case;
use crate::error::{io, EvalError, Result};
use crate::features::{References, DEFAULT_REFERENCES_PER_CLASS};
use crate::grid::grid;
use crate::output::{write_atomic, write_png};
use crate::runner::{run_case, CaseRecord, EvalModels, RunOptions};
use crate::scenes::CaseScenes;
use crate::summary::{summarise, Summary, SummarySettings};

/// What a run reports while it works.
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// The run starts: `total` items, `done` of them already finished (resumed).
    Started {
        /// Items of the run.
        total: usize,
        /// Already finished.
        done: usize,
    },
    /// Item `index` (0-based) starts.
    Item {
        /// Its position.
        index: usize,
        /// Its name (a case id).
        id: &'a str,
    },
    /// A step of the editor or sampler within the current item.
    Step(&'a ProgressEvent),
    /// Item `index` is done.
    Finished {
        /// Its position.
        index: usize,
        /// Its record (cases only).
        record: Option<&'a CaseRecord>,
    },
    /// Reference features: `done` of `total` classes.
    References {
        /// Classes done.
        done: usize,
        /// Classes to do.
        total: usize,
    },
}

/// Receives [`RunEvent`]s; `ControlFlow::Break` cancels the run.
pub trait Observer {
    /// Called for every event.
    fn event(&mut self, event: RunEvent<'_>) -> ControlFlow<()>;
}

impl<F: FnMut(RunEvent<'_>) -> ControlFlow<()>> Observer for F {
    fn event(&mut self, event: RunEvent<'_>) -> ControlFlow<()> {
        self(event)
    }
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl Observer for Quiet {
    fn event(&mut self, _: RunEvent<'_>) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// Forwards editor progress to an observer.
pub(crate) struct Steps<'o>(pub(crate) &'o mut dyn Observer);

impl Progress for Steps<'_> {
    fn report(&mut self, event: &ProgressEvent) -> ControlFlow<()> {
        self.0.event(RunEvent::Step(event))
    }
}

pub(crate) fn notify(observer: &mut dyn Observer, event: RunEvent<'_>) -> Result<()> {
    match observer.event(event) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(EvalError::Cancelled),
    }
}

/// A run's plan.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// How to run each case.
    pub options: RunOptions,
    /// The results folder.
    pub out: PathBuf,
    /// Continue a folder that already holds results.
    pub resume: bool,
    /// Cases shown in `grid.png` (0: no grid).
    pub grid: usize,
    /// Reference renders per class for the feature distance.
    pub references_per_class: usize,
    /// Reference cache (default `out/references.json`).
    pub references: Option<PathBuf>,
    /// Files the run reads; none of the outputs may be one of them.
    pub inputs: Vec<PathBuf>,
}

impl RunPlan {
    /// A plan with the defaults: no resume, a grid of 8, 64 references per class.
    pub fn new(options: RunOptions, out: PathBuf) -> Self {
        Self {
            options,
            out,
            resume: false,
            grid: 8,
            references_per_class: DEFAULT_REFERENCES_PER_CLASS,
            references: None,
            inputs: Vec::new(),
        }
    }

    fn references_path(&self) -> PathBuf {
        self.references
            .clone()
            .unwrap_or_else(|| self.out.join("references.json"))
    }
}

/// `run.json`: what a resumed run must agree with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RunFile {
    settings: SummarySettings,
    /// Every edit setting, as the editor sees it: a record for people, not
    /// compared on resume (its text grows with every new `EditConfig`
    /// field; `settings` holds every field that changes an edit, with the
    /// value older files meant when they lack one).
    edit_config: String,
    negative_prompt: Option<String>,
    classifier: String,
    /// The pipeline's and ControlNets' weights (absent in folders written
    /// before it was recorded, which therefore cannot be resumed).
    #[serde(default)]
    weights: String,
}

impl RunFile {
    /// Whether a run with `other`'s settings may continue this one: the
    /// same edit settings, prompts, judge and weights.
    fn same_run(&self, other: &RunFile) -> bool {
        self.settings == other.settings
            && self.negative_prompt == other.negative_prompt
            && self.classifier == other.classifier
            && self.weights == other.weights
    }
}

const OUTPUTS: [&str; 5] = [
    "run.json",
    "cases.jsonl",
    "summary.json",
    "summary.md",
    "grid.png",
];

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Creates the folder and checks it: never an input overwritten, never
/// earlier results overwritten without `resume`. Returns the records to keep.
fn prepare(plan: &RunPlan, run_file: &RunFile) -> Result<Vec<CaseRecord>> {
    let out = &plan.out;
    if out.exists() && !out.is_dir() {
        return Err(EvalError::argument(
            "out",
            format!("{} exists and is not a folder", out.display()),
        ));
    }
    std::fs::create_dir_all(out.join("images")).map_err(io(out))?;
    let mut outputs: Vec<PathBuf> = OUTPUTS.iter().map(|n| out.join(n)).collect();
    outputs.push(plan.references_path());
    for o in &outputs {
        if let Some(i) = plan.inputs.iter().find(|i| same_file(o, i)) {
            return Err(EvalError::argument(
                "out",
                format!(
                    "{} would overwrite the input {}; choose another results folder",
                    o.display(),
                    i.display()
                ),
            ));
        }
    }
    let records_path = out.join("cases.jsonl");
    if !records_path.exists() {
        return Ok(Vec::new());
    }
    if !plan.resume {
        return Err(EvalError::argument(
            "out",
            format!(
                "{} already holds results; resume them or choose another folder",
                out.display()
            ),
        ));
    }
    let run_path = out.join("run.json");
    let previous: RunFile = std::fs::read_to_string(&run_path)
        .map_err(io(&run_path))
        .and_then(|t| {
            serde_json::from_str(&t).map_err(|e| EvalError::Resume {
                path: run_path.clone(),
                message: e.to_string(),
            })
        })?;
    if !previous.same_run(run_file) {
        return Err(EvalError::Resume {
            path: run_path,
            message: format!(
                "it was made with other settings ({}); use another folder",
                serde_json::to_string(&previous.settings).unwrap_or_default()
            ),
        });
    }
    let text = std::fs::read_to_string(&records_path).map_err(io(&records_path))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| EvalError::Resume {
                path: records_path.clone(),
                message: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}

fn write_records(path: &Path, records: &[CaseRecord]) -> Result<()> {
    let text: String = records
        .iter()
        .map(|r| serde_json::to_string(r).expect("records serialise") + "\n")
        .collect();
    write_atomic(path, text.as_bytes())
}

pub(crate) fn image_paths(out: &Path, id: &str) -> (PathBuf, PathBuf) {
    (
        out.join("images").join(format!("{id}-result.png")),
        out.join("images").join(format!("{id}-mask.png")),
    )
}

/// The grid rows of the first `n` cases: input | mask | result | target.
fn grid_rows(out: &Path, cases: &[Case], n: usize) -> Result<Vec<Vec<RgbImage>>> {
    let mut rows = Vec::new();
    for case in cases.iter().take(n) {
        let (result, mask) = image_paths(out, &case.id);
        if !result.exists() || !mask.exists() {
            continue;
        }
        let read = |p: &Path| {
            image::open(p).map_err(|source| EvalError::Image {
                path: p.to_path_buf(),
                source,
            })
        };
        let scenes = CaseScenes::of(case)?;
        rows.push(vec![
            scenes.input().clone(),
            read(&mask)?.to_rgb8(),
            read(&result)?.to_rgb8(),
            scenes.target_render.image.clone(),
        ]);
    }
    Ok(rows)
}

/// Runs `cases` (all of them; truncate the slice for a limit) into
/// `plan.out` and returns the summary.
pub fn evaluate<B: AutodiffBackend>(
    models: &EvalModels<B>,
    cases: &[Case],
    plan: &RunPlan,
    observer: &mut dyn Observer,
) -> Result<Summary> {
    let settings = SummarySettings::of(&plan.options);
    let run_file = RunFile {
        settings: settings.clone(),
        edit_config: format!("{:?}", plan.options.config),
        negative_prompt: plan.options.negative_prompt.clone(),
        classifier: models.classifier_fingerprint.clone(),
        weights: models.weights_fingerprint.clone(),
    };
    if plan.references_per_class == 0 {
        return Err(EvalError::argument(
            "references_per_class",
            "must be at least 1",
        ));
    }
    let previous = prepare(plan, &run_file)?;
    write_atomic(
        &plan.out.join("run.json"),
        serde_json::to_string_pretty(&run_file)
            .expect("serialises")
            .as_bytes(),
    )?;

    let mut by_id: HashMap<String, CaseRecord> =
        previous.into_iter().map(|r| (r.id.clone(), r)).collect();
    let done = cases.iter().filter(|c| by_id.contains_key(&c.id)).count();
    notify(
        observer,
        RunEvent::Started {
            total: cases.len(),
            done,
        },
    )?;
    let records_path = plan.out.join("cases.jsonl");
    for (index, case) in cases.iter().enumerate() {
        if by_id.contains_key(&case.id) {
            continue;
        }
        notify(
            observer,
            RunEvent::Item {
                index,
                id: &case.id,
            },
        )?;
        let outcome = run_case(models, case, &plan.options, &mut Steps(observer))?;
        if index < plan.grid {
            let (result, mask) = image_paths(&plan.out, &case.id);
            write_png(
                &result,
                &DynamicImage::ImageRgb8(outcome.images.result.clone()),
            )?;
            write_png(
                &mask,
                &DynamicImage::ImageLuma8(outcome.images.mask.clone()),
            )?;
        }
        by_id.insert(case.id.clone(), outcome.record);
        // Case order, earlier records of cases not in this run kept at the end.
        let mut records: Vec<CaseRecord> = cases
            .iter()
            .filter_map(|c| by_id.get(&c.id).cloned())
            .collect();
        let listed: BTreeSet<&str> = cases.iter().map(|c| c.id.as_str()).collect();
        records.extend(
            by_id
                .values()
                .filter(|r| !listed.contains(r.id.as_str()))
                .cloned(),
        );
        write_records(&records_path, &records)?;
        notify(
            observer,
            RunEvent::Finished {
                index,
                record: by_id.get(&case.id),
            },
        )?;
    }

    let records: Vec<CaseRecord> = cases.iter().filter_map(|c| by_id.remove(&c.id)).collect();
    let references = complete_references(models, &records, plan, observer)?;
    let summary = summarise(&records, &references, settings);
    write_atomic(
        &plan.out.join("summary.json"),
        serde_json::to_string_pretty(&summary)
            .expect("serialises")
            .as_bytes(),
    )?;
    write_atomic(&plan.out.join("summary.md"), summary.markdown().as_bytes())?;
    if plan.grid > 0 {
        let rows = grid_rows(&plan.out, cases, plan.grid)?;
        if !rows.is_empty() {
            write_png(
                &plan.out.join("grid.png"),
                &DynamicImage::ImageRgb8(grid(&rows)),
            )?;
        }
    }
    Ok(summary)
}

/// Reference features of every class the records hold, from the cache when
/// it matches the classifier, computed (and cached) otherwise.
fn complete_references<B: AutodiffBackend>(
    models: &EvalModels<B>,
    records: &[CaseRecord],
    plan: &RunPlan,
    observer: &mut dyn Observer,
) -> Result<References> {
    let path = plan.references_path();
    let fp = &models.classifier_fingerprint;
    let mut refs = References::read_matching(&path, fp, plan.references_per_class)?
        .unwrap_or_else(|| References::new(fp.clone(), plan.references_per_class));
    let wanted: Vec<_> = records
        .iter()
        .flat_map(|r| r.regions.iter().map(|g| g.class))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let before = refs.classes.len();
    let mut cancelled = false;
    refs.complete(&models.judge, &wanted, &mut |done, total| {
        cancelled |= observer
            .event(RunEvent::References { done, total })
            .is_break();
    });
    if cancelled {
        return Err(EvalError::Cancelled);
    }
    if refs.classes.len() != before {
        refs.write(&path)?;
    }
    Ok(refs)
}
