//! The arithmetic of the kernels' matrix products: f32, or bf16 operands
//! with f32 accumulation (PyTorch's CPU `autocast` to bfloat16 does the
//! same to matmuls and convolutions). Group norm, softmax and the
//! activations keep f32 statistics either way.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

use super::bf16::{bf16_unit, Bf16Unit};
use crate::error::{ModelError, Result};

/// How the kernels multiply: the process-wide choice of
/// [`set_compute_dtype`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ComputeDtype {
    /// f32 operands and accumulation (the default).
    #[default]
    F32,
    /// Operands rounded to bf16 (nearest even), products accumulated in f32,
    /// on the CPU's AMX tiles or AVX512-BF16 instructions. Only on CPUs that
    /// have one of them ([`bf16_unit`]).
    Bf16,
}

impl ComputeDtype {
    /// bf16 where the CPU multiplies bf16 natively ([`bf16_unit`] is
    /// `Some`), f32 elsewhere.
    pub fn auto() -> Self {
        if bf16_unit().is_some() {
            ComputeDtype::Bf16
        } else {
            ComputeDtype::F32
        }
    }

    /// The name `--dtype` takes: `f32` or `bf16`.
    pub fn word(self) -> &'static str {
        match self {
            ComputeDtype::F32 => "f32",
            ComputeDtype::Bf16 => "bf16",
        }
    }
}

impl fmt::Display for ComputeDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// `f32`, `bf16`, or `auto` ([`ComputeDtype::auto`], resolved when parsed).
impl FromStr for ComputeDtype {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(ComputeDtype::F32),
            "bf16" => Ok(ComputeDtype::Bf16),
            "auto" => Ok(ComputeDtype::auto()),
            other => Err(ModelError::InvalidInput {
                argument: "dtype".into(),
                message: format!("unknown compute dtype `{other}` (f32, bf16 or auto)"),
            }),
        }
    }
}

/// 0: f32, 1: bf16.
static DTYPE: AtomicU8 = AtomicU8::new(0);

/// The dtype a value of [`DTYPE`] stands for.
fn decode(code: u8) -> ComputeDtype {
    match code {
        1 => ComputeDtype::Bf16,
        _ => ComputeDtype::F32,
    }
}

/// Sets how the kernels multiply, for the whole process (every thread and
/// every model) until the next call; returns the previous choice.
///
/// It reaches the products of [`conv2d`](super::conv2d),
/// [`multi_head_attention`](super::multi_head_attention) and
/// [`linear`](super::linear) on `Flex` and `Autodiff<Flex>`, forward and
/// backward; other backends keep their own arithmetic.
///
/// # Errors
/// [`ModelError::InvalidInput`] (argument `dtype`) for `Bf16` on a CPU
/// with neither AMX-BF16 nor AVX512-BF16.
pub fn set_compute_dtype(dtype: ComputeDtype) -> Result<ComputeDtype> {
    if dtype == ComputeDtype::Bf16 && bf16_unit().is_none() {
        return Err(ModelError::InvalidInput {
            argument: "dtype".into(),
            message: "bf16 needs a CPU with AMX-BF16 or AVX512-BF16; this one has neither \
                      (use f32, or auto to pick bf16 only where it is native)"
                .into(),
        });
    }
    let code = match dtype {
        ComputeDtype::F32 => 0,
        ComputeDtype::Bf16 => 1,
    };
    Ok(decode(DTYPE.swap(code, Ordering::Relaxed)))
}

/// The current choice of [`set_compute_dtype`].
pub fn compute_dtype() -> ComputeDtype {
    decode(DTYPE.load(Ordering::Relaxed))
}

/// The unit the products use now: `None` for f32.
pub(crate) fn active_unit() -> Option<Bf16Unit> {
    match compute_dtype() {
        ComputeDtype::F32 => None,
        ComputeDtype::Bf16 => bf16_unit(),
    }
}

/// Runs `f` with the compute dtype set to `dtype`, and puts the previous
/// choice back afterwards (also when `f` panics). The choice is
/// process-wide: calls on other threads meanwhile see it too.
///
/// # Errors
/// As [`set_compute_dtype`]; `f` does not run then.
pub fn with_compute_dtype<T>(dtype: ComputeDtype, f: impl FnOnce() -> T) -> Result<T> {
    struct Restore(ComputeDtype);
    impl Drop for Restore {
        fn drop(&mut self) {
            // The previous choice was accepted once, so it is again.
            let _ = set_compute_dtype(self.0);
        }
    }
    let _restore = Restore(set_compute_dtype(dtype)?);
    Ok(f())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_words_parse_and_print() {
        assert_eq!("f32".parse::<ComputeDtype>().unwrap(), ComputeDtype::F32);
        assert_eq!("bf16".parse::<ComputeDtype>().unwrap(), ComputeDtype::Bf16);
        assert_eq!(
            "auto".parse::<ComputeDtype>().unwrap(),
            ComputeDtype::auto()
        );
        let err = "fp16".parse::<ComputeDtype>().unwrap_err();
        assert!(err.to_string().contains("fp16"), "{err}");
        for d in [ComputeDtype::F32, ComputeDtype::Bf16] {
            assert_eq!(d.to_string().parse::<ComputeDtype>().unwrap(), d);
        }
        assert_eq!(
            ComputeDtype::auto(),
            if bf16_unit().is_some() {
                ComputeDtype::Bf16
            } else {
                ComputeDtype::F32
            }
        );
    }
}
