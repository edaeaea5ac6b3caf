//! Paired comparison of runs on the same cases: for the first run against
//! each other one, the cases only one of the two edited correctly, and the
//! exact two-sided sign test on those discordant cases (McNemar's exact
//! test). Two runs that are equally good disagree about as often in each
//! direction; a small p says the difference in edit accuracy is not chance.
//!
//! A case whose edit failed (`error` in its record) counts as edited
//! wrongly, as in the summaries. A row that pools several seeds
//! ([`RunGroup`]) scores each case by the share of its seeds edited
//! correctly, and a case counts for the row whose share is higher: the sign
//! test on the per-case differences, which for single runs is the test
//! above.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::compare::RunGroup;
use crate::error::{io, EvalError, Result};

/// The fields of a `cases.jsonl` record this comparison reads.
#[derive(serde::Deserialize)]
struct Outcome {
    id: String,
    correct: bool,
    #[serde(default)]
    error: Option<String>,
}

/// One run against the first.
#[derive(Debug, Clone, PartialEq)]
pub struct Paired {
    /// Cases both runs hold (failed edits included, as wrong).
    pub cases: usize,
    /// Of those, the cases only the first run edited correctly (pooled
    /// seeds: that it edited correctly more often).
    pub only_first: usize,
    /// Of those, the cases only this run edited correctly (pooled seeds:
    /// more often).
    pub only_other: usize,
    /// The exact two-sided sign test's p-value on the discordant cases.
    pub p_value: f64,
}

/// The exact two-sided sign test of `b` against `c` discordant cases:
/// `min(1, 2 P[X <= min(b, c)])` for `X ~ Binomial(b + c, 1/2)`. 1 when
/// there are none.
pub fn sign_test_p(b: usize, c: usize) -> f64 {
    let n = b + c;
    let k = b.min(c);
    // ln C(n, j), accumulated from ln C(n, 0) = 0.
    let mut ln_choose = 0.0f64;
    let ln_half_n = n as f64 * 0.5f64.ln();
    let mut tail = 0.0;
    for j in 0..=k {
        if j > 0 {
            ln_choose += ((n - j + 1) as f64).ln() - (j as f64).ln();
        }
        tail += (ln_choose + ln_half_n).exp();
    }
    (2.0 * tail).min(1.0)
}

/// `id -> correct` of a run's records of the cases in `only` (all with
/// `None`), a failed edit counting as wrong.
fn run_outcomes(run: &Path, only: Option<&BTreeSet<String>>) -> Result<BTreeMap<String, bool>> {
    let path = run.join("cases.jsonl");
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let o: Outcome = serde_json::from_str(line).map_err(|e| {
            EvalError::argument("runs", format!("{} line {}: {e}", path.display(), i + 1))
        })?;
        if only.is_none_or(|ids| ids.contains(&o.id)) {
            out.insert(o.id, o.correct && o.error.is_none());
        }
    }
    Ok(out)
}

/// `id -> share of the row's runs that edited the case correctly` (0 or 1
/// for a single run), over the cases every run of the row holds, of those
/// in `only` (all with `None`); a failed edit counts as wrong.
pub fn outcomes(row: &RunGroup, only: Option<&BTreeSet<String>>) -> Result<BTreeMap<String, f64>> {
    let mut runs = Vec::new();
    for run in &row.runs {
        runs.push(run_outcomes(run, only)?);
    }
    let Some((first, rest)) = runs.split_first() else {
        return Err(EvalError::argument("runs", "an empty group of runs"));
    };
    Ok(first
        .iter()
        .filter_map(|(id, &a)| {
            let others: Option<Vec<bool>> = rest.iter().map(|r| r.get(id).copied()).collect();
            let all: Vec<bool> = std::iter::once(a).chain(others?).collect();
            let right = all.iter().filter(|&&c| c).count();
            Some((id.clone(), right as f64 / all.len() as f64))
        })
        .collect())
}

/// `other` against `first` on the cases both hold, each case scored by its
/// share of correct edits ([`outcomes`]): a case counts for the row whose
/// share is higher; equal shares count for neither.
pub fn paired(first: &BTreeMap<String, f64>, other: &BTreeMap<String, f64>) -> Paired {
    let (mut cases, mut only_first, mut only_other) = (0, 0, 0);
    for (id, &a) in first {
        if let Some(&b) = other.get(id) {
            cases += 1;
            only_first += usize::from(a > b);
            only_other += usize::from(b > a);
        }
    }
    Paired {
        cases,
        only_first,
        only_other,
        p_value: sign_test_p(only_first, only_other),
    }
}

/// Markdown: the first of `rows` against each other one (each folder's
/// `cases.jsonl`, its cases in `only`; all with `None`), a table row per
/// other row. When a row pools seeds, a line under the table says how its
/// cases are counted.
pub fn paired_table(rows: &[RunGroup], only: Option<&BTreeSet<String>>) -> Result<String> {
    let Some(first) = rows.first() else {
        return Err(EvalError::argument("runs", "no results folder given"));
    };
    let base = outcomes(first, only)?;
    let a = first.name();
    let mut t = format!(
        "| run | cases in both | only {a} right | only the run right | sign test p |\n\
         |---|---|---|---|---|\n"
    );
    for row in &rows[1..] {
        let p = paired(&base, &outcomes(row, only)?);
        let shown = if p.p_value < 0.001 {
            "< 0.001".to_string()
        } else {
            format!("{:.3}", p.p_value)
        };
        t.push_str(&format!(
            "| {} | {} | {} | {} | {shown} |\n",
            row.name(),
            p.cases,
            p.only_first,
            p.only_other
        ));
    }
    if rows.iter().any(RunGroup::is_pooled) {
        t.push_str(
            "\nA row of several seeds is right on a case by the share of its seeds \
             edited correctly; \"only ... right\" counts the cases where that share is higher.\n",
        );
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_test_matches_the_binomial_tail() {
        // 5 to 0: 2 * (1/2)^5.
        assert!((sign_test_p(5, 0) - 0.0625).abs() < 1e-12);
        assert!((sign_test_p(0, 5) - 0.0625).abs() < 1e-12);
        // 30 to 14: 2 * sum_{j<=14} C(44, j) / 2^44 = 0.0226288... (exact
        // integer arithmetic).
        assert!(
            (sign_test_p(30, 14) - 0.022_628_84).abs() < 1e-8,
            "{}",
            sign_test_p(30, 14)
        );
        // Balanced or empty: no evidence.
        assert_eq!(sign_test_p(7, 7), 1.0);
        assert_eq!(sign_test_p(0, 0), 1.0);
        // Large counts do not underflow: 2.18170e-5 exactly.
        assert!((sign_test_p(1200, 1000) / 2.181_70e-5 - 1.0).abs() < 1e-4);
    }

    #[test]
    fn runs_are_paired_by_case_id_counting_errors_as_failures() {
        let tmp = tempfile::tempdir().unwrap();
        let write = |name: &str, lines: &[&str]| {
            let dir = tmp.path().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("cases.jsonl"), lines.join("\n")).unwrap();
            dir
        };
        let a = write(
            "optimise",
            &[
                r#"{"id":"c1","correct":true,"error":null}"#,
                r#"{"id":"c2","correct":true}"#,
                r#"{"id":"c3","correct":false}"#,
                r#"{"id":"c4","correct":true}"#,
            ],
        );
        let b = write(
            "diffedit",
            &[
                r#"{"id":"c4","correct":false}"#,
                r#"{"id":"c3","correct":true}"#,
                r#"{"id":"c2","correct":false,"error":"diverged"}"#,
                r#"{"id":"c9","correct":true}"#,
                r#"{"id":"c1","correct":true}"#,
            ],
        );
        let (ga, gb) = (RunGroup::single(a.clone()), RunGroup::single(b.clone()));
        // c2 failed in diffedit: a failure, so only optimise edited it right.
        let p = paired(&outcomes(&ga, None).unwrap(), &outcomes(&gb, None).unwrap());
        assert_eq!(
            p,
            Paired {
                cases: 4,
                only_first: 2,
                only_other: 1,
                p_value: 1.0
            }
        );
        assert_eq!(
            paired_table(&[ga.clone(), gb], None).unwrap(),
            "| run | cases in both | only optimise right | only the run right | sign test p |\n\
             |---|---|---|---|---|\n\
             | diffedit | 4 | 2 | 1 | 1.000 |\n"
        );
        // A record marked correct but failed is still a failure.
        let odd = write(
            "odd",
            &[
                r#"{"id":"c1","correct":true,"error":"diverged"}"#,
                r#"{"id":"c2","correct":true}"#,
                r#"{"id":"c3","correct":false}"#,
                r#"{"id":"c4","correct":true}"#,
            ],
        );
        let p = paired(
            &outcomes(&ga, None).unwrap(),
            &outcomes(&RunGroup::single(odd), None).unwrap(),
        );
        assert_eq!((p.cases, p.only_first, p.only_other), (4, 1, 0));
        let bad = write("bad", &["{not json"]);
        let e = paired_table(&[ga, RunGroup::single(bad)], None).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        assert!(paired_table(&[], None).is_err());
    }

    #[test]
    fn pooled_rows_are_paired_by_the_share_of_seeds_right() {
        let tmp = tempfile::tempdir().unwrap();
        let write = |name: &str, correct: [bool; 3]| {
            let dir = tmp.path().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            let lines: Vec<String> = correct
                .iter()
                .enumerate()
                .map(|(i, c)| format!(r#"{{"id":"c{i}","correct":{c}}}"#))
                .collect();
            std::fs::write(dir.join("cases.jsonl"), lines.join("\n")).unwrap();
            dir
        };
        // Seeds of A: c0 right 2 of 3, c1 right 3 of 3, c2 right 0 of 3.
        let a = RunGroup {
            runs: vec![
                write("a0", [true, true, false]),
                write("a1", [true, true, false]),
                write("a2", [false, true, false]),
            ],
        };
        let shares = outcomes(&a, None).unwrap();
        assert_eq!(shares["c0"], 2.0 / 3.0);
        assert_eq!((shares["c1"], shares["c2"]), (1.0, 0.0));
        // B, one run: c0 right (1 > 2/3), c1 right (tie), c2 wrong (tie).
        let b = RunGroup::single(write("b", [true, true, false]));
        let p = paired(&shares, &outcomes(&b, None).unwrap());
        assert_eq!((p.cases, p.only_first, p.only_other), (3, 0, 1));
        let t = paired_table(&[a, b], None).unwrap();
        assert!(
            t.starts_with("| run | cases in both | only a{0,1,2} right |"),
            "{t}"
        );
        assert!(
            t.contains("| b | 3 | 0 | 1 | 1.000 |\n\nA row of several seeds"),
            "{t}"
        );
        // A case missing from one seed's run is left out of the row.
        let short = write("a3", [true, true, true]);
        std::fs::write(short.join("cases.jsonl"), r#"{"id":"c0","correct":true}"#).unwrap();
        let partial = RunGroup {
            runs: vec![tmp.path().join("a0"), short],
        };
        assert_eq!(outcomes(&partial, None).unwrap().len(), 1);
    }
}
