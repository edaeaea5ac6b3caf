//! Peak memory of one edit as a function of the number of optimised steps
//! `t_u`: each run is a fresh child process that reports its peak resident
//! memory (`VmHWM`). Because every gradient step's autodiff graph is dropped
//! before the next, the peak stays flat as `t_u` grows.
//!
//! ```text
//! cargo run --release -p optedit-examples --example edit_memory [SD_FOLDER]
//! ```

use std::process::Command;
use std::time::Instant;

use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
use burn::backend::{Autodiff, Flex};
use optedit_edit::{EditCondition, EditConfig, Editor, FullMask, SdPipeline, Silent};
use optedit_examples::{image_size, input_image, model_dir, peak_kib};

/// Balanced checkpointing recomputes memory-bound operations in the backward
/// pass instead of keeping them: less peak memory, same speed and numbers.
type B = Autodiff<Flex, BalancedCheckpointing>;

fn child(t_u: usize) -> Result<(), Box<dyn std::error::Error>> {
    let device = Default::default();
    let pipeline = SdPipeline::<B>::load(&model_dir(), &device)?;
    let image = input_image::<B>(image_size(&pipeline), &device);
    let source = pipeline.encode_prompt("a photo", None)?;
    let target = EditCondition::text(pipeline.encode_prompt("a painting", None)?);
    let config = EditConfig {
        num_steps: 10,
        strength: 1.0,
        t_u,
        k: 2,
        ..EditConfig::default()
    };
    let before = peak_kib();
    let t0 = Instant::now();
    Editor::new(&pipeline, config)?.edit(image, &source, &target, &mut FullMask, &mut Silent)?;
    println!(
        "{t_u} {before} {} {:.3}",
        peak_kib(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(t_u) = std::env::var("OPTEDIT_MEMORY_CHILD") {
        return child(t_u.parse()?);
    }
    let exe = std::env::current_exe()?;
    println!(
        "| t_u | peak RSS after loading (MiB) | peak RSS after the edit (MiB) | edit time (s) |"
    );
    println!("|---|---|---|---|");
    for t_u in [0, 1, 2, 5, 10] {
        let out = Command::new(&exe)
            .args(std::env::args().skip(1))
            .env("OPTEDIT_MEMORY_CHILD", t_u.to_string())
            .output()?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
        }
        let line = String::from_utf8(out.stdout)?;
        let v: Vec<&str> = line.split_whitespace().collect();
        let mib = |s: &str| s.parse::<f64>().unwrap_or(0.0) / 1024.0;
        println!(
            "| {} | {:.1} | {:.1} | {} |",
            v[0],
            mib(v[1]),
            mib(v[2]),
            v[3]
        );
    }
    Ok(())
}
