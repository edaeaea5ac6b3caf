//! The batch runner's errors: [`LineError`] (one line, recorded),
//! [`BatchError`] (the run or the merge) and [`Coverage`].

use std::fmt;
use std::path::PathBuf;

use crate::Error;

/// Why one line of a job file could not be edited: the text of
/// [`Record::error`](super::Record::error).
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
    /// A line of a records file is not a [`Record`](super::Record) (a shard that was
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

/// How records fail to cover a job file exactly once ([`merge`](super::merge)).
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
