//! `optedit eval`: case files, evaluation runs and model quality, on
//! `optedit-eval`, with one progress bar over the cases.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use optedit_eval::output::{write_atomic, write_png};
use optedit_eval::{
    cases_to_jsonl, make_cases, read_cases, CaseKind, EvalError, EvalModels, Judge, MakeOptions,
    MaskSpec, Method, ModelPaths, QualityOptions, RunEvent, RunGroup, RunOptions, RunPlan, Summary,
};

use crate::args::{CompareArgs, EvalRunArgs, MakeCasesArgs, QualityArgs};
use crate::models::check_model_path;
use crate::UsageError;

fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::from(UsageError(e.to_string()))
}

/// A mask flag's value.
fn mask_spec(text: &str, flag: &str) -> Result<MaskSpec> {
    MaskSpec::parse(text, 0, flag).map_err(|e| match e {
        EvalError::UnknownWord {
            word, vocabulary, ..
        } => usage(format!(
            "{flag} {word:?}: expected one of {}",
            vocabulary.join(", ")
        )),
        EvalError::Case { message, .. } => usage(format!("{flag} {message}")),
        other => usage(other),
    })
}

/// Runs `optedit eval compare`.
pub fn compare(args: &CompareArgs) -> Result<()> {
    let rows: Vec<RunGroup> = args.runs.iter().map(|r| RunGroup::parse(r)).collect();
    for (row, arg) in rows.iter().zip(&args.runs) {
        if row.runs.is_empty() {
            return Err(usage(format!("{}: no results folder", arg.display())));
        }
        for run in &row.runs {
            if !run.is_dir() {
                return Err(usage(format!("{}: not a results folder", run.display())));
            }
        }
    }
    if args.out.is_file() {
        return Err(usage(format!("--out {}: is a file", args.out.display())));
    }
    let cases = read_cases(&args.cases).map_err(usage)?;
    let c = optedit_eval::compare(&rows, &cases, args.rows).map_err(usage)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    write_atomic(&args.out.join("compare.md"), c.table.as_bytes())?;
    write_atomic(&args.out.join("compare-kinds.md"), c.by_kind.as_bytes())?;
    write_atomic(&args.out.join("compare-paired.md"), c.paired.as_bytes())?;
    if let Some(grid) = c.grid {
        write_png(
            &args.out.join("compare.png"),
            &image::DynamicImage::ImageRgb8(grid),
        )?;
    }
    print!("{}\n{}\n{}", c.table, c.by_kind, c.paired);
    if args.rows > 0 {
        eprintln!("optedit: grid rows: {}", c.shown.join(", "));
    }
    Ok(())
}

/// Runs `optedit eval make-cases`.
pub fn make(args: &MakeCasesArgs) -> Result<()> {
    let kinds = args
        .kinds
        .split(',')
        .filter(|k| !k.trim().is_empty())
        .map(|k| {
            CaseKind::parse(k, "--kinds").map_err(|e| usage(e.to_string().replace("line 0, ", "")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mask = mask_spec(&args.mask, "--mask")?;
    if args.out.exists() && !args.force {
        return Err(usage(format!(
            "--out {}: exists; pass --force to replace it",
            args.out.display()
        )));
    }
    if args.out.is_dir() {
        return Err(usage(format!("--out {}: is a folder", args.out.display())));
    }
    let options = MakeOptions {
        count: args.count,
        seed: args.seed,
        kinds,
        mask,
    };
    let cases = make_cases(&options).map_err(usage)?;
    write_atomic(&args.out, cases_to_jsonl(&cases).as_bytes())?;
    if !args.quiet {
        eprintln!(
            "optedit: wrote {} cases to {}",
            cases.len(),
            args.out.display()
        );
    }
    Ok(())
}

/// One bar over the items of a run; the message shows the current item and
/// the editor's stage and step.
struct Bar {
    bar: ProgressBar,
    id: String,
}

impl Bar {
    fn new(quiet: bool) -> Self {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{bar:30}] {pos}/{len} {elapsed}<{eta} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix("eval");
        bar.enable_steady_tick(Duration::from_millis(200));
        Self {
            bar,
            id: String::new(),
        }
    }

    fn event(&mut self, e: RunEvent<'_>) -> ControlFlow<()> {
        match e {
            RunEvent::Started { total, done } => {
                self.bar.set_length(total as u64);
                self.bar.set_position(done as u64);
                self.bar.reset_eta();
            }
            RunEvent::Item { id, .. } => {
                self.id = id.to_string();
                self.bar.set_message(self.id.clone());
            }
            RunEvent::Step(s) => {
                let loss = s
                    .loss
                    .as_ref()
                    .map(|l| format!(" loss {:.4}", l.total))
                    .unwrap_or_default();
                self.bar.set_message(format!(
                    "{} {} {}/{}{loss}",
                    self.id, s.stage, s.step, s.total
                ));
            }
            RunEvent::Finished { record, .. } => {
                self.bar.inc(1);
                if let Some(r) = record {
                    let verdict = if r.error.is_some() {
                        "failed"
                    } else if r.correct {
                        "right"
                    } else {
                        "wrong"
                    };
                    self.bar.set_message(format!("{} {verdict}", r.id));
                }
            }
            RunEvent::References { done, total } => {
                self.bar
                    .set_message(format!("reference features {done}/{total} classes"));
            }
        }
        ControlFlow::Continue(())
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Bar {
    /// An error ends the run: the bar leaves no stale line above the message.
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}

fn default_out(cases: &Path, options: &RunOptions) -> PathBuf {
    let stem = cases
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cases".into());
    let mut name = format!("{stem}-{}", options.method.word());
    if options.method == Method::OPTIMISE {
        name.push_str(&format!("-l{}", options.config.lambda));
    }
    if let Some(m) = options.mask_override {
        name.push_str(&format!("-{}", m.to_string().replace(':', "")));
    }
    PathBuf::from("target/eval").join(name)
}

fn model_paths(model: &Path, classifier: Option<&PathBuf>) -> Result<ModelPaths> {
    check_model_path(model, "--model")?;
    let mut paths = ModelPaths::demo(model);
    if let Some(c) = classifier {
        paths.classifier = c.clone();
    }
    Ok(paths)
}

/// Runs `optedit eval run` on backend `B`; prints the markdown row on stdout.
pub fn run<B: AutodiffBackend>(args: &EvalRunArgs, device: B::Device) -> Result<()> {
    let config = args.config.edit_config();
    config.validate().map_err(usage)?;
    let mask_override = args
        .mask_override
        .as_deref()
        .map(|m| mask_spec(m, "--mask-override"))
        .transpose()?;
    if !args.control_scale.is_finite() {
        return Err(usage(format!(
            "--control-scale {} must be finite",
            args.control_scale
        )));
    }
    let options = RunOptions {
        method: args.method,
        config,
        mask_override,
        control_scale: args.control_scale,
        negative_prompt: args.negative_prompt.clone(),
    };
    let mut cases =
        read_cases(&args.cases).with_context(|| format!("--cases {}", args.cases.display()))?;
    if let Some(n) = args.limit {
        cases.truncate(n);
    }
    if cases.is_empty() {
        return Err(usage(format!(
            "--cases {}: no cases to run",
            args.cases.display()
        )));
    }
    let paths = model_paths(&args.model.model, args.classifier.as_ref())?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(&args.cases, &options));
    let mut plan = RunPlan::new(options, out.clone());
    plan.resume = args.resume;
    plan.grid = args.grid;
    plan.references_per_class = args.reference_count;
    plan.references = args.references.clone();
    plan.inputs = vec![args.cases.clone(), paths.classifier.clone()];
    if args.reference_count == 0 {
        return Err(usage("--reference-count must be at least 1"));
    }

    let controls: Vec<_> = cases
        .iter()
        .flat_map(|c| c.controls.iter().copied())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut bar = Bar::new(args.quiet);
    bar.bar.set_message("loading models");
    let models = EvalModels::<B>::load(&paths, &controls, &device)
        .with_context(|| format!("--model {}", args.model.model.display()))?;
    let summary =
        optedit_eval::evaluate(&models, &cases, &plan, &mut |e: RunEvent<'_>| bar.event(e))
            .map_err(|e| match e {
                EvalError::InvalidArgument {
                    ref argument,
                    ref message,
                } if argument == "out" => usage(format!(
                    "--out {message}{}",
                    if plan.resume {
                        ""
                    } else {
                        " (pass --resume to continue)"
                    }
                )),
                other => anyhow::Error::from(other),
            })?;
    bar.finish();
    report(&summary, &out, args.quiet);
    Ok(())
}

fn report(summary: &Summary, out: &Path, quiet: bool) {
    println!("{}\n{}", Summary::markdown_header(), summary.markdown_row());
    if !quiet {
        eprintln!(
            "optedit: {} cases; results in {}",
            summary.cases,
            out.display()
        );
    }
}

/// Runs `optedit eval quality` on backend `B`; prints the markdown table.
pub fn quality<B: AutodiffBackend>(args: &QualityArgs, device: B::Device) -> Result<()> {
    if args.count == 0 || args.steps == 0 {
        return Err(usage("--count and --steps must be at least 1"));
    }
    if !(args.strength > 0.0 && args.strength <= 1.0) {
        return Err(usage(format!(
            "--strength {} must be in (0, 1]",
            args.strength
        )));
    }
    if !(args.guidance.is_finite() && args.guidance >= 0.0) {
        return Err(usage(format!(
            "--guidance {} must be finite and >= 0",
            args.guidance
        )));
    }
    let paths = model_paths(&args.model.model, args.classifier.as_ref())?;
    let mut bar = Bar::new(args.quiet);
    bar.bar.set_message("loading models");
    let pipeline = crate::models::load_pipeline::<B>(&paths.pipeline, &device)?;
    let judge = Judge::<B::InnerBackend>::load(&paths.classifier, &device)?;
    let options = QualityOptions {
        count: args.count,
        steps: args.steps,
        guidance: args.guidance,
        strength: args.strength,
        seed: args.seed,
        grid: args.grid,
    };
    let report = optedit_eval::quality(
        pipeline.sd(),
        &judge,
        &options,
        Some(&args.out),
        &mut |e: RunEvent<'_>| bar.event(e),
    )?;
    bar.finish();
    println!("{}", report.markdown());
    if !args.quiet {
        eprintln!("optedit: results in {}", args.out.display());
    }
    Ok(())
}
