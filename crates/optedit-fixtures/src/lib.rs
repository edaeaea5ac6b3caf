//! Test support for optedit: reads the golden parity cases of a fixture folder.
//!
//! A fixture folder (the in-repository copy at `tests/fixtures/`, or the folder
//! named by the environment variable `OPTEDIT_FIXTURES`) holds tiny Stable
//! Diffusion 1.5-topology models in the diffusers layout and `golden/cases.json`,
//! which lists every reference case produced by diffusers/transformers: its
//! file, model, parameters, tolerances and tensor shapes. Tests iterate over
//! those cases by their kind, never by hard-coded values, so the same tests run
//! unchanged on fixture sets made with other shapes and options.
//!
//! This crate is not published; it exists for the workspace's tests and benches.
#![deny(missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use serde::Deserialize;

pub mod alloc;
pub mod photo;
pub mod shapes;

pub use shapes::FixtureShapes;

/// The CPU backend the parity tests run on.
pub type TestBackend = burn::backend::Flex;
/// The autodiff CPU backend the gradient tests run on.
pub type TestAutodiffBackend = burn::backend::Autodiff<burn::backend::Flex>;

/// A backend for forward work and its autodiff wrapper: the pair a parity
/// test runs on. [`on_each_backend!`] runs a test generic over it once per
/// pair below.
pub trait Backends: 'static {
    /// The forward backend.
    type B: Backend;
    /// `B` under automatic differentiation.
    type AD: AutodiffBackend<InnerBackend = Self::B>;
}

/// burn's `Flex` backend, where `optedit_models::kernels` replaces burn's
/// attention, group norm, activations and convolution by its own kernels.
pub struct FlexKernels;

impl Backends for FlexKernels {
    type B = TestBackend;
    type AD = TestAutodiffBackend;
}

/// burn's `NdArray` backend, which takes none of optedit's kernels: every
/// operation is burn's own, the generic path the CUDA backend takes too, so
/// a parity test on it proves that path without a GPU.
pub struct Generic;

impl Backends for Generic {
    type B = burn_ndarray::NdArray<f32>;
    type AD = burn::backend::Autodiff<burn_ndarray::NdArray<f32>>;
}

/// Makes one `#[test]` per backend pair for each named function generic over
/// [`Backends`]: `flex::NAME` on [`FlexKernels`] and `generic::NAME` on
/// [`Generic`].
///
/// ```ignore
/// fn vae_decode_cases<T: optedit_fixtures::Backends>() { /* ... */ }
/// optedit_fixtures::on_each_backend!(vae_decode_cases);
/// ```
#[macro_export]
macro_rules! on_each_backend {
    ($($name:ident),+ $(,)?) => {
        /// The tests on `Flex` with optedit's kernels.
        mod flex {
            $(
                #[test]
                fn $name() {
                    super::$name::<$crate::FlexKernels>()
                }
            )+
        }
        /// The tests on burn's `NdArray` (no optedit kernel).
        mod generic {
            $(
                #[test]
                fn $name() {
                    super::$name::<$crate::Generic>()
                }
            )+
        }
    };
}

/// The fixture folder: `$OPTEDIT_FIXTURES`, or the in-repository copy.
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("OPTEDIT_FIXTURES") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => repo_fixtures_dir(),
    }
}

/// The in-repository fixture folder (`tests/fixtures`), whatever
/// `OPTEDIT_FIXTURES` names.
pub fn repo_fixtures_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let repo = root.parent().and_then(Path::parent).unwrap_or(root);
    repo.join("tests/fixtures")
}

/// The full-size SD 1.5 and ControlNet configs (no weights):
/// `sd15-configs/` of the fixture folder where it has one, else the
/// in-repository copy. They describe the released models, not the fixture
/// set, and the fixture generator does not write them, so a fixture set made
/// with other shapes need not carry them.
pub fn sd15_configs_dir() -> PathBuf {
    let named = fixtures_dir().join("sd15-configs");
    if named.is_dir() {
        named
    } else {
        repo_fixtures_dir().join("sd15-configs")
    }
}

/// Elementwise tolerance with `numpy.allclose` semantics.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
pub struct Tolerance {
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance (relative to the reference value).
    pub rtol: f64,
}

/// Shape and dtype of one stored tensor.
#[derive(Debug, Clone, Deserialize)]
pub struct TensorSpec {
    /// Shape as stored.
    pub shape: Vec<usize>,
    /// numpy dtype name (`float32`, `int64`, `uint8`).
    pub dtype: String,
}

/// One golden case from `cases.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    /// Golden file, relative to the fixture folder.
    pub file: String,
    /// Case name.
    pub case: String,
    /// Which model (folder) or function made it.
    pub model: String,
    /// Default tolerance for every output.
    pub tolerance: Tolerance,
    /// Per-output tolerance overrides.
    #[serde(default)]
    pub tolerance_overrides: HashMap<String, Tolerance>,
    /// Free-form parameters of the case.
    #[serde(default)]
    pub params: serde_json::Value,
    /// Input tensors.
    pub inputs: BTreeMap<String, TensorSpec>,
    /// Output tensors.
    pub outputs: BTreeMap<String, TensorSpec>,
}

#[derive(Deserialize)]
struct CasesFile {
    cases: Vec<Case>,
}

/// All cases of the fixture folder.
pub fn all_cases() -> Vec<Case> {
    let path = fixtures_dir().join("golden/cases.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let file: CasesFile = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()));
    file.cases
}

/// The cases whose name starts with `prefix`; panics if there are none, so a
/// test can never pass vacuously.
pub fn cases_with_prefix(prefix: &str) -> Vec<Case> {
    let cases: Vec<Case> = all_cases()
        .into_iter()
        .filter(|c| c.case.starts_with(prefix))
        .collect();
    assert!(
        !cases.is_empty(),
        "no case named {prefix}* in {}",
        fixtures_dir().display()
    );
    cases
}

/// The single case named `name`; panics if it is absent.
pub fn case(name: &str) -> Case {
    all_cases()
        .into_iter()
        .find(|c| c.case == name)
        .unwrap_or_else(|| panic!("no case {name} in {}", fixtures_dir().display()))
}

impl Case {
    /// Tolerance for the output `name` (with its `output.` prefix).
    pub fn tolerance_for(&self, name: &str) -> Tolerance {
        self.tolerance_overrides
            .get(name)
            .copied()
            .unwrap_or(self.tolerance)
    }

    /// Reads the case's golden file.
    pub fn load(&self) -> Golden {
        Golden::open(&fixtures_dir().join(&self.file))
    }

    /// Names of the outputs whose name starts with `prefix`, sorted.
    pub fn outputs_with_prefix(&self, prefix: &str) -> Vec<String> {
        self.outputs
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Names of the inputs whose name starts with `prefix`, sorted.
    pub fn inputs_with_prefix(&self, prefix: &str) -> Vec<String> {
        self.inputs
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Folder of the model the case was made with (first path of `model`).
    pub fn model_dir(&self) -> PathBuf {
        let first = self.model.split_whitespace().next().unwrap_or("");
        fixtures_dir().join(first)
    }
}

/// One tensor read from a golden file.
#[derive(Debug, Clone)]
pub struct GoldenTensor {
    /// Shape as stored.
    pub shape: Vec<usize>,
    /// Values converted to f64 (exact for f32, i64 up to 2^53 and u8).
    pub values: Vec<f64>,
}

impl GoldenTensor {
    /// Values as f32.
    pub fn f32s(&self) -> Vec<f32> {
        self.values.iter().map(|&v| v as f32).collect()
    }

    /// Values as i64.
    pub fn i64s(&self) -> Vec<i64> {
        self.values.iter().map(|&v| v as i64).collect()
    }

    /// As a float tensor of rank `D` (the stored rank must be `D`).
    pub fn tensor<B: Backend, const D: usize>(&self, device: &B::Device) -> Tensor<B, D> {
        assert_eq!(
            self.shape.len(),
            D,
            "rank of golden tensor {:?}",
            self.shape
        );
        Tensor::from_data(TensorData::new(self.f32s(), self.shape.clone()), device)
    }
}

/// The tensors of one golden safetensors file.
#[derive(Debug, Clone)]
pub struct Golden {
    path: PathBuf,
    tensors: HashMap<String, GoldenTensor>,
}

impl Golden {
    /// Reads every tensor of `path`.
    pub fn open(path: &Path) -> Self {
        let bytes =
            std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()));
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            let data = view.data();
            let values: Vec<f64> = match view.dtype() {
                safetensors::Dtype::F32 => data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                    .collect(),
                safetensors::Dtype::F64 => data
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
                safetensors::Dtype::F16 => data
                    .chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64())
                    .collect(),
                safetensors::Dtype::I64 => data
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
                    .collect(),
                safetensors::Dtype::I32 => data
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f64)
                    .collect(),
                safetensors::Dtype::U8 => data.iter().map(|&b| b as f64).collect(),
                safetensors::Dtype::BOOL => data.iter().map(|&b| (b != 0) as u8 as f64).collect(),
                other => panic!(
                    "{}: tensor {name} has unsupported dtype {other:?}",
                    path.display()
                ),
            };
            tensors.insert(
                name,
                GoldenTensor {
                    shape: view.shape().to_vec(),
                    values,
                },
            );
        }
        Self {
            path: path.to_path_buf(),
            tensors,
        }
    }

    /// The tensor `name`; panics naming the file if absent.
    pub fn get(&self, name: &str) -> &GoldenTensor {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("{} has no tensor {name}", self.path.display()))
    }

    /// Whether the file holds `name`.
    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Float tensor `name` of rank `D`.
    pub fn tensor<B: Backend, const D: usize>(
        &self,
        name: &str,
        device: &B::Device,
    ) -> Tensor<B, D> {
        self.get(name).tensor(device)
    }
}

/// Values of a float tensor as f64.
pub fn values<B: Backend, const D: usize>(t: &Tensor<B, D>) -> Vec<f64> {
    t.to_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("float tensor")
        .into_iter()
        .map(|v| v as f64)
        .collect()
}

/// Asserts `got` matches `want` elementwise within `tol`; the message names the
/// tensor, the first failing index, the worst difference and the share of the
/// tolerance used.
pub fn assert_close(what: &str, got: &[f64], want: &[f64], tol: Tolerance) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: {} values, reference has {}",
        got.len(),
        want.len()
    );
    let mut worst_abs = 0.0f64;
    let mut worst_usage = 0.0f64;
    let mut failures = 0usize;
    let mut first = None;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let diff = (g - w).abs();
        let limit = tol.atol + tol.rtol * w.abs();
        if !diff.is_finite() || diff > limit {
            failures += 1;
            first.get_or_insert((i, g, w));
        }
        worst_abs = worst_abs.max(diff);
        if limit > 0.0 {
            worst_usage = worst_usage.max(diff / limit);
        }
    }
    if let Some((i, g, w)) = first {
        panic!(
            "{what}: {failures}/{} values outside atol={} rtol={} (first at {i}: got {g}, want {w}; worst |diff| {worst_abs:.3e}, tolerance usage {worst_usage:.2})",
            got.len(),
            tol.atol,
            tol.rtol
        );
    }
}

/// Compares a tensor with the golden output `name` of `case`, using the case's
/// tolerance for it, and checks the shape.
pub fn assert_output<B: Backend, const D: usize>(
    case: &Case,
    golden: &Golden,
    name: &str,
    got: &Tensor<B, D>,
) {
    let want = golden.get(name);
    assert_eq!(
        got.dims().to_vec(),
        want.shape,
        "{}: {name} has shape {:?}, reference {:?}",
        case.case,
        got.dims(),
        want.shape
    );
    assert_close(
        &format!("{}: {name}", case.case),
        &values(got),
        &want.values,
        case.tolerance_for(name),
    );
}
