//! bf16 matrix products with f32 accumulation on x86-64: Intel AMX tiles
//! (`tdpbf16ps`) or AVX512-BF16 (`vdpbf16ps`), whichever the CPU has,
//! chosen at run time.
//!
//! Hand-written because no maintained Rust crate multiplies bf16 on AMX
//! (the `gemm` crate, which the f32 kernels use, converts bf16 to f32 and
//! multiplies in f32; burn's `Flex` does the same). The operands are f32
//! in memory; packing rounds them to bf16 (round to nearest even, as
//! PyTorch's `autocast` does) into the layouts the instructions read, and
//! every product accumulates in f32:
//!
//! - the left operand in strips of 16 rows, each k-step of 32 a `16 x 32`
//!   bf16 block (one AMX tile, 64 bytes a row);
//! - the right operand in strips of 16 columns, each k-step of 32 sixteen
//!   rows of column pairs `(b[2p][j], b[2p+1][j])` (AMX's "VNNI" layout:
//!   one tile, or one 512-bit register a row for `vdpbf16ps`).
//!
//! AMX needs the Linux kernel's permission to use tile data
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`, the request
//! PyTorch's oneDNN makes); the first use asks for it, and a refusal falls
//! back to AVX512-BF16 or to f32.

use std::sync::OnceLock;

use rayon::prelude::*;

use super::product::{Shared, Strides};

#[cfg(target_arch = "x86_64")]
mod amx;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod pack;

/// The bf16 instruction set the products use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Bf16Unit {
    /// Intel Advanced Matrix Extensions: `tdpbf16ps` on 16 x 16 tiles.
    Amx,
    /// AVX512-BF16: `vdpbf16ps` on 512-bit registers.
    Avx512,
}

impl std::fmt::Display for Bf16Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Bf16Unit::Amx => "AMX-BF16",
            Bf16Unit::Avx512 => "AVX512-BF16",
        })
    }
}

/// The bf16 unit of this CPU (asking the kernel for AMX tile data on the
/// first call), or `None` when it has neither. `OPTEDIT_BF16_UNIT=avx512`
/// skips AMX (to test the other path on an AMX machine).
pub fn bf16_unit() -> Option<Bf16Unit> {
    static UNIT: OnceLock<Option<Bf16Unit>> = OnceLock::new();
    *UNIT.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Option<Bf16Unit> {
    let skip_amx = std::env::var("OPTEDIT_BF16_UNIT").is_ok_and(|v| v == "avx512");
    // Packing runs on AVX-512 (BF16 and BW) whichever unit multiplies.
    if !avx512_bf16() {
        return None;
    }
    if !skip_amx && amx::available() {
        return Some(Bf16Unit::Amx);
    }
    Some(Bf16Unit::Avx512)
}

/// AVX512-F, -BW and -BF16.
#[cfg(target_arch = "x86_64")]
pub(crate) fn avx512_bf16() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512bf16")
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Option<Bf16Unit> {
    None
}

/// `f32` rounded to the nearest bf16 (ties to even), as its bits.
#[inline]
pub(crate) fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        // A quiet NaN with the sign kept.
        return ((bits >> 16) | 0x40) as u16;
    }
    let rounding = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(rounding) >> 16) as u16
}

/// Rows (left operand) or columns (right operand) of one strip.
const STRIP: usize = 16;
/// The `k` of one step (one tile's width in bf16).
const KSTEP: usize = 32;
/// bf16 elements of one packed block (one tile).
const BLOCK: usize = STRIP * KSTEP;

/// A strided `f32` matrix view: element `(i, j)` at `ptr + i * rs + j * cs`.
#[derive(Clone, Copy)]
struct View {
    ptr: *const f32,
    cs: isize,
    rs: isize,
}

// SAFETY: the packing jobs only read through the view, and the caller of
// `product` keeps the matrix alive and unchanged for the whole call.
unsafe impl Send for View {}
unsafe impl Sync for View {}

impl View {
    /// # Safety
    /// `(i, j)` must lie inside the view.
    #[inline]
    unsafe fn at(self, i: usize, j: usize) -> f32 {
        // SAFETY: forwarded from the caller.
        unsafe { *self.ptr.offset(i as isize * self.rs + j as isize * self.cs) }
    }
}

/// `strips` strips of `ksteps` packed blocks, the first `full` of them
/// written by `fill(index, strip)` (which writes its whole strip, padding
/// included), the rest zeroed; in parallel when `parallel`. The buffer is
/// not zeroed first, so packing is one pass over it (unit tests fill it
/// with NaN first, so that an element a packer misses shows in the
/// products).
fn packed(
    (strips, ksteps): (usize, usize),
    full: usize,
    parallel: bool,
    fill: impl Fn(usize, *mut u16) + Sync + Send,
) -> Vec<u16> {
    use std::mem::MaybeUninit;
    let len = strips * ksteps * BLOCK;
    let mut out: Vec<MaybeUninit<u16>> = Vec::with_capacity(len);
    // SAFETY: MaybeUninit needs no initialisation.
    unsafe { out.set_len(len) };
    #[cfg(test)]
    out.fill(MaybeUninit::new(0x7fc1)); // a bf16 NaN
    let one = |(s, strip): (usize, &mut [MaybeUninit<u16>])| {
        if s < full {
            fill(s, strip.as_mut_ptr().cast());
        } else {
            strip.fill(MaybeUninit::new(0));
        }
    };
    let chunks = out.chunks_mut(ksteps * BLOCK).enumerate();
    if parallel {
        chunks.par_bridge().for_each(one);
    } else {
        chunks.for_each(one);
    }
    let mut out = std::mem::ManuallyDrop::new(out);
    // SAFETY: every strip was written whole (above), and MaybeUninit<u16>
    // has u16's layout.
    unsafe { Vec::from_raw_parts(out.as_mut_ptr().cast::<u16>(), len, out.capacity()) }
}

/// Packs `rows x k` of `a`, times `scale`, into strips of 16 rows
/// (zero-padded to `strips` strips and `ksteps` steps of 32).
///
/// # Safety
/// The view must address `rows x k` elements.
unsafe fn pack_lhs(
    a: View,
    scale: f32,
    (rows, k): (usize, usize),
    shape: (usize, usize),
    parallel: bool,
) -> Vec<u16> {
    // SAFETY: strips below rows / 16 (rounded up) have rows.
    packed(shape, rows.div_ceil(STRIP), parallel, |s, strip| unsafe {
        pack::lhs_strip(a, s, (rows, k), scale, strip)
    })
}

/// Packs `k x cols` of `b` into strips of 16 columns of row pairs
/// (zero-padded to `strips` strips and `ksteps` steps of 32).
///
/// # Safety
/// The view must address `k x cols` elements.
unsafe fn pack_rhs(
    b: View,
    (k, cols): (usize, usize),
    shape: (usize, usize),
    parallel: bool,
) -> Vec<u16> {
    // SAFETY: strips below cols / 16 (rounded up) have columns.
    packed(shape, cols.div_ceil(STRIP), parallel, |t, strip| unsafe {
        pack::rhs_strip(b, t, k, cols, strip)
    })
}

/// Columns of one job: a block of right strips whose packed data stays in
/// the core's L2 cache while the left strips stream past.
const JOB_COLS: usize = 128;
/// Rows of one job.
const JOB_ROWS: usize = 256;

/// A right operand (`k x cols`) rounded and packed once, for any number
/// of products.
pub(crate) struct PackedRhs {
    data: Vec<u16>,
    k: usize,
    cols: usize,
    strips: usize,
}

/// Packs the right operand `rhs` (`k x cols`), strips in parallel when
/// `parallel`.
///
/// # Safety
/// The pointer must address the whole view its strides describe.
pub(crate) unsafe fn pack_right(
    rhs: (*const f32, Strides),
    (k, cols): (usize, usize),
    parallel: bool,
) -> PackedRhs {
    // Strips come in pairs: the AMX kernel computes 2 x 2 tiles at once.
    let strips = cols.div_ceil(2 * STRIP) * 2;
    let b = View {
        ptr: rhs.0,
        cs: rhs.1 .0,
        rs: rhs.1 .1,
    };
    let data = if k == 0 || cols == 0 {
        Vec::new()
    } else {
        // SAFETY: the view is the caller's.
        unsafe { pack_rhs(b, (k, cols), (strips, k.div_ceil(KSTEP)), parallel) }
    };
    PackedRhs {
        data,
        k,
        cols,
        strips,
    }
}

/// A left operand (`rows x k`) rounded and packed once, for any number of
/// products (a convolution's weight, shared by every tile of output
/// positions).
pub(crate) struct PackedLhs {
    data: Vec<u16>,
    rows: usize,
    k: usize,
    strips: usize,
}

/// Packs `scale` times the left operand `lhs` (`rows x k`), strips in
/// parallel when `parallel`.
///
/// # Safety
/// The pointer must address the whole view its strides describe.
pub(crate) unsafe fn pack_left(
    lhs: (*const f32, Strides),
    (rows, k): (usize, usize),
    scale: f32,
    parallel: bool,
) -> PackedLhs {
    // Strips come in pairs: the AMX kernel computes 2 x 2 tiles at once.
    let strips = rows.div_ceil(2 * STRIP) * 2;
    let a = View {
        ptr: lhs.0,
        cs: lhs.1 .0,
        rs: lhs.1 .1,
    };
    let data = if rows == 0 || k == 0 {
        Vec::new()
    } else {
        // SAFETY: the view is the caller's.
        unsafe { pack_lhs(a, scale, (rows, k), (strips, k.div_ceil(KSTEP)), parallel) }
    };
    PackedLhs {
        data,
        rows,
        k,
        strips,
    }
}

/// `dst (rows x cols) = [dst +] (beta * lhs (rows x k)) . rhs (k x cols)`
/// for a right operand packed by [`pack_right`], in bf16 (`beta * lhs`
/// rounded) with f32 accumulation on `unit` (`dst` read only when
/// `accumulate`), split over the rayon pool when `parallel`.
///
/// # Safety
/// The pointers must address the whole views their strides describe, and
/// `unit` must be one [`bf16_unit`] returned.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn product_packed(
    unit: Bf16Unit,
    rows: usize,
    dst: (*mut f32, Strides),
    accumulate: bool,
    lhs: (*const f32, Strides),
    rhs: &PackedRhs,
    beta: f32,
    parallel: bool,
) {
    // beta scales the left operand before rounding (as PyTorch scales the
    // queries of bf16 attention), so that whole blocks go straight to dst.
    // SAFETY: forwarded from the caller.
    unsafe {
        let lhs = pack_left(lhs, (rows, rhs.k), beta, parallel);
        product_both(unit, dst, accumulate, &lhs, rhs, parallel)
    }
}

/// `dst (rows x cols) = [dst +] lhs (rows x k) . rhs (k x cols)` for
/// operands packed by [`pack_left`] and [`pack_right`], on `unit`, split
/// over the rayon pool when `parallel`.
///
/// # Safety
/// `dst` must address the whole view its strides describe, and `unit`
/// must be one [`bf16_unit`] returned.
pub(crate) unsafe fn product_both(
    unit: Bf16Unit,
    dst: (*mut f32, Strides),
    accumulate: bool,
    lhs: &PackedLhs,
    rhs: &PackedRhs,
    parallel: bool,
) {
    assert_eq!(lhs.k, rhs.k, "the operands' inner sizes differ");
    let (rows, cols, k) = (lhs.rows, rhs.cols, rhs.k);
    if rows == 0 || cols == 0 || (k == 0 && accumulate) {
        return;
    }
    if k == 0 {
        // An empty sum: zeros.
        for i in 0..rows {
            for j in 0..cols {
                // SAFETY: (i, j) lies inside dst.
                unsafe { *dst.0.offset(i as isize * dst.1 .1 + j as isize * dst.1 .0) = 0.0 };
            }
        }
        return;
    }
    let (lstrips, rstrips) = (lhs.strips, rhs.strips);
    let ksteps = k.div_ceil(KSTEP);
    let out = Out {
        ptr: Shared(dst.0),
        cs: dst.1 .0,
        rs: dst.1 .1,
        rows,
        cols,
        accumulate,
    };
    let jobs: Vec<(usize, usize)> = (0..rows.div_ceil(JOB_ROWS))
        .flat_map(|i| (0..cols.div_ceil(JOB_COLS)).map(move |j| (i, j)))
        .collect();
    let run = |&(i, j): &(usize, usize)| {
        let lrange = (i * JOB_ROWS / STRIP)..((i + 1) * JOB_ROWS / STRIP).min(lstrips);
        let rrange = (j * JOB_COLS / STRIP)..((j + 1) * JOB_COLS / STRIP).min(rstrips);
        let packed = Packed {
            a: &lhs.data,
            b: &rhs.data,
            ksteps,
        };
        // SAFETY: the job writes its own rows and columns of dst.
        unsafe {
            #[cfg(target_arch = "x86_64")]
            match unit {
                Bf16Unit::Amx => amx::job(&packed, lrange, rrange, out),
                Bf16Unit::Avx512 => avx512::job(&packed, lrange, rrange, out),
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                let _ = (unit, &packed, lrange, rrange, out);
                unreachable!("no bf16 unit off x86-64")
            }
        }
    };
    if parallel && jobs.len() > 1 {
        jobs.par_iter().for_each(run);
    } else {
        jobs.iter().for_each(run);
    }
}

/// The packed operands.
struct Packed<'a> {
    a: &'a [u16],
    b: &'a [u16],
    ksteps: usize,
}

impl Packed<'_> {
    /// Left strip `s`, first step.
    fn lhs(&self, s: usize) -> *const u16 {
        self.a[s * self.ksteps * BLOCK..].as_ptr()
    }

    /// Right strip `t`, first step.
    fn rhs(&self, t: usize) -> *const u16 {
        self.b[t * self.ksteps * BLOCK..].as_ptr()
    }
}

/// Where results go.
#[derive(Clone, Copy)]
struct Out {
    ptr: Shared,
    cs: isize,
    rs: isize,
    rows: usize,
    cols: usize,
    accumulate: bool,
}

impl Out {
    /// Writes the `h x w` f32 block `block` (row stride `stride`) at rows
    /// from `i0` and columns from `j0`, clipped to the output.
    ///
    /// # Safety
    /// The block's rows and columns must be this job's.
    unsafe fn write(
        self,
        block: &[f32],
        stride: usize,
        (i0, j0): (usize, usize),
        (h, w): (usize, usize),
    ) {
        let h = h.min(self.rows.saturating_sub(i0));
        let w = w.min(self.cols.saturating_sub(j0));
        for r in 0..h {
            let src = &block[r * stride..r * stride + w];
            let row = self
                .ptr
                .at(0)
                .wrapping_offset((i0 + r) as isize * self.rs + j0 as isize * self.cs);
            if self.cs == 1 {
                // SAFETY: w contiguous elements of this job's row.
                let dst = unsafe { std::slice::from_raw_parts_mut(row, w) };
                if self.accumulate {
                    dst.iter_mut().zip(src).for_each(|(d, v)| *d += v);
                } else {
                    dst.iter_mut().zip(src).for_each(|(d, v)| *d = *v);
                }
                continue;
            }
            for (c, &v) in src.iter().enumerate() {
                let d = row.wrapping_offset(c as isize * self.cs);
                // SAFETY: inside dst, in this job's block.
                unsafe {
                    *d = if self.accumulate { *d + v } else { v };
                }
            }
        }
    }
}
