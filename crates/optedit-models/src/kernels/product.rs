//! Matrix products on strided `f32` views, through the `gemm` crate in f32
//! or the bf16 kernels of `bf16.rs` (as [`compute_dtype`] says), and the
//! shared output pointer of jobs that write disjoint parts of one buffer.
//! An operand used by many products (attention's keys and values, a
//! convolution's weight) is prepared once ([`prepare`], [`prepare_left`]):
//! in bf16 that is its packing.
//!
//! [`compute_dtype`]: super::compute_dtype

use gemm::{gemm, Parallelism};

use super::bf16::{
    pack_left, pack_right, product_both, product_packed, Bf16Unit, PackedLhs, PackedRhs,
};

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
/// with `alpha` applied only when `accumulate`, in the current
/// [`compute_dtype`](super::compute_dtype).
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
    let parallel = matches!(parallelism, Parallelism::Rayon(_));
    // SAFETY: forwarded from the caller; the prepared operand lives until
    // the product returns.
    unsafe {
        let rhs = prepare((k, cols), rhs, parallel);
        product_with(rows, dst, accumulate, lhs, &rhs, beta, parallelism)
    }
}

/// [`product`] in f32 through `gemm`.
///
/// # Safety
/// As [`product`].
#[allow(clippy::too_many_arguments)]
unsafe fn f32_product(
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

/// A right operand ready for any number of products with the same right
/// side (attention's keys and values, shared by every query tile): the f32
/// view itself, or its bf16 packing when the products run in bf16.
pub(crate) enum Right {
    /// An f32 view: `(k, cols)`, pointer and strides.
    View((usize, usize), *const f32, Strides),
    /// Packed for the bf16 unit.
    Packed(Bf16Unit, PackedRhs),
}

// SAFETY: the view is only read, and the caller of `prepare` keeps the
// matrix alive and unchanged while the `Right` is in use.
unsafe impl Send for Right {}
unsafe impl Sync for Right {}

/// `rhs` (`k x cols`) ready for [`product_with`], in the current compute
/// dtype; packing splits over the pool when `parallel`.
///
/// # Safety
/// The pointer must address the whole view its strides describe, for as
/// long as the result is used.
pub(crate) unsafe fn prepare(
    (k, cols): (usize, usize),
    rhs: (*const f32, Strides),
    parallel: bool,
) -> Right {
    match super::precision::active_unit() {
        // SAFETY: forwarded from the caller.
        Some(unit) => Right::Packed(unit, unsafe { pack_right(rhs, (k, cols), parallel) }),
        None => Right::View((k, cols), rhs.0, rhs.1),
    }
}

/// [`product`] with a prepared right operand: `dst (rows x cols) = [dst +]
/// beta * lhs (rows x k) . rhs`.
///
/// # Safety
/// As [`product`].
pub(crate) unsafe fn product_with(
    rows: usize,
    dst: (*mut f32, Strides),
    accumulate: bool,
    lhs: (*const f32, Strides),
    rhs: &Right,
    beta: f32,
    parallelism: Parallelism,
) {
    match rhs {
        // SAFETY: forwarded from the caller.
        Right::View((k, cols), ptr, strides) => unsafe {
            f32_product(
                (rows, *cols, *k),
                dst,
                accumulate,
                lhs,
                (*ptr, *strides),
                beta,
                parallelism,
            )
        },
        // SAFETY: forwarded from the caller.
        Right::Packed(unit, packed) => unsafe {
            let parallel = matches!(parallelism, Parallelism::Rayon(_));
            product_packed(*unit, rows, dst, accumulate, lhs, packed, beta, parallel)
        },
    }
}

/// A left operand ready for any number of products with the same left
/// side (a convolution's weight, shared by every tile of output
/// positions): the f32 view itself, or its bf16 packing when the products
/// run in bf16.
pub(crate) enum Left {
    /// An f32 view: `(rows, k)`, pointer and strides.
    View((usize, usize), *const f32, Strides),
    /// Packed for the bf16 unit.
    Packed(Bf16Unit, PackedLhs),
}

impl Left {
    /// Rows `rows` of an f32 view, itself a view; `None` for a packed
    /// operand.
    pub(crate) fn rows(&self, rows: std::ops::Range<usize>) -> Option<Left> {
        match self {
            Left::View((total, k), ptr, strides) => {
                debug_assert!(rows.end <= *total);
                let at = rows.start as isize * strides.1;
                Some(Left::View(
                    (rows.len(), *k),
                    ptr.wrapping_offset(at),
                    *strides,
                ))
            }
            Left::Packed(..) => None,
        }
    }
}

// SAFETY: as for `Right`: the view is only read, and the caller of
// `prepare_left` keeps the matrix alive and unchanged while in use.
unsafe impl Send for Left {}
unsafe impl Sync for Left {}

/// `lhs` (`rows x k`) ready for [`product_prepared`], in the current
/// compute dtype; packing splits over the pool when `parallel`.
///
/// # Safety
/// The pointer must address the whole view its strides describe, for as
/// long as the result is used.
pub(crate) unsafe fn prepare_left(
    (rows, k): (usize, usize),
    lhs: (*const f32, Strides),
    parallel: bool,
) -> Left {
    match super::precision::active_unit() {
        // SAFETY: forwarded from the caller.
        Some(unit) => Left::Packed(unit, unsafe { pack_left(lhs, (rows, k), 1.0, parallel) }),
        None => Left::View((rows, k), lhs.0, lhs.1),
    }
}

/// `dst = [dst +] lhs . rhs` for prepared operands. When only the left is
/// packed (the compute dtype changed between the two preparations), the
/// right is packed here, so the product runs in the left's dtype.
///
/// # Safety
/// As [`product`]; both operands' views must still be alive.
pub(crate) unsafe fn product_prepared(
    dst: (*mut f32, Strides),
    accumulate: bool,
    lhs: &Left,
    rhs: &Right,
    parallelism: Parallelism,
) {
    let parallel = matches!(parallelism, Parallelism::Rayon(_));
    match (lhs, rhs) {
        // SAFETY: forwarded from the caller.
        (Left::View((rows, _), ptr, strides), rhs) => unsafe {
            product_with(
                *rows,
                dst,
                accumulate,
                (*ptr, *strides),
                rhs,
                1.0,
                parallelism,
            )
        },
        // SAFETY: forwarded from the caller.
        (Left::Packed(unit, a), Right::Packed(_, b)) => unsafe {
            product_both(*unit, dst, accumulate, a, b, parallel)
        },
        // SAFETY: forwarded from the caller.
        (Left::Packed(unit, a), Right::View(shape, ptr, strides)) => unsafe {
            let b = pack_right((*ptr, *strides), *shape, parallel);
            product_both(*unit, dst, accumulate, a, &b, parallel)
        },
    }
}
