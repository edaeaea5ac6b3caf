//! Loading the Stable Diffusion folder and the ControlNets, with clear
//! errors for paths that are not diffusers folders.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::tensor::backend::AutodiffBackend;
use optedit::Pipeline;

use crate::controls::ControlSpec;

/// Fails early, naming `path`, unless it is a folder: pickle checkpoints are
/// refused with the safetensors hint, single files with a folder hint.
pub fn check_model_path(path: &Path, flag: &str) -> Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    if !path.exists() {
        bail!("{flag} {}: no such folder", path.display());
    }
    optedit_models::loader::refuse_pickle(path)?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext.eq_ignore_ascii_case("safetensors") {
        bail!(
            "{flag} {}: single-file checkpoints are not supported; give a diffusers folder (with safetensors weights)",
            path.display()
        );
    }
    bail!(
        "{flag} {}: not a folder (expected a diffusers model folder)",
        path.display()
    )
}

/// The Stable Diffusion pipeline of a diffusers folder.
pub fn load_pipeline<B: AutodiffBackend>(dir: &Path, device: &B::Device) -> Result<Pipeline<B>> {
    check_model_path(dir, "--model")?;
    Pipeline::load(dir, device).with_context(|| format!("--model {}", dir.display()))
}

/// Adds the ControlNets of the groups to `pipeline`, each folder once;
/// returns it and, for each group, the index of its ControlNet.
pub fn add_controlnets<B: AutodiffBackend>(
    mut pipeline: Pipeline<B>,
    specs: &[ControlSpec],
) -> Result<(Pipeline<B>, Vec<usize>)> {
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut index = Vec::new();
    for spec in specs {
        let key = std::fs::canonicalize(&spec.model).unwrap_or_else(|_| spec.model.clone());
        if let Some(i) = seen.iter().position(|k| *k == key) {
            index.push(i);
            continue;
        }
        check_model_path(&spec.model, "--controlnet")?;
        pipeline = pipeline
            .with_controlnet(&spec.model)
            .with_context(|| format!("--controlnet {}", spec.model.display()))?;
        seen.push(key);
        index.push(seen.len() - 1);
    }
    Ok((pipeline, index))
}
