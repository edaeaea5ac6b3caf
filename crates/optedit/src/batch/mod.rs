//! Batch editing: a job file of one edit per line, run with the models
//! loaded once, resumable, and split into shards that processes or
//! machines run with no coordination.
//!
//! # The job file
//! [JSON Lines](https://jsonlines.org): each line is one [`Job`], a JSON
//! object; blank lines are no jobs. Lines are counted from 0 (the first line
//! is line 0): [`Shard`] takes lines by this number, the default output is
//! `<line>.png`, and [`Record::line`] names it.
//!
//! ```json
//! {"image": "photos/cat.jpg", "source_prompt": "a cat", "prompt": "a dog"}
//! {"image": "photos/man.png", "prompt": "a dancer", "mask": "none", "controls": [{"net": 0, "pose": "poses/man.json"}], "output": "dancer.webp"}
//! {"image": "photos/car.png", "prompt": "a red car", "method": "sdedit", "options": {"strength": 0.6, "seed": 3}}
//! ```
//!
//! Input paths (`image`, a mask file, condition files) are relative to the
//! job file's folder (absolute paths are taken as they are); `output` is
//! relative to the output folder, and its extension picks the format
//! ([`crate::images::write()`]). [`JobOptions`] override the runner's
//! [`Options`](crate::Options) field by field; `method` overrides [`Options::method`](crate::Options::method).
//!
//! # Running
//! [`Runner::run`] edits the lines of its [`Shard`] (all of them by
//! default) with one [`Pipeline`](crate::Pipeline) and writes each result atomically into
//! the output folder, then appends a [`Record`] of the line (status, error,
//! timings, output) to the shard's records file there
//! ([`Shard::records_name`]). A line that fails (a missing image, bad JSON,
//! an unknown method, an edit error) is recorded as an error and the run
//! goes on. With [`Runner::with_resume`] a run continues the records
//! already there: lines recorded as done (their output present, the line
//! unchanged) are skipped, the others (errors included) run again; without
//! it, a folder holding records of an earlier run is refused.
//!
//! # Shards
//! Shard `i/n` takes the lines whose number `l` has `l % n == i`, so `n`
//! processes given `0/n` .. `n-1/n` split one job file with no coordination
//! into one output folder; [`merge`] checks that their records together
//! cover the job file exactly once. `docs/scaling.md` runs the shards as a
//! Kubernetes Indexed Job and with `xargs -P`.

mod error;
mod job;
mod records;
mod run;
mod shard;

pub use error::{BatchError, Coverage, LineError};
pub use job::{Batch, Job, JobControl, JobOptions};
pub use records::{merge, read_records, write_records, Record, Status, Timing};
pub use run::{BatchProgress, Plan, Runner, Summary};
pub use shard::Shard;
