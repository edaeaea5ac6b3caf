//! [`Shard`]: which lines of a job file one process takes.

use std::fmt;
use std::str::FromStr;

use super::BatchError;

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
