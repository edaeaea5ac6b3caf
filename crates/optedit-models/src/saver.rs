//! Writing the burn modules back as diffusers / transformers safetensors.
//!
//! The inverse of [`loader`](crate::loader): burn's `BurnToPyTorchAdapter`
//! transposes linear weights and renames norm `gamma`/`beta` to
//! `weight`/`bias`, and the name table of [`names`](crate::names) undoes the
//! loader's renames in the current dialect ([`NameTable::for_save`]).
//!
//! `proj_in`/`proj_out` of a `Transformer2DModel` without linear projection are
//! written as `[out, in, 1, 1]` convolution weights, as diffusers expects. The
//! file is written to a temporary name and renamed, so a failed save never
//! leaves a half-written weights file.

use std::path::Path;
use std::rc::Rc;

use burn::tensor::{backend::Backend, Shape};
use burn_store::{
    BurnToPyTorchAdapter, HalfPrecisionAdapter, KeyRemapper, ModuleAdapter, ModuleSnapshot,
    ModuleStore, SafetensorsStore, TensorSnapshot,
};

use crate::error::{ModelError, Result};
use crate::names::{Library, NameTable};

/// Floating-point precision of a saved weights file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightPrecision {
    /// 32-bit floats (the training precision).
    #[default]
    F32,
    /// 16-bit floats for linear, convolution and embedding weights (half the
    /// size; norms stay f32). Loading casts them back to f32.
    F16,
}

/// Unsqueezes the linear `proj_in`/`proj_out` weights of transformer blocks
/// that diffusers stores as 1x1 convolutions.
#[derive(Clone)]
struct UnsqueezeProjAdapter;

impl ModuleAdapter for UnsqueezeProjAdapter {
    fn adapt(&self, snapshot: &TensorSnapshot) -> TensorSnapshot {
        let (Some(path), Some(containers)) = (
            snapshot.path_stack.as_ref(),
            snapshot.container_stack.as_ref(),
        ) else {
            return snapshot.clone();
        };
        let n = path.len();
        let m = containers.len();
        let is_proj_weight = n >= 2
            && m >= 2
            && path[n - 1] == "weight"
            && (path[n - 2] == "proj_in" || path[n - 2] == "proj_out")
            && containers[m - 2].ends_with("Transformer2DModel");
        if !is_proj_weight || snapshot.shape.num_dims() != 2 {
            return snapshot.clone();
        }
        let dims = snapshot.shape.to_vec();
        let target = vec![dims[0], dims[1], 1, 1];
        let inner = snapshot.clone_data_fn();
        let shape = target.clone();
        let data_fn = Rc::new(move || {
            let mut data = inner()?;
            data.shape = Shape::from(shape.clone());
            Ok(data)
        });
        TensorSnapshot::from_closure(
            data_fn,
            snapshot.dtype,
            Shape::from(target),
            snapshot.path_stack.clone().unwrap_or_default(),
            snapshot.container_stack.clone().unwrap_or_default(),
            snapshot.tensor_id.unwrap_or_default(),
        )
    }

    fn get_alternative_param_name(&self, _: &str, _: &str) -> Option<String> {
        None
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(self.clone())
    }
}

/// How a module is written: which library's names, precision and whether
/// transformer projections are 1x1 convolutions in the file.
#[derive(Clone, Copy)]
pub(crate) struct SaveFormat {
    /// Whose naming the file follows.
    pub library: Library,
    /// Weight precision.
    pub precision: WeightPrecision,
    /// `proj_in`/`proj_out` written as `[out, in, 1, 1]`.
    pub conv_proj: bool,
}

/// Serialises `module` to safetensors bytes with diffusers names.
pub(crate) fn to_safetensors_bytes<B: Backend, M: ModuleSnapshot<B>>(
    module: &M,
    format: SaveFormat,
) -> std::result::Result<Vec<u8>, String> {
    let remapper = KeyRemapper::from_patterns(NameTable::for_save(format.library).save_patterns())
        .expect("key rules are valid regexes");
    let base = SafetensorsStore::from_bytes(None).remap(remapper);
    let adapter: Box<dyn ModuleAdapter> = match (format.precision, format.conv_proj) {
        (WeightPrecision::F32, false) => Box::new(BurnToPyTorchAdapter),
        (WeightPrecision::F32, true) => Box::new(BurnToPyTorchAdapter.chain(UnsqueezeProjAdapter)),
        (WeightPrecision::F16, false) => {
            Box::new(BurnToPyTorchAdapter.chain(HalfPrecisionAdapter::new()))
        }
        (WeightPrecision::F16, true) => Box::new(
            BurnToPyTorchAdapter
                .chain(HalfPrecisionAdapter::new())
                .chain(UnsqueezeProjAdapter),
        ),
    };
    let mut store = base.with_to_adapter(BoxedAdapter(adapter));
    store.collect_from(module).map_err(|e| e.to_string())?;
    store.get_bytes().map_err(|e| e.to_string())
}

/// A boxed adapter as an adapter value.
struct BoxedAdapter(Box<dyn ModuleAdapter>);

impl ModuleAdapter for BoxedAdapter {
    fn adapt(&self, snapshot: &TensorSnapshot) -> TensorSnapshot {
        self.0.adapt(snapshot)
    }

    fn get_alternative_param_name(&self, name: &str, container: &str) -> Option<String> {
        self.0.get_alternative_param_name(name, container)
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(BoxedAdapter(self.0.clone_box()))
    }
}

/// Writes `module` to `path` (atomically: temporary file, then rename).
pub(crate) fn save_weights<B: Backend, M: ModuleSnapshot<B>>(
    module: &M,
    path: &Path,
    format: SaveFormat,
) -> Result<()> {
    let bytes =
        to_safetensors_bytes(module, format).map_err(|message| ModelError::Safetensors {
            path: path.to_path_buf(),
            message,
        })?;
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` through a temporary file in the same folder.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source: std::io::Error| ModelError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}
