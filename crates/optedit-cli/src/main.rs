//! # optedit
//!
//! Command-line tool for optimisation-based multi-modal semantic image
//! editing (arXiv 2311.16882) with Stable Diffusion 1.5 and ControlNet, built
//! on `optedit-edit`:
//!
//! - `optedit edit`: edit an image with a target prompt and any number of
//!   ControlNet groups (`--controlnet DIR` followed by one of `--pose`,
//!   `--scribble`, `--edges auto|FILE`, `--layout`, and optionally
//!   `--control-scale`), by the optimisation method or the DiffEdit / SDEdit
//!   baselines (`--method`);
//! - `optedit mask`: the estimated DiffEdit mask;
//! - `optedit reconstruct`: DDIM inversion round trip, with its PSNR;
//! - `optedit pose-render`: OpenPose JSON to the skeleton image;
//! - `optedit edges`: the Canny edge map;
//! - `optedit batch`: many edits from a JSON Lines job file, the models
//!   loaded once, resumable (`--resume`) and shardable (`--shard i/n`);
//!   `optedit batch merge` checks the shards' records;
//! - `optedit eval make-cases|run|quality`: the evaluation harness of the
//!   demo model (`optedit-eval`).
//!
//! Inputs are read upright by their EXIF orientation. `optedit edit` scales
//! inputs larger than `--max-size` down (768 for SD models by default);
//! images whose sides are not multiples of the VAE factor (8 for SD) are
//! centre-cropped to the largest multiple of it; the result is put back at
//! the input's size. Outputs are PNG, JPEG or WebP by their extension,
//! written atomically, never over an input; `optedit edit --json` prints a
//! summary on stdout. Images and the edit itself go through the `optedit`
//! facade crate.
//! Errors are one line, `error: ...`, naming the file or flag at fault; the
//! exit status is 2 for usage errors and 1 for the rest; `optedit batch`
//! exits with 3 when it finished but some lines failed (recorded).
#![deny(missing_docs)]

mod args;
mod commands;
mod controls;
mod io;
mod models;
mod progress;

use std::fmt;
use std::process::ExitCode;

use anyhow::Result;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::args::{BatchCommand, Cli, Command, DeviceKind, EvalCommand};

/// A command-line usage error: exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A batch that ran to its end with failed lines (recorded): exit status 3.
#[derive(Debug)]
pub struct LinesFailed(pub String);

impl fmt::Display for LinesFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LinesFailed {}

/// The autodiff backends the edits run on: the facade's, with balanced
/// checkpointing ([`optedit::CpuBackend`]).
mod backend {
    /// CPU.
    pub type Cpu = optedit::CpuBackend;
    /// CUDA.
    #[cfg(feature = "cuda")]
    pub type Gpu = optedit::CudaBackend;

    /// The error of `--device cuda` in a build without CUDA.
    #[cfg(not(feature = "cuda"))]
    pub fn no_cuda() -> anyhow::Error {
        anyhow::Error::from(crate::UsageError(
            "--device cuda: this optedit was built without CUDA support; rebuild with `--features cuda` (cargo build --release -p optedit-cli --features cuda)"
                .into(),
        ))
    }
}

/// Sets `--dtype` and `--weight-cache-mib` for the process, then calls
/// `f::<B>(args..., device)` with the backend of `--device`.
macro_rules! dispatch {
    ($model:expr, $($f:ident)::+ ($($arg:expr),*)) => {{
        optedit_models::kernels::set_compute_dtype($model.kernel_dtype())
            .map_err(|e| UsageError(format!("--dtype {}: {e}", $model.dtype)))?;
        optedit_models::kernels::set_weight_cache_limit(
            $model.weight_cache_mib.saturating_mul(1 << 20),
        );
        match $model.device {
            DeviceKind::Cpu => $($f)::+::<backend::Cpu>($($arg,)* Default::default()),
            DeviceKind::Cuda => {
                #[cfg(feature = "cuda")]
                {
                    $($f)::+::<backend::Gpu>($($arg,)* optedit_models::device::cuda()?)
                }
                #[cfg(not(feature = "cuda"))]
                {
                    Err(backend::no_cuda())
                }
            }
        }
    }};
}

fn run(cli: &Cli, matches: &ArgMatches) -> Result<()> {
    let sub = matches
        .subcommand()
        .map(|(_, m)| m)
        .expect("clap requires a subcommand");
    match &cli.command {
        Command::Edit(a) => {
            let specs = controls::parse_groups(sub)?;
            dispatch!(a.model, commands::edit::run(a, &specs))
        }
        Command::Mask(a) => {
            let specs = controls::parse_groups(sub)?;
            dispatch!(a.model, commands::mask::run(a, &specs))
        }
        Command::Reconstruct(a) => dispatch!(a.model, commands::reconstruct::run(a)),
        Command::PoseRender(a) => commands::pose_render::run(a),
        Command::Edges(a) => commands::edges::run(a),
        Command::Batch(a) => match (&a.command, &a.run) {
            (Some(BatchCommand::Merge(m)), _) => commands::batch::merge(m),
            (None, Some(r)) => dispatch!(r.model, commands::batch::run(r)),
            (None, None) => Err(UsageError(
                "optedit batch needs --model, --jobs and --out (or `merge`)".into(),
            )
            .into()),
        },
        Command::Eval(EvalCommand::MakeCases(a)) => commands::eval::make(a),
        Command::Eval(EvalCommand::Run(a)) => dispatch!(a.model, commands::eval::run(a)),
        Command::Eval(EvalCommand::Compare(a)) => commands::eval::compare(a),
        Command::Eval(EvalCommand::Quality(a)) => {
            dispatch!(a.model, commands::eval::quality(a))
        }
    }
}

/// The error and its causes on one line.
/// The error and its causes on one line (a cause already quoted by the
/// message before it is not repeated).
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn main() -> ExitCode {
    optedit_models::allocator::tune_allocator();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match run(&cli, &matches) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(if e.is::<UsageError>() {
                2
            } else if e.is::<LinesFailed>() {
                3
            } else {
                1
            })
        }
    }
}
