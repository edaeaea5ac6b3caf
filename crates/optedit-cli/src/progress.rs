//! Progress bars (one per stage, with step counts and the current loss) and
//! the timing summary, both on stderr.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use optedit_edit::{LossValues, Progress, ProgressEvent, Stage};

/// Receives the library's progress events: draws a bar per stage (unless
/// quiet) and accumulates the time of each stage and of the CLI's own phases.
pub struct Reporter {
    quiet: bool,
    bar: Option<(Stage, ProgressBar)>,
    clock: Instant,
    started: Instant,
    times: Vec<(String, Duration)>,
    stages_at: Option<usize>,
}

impl Reporter {
    /// A reporter; `quiet` hides bars and the summary.
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            bar: None,
            clock: Instant::now(),
            started: Instant::now(),
            times: Vec::new(),
            stages_at: None,
        }
    }

    /// Adds `d` to the phase `name`.
    pub fn add(&mut self, name: &str, d: Duration) {
        match self.times.iter_mut().find(|(n, _)| n == name) {
            Some((_, t)) => *t += d,
            None => self.times.push((name.to_string(), d)),
        }
    }

    /// Runs `f` as the phase `name` (with a spinner unless quiet).
    pub fn phase<T>(&mut self, name: &str, f: impl FnOnce() -> T) -> T {
        self.finish_bar();
        let spinner = (!self.quiet).then(|| {
            let s = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            s.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"),
            );
            s.set_message(name.to_string());
            s.enable_steady_tick(Duration::from_millis(120));
            s
        });
        let start = Instant::now();
        let out = f();
        self.add(name, start.elapsed());
        if let Some(s) = spinner {
            s.finish_and_clear();
        }
        self.clock = Instant::now();
        out
    }

    /// Starts timing library stages: the time up to each event counts for
    /// that event's stage.
    pub fn start_stages(&mut self) {
        self.clock = Instant::now();
        self.stages_at = Some(self.times.len());
    }

    /// Replaces the event-based stage times with exact ones (e.g.
    /// `EditOutput::timings`), in the place the stages started.
    pub fn set_stage_times(&mut self, timings: &[(Stage, Duration)]) {
        let stages = [
            Stage::Encode,
            Stage::Invert,
            Stage::Mask,
            Stage::Guidance,
            Stage::Optimise,
            Stage::Denoise,
            Stage::Decode,
        ]
        .map(|s| s.to_string());
        let at = self.stages_at.unwrap_or(self.times.len());
        let mut before: Vec<(String, Duration)> = self.times.drain(..).collect();
        let after = before.split_off(at.min(before.len()));
        self.times = before
            .into_iter()
            .filter(|(n, _)| !stages.contains(n))
            .collect();
        for (stage, d) in timings {
            self.add(&stage.to_string(), *d);
        }
        self.times
            .extend(after.into_iter().filter(|(n, _)| !stages.contains(n)));
    }

    fn finish_bar(&mut self) {
        if let Some((_, bar)) = self.bar.take() {
            bar.finish();
        }
    }

    /// Ends the bars (leaving the finished ones on screen).
    pub fn finish(&mut self) {
        self.finish_bar();
    }

    /// The time of each stage and phase so far, in order.
    pub fn times(&self) -> &[(String, Duration)] {
        &self.times
    }

    /// The time since the reporter was made.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The one-line summary, `None` when quiet.
    pub fn summary(&self, what: &str) -> Option<String> {
        if self.quiet {
            return None;
        }
        let parts: Vec<String> = self
            .times
            .iter()
            .map(|(n, d)| format!("{n} {}", secs(*d)))
            .collect();
        Some(format!(
            "optedit: {what} in {} ({})",
            secs(self.started.elapsed()),
            parts.join(", ")
        ))
    }

    /// Prints the summary on stderr (unless quiet).
    pub fn print_summary(&mut self, what: &str) {
        self.finish();
        if let Some(line) = self.summary(what) {
            eprintln!("{line}");
        }
    }

    fn bar_for(&mut self, event: &ProgressEvent) -> &ProgressBar {
        let fresh = !matches!(&self.bar, Some((s, _)) if *s == event.stage);
        if fresh {
            self.finish_bar();
            let bar = ProgressBar::with_draw_target(
                Some(event.total as u64),
                ProgressDrawTarget::stderr(),
            );
            bar.set_style(
                ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len} {elapsed} {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(event.stage.to_string());
            self.bar = Some((event.stage, bar));
        }
        let (_, bar) = self.bar.as_ref().expect("bar just set");
        bar
    }
}

impl Progress for Reporter {
    fn report(&mut self, event: &ProgressEvent) -> ControlFlow<()> {
        let now = Instant::now();
        let elapsed = now - self.clock;
        self.clock = now;
        self.add(&event.stage.to_string(), elapsed);
        if self.quiet {
            return ControlFlow::Continue(());
        }
        let bar = self.bar_for(event);
        bar.set_length(event.total as u64);
        let t = event.timestep.map(|t| format!("t={t}")).unwrap_or_default();
        match &event.loss {
            Some(loss) => bar.set_message(format!("{t} {}", loss_message(loss))),
            None => {
                bar.set_position(event.step as u64);
                // Keep the last loss (after "|") once the optimised steps are over.
                let message = bar.message();
                let last = message.split_once('|').map(|(_, l)| l.trim()).unwrap_or("");
                bar.set_message(if last.is_empty() {
                    t
                } else {
                    format!("{t} | {last}")
                });
            }
        }
        ControlFlow::Continue(())
    }
}

fn loss_message(loss: &LossValues) -> String {
    let terms: Vec<String> = loss
        .terms
        .iter()
        .map(|(n, v)| format!("{n} {v:.4}"))
        .collect();
    format!(
        "| it {} loss {:.4} ({})",
        loss.iteration + 1,
        loss.total,
        terms.join(", ")
    )
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// The bar of `optedit batch`: lines done of the lines to do, with the
/// elapsed time, the ETA, and the current line's stage in its message.
/// When stderr is no terminal (a log), one line per finished line instead.
/// Failed lines are printed with their error either way (unless quiet).
pub struct BatchBar {
    quiet: bool,
    bar: ProgressBar,
    line: usize,
}

impl BatchBar {
    /// A bar (hidden when `quiet`), started by [`BatchProgress::start`].
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            bar: ProgressBar::hidden(),
            line: 0,
        }
    }

    /// Ends the bar (leaving it on screen).
    pub fn finish(&mut self) {
        self.bar.finish();
    }

    /// Prints `text` above the bar, or on stderr when there is none.
    fn say(&self, text: String) {
        if self.bar.is_hidden() {
            eprintln!("{text}");
        } else {
            self.bar.println(text);
        }
    }
}

impl Progress for BatchBar {
    fn report(&mut self, event: &ProgressEvent) -> ControlFlow<()> {
        if !self.quiet && event.loss.is_none() {
            self.bar.set_message(format!(
                "line {}: {} {}/{}",
                self.line, event.stage, event.step, event.total
            ));
        }
        ControlFlow::Continue(())
    }
}

impl optedit::batch::BatchProgress for BatchBar {
    fn start(&mut self, plan: &optedit::batch::Plan) {
        if self.quiet {
            return;
        }
        if !plan.done.is_empty() || plan.dropped > 0 {
            eprintln!(
                "optedit: resuming {}: {} lines done before, {} records dropped (errors, missing outputs, changed or torn lines), {} to do",
                plan.records.display(),
                plan.done.len(),
                plan.dropped,
                plan.todo.len()
            );
        }
        self.bar = ProgressBar::with_draw_target(
            Some(plan.todo.len() as u64),
            ProgressDrawTarget::stderr(),
        );
        self.bar.set_style(
            ProgressStyle::with_template("[{bar:30}] {pos}/{len} lines {elapsed} eta {eta} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
    }

    fn line(&mut self, line: usize) {
        self.line = line;
        if !self.quiet {
            self.bar.set_message(format!("line {line}"));
        }
    }

    fn record(&mut self, record: &optedit::batch::Record) -> ControlFlow<()> {
        self.bar.inc(1);
        if self.quiet {
            return ControlFlow::Continue(());
        }
        let position = format!("{}/{}", self.bar.position(), self.bar.length().unwrap_or(0));
        match (&record.error, &record.output) {
            (Some(e), _) => {
                self.say(format!("line {}: error: {e}", record.line));
            }
            (None, Some(out)) if self.bar.is_hidden() => self.say(format!(
                "line {}: wrote {} in {} ({position}, eta {})",
                record.line,
                out.display(),
                secs(Duration::from_secs_f64(record.seconds)),
                secs(self.bar.eta())
            )),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}
