//! Loading the Stable Diffusion folder and the ControlNets, with clear
//! errors for paths that are not diffusers folders.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::tensor::backend::Backend;
use optedit_edit::SdPipeline;
use optedit_models::ControlNetModel;

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
pub fn load_pipeline<B: Backend>(dir: &Path, device: &B::Device) -> Result<SdPipeline<B>> {
    check_model_path(dir, "--model")?;
    SdPipeline::load(dir, device).with_context(|| format!("--model {}", dir.display()))
}

/// The ControlNets of the groups, each folder loaded once (frozen); returns
/// the models and, for each group, the index of its model.
pub fn load_controlnets<B: Backend>(
    specs: &[ControlSpec],
    device: &B::Device,
) -> Result<(Vec<ControlNetModel<B>>, Vec<usize>)> {
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut models = Vec::new();
    let mut index = Vec::new();
    for spec in specs {
        let key = std::fs::canonicalize(&spec.model).unwrap_or_else(|_| spec.model.clone());
        if let Some(i) = seen.iter().position(|k| *k == key) {
            index.push(i);
            continue;
        }
        check_model_path(&spec.model, "--controlnet")?;
        let model = ControlNetModel::<B>::load(&spec.model, device)
            .with_context(|| format!("--controlnet {}", spec.model.display()))?
            .no_grad();
        seen.push(key);
        models.push(model);
        index.push(models.len() - 1);
    }
    Ok((models, index))
}
