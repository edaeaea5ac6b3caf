//! Progress bar and loss log of a training run.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{io, Result};

/// Draws a progress bar and appends `step,loss,...,seconds` rows to
/// `loss.csv` in the stage folder (kept across resumes).
pub struct TrainLog {
    bar: ProgressBar,
    file: File,
    start: Instant,
    ema: Option<f32>,
}

impl TrainLog {
    /// Opens the log of a stage that runs from `start_step` to `total`
    /// steps; `columns` names the logged values.
    pub fn open(
        dir: &Path,
        stage: &str,
        start_step: usize,
        total: usize,
        columns: &[&str],
    ) -> Result<Self> {
        let path = dir.join("loss.csv");
        let new = !path.exists();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        if new {
            writeln!(file, "step,{},seconds", columns.join(",")).map_err(io(&path))?;
        }
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>10} [{elapsed_precise}] {bar:30} {pos}/{len} {msg} (eta {eta})",
            )
            .expect("valid template"),
        );
        bar.set_prefix(stage.to_string());
        bar.set_position(start_step as u64);
        Ok(Self {
            bar,
            file,
            start: Instant::now(),
            ema: None,
        })
    }

    /// Records one step: `values[0]` is the loss shown (smoothed) on the bar.
    pub fn step(&mut self, step: usize, values: &[f32]) {
        let loss = values.first().copied().unwrap_or(f32::NAN);
        let ema = match self.ema {
            Some(e) => 0.98 * e + 0.02 * loss,
            None => loss,
        };
        self.ema = Some(ema);
        let cols: Vec<String> = values.iter().map(|v| format!("{v:.6}")).collect();
        let _ = writeln!(
            self.file,
            "{step},{},{:.1}",
            cols.join(","),
            self.start.elapsed().as_secs_f32()
        );
        self.bar.set_message(format!("loss {ema:.4}"));
        self.bar.set_position(step as u64 + 1);
    }

    /// Prints a line above the bar (to stderr when the bar is hidden, as it
    /// is when stderr is not a terminal).
    pub fn println(&self, line: impl AsRef<str>) {
        if self.bar.is_hidden() {
            eprintln!("{}", line.as_ref());
        } else {
            self.bar.println(line.as_ref());
        }
    }

    /// Ends the bar.
    pub fn finish(self) {
        self.bar.finish();
    }
}
