//! Paired comparison of runs on the same cases: for the first run against
//! each other one, the cases only one of the two edited correctly, and the
//! exact two-sided sign test on those discordant cases (McNemar's exact
//! test). Two runs that are equally good disagree about as often in each
//! direction; a small p says the difference in edit accuracy is not chance.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::compare::run_name;
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
    /// Cases both runs finished without an error.
    pub cases: usize,
    /// Of those, the cases only the first run edited correctly.
    pub only_first: usize,
    /// Of those, the cases only this run edited correctly.
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

/// `id -> correct` of a run's finished, error-free records.
fn outcomes(run: &Path) -> Result<BTreeMap<String, bool>> {
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
        if o.error.is_none() {
            out.insert(o.id, o.correct);
        }
    }
    Ok(out)
}

/// `other` against `first` on the cases both hold.
pub fn paired(first: &BTreeMap<String, bool>, other: &BTreeMap<String, bool>) -> Paired {
    let (mut cases, mut only_first, mut only_other) = (0, 0, 0);
    for (id, &a) in first {
        if let Some(&b) = other.get(id) {
            cases += 1;
            only_first += usize::from(a && !b);
            only_other += usize::from(b && !a);
        }
    }
    Paired {
        cases,
        only_first,
        only_other,
        p_value: sign_test_p(only_first, only_other),
    }
}

/// Markdown: the first of `runs` against each other one (each folder's
/// `cases.jsonl`), a row per other run.
pub fn paired_table(runs: &[PathBuf]) -> Result<String> {
    let Some(first) = runs.first() else {
        return Err(EvalError::argument("runs", "no results folder given"));
    };
    let base = outcomes(first)?;
    let a = run_name(first);
    let mut t = format!(
        "| run | cases in both | only {a} right | only the run right | sign test p |\n\
         |---|---|---|---|---|\n"
    );
    for run in &runs[1..] {
        let p = paired(&base, &outcomes(run)?);
        let shown = if p.p_value < 0.001 {
            "< 0.001".to_string()
        } else {
            format!("{:.3}", p.p_value)
        };
        t.push_str(&format!(
            "| {} | {} | {} | {} | {shown} |\n",
            run_name(run),
            p.cases,
            p.only_first,
            p.only_other
        ));
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
    fn runs_are_paired_by_case_id_skipping_errors() {
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
        let p = paired(&outcomes(&a).unwrap(), &outcomes(&b).unwrap());
        assert_eq!(
            p,
            Paired {
                cases: 3,
                only_first: 1,
                only_other: 1,
                p_value: 1.0
            }
        );
        assert_eq!(
            paired_table(&[a.clone(), b]).unwrap(),
            "| run | cases in both | only optimise right | only the run right | sign test p |\n\
             |---|---|---|---|---|\n\
             | diffedit | 3 | 1 | 1 | 1.000 |\n"
        );
        let bad = write("bad", &["{not json"]);
        let e = paired_table(&[a, bad]).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        assert!(paired_table(&[]).is_err());
    }
}
