//! `optedit batch` and `optedit batch merge`: thin wrappers of the facade's
//! batch runner ([`optedit::batch`]).

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use optedit::batch::{self, Batch, Plan, Runner, Shard, Status};
use optedit::Options;

use super::mask_options;
use crate::args::{BatchMergeArgs, BatchRunArgs};
use crate::models;
use crate::progress::{BatchBar, Reporter};
use crate::{LinesFailed, UsageError};

/// Runs `optedit batch` on backend `B`.
pub fn run<B: AutodiffBackend>(args: &BatchRunArgs, device: B::Device) -> Result<()> {
    let config = args.config.edit_config();
    config.validate().map_err(|e| UsageError(e.to_string()))?;
    let shard = args.shard.unwrap_or(Shard::ALL);
    // Cheap failures first: the job file, the output folder and its
    // records, before the models load.
    let jobs = Batch::read(&args.jobs)?;
    let plan = Plan::make(&jobs, &args.out, shard, args.resume).map_err(|e| match e {
        batch::BatchError::RecordsExist { path } => anyhow::Error::from(UsageError(format!(
            "{} holds the records of an earlier run: pass --resume to continue it, or choose another --out",
            path.display()
        ))),
        e => e.into(),
    })?;
    for dir in &args.controlnet {
        models::check_model_path(dir, "--controlnet")?;
    }
    let mut rep = Reporter::new(args.quiet);
    let pipeline = rep.phase("load", || -> Result<_> {
        let mut pipeline = models::load_pipeline::<B>(&args.model.model, &device)?;
        for dir in &args.controlnet {
            pipeline = pipeline
                .with_controlnet(dir)
                .with_context(|| format!("--controlnet {}", dir.display()))?;
        }
        Ok(pipeline)
    })?;
    let options = Options {
        method: args.method,
        config,
        max_side: args.max_size,
        mask_options: mask_options(args.mask_dilate, args.mask_blur),
        guidance_image: false,
        dtype: args.model.kernel_dtype(),
    };
    let runner = Runner::new(&pipeline, &args.out)
        .with_shard(shard)
        .with_options(options)
        .with_limit(args.limit);
    let mut bar = BatchBar::new(args.quiet);
    let summary = runner.run_plan(&jobs, plan, &mut bar)?;
    bar.finish();

    let of = if shard == Shard::ALL {
        String::new()
    } else {
        format!(" shard {shard}")
    };
    let mut what = format!(
        "{}{of}: {} edited, {} failed",
        args.jobs.display(),
        summary.ok,
        summary.failed
    );
    if summary.skipped > 0 {
        what.push_str(&format!(", {} done before", summary.skipped));
    }
    if summary.left > 0 {
        what.push_str(&format!(
            ", {} left (run again with --resume)",
            summary.left
        ));
    }
    what.push_str(&format!("; records in {}", summary.records.display()));
    rep.print_summary(&what);
    if summary.failed > 0 {
        return Err(LinesFailed(format!(
            "{} of {} lines failed; their errors are in {}",
            summary.failed,
            summary.ok + summary.failed,
            summary.records.display()
        ))
        .into());
    }
    Ok(())
}

/// Runs `optedit batch merge`.
pub fn merge(args: &BatchMergeArgs) -> Result<()> {
    if let Some(into) = &args.into {
        if args
            .records
            .iter()
            .any(|r| std::fs::canonicalize(r).ok() == std::fs::canonicalize(into).ok())
        {
            return Err(UsageError(format!(
                "--into {} is one of the records files; refusing to overwrite an input",
                into.display()
            ))
            .into());
        }
    }
    let jobs = Batch::read(&args.jobs)?;
    let records = batch::merge(&jobs, &args.records)?;
    if let Some(into) = &args.into {
        batch::write_records(into, &records)?;
    }
    if !args.quiet {
        let failed = records.iter().filter(|r| r.status == Status::Error).count();
        eprintln!(
            "optedit: {} records from {} file(s) cover {} exactly once: {} ok, {} failed{}",
            records.len(),
            args.records.len(),
            args.jobs.display(),
            records.len() - failed,
            failed,
            args.into
                .as_ref()
                .map(|p| format!("; merged into {}", p.display()))
                .unwrap_or_default()
        );
    }
    Ok(())
}
