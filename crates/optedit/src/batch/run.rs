//! Running a job file: [`Plan`] (what to do, resuming), [`Runner`] (doing
//! it with one pipeline) and [`BatchProgress`].

use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::tensor::backend::AutodiffBackend;
use image::DynamicImage;

use super::{write_records, Batch, BatchError, LineError, Record, Shard, Status, Timing};
use crate::conditions;
use crate::images;
use crate::{Control, Error, Instruction, Options, Pipeline, Progress, ProgressEvent, Silent};

/// Receives a batch's progress: the lines (with default methods that do
/// nothing) and, as a [`Progress`], every step of each line's edit.
/// [`Silent`] ignores everything.
pub trait BatchProgress: Progress {
    /// The run starts with `plan`.
    fn start(&mut self, plan: &Plan) {
        let _ = plan;
    }

    /// Line `line` starts.
    fn line(&mut self, line: usize) {
        let _ = line;
    }

    /// Line `record.line` is done and recorded; `Break` stops the run
    /// here (a later resumed run does the rest).
    fn record(&mut self, record: &Record) -> ControlFlow<()> {
        let _ = record;
        ControlFlow::Continue(())
    }
}

impl BatchProgress for Silent {}

/// What a run will do: the lines to edit and the records already done.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Plan {
    /// The shard's records file.
    pub records: PathBuf,
    /// The lines of the shard to edit, in order.
    pub todo: Vec<usize>,
    /// The records of lines done by earlier runs (resuming), kept.
    pub done: Vec<Record>,
    /// Earlier records dropped on resuming: errors, lines whose output is
    /// gone or whose text has changed, repeats and torn lines (a run
    /// stopped while writing one).
    pub dropped: usize,
}

impl Plan {
    /// Makes the output folder `out` and decides what a run of `shard`
    /// into it does: every line of the shard, or (`resume`) those not
    /// recorded as done, the records file rewritten with only the records
    /// kept. Cheap (no model is needed): the `optedit` command plans
    /// before it loads the models.
    ///
    /// # Errors
    /// The folder cannot be made; it holds records of this shard and the
    /// runner does not resume; the records cannot be read or written.
    pub fn make(batch: &Batch, out: &Path, shard: Shard, resume: bool) -> Result<Plan, BatchError> {
        fs::create_dir_all(out).map_err(|source| BatchError::OutDir {
            path: out.to_path_buf(),
            source,
        })?;
        let records = out.join(shard.records_name());
        let shard_lines = batch.lines().filter(|&l| shard.takes(l));
        let existing = match fs::read(&records) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(BatchError::ReadRecords {
                    path: records,
                    source,
                })
            }
        };
        if !resume {
            if !existing.is_empty() {
                return Err(BatchError::RecordsExist { path: records });
            }
            write_records(&records, &[])?;
            return Ok(Plan {
                records,
                todo: shard_lines.collect(),
                done: Vec::new(),
                dropped: 0,
            });
        }
        let mut done = Vec::new();
        let mut seen = HashSet::new();
        let mut dropped = 0;
        for raw in existing.split(|&b| b == b'\n') {
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let keep = serde_json::from_slice::<Record>(raw).ok().filter(|r| {
                r.status == Status::Ok
                    && shard.takes(r.line)
                    && batch.line_hash(r.line) == Some(r.job_hash.as_str())
                    && r.output.as_ref().is_some_and(|o| out.join(o).is_file())
                    && !seen.contains(&r.line)
            });
            match keep {
                Some(r) => {
                    seen.insert(r.line);
                    done.push(r);
                }
                None => dropped += 1,
            }
        }
        if dropped > 0 || existing.last().is_some_and(|&b| b != b'\n') {
            write_records(&records, &done)?;
        }
        Ok(Plan {
            records,
            todo: shard_lines.filter(|l| !seen.contains(l)).collect(),
            done,
            dropped,
        })
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// The shard's records file.
    pub records: PathBuf,
    /// Lines done by earlier runs, skipped.
    pub skipped: usize,
    /// Lines edited now.
    pub ok: usize,
    /// Lines that failed now (recorded as errors).
    pub failed: usize,
    /// Lines of the shard left undone (the run was stopped or limited).
    pub left: usize,
}

/// Runs a job file's lines with one loaded [`Pipeline`] (see the
/// [module docs](super)).
#[derive(Debug)]
pub struct Runner<'p, B: AutodiffBackend> {
    pipeline: &'p Pipeline<B>,
    out: PathBuf,
    shard: Shard,
    resume: bool,
    options: Options,
    limit: Option<usize>,
}

/// Passes events on to `inner`, noting whether it asked to stop.
struct Watch<'a> {
    inner: &'a mut dyn Progress,
    stopped: bool,
}

impl Progress for Watch<'_> {
    fn report(&mut self, event: &ProgressEvent) -> ControlFlow<()> {
        let flow = self.inner.report(event);
        self.stopped |= flow.is_break();
        flow
    }
}

/// The absolute, symlink-free form of `path`, which need not exist yet
/// (its folder must).
fn canonical_target(path: &Path) -> Option<PathBuf> {
    fs::canonicalize(path).ok().or_else(|| {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        Some(fs::canonicalize(parent).ok()?.join(path.file_name()?))
    })
}

/// Every existing input file of a batch's jobs (canonical), with the first
/// line that reads it: no output may be written over one.
fn input_files(batch: &Batch) -> HashMap<PathBuf, usize> {
    let mut files = HashMap::new();
    for line in batch.lines() {
        if let Some(Ok((job, _))) = batch.job(line) {
            for input in job.inputs(batch.base()) {
                if let Ok(c) = fs::canonicalize(&input) {
                    files.entry(c).or_insert(line);
                }
            }
        }
    }
    files
}

impl<'p, B: AutodiffBackend> Runner<'p, B> {
    /// A runner of every line into the folder `out` (made if missing), with
    /// [`Options::default`], not resuming.
    pub fn new(pipeline: &'p Pipeline<B>, out: impl Into<PathBuf>) -> Self {
        Self {
            pipeline,
            out: out.into(),
            shard: Shard::ALL,
            resume: false,
            options: Options::default(),
            limit: None,
        }
    }

    /// Runs only `shard`'s lines.
    pub fn with_shard(mut self, shard: Shard) -> Self {
        self.shard = shard;
        self
    }

    /// Continues the shard's records in the output folder: lines done are
    /// skipped.
    pub fn with_resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    /// The options of every line, before its own ([`JobOptions`](super::JobOptions),
    /// [`Job::method`](super::Job::method)).
    pub fn with_options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Edits at most `limit` lines in this run (`None`: all).
    pub fn with_limit(mut self, limit: Option<usize>) -> Self {
        self.limit = limit;
        self
    }

    /// The output folder.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// The shard's records file.
    pub fn records_path(&self) -> PathBuf {
        self.out.join(self.shard.records_name())
    }

    /// What [`Runner::run`] will do ([`Plan::make`] with this runner's
    /// folder, shard and resume setting).
    ///
    /// # Errors
    /// As [`Plan::make`].
    pub fn plan(&self, batch: &Batch) -> Result<Plan, BatchError> {
        Plan::make(batch, &self.out, self.shard, self.resume)
    }

    /// Runs the shard's lines (see the [module docs](super)), each recorded
    /// as it ends.
    ///
    /// # Errors
    /// What [`Runner::plan`] refuses, or records that cannot be written;
    /// a failing line is no error (it is recorded).
    pub fn run(
        &self,
        batch: &Batch,
        progress: &mut dyn BatchProgress,
    ) -> Result<Summary, BatchError> {
        let plan = self.plan(batch)?;
        self.run_plan(batch, plan, progress)
    }

    /// Runs `plan`, made by [`Runner::plan`] (or by [`Plan::make`] with
    /// this runner's folder and shard): [`Runner::run`] once planned.
    ///
    /// # Errors
    /// Records that cannot be written; a failing line is no error (it is
    /// recorded).
    pub fn run_plan(
        &self,
        batch: &Batch,
        plan: Plan,
        progress: &mut dyn BatchProgress,
    ) -> Result<Summary, BatchError> {
        progress.start(&plan);
        let write_err = |source| BatchError::WriteRecords {
            path: plan.records.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&plan.records)
            .map_err(write_err)?;
        let mut summary = Summary {
            records: plan.records.clone(),
            skipped: plan.done.len(),
            ok: 0,
            failed: 0,
            left: plan.todo.len(),
        };
        let inputs = input_files(batch);
        let budget = self.limit.unwrap_or(usize::MAX);
        for &line in plan.todo.iter().take(budget) {
            progress.line(line);
            let mut watch = Watch {
                inner: &mut *progress,
                stopped: false,
            };
            let record = self.record_line(batch, line, &inputs, &mut watch);
            if watch.stopped {
                break;
            }
            file.write_all(record.to_line().as_bytes())
                .and_then(|()| file.sync_data())
                .map_err(write_err)?;
            summary.left -= 1;
            match record.status {
                Status::Ok => summary.ok += 1,
                Status::Error => summary.failed += 1,
            }
            if progress.record(&record).is_break() {
                break;
            }
        }
        Ok(summary)
    }

    /// Edits line `line` of `batch` and writes its output (never over an
    /// input of any line); the record says how it went (nothing is appended
    /// to the records file).
    pub fn run_line(&self, batch: &Batch, line: usize, progress: &mut dyn Progress) -> Record {
        self.record_line(batch, line, &input_files(batch), progress)
    }

    /// [`Runner::run_line`] with the batch's input files known.
    fn record_line(
        &self,
        batch: &Batch,
        line: usize,
        inputs: &HashMap<PathBuf, usize>,
        progress: &mut dyn Progress,
    ) -> Record {
        let start = Instant::now();
        let mut timings = Vec::new();
        let result = self.edit_line(batch, line, inputs, progress, &mut timings);
        let (status, output, error) = match result {
            Ok(output) => (Status::Ok, Some(output), None),
            Err(e) => (Status::Error, None, Some(e.to_string())),
        };
        Record {
            line,
            job_hash: batch.line_hash(line).unwrap_or_default().into(),
            status,
            output,
            error,
            seconds: start.elapsed().as_secs_f64(),
            timings: timings
                .into_iter()
                .map(|(stage, d): (String, Duration)| Timing {
                    stage,
                    seconds: d.as_secs_f64(),
                })
                .collect(),
        }
    }

    fn edit_line(
        &self,
        batch: &Batch,
        line: usize,
        inputs: &HashMap<PathBuf, usize>,
        progress: &mut dyn Progress,
        timings: &mut Vec<(String, Duration)>,
    ) -> Result<PathBuf, LineError> {
        let (job, output) = match batch.job(line) {
            Some(Ok(j)) => j,
            Some(Err(e)) => return Err(clone_line_error(e)),
            None => {
                return Err(LineError::Parse {
                    message: format!("line {line} is no job of {}", batch.path().display()),
                })
            }
        };
        let target = self.out.join(output);
        if let Some(first) = canonical_target(&target).and_then(|t| inputs.get(&t)) {
            return Err(LineError::Field {
                field: "output".into(),
                message: format!(
                    "{} is an input (of line {first}); refusing to overwrite an input",
                    target.display()
                ),
            });
        }
        let clock = Instant::now();
        let base = batch.base();
        let mut options = job.options.apply(&self.options);
        if let Some(m) = job.method {
            options.method = m;
        }
        let image_path = base.join(&job.image);
        let image = images::read(&image_path).map_err(|source| LineError::Input {
            field: "image".into(),
            source,
        })?;
        let mask = job.mask_choice(base)?;
        let fit = self
            .pipeline
            .fit(image.width(), image.height(), &options)
            .map_err(|source| LineError::Input {
                field: "image".into(),
                source,
            })?;
        let mut controls = Vec::new();
        for (i, c) in job.controls.iter().enumerate() {
            let field = format!("controls[{i}]");
            let condition = c.condition(base, &field)?;
            let input = |source| LineError::Input {
                field: format!("{field}.{}", condition.kind()),
                source,
            };
            let source = conditions::read_source(&condition, (image.width(), image.height()))
                .map_err(input)?;
            let canny = (
                c.canny_low.unwrap_or(conditions::CANNY_LOW),
                c.canny_high.unwrap_or(conditions::CANNY_HIGH),
            );
            let made = conditions::condition_image(&source, &condition, &image, &fit, canny)
                .map_err(input)?;
            controls.push(Control {
                net: c.net,
                image: made.image().clone(),
                scale: c.scale.unwrap_or(1.0),
            });
        }
        timings.push(("read".into(), clock.elapsed()));

        let instruction = Instruction {
            source_prompt: job.source_prompt.clone(),
            prompt: job.prompt.clone(),
            negative_prompt: job.negative_prompt.clone(),
            controls,
            mask,
        };
        let edited = self
            .pipeline
            .edit(&image, &instruction, &options, progress)
            .map_err(LineError::Edit)?;
        timings.extend(edited.timings.iter().map(|(s, d)| (s.to_string(), *d)));

        let clock = Instant::now();
        if let Some(dir) = target.parent() {
            fs::create_dir_all(dir).map_err(|source| {
                LineError::Write(Error::Write {
                    path: target.clone(),
                    source,
                })
            })?;
        }
        images::write(&target, &DynamicImage::ImageRgb8(edited.image)).map_err(LineError::Write)?;
        timings.push(("write".into(), clock.elapsed()));
        Ok(output.to_path_buf())
    }
}

/// A line's stored parse error, again (the stored one stays with the
/// batch).
fn clone_line_error(e: &LineError) -> LineError {
    match e {
        LineError::Field { field, message } => LineError::Field {
            field: field.clone(),
            message: message.clone(),
        },
        LineError::Parse { message } => LineError::Parse {
            message: message.clone(),
        },
        // Not stored: a batch keeps parse and field errors only.
        other => LineError::Parse {
            message: other.to_string(),
        },
    }
}
