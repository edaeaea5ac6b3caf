//! Resumable checkpoints: the module and optimiser state as burn records
//! (parameter ids included, so the optimiser's moments reattach), plus a
//! `state.json` written last, so an interrupted save is never picked up.

use std::path::{Path, PathBuf};

use burn::module::{AutodiffModule, Module};
use burn::optim::Optimizer;
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::{Deserialize, Serialize};

use crate::error::{io, Result, TrainError};

/// What `state.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Steps completed.
    pub step: usize,
    /// File of the module record (relative to the folder).
    pub model: String,
    /// File of the optimiser record.
    pub optimizer: String,
}

/// The checkpoint folder of one training stage.
#[derive(Debug, Clone)]
pub struct Checkpointer {
    dir: PathBuf,
    keep_models: bool,
}

fn recorder() -> BinFileRecorder<FullPrecisionSettings> {
    BinFileRecorder::<FullPrecisionSettings>::new()
}

impl Checkpointer {
    /// Uses (and creates) `dir`.
    pub fn new(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            keep_models: false,
        })
    }

    /// With `keep`, a save leaves the earlier checkpoints' module records in
    /// place (for [`crate::average`]); their optimiser records are removed
    /// either way.
    pub fn keep_models(mut self, keep: bool) -> Self {
        self.keep_models = keep;
        self
    }

    /// The module records in the folder (`model-<step>.bin`, the current
    /// checkpoint's and any kept ones), by step, oldest first.
    pub fn model_records(&self) -> Result<Vec<(usize, PathBuf)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let path = entry.map_err(io(&self.dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let step = name
                .strip_prefix("model-")
                .and_then(|n| n.strip_suffix(".bin"))
                .and_then(|n| n.parse::<usize>().ok());
            if let Some(step) = step {
                out.push((step, path));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last completed checkpoint, if any.
    pub fn state(&self) -> Result<Option<CheckpointState>> {
        let path = self.dir.join("state.json");
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| TrainError::Checkpoint {
                path,
                message: e.to_string(),
            })
    }

    /// Saves `model` and `optim` after `step` steps, then removes the
    /// previous checkpoint's files.
    pub fn save<B, M, O>(&self, step: usize, model: &M, optim: &O) -> Result<()>
    where
        B: AutodiffBackend,
        M: AutodiffModule<B>,
        O: Optimizer<M, B>,
    {
        let previous = self.state()?;
        let model_name = format!("model-{step:07}");
        let optim_name = format!("optim-{step:07}");
        let err = |path: PathBuf| {
            move |e: burn::record::RecorderError| TrainError::Checkpoint {
                path,
                message: e.to_string(),
            }
        };
        let model_path = self.dir.join(&model_name);
        model
            .clone()
            .save_file(&model_path, &recorder())
            .map_err(err(model_path.clone()))?;
        let optim_path = self.dir.join(&optim_name);
        Recorder::<B>::record(&recorder(), optim.to_record(), optim_path.clone())
            .map_err(err(optim_path.clone()))?;
        let state = CheckpointState {
            step,
            model: format!("{model_name}.bin"),
            optimizer: format!("{optim_name}.bin"),
        };
        let path = self.dir.join("state.json");
        let tmp = self.dir.join("state.json.partial");
        let text = serde_json::to_string_pretty(&state).expect("serialisable");
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        if let Some(prev) = previous {
            if prev.model != state.model {
                if !self.keep_models {
                    let _ = std::fs::remove_file(self.dir.join(prev.model));
                }
                let _ = std::fs::remove_file(self.dir.join(prev.optimizer));
            }
        }
        Ok(())
    }

    /// Loads the last checkpoint into `model` and `optim`; returns the step
    /// to continue from (0 when there is no checkpoint).
    pub fn resume<B, M, O>(&self, model: M, optim: O, device: &B::Device) -> Result<(M, O, usize)>
    where
        B: AutodiffBackend,
        M: AutodiffModule<B>,
        O: Optimizer<M, B>,
    {
        let Some(state) = self.state()? else {
            return Ok((model, optim, 0));
        };
        let model_path = self.dir.join(&state.model);
        let model = model
            .load_file(model_path.with_extension(""), &recorder(), device)
            .map_err(|e| TrainError::Checkpoint {
                path: model_path.clone(),
                message: e.to_string(),
            })?;
        let optim_path = self.dir.join(&state.optimizer);
        let record = Recorder::<B>::load(&recorder(), optim_path.with_extension(""), device)
            .map_err(|e| TrainError::Checkpoint {
                path: optim_path.clone(),
                message: e.to_string(),
            })?;
        Ok((model, optim.load_record(record), state.step))
    }
}

/// Loads a module record written by [`Checkpointer::save`] (`path`: the
/// `model-<step>.bin` file) into `model`, on any backend.
pub fn load_model<B: Backend, M: Module<B>>(
    path: &Path,
    model: M,
    device: &B::Device,
) -> Result<M> {
    model
        .load_file(path.with_extension(""), &recorder(), device)
        .map_err(|e| TrainError::Checkpoint {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}
