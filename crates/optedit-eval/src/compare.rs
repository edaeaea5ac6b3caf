//! Side by side comparison of finished results folders of [`evaluate`]
//! (the tables and pictures of `docs/results.md`): one markdown table of
//! their summary rows, one of their edit accuracy and background PSNR and
//! SSIM per kind of case, one of the first run against each other case by
//! case ([`paired_table`]), and one picture grid with a row per case:
//! input | the first run's mask | each run's result | target render.
//!
//! A row is one results folder, or several runs of the same method on the
//! same cases with the same settings but different seeds ([`RunGroup`],
//! `RUN1,RUN2,RUN3` on the command line), pooled: its edit accuracy is the
//! mean over the seeds with a 95% interval from a bootstrap over cases
//! (each case weighs by the share of its seeds edited correctly), followed
//! by each seed's accuracy; its background PSNR and SSIM are pooled over
//! cases and seeds with a case-bootstrap interval ([`crate::stats`]).
//!
//! [`evaluate`]: crate::evaluate()

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use image::RgbImage;
use serde::Deserialize;

use crate::cases::{Case, CaseKind};
use crate::error::{io, EvalError, Result};
use crate::evaluate::image_paths;
use crate::grid::grid;
use crate::metrics::mean;
use crate::paired::paired_table;
use crate::runner::AttributeResult;
use crate::scenes::{Attribute, CaseScenes};
use crate::stats::{bootstrap_mean, pooled_mean, Interval};
use crate::summary::{mean_ci, num, pct_ci, PartSummary, RowCells, Summary, SummarySettings};

/// The legend under the summary table.
pub const INTERVALS_LEGEND: &str =
    "Brackets: 95% intervals; Wilson score for the rates of one run, \
percentile bootstrap over cases (2000 resamples) for background means and for rows pooling seeds. \
(n=...): the cases (case-seed pairs when pooled) a mean is over, when edits failed.";

/// One row of a comparison: a results folder, or several runs of the same
/// method, cases and settings made with different seeds, pooled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunGroup {
    /// The results folders (one for a plain row).
    pub runs: Vec<PathBuf>,
}

impl RunGroup {
    /// A row of one results folder.
    pub fn single(run: PathBuf) -> Self {
        Self { runs: vec![run] }
    }

    /// A command-line row: `RUN`, or `RUN1,RUN2,...` for runs pooled over
    /// seeds (empty parts are skipped; a path that is not UTF-8 is one run).
    pub fn parse(arg: &Path) -> Self {
        match arg.to_str() {
            Some(text) if text.contains(',') => Self {
                runs: text
                    .split(',')
                    .filter(|p| !p.trim().is_empty())
                    .map(PathBuf::from)
                    .collect(),
            },
            _ => Self::single(arg.to_path_buf()),
        }
    }

    /// Whether it pools several runs.
    pub fn is_pooled(&self) -> bool {
        self.runs.len() > 1
    }

    /// Its name in the tables: the folder's name; for pooled runs their
    /// common start and the rest of each name in braces
    /// (`optimise-seed{0,1,2}`), or the names joined by `+` when they share
    /// no start.
    pub fn name(&self) -> String {
        let names: Vec<String> = self.runs.iter().map(|r| run_name(r)).collect();
        let [first, rest @ ..] = names.as_slice() else {
            return String::new();
        };
        if rest.is_empty() {
            return first.clone();
        }
        let mut prefix: Vec<char> = first.chars().collect();
        for n in rest {
            let common = prefix
                .iter()
                .zip(n.chars())
                .take_while(|(a, b)| **a == *b)
                .count();
            prefix.truncate(common);
        }
        if prefix.is_empty() {
            return names.join("+");
        }
        let prefix: String = prefix.into_iter().collect();
        let tails: Vec<&str> = names.iter().map(|n| &n[prefix.len()..]).collect();
        format!("{prefix}{{{}}}", tails.join(","))
    }

    /// The first run (its mask and results fill the grid).
    fn first(&self) -> Result<&Path> {
        self.runs
            .first()
            .map(PathBuf::as_path)
            .ok_or_else(|| EvalError::argument("runs", "an empty group of runs"))
    }
}

/// The part of `summary.json` the per-kind table reads.
#[derive(Deserialize)]
struct Kinds {
    by_kind: BTreeMap<String, PartSummary>,
}

/// The comparison of several results folders.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Markdown: the summary table's header, then one row per run (or
    /// pooled runs), in order, then the runs' settings comments (`<!-- ...
    /// -->`, one line each), a blank line and the legend of the intervals
    /// ([`INTERVALS_LEGEND`]).
    pub table: String,
    /// Markdown: per run (named by its folder, [`RunGroup::name`]), edit
    /// accuracy and background PSNR and SSIM, with their intervals, per
    /// kind of case (`text`, `pose`, `text+pose`, ...).
    pub by_kind: String,
    /// Markdown: the first run against each other one, case by case: the
    /// cases only one of the two edited correctly and the exact sign test
    /// on them ([`paired_table`]).
    pub paired: String,
    /// The picture grid (`None` when no case has a result image in every run).
    pub grid: Option<RgbImage>,
    /// The case ids shown in the grid, top to bottom.
    pub shown: Vec<String>,
}

/// Reads a run's `summary.md`: (header lines, row, settings comment lines).
fn summary_lines(run: &Path) -> Result<(String, String, Vec<String>)> {
    let path = run.join("summary.md");
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let (comments, lines): (Vec<&str>, Vec<&str>) = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .partition(|l| l.trim_start().starts_with("<!--"));
    let comments = comments.into_iter().map(str::to_string).collect();
    match lines.as_slice() {
        [header, rule, row] => Ok((format!("{header}\n{rule}"), row.to_string(), comments)),
        _ => Err(EvalError::argument(
            "runs",
            format!(
                "{}: expected a header, a rule and one row, found {} lines",
                path.display(),
                lines.len()
            ),
        )),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    serde_json::from_str(&text)
        .map_err(|e| EvalError::argument("runs", format!("{}: {e}", path.display())))
}

/// The part of `summary.json` a pooled row reads.
#[derive(Deserialize)]
struct RunSummary {
    settings: SummarySettings,
    #[serde(default)]
    csfid: Option<f64>,
    #[serde(default)]
    csfid_object: Option<f64>,
    #[serde(default)]
    csfid_pose: Option<f64>,
}

/// The part of `summary.json` a single run's row is checked against and
/// labelled by.
#[derive(Deserialize)]
struct Covered {
    /// The cases the summary covers.
    cases: usize,
    /// The run's settings (absent from summaries too old to have them).
    #[serde(default)]
    settings: Option<SummarySettings>,
}

/// `row` (a markdown table row) with its first cell replaced by `cell`.
fn relabel(row: &str, cell: &str) -> String {
    match row.trim().strip_prefix('|').and_then(|r| r.split_once('|')) {
        Some((_, rest)) => format!("| {cell} |{rest}"),
        None => row.to_string(),
    }
}

/// The fields of a `cases.jsonl` record a pooled row reads.
#[derive(Deserialize)]
struct PoolRecord {
    id: String,
    #[serde(default)]
    kind: String,
    correct: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    edited: Vec<AttributeResult>,
    #[serde(default)]
    kept: Vec<AttributeResult>,
    #[serde(default)]
    psnr_bg: Option<f64>,
    #[serde(default)]
    ssim_bg: Option<f64>,
    #[serde(default)]
    mae_bg: Option<f64>,
    #[serde(default)]
    seconds: f64,
}

impl PoolRecord {
    fn right(&self) -> bool {
        self.correct && self.error.is_none()
    }
}

/// The runs of a pooled row, checked to agree on everything but the seed.
struct Pool {
    /// The first run's settings.
    settings: SummarySettings,
    /// Each run's seed, in order.
    seeds: Vec<u64>,
    /// Each run's summary.
    summaries: Vec<RunSummary>,
    /// Each run's records by case id.
    records: Vec<BTreeMap<String, PoolRecord>>,
    /// The case ids in the first run's order, with their kinds.
    cases: Vec<(String, String)>,
}

/// A run's records of the cases in `only` (all with `None`).
fn read_records(run: &Path, only: Option<&BTreeSet<String>>) -> Result<Vec<PoolRecord>> {
    let path = run.join("cases.jsonl");
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let r: PoolRecord = serde_json::from_str(l).map_err(|e| {
            EvalError::argument("runs", format!("{} line {}: {e}", path.display(), i + 1))
        })?;
        if only.is_none_or(|ids| ids.contains(&r.id)) {
            out.push(r);
        }
    }
    Ok(out)
}

impl Pool {
    /// The runs of `group`, restricted to the cases in `only` (all with
    /// `None`).
    fn read(group: &RunGroup, only: Option<&BTreeSet<String>>) -> Result<Self> {
        let first = group.first()?;
        let (mut summaries, mut records, mut seeds) = (Vec::new(), Vec::new(), Vec::new());
        let mut cases = Vec::new();
        for (i, run) in group.runs.iter().enumerate() {
            let summary: RunSummary = read_json(&run.join("summary.json"))?;
            let list = read_records(run, only)?;
            if i == 0 {
                cases = list
                    .iter()
                    .map(|r| (r.id.clone(), r.kind.clone()))
                    .collect();
            }
            let by_id: BTreeMap<String, PoolRecord> =
                list.into_iter().map(|r| (r.id.clone(), r)).collect();
            seeds.push(summary.settings.seed);
            summaries.push(summary);
            records.push(by_id);
        }
        let settings = summaries[0].settings.clone();
        let ids: BTreeSet<&String> = records[0].keys().collect();
        for (i, run) in group.runs.iter().enumerate().skip(1) {
            let other = SummarySettings {
                seed: settings.seed,
                ..summaries[i].settings.clone()
            };
            if other != settings {
                return Err(EvalError::argument(
                    "runs",
                    format!(
                        "{} and {} are pooled as seeds of one row but differ in more than the seed",
                        first.display(),
                        run.display()
                    ),
                ));
            }
            if seeds[..i].contains(&seeds[i]) {
                return Err(EvalError::argument(
                    "runs",
                    format!(
                        "{} is pooled with another run of the same seed {}",
                        run.display(),
                        seeds[i]
                    ),
                ));
            }
            if records[i].keys().collect::<BTreeSet<_>>() != ids {
                return Err(EvalError::argument(
                    "runs",
                    format!(
                        "{} and {} are pooled as seeds of one row but hold other cases",
                        first.display(),
                        run.display()
                    ),
                ));
            }
        }
        Ok(Self {
            settings,
            seeds,
            summaries,
            records,
            cases,
        })
    }

    /// The case ids of `kind` (all with `None`).
    fn ids(&self, kind: Option<&str>) -> Vec<&str> {
        self.cases
            .iter()
            .filter(|(_, k)| kind.is_none_or(|kind| k == kind))
            .map(|(id, _)| id.as_str())
            .collect()
    }

    /// Per case (of `ids`), the values `f` gives for its record in each run.
    fn clusters<F>(&self, ids: &[&str], f: F) -> Vec<Vec<f64>>
    where
        F: Fn(&PoolRecord) -> Vec<f64>,
    {
        ids.iter()
            .map(|id| {
                self.records
                    .iter()
                    .filter_map(|r| r.get(*id))
                    .flat_map(&f)
                    .collect()
            })
            .collect()
    }
}

/// The pooled mean of some clusters, its case-bootstrap interval and the
/// number of values.
fn pooled(clusters: &[Vec<f64>]) -> (Option<f64>, Option<Interval>, usize) {
    (
        pooled_mean(clusters),
        bootstrap_mean(clusters),
        clusters.iter().map(Vec::len).sum(),
    )
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// The pooled measures of a pool's cases of `kind` (all with `None`).
struct PoolStats {
    cases: usize,
    runs: usize,
    edit: (Option<f64>, Option<Interval>, usize),
    psnr: (Option<f64>, Option<Interval>, usize),
    ssim: (Option<f64>, Option<Interval>, usize),
}

impl PoolStats {
    fn of(pool: &Pool, kind: Option<&str>) -> Self {
        let ids = pool.ids(kind);
        Self {
            cases: ids.len(),
            runs: pool.records.len(),
            edit: pooled(&pool.clusters(&ids, |r| vec![flag(r.right())])),
            psnr: pooled(&pool.clusters(&ids, |r| r.psnr_bg.into_iter().collect())),
            ssim: pooled(&pool.clusters(&ids, |r| r.ssim_bg.into_iter().collect())),
        }
    }
}

/// The summary-table row of a pool.
fn pooled_row(pool: &Pool) -> String {
    let ids = pool.ids(None);
    let stats = PoolStats::of(pool, None);
    let all: Vec<&PoolRecord> = pool.records.iter().flat_map(|r| r.values()).collect();
    let failed = all.iter().filter(|r| r.error.is_some()).count();
    let per_seed: Vec<String> = pool
        .records
        .iter()
        .map(|r| pct_ci(mean(r.values().map(|x| flag(x.right()))), None))
        .collect();
    let rate = |clusters: Vec<Vec<f64>>| {
        let (v, i, _) = pooled(&clusters);
        pct_ci(v, i)
    };
    let attribute = |a: Attribute| {
        rate(pool.clusters(&ids, |r| {
            r.edited
                .iter()
                .filter(|x| x.attribute == a)
                .map(|x| flag(x.correct && r.error.is_none()))
                .collect()
        }))
    };
    let values = stats.cases * stats.runs;
    let seeds = pool
        .seeds
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let csfid = |f: fn(&RunSummary) -> Option<f64>| {
        let v: Vec<f64> = pool.summaries.iter().filter_map(f).collect();
        num(
            (v.len() == pool.summaries.len()).then(|| mean(v)).flatten(),
            2,
        )
    };
    RowCells {
        cases: format!(
            "{} × {} seeds ({seeds}){}",
            stats.cases,
            stats.runs,
            if failed > 0 {
                format!(" ({failed} failed)")
            } else {
                String::new()
            }
        ),
        edit: format!(
            "{} (seeds: {})",
            pct_ci(stats.edit.0, stats.edit.1),
            per_seed.join(", ")
        ),
        colour: attribute(Attribute::Colour),
        shape: attribute(Attribute::Shape),
        pose: attribute(Attribute::Pose),
        kept: rate(pool.clusters(&ids, |r| {
            r.kept
                .iter()
                .map(|x| flag(x.correct && r.error.is_none()))
                .collect()
        })),
        psnr: mean_ci(stats.psnr.0, stats.psnr.1, 2, stats.psnr.2, values),
        ssim: mean_ci(stats.ssim.0, stats.ssim.1, 3, stats.ssim.2, values),
        mae: num(mean(all.iter().filter_map(|r| r.mae_bg)), 2),
        csfid: csfid(|s| s.csfid),
        csfid_object: csfid(|s| s.csfid_object),
        csfid_pose: csfid(|s| s.csfid_pose),
        seconds: num(mean(all.iter().map(|r| r.seconds)), 1),
    }
    .markdown(&pool.settings)
}

/// One row's measures of each kind: a run's `summary.json`, or a pool's.
enum KindSource {
    Run(BTreeMap<String, PartSummary>),
    Pool(Pool),
}

impl KindSource {
    fn kinds(&self) -> Vec<String> {
        match self {
            KindSource::Run(k) => k.keys().cloned().collect(),
            KindSource::Pool(p) => p.cases.iter().map(|(_, k)| k.clone()).collect(),
        }
    }

    /// The cells of kind `k`: cases, edit accuracy, PSNR, SSIM.
    fn cells(&self, k: &str) -> [String; 4] {
        match self {
            KindSource::Run(kinds) => match kinds.get(k) {
                Some(p) => {
                    let b = &p.background;
                    [
                        p.cases.to_string(),
                        pct_ci(p.edit_accuracy, p.edit_interval),
                        mean_ci(b.psnr_bg, b.psnr_bg_interval, 2, b.psnr_bg_cases, p.cases),
                        mean_ci(b.ssim_bg, b.ssim_bg_interval, 3, b.ssim_bg_cases, p.cases),
                    ]
                }
                None => ["0".into(), "–".into(), "–".into(), "–".into()],
            },
            KindSource::Pool(pool) => {
                let s = PoolStats::of(pool, Some(k));
                if s.cases == 0 {
                    return ["0".into(), "–".into(), "–".into(), "–".into()];
                }
                let values = s.cases * s.runs;
                [
                    format!("{} × {}", s.cases, s.runs),
                    pct_ci(s.edit.0, s.edit.1),
                    mean_ci(s.psnr.0, s.psnr.1, 2, s.psnr.2, values),
                    mean_ci(s.ssim.0, s.ssim.1, 3, s.ssim.2, values),
                ]
            }
        }
    }
}

/// The per-kind table of the rows, on the cases in `only` (all with `None`).
fn kind_table(rows: &[RunGroup], only: Option<&BTreeSet<String>>) -> Result<String> {
    let mut sources = Vec::new();
    for row in rows {
        sources.push(if row.is_pooled() {
            KindSource::Pool(Pool::read(row, only)?)
        } else {
            let summary: Kinds = read_json(&row.first()?.join("summary.json"))?;
            KindSource::Run(summary.by_kind)
        });
    }
    let mut kinds: Vec<String> = sources.iter().flat_map(KindSource::kinds).collect();
    // The case file's order of kinds (text, pose, text+pose, ...), others after.
    let rank = |k: &str| CaseKind::ALL.iter().position(|c| c.word() == k);
    kinds.sort_by_key(|k| (rank(k).unwrap_or(usize::MAX), k.clone()));
    kinds.dedup();
    let mut t = String::from("| run |");
    for k in &kinds {
        t.push_str(&format!(
            " {k}: cases | {k}: edit acc | {k}: bg PSNR dB | {k}: bg SSIM |"
        ));
    }
    t.push_str("\n|---|");
    t.push_str(&"---|---|---|---|".repeat(kinds.len()));
    for (row, source) in rows.iter().zip(&sources) {
        t.push_str(&format!("\n| {} |", row.name()));
        for k in &kinds {
            for cell in source.cells(k) {
                t.push_str(&format!(" {cell} |"));
            }
        }
    }
    t.push('\n');
    Ok(t)
}

/// A run's name in the tables: its folder's name.
pub(crate) fn run_name(run: &Path) -> String {
    run.file_name().map_or_else(
        || run.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn read_rgb(path: &Path) -> Result<RgbImage> {
    image::open(path)
        .map(|i| i.to_rgb8())
        .map_err(|source| EvalError::Image {
            path: path.to_path_buf(),
            source,
        })
}

/// A row of the summary table on the cases in `only` (all with `None`):
/// (header, row, settings comments). A single run's row is its
/// `summary.md`, which must cover exactly the cases of `only` it holds,
/// with the method cell made again from `summary.json`'s settings.
fn table_row(
    row: &RunGroup,
    only: Option<&BTreeSet<String>>,
) -> Result<(String, String, Vec<String>)> {
    if !row.is_pooled() {
        let run = row.first()?;
        let lines = summary_lines(run)?;
        let summary: Covered = read_json(&run.join("summary.json"))?;
        let held = read_records(run, only)?.len();
        if summary.cases != held {
            return Err(EvalError::argument(
                "runs",
                format!(
                    "{}: its summary covers {} cases but it holds {held} of the compared \
                     case file's; summarise it on that file first (`optedit eval run --resume \
                     --cases FILE` with the run's own arguments reruns nothing)",
                    run.display(),
                    summary.cases
                ),
            ));
        }
        // The label's notes name the settings that differ from the defaults
        // of the build that wrote `summary.md`; recomputed here, so that
        // they are relative to this build's, as pooled rows' are.
        let (header, row, comments) = lines;
        let row = match &summary.settings {
            Some(settings) => relabel(&row, &settings.method_cell()),
            None => row,
        };
        return Ok((header, row, comments));
    }
    let pool = Pool::read(row, only)?;
    let mut notes = Vec::new();
    for run in &row.runs {
        notes.extend(summary_lines(run)?.2);
    }
    Ok((Summary::markdown_header(), pooled_row(&pool), notes))
}

/// Compares results folders: `rows` in order, each one folder or several
/// runs pooled over seeds ([`RunGroup`]; each written by [`evaluate`] and
/// finished, so that it holds `summary.md`). The grid shows the first
/// `grid_rows` cases of `cases`, in that order, whose result image every
/// row's first run kept (runs keep the images of their first `grid`
/// cases); `grid_rows` 0 makes none.
///
/// The tables cover the runs' records of the cases in `cases` (every
/// record when `cases` is empty), so runs made over a longer case file
/// compare on the cases they share with `cases`.
///
/// # Errors
/// No rows or an empty group; a run without a readable `summary.md` or
/// with a summary table whose columns differ from the first row's; a
/// single run whose summary covers other than the cases of `cases` it
/// holds (summarise it again on that case file); pooled runs that differ
/// in more than the seed, share a seed, or hold other cases; unreadable
/// images.
///
/// [`evaluate`]: crate::evaluate()
pub fn compare(rows: &[RunGroup], cases: &[Case], grid_rows: usize) -> Result<Comparison> {
    let Some(first) = rows.first() else {
        return Err(EvalError::argument("runs", "no results folder given"));
    };
    let ids: BTreeSet<String> = cases.iter().map(|c| c.id.clone()).collect();
    let only = (!ids.is_empty()).then_some(&ids);
    let (header, first_row, mut notes) = table_row(first, only)?;
    let mut table = format!("{header}\n{first_row}");
    for row in &rows[1..] {
        let (h, line, comments) = table_row(row, only)?;
        notes.extend(comments);
        if h != header {
            return Err(EvalError::argument(
                "runs",
                format!(
                    "{}: its summary columns differ from those of {}",
                    row.first()?.join("summary.md").display(),
                    first.first()?.display()
                ),
            ));
        }
        table.push('\n');
        table.push_str(&line);
    }
    table.push('\n');
    for note in notes {
        table.push_str(&note);
        table.push('\n');
    }
    table.push('\n');
    table.push_str(INTERVALS_LEGEND);
    table.push('\n');
    let firsts: Vec<&Path> = rows.iter().map(RunGroup::first).collect::<Result<_>>()?;
    let mut pictures = Vec::new();
    let mut shown = Vec::new();
    for case in cases {
        if pictures.len() >= grid_rows {
            break;
        }
        let results: Vec<PathBuf> = firsts.iter().map(|r| image_paths(r, &case.id).0).collect();
        let mask = image_paths(firsts[0], &case.id).1;
        if !mask.exists() || results.iter().any(|p| !p.exists()) {
            continue;
        }
        let scenes = CaseScenes::of(case)?;
        let mut row = vec![scenes.input().clone(), read_rgb(&mask)?];
        for r in &results {
            row.push(read_rgb(r)?);
        }
        row.push(scenes.target_render.image.clone());
        pictures.push(row);
        shown.push(case.id.clone());
    }
    Ok(Comparison {
        table,
        by_kind: kind_table(rows, only)?,
        paired: paired_table(rows, only)?,
        grid: (!pictures.is_empty()).then(|| grid(&pictures)),
        shown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::References;
    use crate::generate::{make_cases, MakeOptions};
    use crate::grid::GAP;
    use crate::runner::{test_record, CaseRecord, RunOptions};
    use crate::summary::summarise;
    use image::Rgb;

    const HEADER: &str = "| method | cases |\n|---|---|";

    fn run(dir: &Path, row: &str, ids: &[&str], colour: u8) {
        std::fs::create_dir_all(dir.join("images")).unwrap();
        let md = format!("<!-- {row} settings -->\n{HEADER}\n{row}\n");
        std::fs::write(dir.join("summary.md"), md).unwrap();
        let part = |n: u8| {
            format!(r#"{{"cases":{n},"edit_accuracy":0.{n},"psnr_bg":{colour}.5,"mae_bg":1.0}}"#)
        };
        let kinds = if colour == 10 {
            format!(r#"{{"text":{},"text+pose":{}}}"#, part(2), part(3))
        } else {
            format!(r#"{{"pose":{},"text":{}}}"#, part(4), part(5))
        };
        let json = format!(r#"{{"cases":{},"by_kind":{kinds}}}"#, ids.len());
        std::fs::write(dir.join("summary.json"), json).unwrap();
        let records: String = ids
            .iter()
            .map(|id| format!("{{\"id\":\"{id}\",\"correct\":{}}}\n", colour == 10))
            .collect();
        std::fs::write(dir.join("cases.jsonl"), records).unwrap();
        for id in ids {
            let (result, mask) = image_paths(dir, id);
            RgbImage::from_pixel(128, 128, Rgb([colour, 0, 0]))
                .save(result)
                .unwrap();
            RgbImage::from_pixel(128, 128, Rgb([0, 0, colour]))
                .save(mask)
                .unwrap();
        }
    }

    #[test]
    fn tables_and_grids_line_runs_up() {
        let cases = make_cases(&MakeOptions {
            count: 3,
            ..MakeOptions::default()
        })
        .unwrap();
        let ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        run(&a, "| optimise | 3 |", &ids, 10);
        // The second run kept no image of the first case.
        run(&b, "| sdedit | 3 |", &ids[1..], 20);
        let rows = [RunGroup::single(a.clone()), RunGroup::single(b.clone())];
        let c = compare(&rows, &cases, 5).unwrap();
        assert_eq!(
            c.table,
            format!(
                "{HEADER}\n| optimise | 3 |\n| sdedit | 3 |\n\
                 <!-- | optimise | 3 | settings -->\n<!-- | sdedit | 3 | settings -->\n\n\
                 {INTERVALS_LEGEND}\n"
            )
        );
        assert_eq!(c.shown, ids[1..]);
        // Summaries written before intervals: the values alone.
        assert_eq!(
            c.by_kind,
            "| run | text: cases | text: edit acc | text: bg PSNR dB | text: bg SSIM | \
             pose: cases | pose: edit acc | pose: bg PSNR dB | pose: bg SSIM | \
             text+pose: cases | text+pose: edit acc | text+pose: bg PSNR dB | text+pose: bg SSIM |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|\n\
             | a | 2 | 20.0% | 10.50 | – | 0 | – | – | – | 3 | 30.0% | 10.50 | – |\n\
             | b | 5 | 50.0% | 20.50 | – | 4 | 40.0% | 20.50 | – | 0 | – | – | – |\n"
        );
        // a is right on all three cases, b wrong on the two it holds.
        assert_eq!(
            c.paired,
            "| run | cases in both | only a right | only the run right | sign test p |\n\
             |---|---|---|---|---|\n\
             | b | 2 | 2 | 0 | 0.500 |\n"
        );
        let g = c.grid.unwrap();
        let cell = 128 + GAP;
        assert_eq!(g.dimensions(), (5 * cell - GAP, 2 * cell - GAP));
        // Columns: input, a's mask, a's result, b's result, target; rows: cases 1 and 2.
        assert_eq!(g.get_pixel(cell, 0).0, [0, 0, 10]);
        assert_eq!(g.get_pixel(2 * cell, cell).0, [10, 0, 0]);
        assert_eq!(g.get_pixel(3 * cell, cell).0, [20, 0, 0]);
        let input = CaseScenes::of(&cases[1]).unwrap().input().clone();
        assert_eq!(g.get_pixel(5, 5), input.get_pixel(5, 5));
        // One row only when asked for one.
        assert_eq!(compare(&rows, &cases, 1).unwrap().shown, ids[1..2]);
        assert!(compare(&rows[..1], &cases, 0).unwrap().grid.is_none());
    }

    #[test]
    fn mismatched_or_missing_summaries_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        run(&a, "| optimise | 3 |", &[], 0);
        let other = tmp.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("summary.md"), "| x |\n|---|\n| 1 |\n").unwrap();
        std::fs::write(other.join("summary.json"), r#"{"cases":0}"#).unwrap();
        std::fs::write(other.join("cases.jsonl"), "").unwrap();
        let rows = [RunGroup::single(a.clone()), RunGroup::single(other.clone())];
        let e = compare(&rows, &[], 0).unwrap_err();
        assert!(e.to_string().contains("columns differ"), "{e}");
        let e = compare(&[RunGroup::single(tmp.path().join("missing"))], &[], 0).unwrap_err();
        assert!(e.to_string().contains("summary.md"), "{e}");
        assert!(compare(&[], &[], 0).is_err());
        assert!(compare(&[RunGroup { runs: vec![] }], &[], 0).is_err());
    }

    #[test]
    fn groups_parse_and_are_named() {
        let g = RunGroup::parse(Path::new(
            "r/optimise-seed0,r/optimise-seed1,,r/optimise-seed2",
        ));
        assert!(g.is_pooled());
        assert_eq!(g.runs.len(), 3);
        assert_eq!(g.runs[2], PathBuf::from("r/optimise-seed2"));
        assert_eq!(g.name(), "optimise-seed{0,1,2}");
        let one = RunGroup::parse(Path::new("r/optimise"));
        assert_eq!(one, RunGroup::single(PathBuf::from("r/optimise")));
        assert!(!one.is_pooled());
        assert_eq!(one.name(), "optimise");
        let unrelated = RunGroup::parse(Path::new("x/alpha,x/beta"));
        assert_eq!(unrelated.name(), "alpha+beta");
    }

    /// A finished run of four cases (text, pose, text, pose) with these
    /// outcomes (`None`: the edit failed) and PSNRs `20 + case + seed`.
    fn real_run(dir: &Path, options: &RunOptions, right: [Option<bool>; 4]) {
        std::fs::create_dir_all(dir.join("images")).unwrap();
        let seed = options.config.seed as f64;
        let records: Vec<CaseRecord> = right
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let kind = if i % 2 == 0 { "text" } else { "pose" };
                let psnr = r.map(|_| 20.0 + i as f64 + seed);
                test_record(&format!("c{i}"), kind, r.unwrap_or(false), psnr)
            })
            .collect();
        let summary = summarise(
            &records,
            &References::new("x".into(), 1),
            SummarySettings::of(options),
        );
        let lines: String = records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        std::fs::write(dir.join("cases.jsonl"), lines).unwrap();
        std::fs::write(
            dir.join("summary.json"),
            serde_json::to_string(&summary).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.join("summary.md"), summary.markdown()).unwrap();
    }

    fn seeded(seed: u64) -> RunOptions {
        let mut o = RunOptions::default();
        o.config.seed = seed;
        o
    }

    /// A single run's label is made from its settings against this build's
    /// defaults, not taken from `summary.md` (written by a build whose
    /// defaults may differ); the rest of its row is `summary.md`'s.
    #[test]
    fn single_rows_are_labelled_against_this_builds_defaults() {
        let tmp = tempfile::tempdir().unwrap();
        let (old, plain) = (tmp.path().join("old"), tmp.path().join("plain"));
        let mut fifty = RunOptions::default();
        fifty.config.num_steps = 50;
        real_run(
            &old,
            &fifty,
            [Some(true), Some(false), Some(true), Some(true)],
        );
        real_run(&plain, &RunOptions::default(), [Some(false); 4]);
        // As a build whose defaults were 50 steps wrote them: the 50-step
        // run unlabelled, the default run marked with its steps.
        let steps = RunOptions::default().config.num_steps;
        for (dir, from, to) in [
            (
                &old,
                "| optimise (steps 50) |".to_string(),
                "| optimise |".to_string(),
            ),
            (
                &plain,
                "| optimise |".to_string(),
                format!("| optimise (steps {steps}) |"),
            ),
        ] {
            let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
            assert!(md.contains(&from), "{md}");
            std::fs::write(dir.join("summary.md"), md.replace(&from, &to)).unwrap();
        }
        let rows = [
            RunGroup::single(old.clone()),
            RunGroup::single(plain.clone()),
        ];
        let c = compare(&rows, &[], 0).unwrap();
        let lines: Vec<&str> = c.table.lines().collect();
        assert!(
            lines[2].starts_with("| optimise (steps 50) | 0.6 | "),
            "{}",
            lines[2]
        );
        assert!(lines[3].starts_with("| optimise | 0.6 | "), "{}", lines[3]);
        // Everything after the label is the stored row's.
        let stored = std::fs::read_to_string(old.join("summary.md")).unwrap();
        let tail = |l: &str| l.splitn(3, '|').nth(2).map(str::to_string);
        assert!(stored.lines().any(|l| tail(l) == tail(lines[2])));
        assert_eq!(relabel("no cells", "x"), "no cells");
    }

    #[test]
    fn seeds_pool_into_one_row() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = |n: &str| tmp.path().join(n);
        let (t, f) = (Some(true), Some(false));
        real_run(&dir("opt-s0"), &seeded(0), [t, t, f, f]);
        real_run(&dir("opt-s1"), &seeded(1), [t, f, f, f]);
        real_run(&dir("opt-s2"), &seeded(2), [t, t, t, None]);
        let sdedit = RunOptions {
            method: crate::runner::Method::SDEDIT,
            ..RunOptions::default()
        };
        real_run(&dir("sdedit"), &sdedit, [f, t, f, f]);
        let pool = RunGroup {
            runs: vec![dir("opt-s0"), dir("opt-s1"), dir("opt-s2")],
        };
        let rows = [pool.clone(), RunGroup::single(dir("sdedit"))];
        let c = compare(&rows, &[], 0).unwrap();
        let lines: Vec<&str> = c.table.lines().collect();
        assert_eq!(lines[0], Summary::markdown_header().lines().next().unwrap());
        let row = lines[2];
        // Each case weighs by its share of seeds right (the failed edit is
        // wrong): c0 3/3, c1 2/3, c2 1/3, c3 0/3; the cases are resampled.
        let shares = vec![
            vec![1.0, 1.0, 1.0],
            vec![1.0, 0.0, 1.0],
            vec![0.0, 0.0, 1.0],
            vec![0.0, 0.0, 0.0],
        ];
        let edit = pct_ci(Some(0.5), bootstrap_mean(&shares));
        assert!(
            row.starts_with(&format!(
                "| optimise | 0.6 | per case | 4 × 3 seeds (0, 1, 2) (1 failed) | \
                 {edit} (seeds: 50.0%, 25.0%, 75.0%) |"
            )),
            "{row}"
        );
        // Pooled PSNR over the 11 values there are, cases resampled.
        let psnr: Vec<Vec<f64>> = (0..4)
            .map(|i| {
                (0..3)
                    .filter(|&s| !(i == 3 && s == 2))
                    .map(|s| 20.0 + (i + s) as f64)
                    .collect()
            })
            .collect();
        let cell = mean_ci(pooled_mean(&psnr), bootstrap_mean(&psnr), 2, 11, 12);
        assert!(cell.ends_with("(n=11)"), "{cell}");
        assert!(row.contains(&format!("| {cell} |")), "{row}");
        // The single run's row is its summary.md row; the seeds' settings are noted.
        assert_eq!(
            lines[3],
            std::fs::read_to_string(dir("sdedit").join("summary.md"))
                .unwrap()
                .lines()
                .nth(3)
                .unwrap()
        );
        assert_eq!(c.table.matches("<!--").count(), 4);
        assert!(c.table.contains("seed 2,"), "{}", c.table);
        // The same runs give the same tables.
        let again = compare(&rows, &[], 0).unwrap();
        assert_eq!(
            (again.table, again.by_kind),
            (c.table.clone(), c.by_kind.clone())
        );
        // Per kind: text cases c0 and c2 (shares 1 and 1/3).
        let kinds: Vec<&str> = c.by_kind.lines().collect();
        let text = pct_ci(
            Some(2.0 / 3.0),
            bootstrap_mean(&[shares[0].clone(), shares[2].clone()]),
        );
        assert!(
            kinds[2].starts_with(&format!("| opt-s{{0,1,2}} | 2 × 3 | {text} | ")),
            "{}",
            c.by_kind
        );
        assert!(
            kinds[3].starts_with("| sdedit | 2 | 0.0% [0.0, 65.8] | "),
            "{}",
            c.by_kind
        );
        // Paired: the pool against sdedit, case by case by the share right.
        assert!(
            c.paired.contains("| sdedit | 4 | 2 | 1 | 1.000 |"),
            "{}",
            c.paired
        );

        // Runs that differ in more than the seed, repeat a seed or hold
        // other cases are refused.
        let mut lambda = seeded(3);
        lambda.config.lambda = 0.2;
        real_run(&dir("opt-l"), &lambda, [t, t, t, t]);
        real_run(&dir("opt-again"), &seeded(1), [t, t, t, t]);
        for (other, why) in [
            ("opt-l", "more than the seed"),
            ("opt-again", "same seed 1"),
        ] {
            let bad = RunGroup {
                runs: vec![dir("opt-s0"), dir("opt-s1"), dir(other)],
            };
            let e = compare(&[bad], &[], 0).unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
        }
        let short = dir("opt-short");
        real_run(&short, &seeded(4), [t, t, t, t]);
        let text = std::fs::read_to_string(short.join("cases.jsonl")).unwrap();
        std::fs::write(
            short.join("cases.jsonl"),
            text.lines().take(3).collect::<Vec<_>>().join("\n"),
        )
        .unwrap();
        let bad = RunGroup {
            runs: vec![dir("opt-s0"), short],
        };
        let e = compare(&[bad], &[], 0).unwrap_err();
        assert!(e.to_string().contains("other cases"), "{e}");
    }

    #[test]
    fn only_the_compared_cases_count() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = |n: &str| tmp.path().join(n);
        let (t, f) = (Some(true), Some(false));
        // Seed 0 ran four cases, seed 1 only the first three.
        real_run(&dir("opt-s0"), &seeded(0), [t, t, f, t]);
        real_run(&dir("opt-s1"), &seeded(1), [t, f, f, f]);
        let s1 = dir("opt-s1").join("cases.jsonl");
        let text = std::fs::read_to_string(&s1).unwrap();
        std::fs::write(&s1, text.lines().take(3).collect::<Vec<_>>().join("\n")).unwrap();
        let sdedit = RunOptions {
            method: crate::runner::Method::SDEDIT,
            ..RunOptions::default()
        };
        real_run(&dir("sdedit"), &sdedit, [f, f, t, t]);
        let pool = RunGroup {
            runs: vec![dir("opt-s0"), dir("opt-s1")],
        };
        let mut cases = make_cases(&MakeOptions {
            count: 3,
            ..MakeOptions::default()
        })
        .unwrap();
        for (i, c) in cases.iter_mut().enumerate() {
            c.id = format!("c{i}");
        }
        // On every record the pool's seeds hold other cases.
        let e = compare(std::slice::from_ref(&pool), &[], 0).unwrap_err();
        assert!(e.to_string().contains("other cases"), "{e}");
        // On the three compared cases they agree: c3 is left out.
        let c = compare(std::slice::from_ref(&pool), &cases, 0).unwrap();
        let row = c.table.lines().nth(2).unwrap();
        assert!(
            row.starts_with("| optimise | 0.6 | per case | 3 × 2 seeds (0, 1) | "),
            "{row}"
        );
        assert!(row.contains("(seeds: 66.7%, 33.3%)"), "{row}");
        // A single run whose summary covers its fourth case is refused on
        // three, and names the way out.
        let rows = [pool, RunGroup::single(dir("sdedit"))];
        let e = compare(&rows, &cases, 0).unwrap_err();
        assert!(
            e.to_string().contains("covers 4 cases but it holds 3"),
            "{e}"
        );
        // The paired table counts the compared cases only.
        let t = paired_table(&rows, Some(&["c0", "c1", "c2"].map(String::from).into())).unwrap();
        assert!(t.contains("| sdedit | 3 | 2 | 1 | 1.000 |"), "{t}");
    }
}
