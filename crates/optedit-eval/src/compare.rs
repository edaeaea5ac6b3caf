//! Side by side comparison of finished results folders of [`evaluate`]
//! (the tables and pictures of `docs/results.md`): one markdown table of
//! their summary rows, one of their edit accuracy and background PSNR per
//! kind of case, one of the first run against each other case by case
//! ([`paired_table`]), and one picture grid with a row per case:
//! input | the first run's mask | each run's result | target render.
//!
//! [`evaluate`]: crate::evaluate()

use std::path::{Path, PathBuf};

use image::RgbImage;

use crate::cases::{Case, CaseKind};
use crate::error::{io, EvalError, Result};
use crate::evaluate::image_paths;
use crate::grid::grid;
use crate::paired::paired_table;
use crate::scenes::CaseScenes;
use crate::summary::{num, pct, PartSummary};

/// The part of `summary.json` the per-kind table reads.
#[derive(serde::Deserialize)]
struct Kinds {
    by_kind: std::collections::BTreeMap<String, PartSummary>,
}

/// The comparison of several results folders.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Markdown: the summary table's header, then one row per run, in order,
    /// then the runs' settings comments (`<!-- ... -->`, one line each).
    pub table: String,
    /// Markdown: per run (named by its folder), edit accuracy and background
    /// PSNR per kind of case (`text`, `pose`, `text+pose`, ...).
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

/// The per-kind table of the runs' `summary.json`.
fn kind_table(runs: &[PathBuf]) -> Result<String> {
    let mut summaries = Vec::new();
    for run in runs {
        let path = run.join("summary.json");
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let summary: Kinds = serde_json::from_str(&text)
            .map_err(|e| EvalError::argument("runs", format!("{}: {e}", path.display())))?;
        summaries.push(summary);
    }
    let mut kinds: Vec<&String> = summaries.iter().flat_map(|s| s.by_kind.keys()).collect();
    // The case file's order of kinds (text, pose, text+pose), others after.
    let rank = |k: &str| CaseKind::ALL.iter().position(|c| c.word() == k);
    kinds.sort_by_key(|k| (rank(k).unwrap_or(usize::MAX), k.as_str()));
    kinds.dedup();
    let mut t = String::from("| run |");
    for k in &kinds {
        t.push_str(&format!(
            " {k}: cases | {k}: edit acc % | {k}: bg PSNR dB |"
        ));
    }
    t.push_str("\n|---|");
    t.push_str(&"---|---|---|".repeat(kinds.len()));
    for (run, s) in runs.iter().zip(&summaries) {
        t.push_str(&format!("\n| {} |", run_name(run)));
        for k in &kinds {
            match s.by_kind.get(*k) {
                Some(p) => t.push_str(&format!(
                    " {} | {} | {} |",
                    p.cases,
                    pct(p.edit_accuracy),
                    num(p.psnr_bg, 2)
                )),
                None => t.push_str(" 0 | – | – |"),
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

/// Compares the results folders `runs` (each written by [`evaluate`] and
/// finished, so that it holds `summary.md`). The grid shows the first `rows`
/// cases of `cases`, in that order, whose result image every run kept
/// (runs keep the images of their first `grid` cases); `rows` 0 makes none.
///
/// # Errors
/// No runs; a run without a readable `summary.md` or with a summary table
/// whose columns differ from the first run's; unreadable images.
///
/// [`evaluate`]: crate::evaluate()
pub fn compare(runs: &[PathBuf], cases: &[Case], rows: usize) -> Result<Comparison> {
    let Some(first) = runs.first() else {
        return Err(EvalError::argument("runs", "no results folder given"));
    };
    let (header, first_row, mut notes) = summary_lines(first)?;
    let mut table = format!("{header}\n{first_row}");
    for run in &runs[1..] {
        let (h, row, comments) = summary_lines(run)?;
        notes.extend(comments);
        if h != header {
            return Err(EvalError::argument(
                "runs",
                format!(
                    "{}: its summary columns differ from those of {}",
                    run.join("summary.md").display(),
                    first.display()
                ),
            ));
        }
        table.push('\n');
        table.push_str(&row);
    }
    table.push('\n');
    for note in notes {
        table.push_str(&note);
        table.push('\n');
    }
    let mut grid_rows = Vec::new();
    let mut shown = Vec::new();
    for case in cases {
        if grid_rows.len() >= rows {
            break;
        }
        let results: Vec<PathBuf> = runs.iter().map(|r| image_paths(r, &case.id).0).collect();
        let mask = image_paths(first, &case.id).1;
        if !mask.exists() || results.iter().any(|p| !p.exists()) {
            continue;
        }
        let scenes = CaseScenes::of(case)?;
        let mut row = vec![scenes.input().clone(), read_rgb(&mask)?];
        for r in &results {
            row.push(read_rgb(r)?);
        }
        row.push(scenes.target_render.image.clone());
        grid_rows.push(row);
        shown.push(case.id.clone());
    }
    Ok(Comparison {
        table,
        by_kind: kind_table(runs)?,
        paired: paired_table(runs)?,
        grid: (!grid_rows.is_empty()).then(|| grid(&grid_rows)),
        shown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{make_cases, MakeOptions};
    use crate::grid::GAP;
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
        let json = format!(r#"{{"cases":3,"by_kind":{kinds}}}"#);
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
        let c = compare(&[a.clone(), b.clone()], &cases, 5).unwrap();
        assert_eq!(
            c.table,
            format!(
                "{HEADER}\n| optimise | 3 |\n| sdedit | 3 |\n\
                 <!-- | optimise | 3 | settings -->\n<!-- | sdedit | 3 | settings -->\n"
            )
        );
        assert_eq!(c.shown, ids[1..]);
        assert_eq!(
            c.by_kind,
            "| run | text: cases | text: edit acc % | text: bg PSNR dB | \
             pose: cases | pose: edit acc % | pose: bg PSNR dB | \
             text+pose: cases | text+pose: edit acc % | text+pose: bg PSNR dB |\n\
             |---|---|---|---|---|---|---|---|---|---|\n\
             | a | 2 | 20.0 | 10.50 | 0 | – | – | 3 | 30.0 | 10.50 |\n\
             | b | 5 | 50.0 | 20.50 | 4 | 40.0 | 20.50 | 0 | – | – |\n"
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
        assert_eq!(
            compare(&[a.clone(), b.clone()], &cases, 1).unwrap().shown,
            ids[1..2]
        );
        assert!(compare(&[a.clone()], &cases, 0).unwrap().grid.is_none());
    }

    #[test]
    fn mismatched_or_missing_summaries_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        run(&a, "| optimise | 3 |", &[], 0);
        let other = tmp.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("summary.md"), "| x |\n|---|\n| 1 |\n").unwrap();
        let e = compare(&[a.clone(), other.clone()], &[], 0).unwrap_err();
        assert!(e.to_string().contains("columns differ"), "{e}");
        let e = compare(&[tmp.path().join("missing")], &[], 0).unwrap_err();
        assert!(e.to_string().contains("summary.md"), "{e}");
        assert!(compare(&[], &[], 0).is_err());
    }
}
