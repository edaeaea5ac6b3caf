//! Loading diffusers / transformers safetensors weights into the burn modules.
//!
//! Module fields are named after diffusers' tensor paths, so most tensors load
//! under their own name; the rest follow the one two-way name table of
//! [`names`](crate::names), in the dialect the file speaks
//! ([`NameTable::for_file`]). Error messages name tensors as the file does.
//!
//! The adapter chain then (1) casts f16/bf16/f64 tensors to f32, (2) squeezes
//! 1x1 convolution weights (`[out, in, 1, 1]`) that load into a linear layer
//! (`proj_in`/`proj_out` of `Transformer2DModel` without linear projection, old
//! VAE attention), and (3) applies burn's `PyTorchToBurnAdapter` (linear
//! weights transposed, norm parameters renamed).
//!
//! After loading, every missing tensor, every unused tensor (except known
//! buffers such as `text_model.embeddings.position_ids`) and every shape
//! mismatch is an error naming the tensor.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use burn::tensor::{backend::Backend, DType, Shape};
use burn_store::{
    ApplyError, KeyRemapper, ModuleAdapter, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter,
    SafetensorsStore, TensorSnapshot,
};

use crate::error::{ModelError, Result};
use crate::names::{Library, NameTable, KNOWN_BUFFERS, NORM_PARAMS};

/// Refuses pickle checkpoints by their extension.
pub fn refuse_pickle(path: &Path) -> Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("bin" | "ckpt" | "pt" | "pth" | "pkl") => Err(ModelError::PickleRefused {
            path: path.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

/// Finds the weights file of a component folder: `<stem>.safetensors`, else
/// `<stem>.fp16.safetensors`; a pickle file in their place is refused.
pub fn find_weights(dir: &Path, stem: &str) -> Result<PathBuf> {
    for name in [
        format!("{stem}.safetensors"),
        format!("{stem}.fp16.safetensors"),
    ] {
        let p = dir.join(&name);
        if p.is_file() {
            return Ok(p);
        }
    }
    for ext in ["bin", "fp16.bin", "ckpt"] {
        let p = dir.join(format!("{stem}.{ext}"));
        if p.is_file() {
            return Err(ModelError::PickleRefused { path: p });
        }
    }
    Err(ModelError::MissingFile {
        path: dir.join(format!("{stem}.safetensors")),
        hint: format!("expected {stem}.safetensors or {stem}.fp16.safetensors"),
    })
}

/// Casts non-f32 floats to f32 and squeezes 1x1 conv weights into linear ones.
#[derive(Clone)]
struct CastSqueezeAdapter;

impl ModuleAdapter for CastSqueezeAdapter {
    fn adapt(&self, snapshot: &TensorSnapshot) -> TensorSnapshot {
        let is_linear_weight = snapshot.module_type().as_deref() == Some("Struct:Linear")
            && snapshot
                .path_stack
                .as_ref()
                .and_then(|p| p.last())
                .is_some_and(|n| n == "weight");
        let dims = snapshot.shape.to_vec();
        let squeeze = is_linear_weight && dims.len() == 4 && dims[2] == 1 && dims[3] == 1;
        let cast = matches!(snapshot.dtype, DType::F16 | DType::BF16 | DType::F64);
        if !squeeze && !cast {
            return snapshot.clone();
        }
        let shape: Vec<usize> = if squeeze {
            dims[..2].to_vec()
        } else {
            dims.clone()
        };
        let inner = snapshot.clone_data_fn();
        let target = shape.clone();
        let data_fn = Rc::new(move || {
            let mut data = inner()?;
            if matches!(data.dtype, DType::F16 | DType::BF16 | DType::F64) {
                data = data.convert::<f32>();
            }
            data.shape = Shape::from(target.clone());
            Ok(data)
        });
        TensorSnapshot::from_closure(
            data_fn,
            if cast { DType::F32 } else { snapshot.dtype },
            Shape::from(shape),
            snapshot.path_stack.clone().unwrap_or_default(),
            snapshot.container_stack.clone().unwrap_or_default(),
            snapshot.tensor_id.unwrap_or_default(),
        )
    }

    fn get_alternative_param_name(
        &self,
        _param_name: &str,
        _container_type: &str,
    ) -> Option<String> {
        None
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(self.clone())
    }
}

/// Checks the safetensors header, the dtypes and that the file holds every
/// byte the header promises (catches truncated or corrupt files with a clear
/// message), and returns the tensor names. Reads only the header: the tensor
/// data is read once, by the store.
fn check_file(path: &Path) -> Result<Vec<String>> {
    use std::io::Read;
    let corrupt = |message: String| ModelError::Safetensors {
        path: path.to_path_buf(),
        message,
    };
    let io = |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut len_bytes = [0u8; 8];
    file.read_exact(&mut len_bytes)
        .map_err(|_| corrupt("shorter than the 8-byte header length".into()))?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > 100_000_000 || 8 + header_len > file_len {
        return Err(corrupt(format!(
            "header length {header_len} does not fit a {file_len}-byte file"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header).map_err(io)?;
    let metadata: safetensors::tensor::Metadata =
        serde_json::from_slice(&header).map_err(|e| corrupt(format!("invalid header: {e}")))?;
    let tensors = metadata.tensors();
    let names: Vec<String> = tensors.keys().cloned().collect();
    let described = tensors
        .values()
        .map(|i| i.data_offsets.1)
        .max()
        .unwrap_or(0);
    let data_len = (file_len - 8 - header_len) as usize;
    if described != data_len {
        return Err(corrupt(format!(
            "the header describes {described} bytes of tensor data, the file holds {data_len} (truncated?)"
        )));
    }
    for (name, info) in tensors {
        use safetensors::Dtype as D;
        let size = match info.dtype {
            D::F32 => 4,
            D::F16 | D::BF16 => 2,
            D::F64 => 8,
            D::I64 if KNOWN_BUFFERS.contains(&name.as_str()) => 8,
            other => {
                return Err(ModelError::UnsupportedDtype {
                    path: path.to_path_buf(),
                    tensor: name,
                    dtype: format!("{other:?}"),
                })
            }
        };
        let (start, end) = info.data_offsets;
        let want = info.shape.iter().product::<usize>() * size;
        if end < start || end - start != want {
            return Err(corrupt(format!(
                "tensor `{name}` spans {} bytes, its shape {:?} needs {want}",
                end.saturating_sub(start),
                info.shape
            )));
        }
    }
    Ok(names)
}

/// burn's adapter loads a norm's `weight`/`bias` into `gamma`/`beta` through an
/// alternative-name lookup, which leaves the file's name in the unused list.
fn loaded_as_norm_param(name: &str, applied: &HashSet<String>) -> bool {
    NORM_PARAMS.iter().any(|(file, burn)| {
        name.strip_suffix(&format!(".{file}"))
            .is_some_and(|stem| applied.contains(&format!("{stem}.{burn}")))
    })
}

/// Loads `path`, a file written by `library`, into `module` with the name
/// table of the file's dialect, strictly: missing, unused and mis-shaped
/// tensors are errors naming the tensor as the file names it.
pub(crate) fn load_strict<B: Backend, M: ModuleSnapshot<B>>(
    module: &mut M,
    path: &Path,
    library: Library,
) -> Result<()> {
    refuse_pickle(path)?;
    if !path.is_file() {
        return Err(ModelError::MissingFile {
            path: path.to_path_buf(),
            hint: "weights file not found".into(),
        });
    }
    let file_names = check_file(path)?;
    let table = NameTable::for_file(library, file_names.iter().map(String::as_str));
    let diffusers_name = |burn_path: &str| table.file_name(burn_path);
    let remapper =
        KeyRemapper::from_patterns(table.load_patterns()).expect("key rules are valid regexes");
    let mut store = SafetensorsStore::from_file(path)
        .remap(remapper)
        .with_from_adapter(CastSqueezeAdapter.chain(PyTorchToBurnAdapter))
        .validate(false)
        .allow_partial(true);
    let result = store
        .apply_to::<B, M>(module)
        .map_err(|e| ModelError::Safetensors {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if let Some(err) = result.errors.first() {
        return Err(match err {
            ApplyError::ShapeMismatch {
                path: p,
                expected,
                found,
            } => ModelError::ShapeMismatch {
                path: path.to_path_buf(),
                tensor: diffusers_name(p),
                expected: expected.to_vec(),
                found: found.to_vec(),
            },
            ApplyError::DTypeMismatch { path: p, .. }
            | ApplyError::AdapterError { path: p, .. }
            | ApplyError::LoadError { path: p, .. } => ModelError::Load {
                path: path.to_path_buf(),
                tensor: diffusers_name(p),
                message: err.to_string(),
            },
        });
    }
    if let Some((first, _)) = result.missing.first() {
        return Err(ModelError::MissingTensor {
            path: path.to_path_buf(),
            tensor: diffusers_name(first),
            more: result.missing.len() - 1,
        });
    }
    let applied: HashSet<String> = result.applied.iter().cloned().collect();
    let unused: Vec<&String> = result
        .unused
        .iter()
        .filter(|u| !KNOWN_BUFFERS.contains(&u.as_str()))
        .filter(|u| !loaded_as_norm_param(u, &applied))
        .collect();
    if let Some(first) = unused.first() {
        return Err(ModelError::UnusedTensor {
            path: path.to_path_buf(),
            tensor: diffusers_name(first),
            more: unused.len() - 1,
        });
    }
    Ok(())
}
