//! Matrix products on strided `f32` views through the `gemm` crate, and the
//! shared output pointer of jobs that write disjoint parts of one buffer.

use gemm::{gemm, Parallelism};

/// A raw pointer that jobs writing disjoint parts of one buffer share.
#[derive(Clone, Copy)]
pub(crate) struct Shared(pub *mut f32);
// SAFETY: each kernel using `Shared` has every job write a disjoint set of
// elements (the attention jobs their own heads and query rows, the
// convolution jobs their own samples and output rows), and the buffer
// outlives the parallel loop.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// The pointer (a method, so that closures capture the whole `Shared`).
    pub fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// Strides `(column, row)` of a matrix view, as `gemm` takes them.
pub(crate) type Strides = (isize, isize);

/// `dst (rows x cols) = alpha * dst + beta * lhs (rows x k) . rhs (k x cols)`,
/// with `alpha` applied only when `accumulate`.
///
/// # Safety
/// The pointers must address the whole views their strides describe.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn product(
    (rows, cols, k): (usize, usize, usize),
    dst: (*mut f32, Strides),
    accumulate: bool,
    lhs: (*const f32, Strides),
    rhs: (*const f32, Strides),
    beta: f32,
    parallelism: Parallelism,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm(
            rows,
            cols,
            k,
            dst.0,
            dst.1 .0,
            dst.1 .1,
            accumulate,
            lhs.0,
            lhs.1 .0,
            lhs.1 .1,
            rhs.0,
            rhs.1 .0,
            rhs.1 .1,
            1.0,
            beta,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// Nested parallelism for the products when `jobs` alone cannot keep the
/// threads busy.
pub(crate) fn nested(jobs: usize) -> Parallelism {
    if jobs < rayon::current_num_threads() {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    }
}
