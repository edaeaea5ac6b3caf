//! [`Record`]s: what became of each line, one JSON line each in a records
//! file; reading, writing and [`merge`]-ing them.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Batch, BatchError, Coverage};

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
    /// Why it was not edited ([`LineError`](super::LineError)'s text).
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

    pub(super) fn to_line(&self) -> String {
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
