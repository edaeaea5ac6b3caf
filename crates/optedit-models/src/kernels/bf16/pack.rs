//! Packing f32 operands into the bf16 layouts of `mod.rs`, 16 or 32
//! elements at a time with `vcvtne2ps2bf16` (round to nearest even), for
//! views whose rows or columns are contiguous; other strides go element by
//! element.

use std::arch::x86_64::*;

use super::{to_bf16, View, BLOCK, KSTEP, STRIP};

/// The load mask of the first `n` of 16 lanes.
#[inline]
fn mask(n: usize) -> u16 {
    if n >= 16 {
        u16::MAX
    } else {
        (1u16 << n) - 1
    }
}

/// Lanes `(2j, 2j + 1)` of the result take lanes `j` and `16 + j` of a
/// 32 x 16-bit vector: two vectors' elements interleaved.
const INTERLEAVE: [u16; 32] = {
    let mut idx = [0u16; 32];
    let mut j = 0;
    while j < 16 {
        idx[2 * j] = j as u16;
        idx[2 * j + 1] = 16 + j as u16;
        j += 1;
    }
    idx
};

/// The 32-bit lane offsets of one tile column: 16 rows of 16 lanes.
const ROWS: [i32; 16] = [
    0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240,
];

/// `lo` (first 16) and `hi` (next 16) rounded to 32 bf16, in order.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
fn round32(lo: __m512, hi: __m512) -> __m512i {
    // SAFETY: the bit patterns of 32 bf16 are a valid __m512i.
    unsafe { std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(hi, lo)) }
}

/// The first `n` (at most 16) f32 at `src` times `scale`, zeros after.
///
/// # Safety
/// `src..src + n` must be readable (masked lanes are not read).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn load(src: *const f32, n: usize, scale: f32) -> __m512 {
    // SAFETY: forwarded from the caller.
    let v = unsafe { _mm512_maskz_loadu_ps(mask(n), src) };
    if scale == 1.0 {
        v
    } else {
        _mm512_mul_ps(v, _mm512_set1_ps(scale))
    }
}

/// `n` (at most 32) f32 at `src` times `scale`, zero-padded, as 32 bf16.
///
/// # Safety
/// `src..src + n` must be readable.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn load32(src: *const f32, n: usize, scale: f32) -> __m512i {
    // SAFETY: forwarded from the caller; the second load reads nothing
    // when n <= 16.
    unsafe {
        round32(
            load(src, n.min(16), scale),
            load(src.wrapping_add(16), n.saturating_sub(16), scale),
        )
    }
}

/// Left strip `s` (rows `16 s ..`) of `a`, times `scale`, into `strip`
/// (`[step][row][32]`).
///
/// # Safety
/// The view must address `rows x k` elements; `strip` is zeroed.
pub(super) unsafe fn lhs_strip(
    a: View,
    s: usize,
    (rows, k): (usize, usize),
    scale: f32,
    strip: &mut [u16],
) {
    let height = STRIP.min(rows - s * STRIP);
    // SAFETY: forwarded from the caller.
    unsafe {
        if a.cs == 1 {
            lhs_rows(a, s, (height, k), scale, strip)
        } else if a.rs == 1 {
            lhs_columns(a, s, (height, k), scale, strip)
        } else {
            lhs_any(a, s, (height, k), scale, strip)
        }
    }
}

/// Rows contiguous: 32 elements of a row per step.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn lhs_rows(a: View, s: usize, (height, k): (usize, usize), scale: f32, strip: &mut [u16]) {
    for r in 0..height {
        let row = a.ptr.wrapping_offset((s * STRIP + r) as isize * a.rs);
        for q in 0..k.div_ceil(KSTEP) {
            let n = KSTEP.min(k - q * KSTEP);
            // SAFETY: elements q*32 .. q*32 + n of row r exist; the store
            // stays in block q, row r.
            unsafe {
                let v = load32(row.add(q * KSTEP), n, scale);
                _mm512_storeu_si512(strip.as_mut_ptr().add(q * BLOCK + r * KSTEP).cast(), v);
            }
        }
    }
}

/// Columns contiguous: a column pair of 16 rows at a time, interleaved and
/// scattered to the rows of the block.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn lhs_columns(
    a: View,
    s: usize,
    (height, k): (usize, usize),
    scale: f32,
    strip: &mut [u16],
) {
    let base = a.ptr.wrapping_offset((s * STRIP) as isize);
    // SAFETY: the constants are valid vectors.
    let (interleave, rows) = unsafe {
        (
            _mm512_loadu_si512(INTERLEAVE.as_ptr().cast()),
            _mm512_loadu_si512(ROWS.as_ptr().cast()),
        )
    };
    for p in (0..k).step_by(2) {
        let (q, kk) = (p / KSTEP, p % KSTEP);
        // SAFETY: columns p (and p + 1 when it exists) of rows 16 s ..
        // 16 s + height exist; the scatter writes lane pair kk/2 of the 16
        // rows of block q.
        unsafe {
            let lo = load(base.offset(p as isize * a.cs), height, scale);
            let hi = if p + 1 < k {
                load(base.offset((p + 1) as isize * a.cs), height, scale)
            } else {
                _mm512_setzero_ps()
            };
            let pairs = _mm512_permutexvar_epi16(interleave, round32(lo, hi));
            let dst = strip.as_mut_ptr().add(q * BLOCK + kk).cast::<i32>();
            _mm512_i32scatter_epi32::<4>(dst, rows, pairs);
        }
    }
}

/// Any strides, element by element.
///
/// # Safety
/// As [`lhs_strip`].
unsafe fn lhs_any(a: View, s: usize, (height, k): (usize, usize), scale: f32, strip: &mut [u16]) {
    for r in 0..height {
        for p in 0..k {
            // SAFETY: (16 s + r, p) lies inside the view.
            let x = unsafe { a.at(s * STRIP + r, p) };
            strip[(p / KSTEP) * BLOCK + r * KSTEP + p % KSTEP] = to_bf16(x * scale);
        }
    }
}

/// Right strip `t` (columns `16 t ..`) of `b` into `strip`
/// (`[step][pair row][column][2]`).
///
/// # Safety
/// The view must address `k x cols` elements; `strip` is zeroed.
pub(super) unsafe fn rhs_strip(b: View, t: usize, k: usize, cols: usize, strip: &mut [u16]) {
    let width = STRIP.min(cols - t * STRIP);
    // SAFETY: forwarded from the caller.
    unsafe {
        if b.cs == 1 {
            rhs_rows(b, t, width, k, strip)
        } else if b.rs == 1 {
            rhs_columns(b, t, width, k, strip)
        } else {
            rhs_any(b, t, width, k, strip)
        }
    }
}

/// Rows contiguous: two rows of 16 columns interleaved into one pair row.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn rhs_rows(b: View, t: usize, width: usize, k: usize, strip: &mut [u16]) {
    let base = b.ptr.wrapping_offset((t * STRIP) as isize);
    // SAFETY: a valid vector.
    let interleave = unsafe { _mm512_loadu_si512(INTERLEAVE.as_ptr().cast()) };
    for p in (0..k).step_by(2) {
        let (q, kk) = (p / KSTEP, p % KSTEP);
        // SAFETY: rows p (and p + 1 when it exists), columns 16 t .. 16 t
        // + width exist; the store is pair row kk/2 of block q.
        unsafe {
            let lo = load(base.offset(p as isize * b.rs), width, 1.0);
            let hi = if p + 1 < k {
                load(base.offset((p + 1) as isize * b.rs), width, 1.0)
            } else {
                _mm512_setzero_ps()
            };
            let pairs = _mm512_permutexvar_epi16(interleave, round32(lo, hi));
            _mm512_storeu_si512(
                strip.as_mut_ptr().add(q * BLOCK + (kk / 2) * KSTEP).cast(),
                pairs,
            );
        }
    }
}

/// Columns contiguous: 32 rows of one column are 16 row pairs, scattered
/// to that column of the 16 pair rows.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn rhs_columns(b: View, t: usize, width: usize, k: usize, strip: &mut [u16]) {
    // SAFETY: a valid vector.
    let rows = unsafe { _mm512_loadu_si512(ROWS.as_ptr().cast()) };
    for j in 0..width {
        let column = b.ptr.wrapping_offset((t * STRIP + j) as isize * b.cs);
        for q in 0..k.div_ceil(KSTEP) {
            let n = KSTEP.min(k - q * KSTEP);
            // SAFETY: rows q*32 .. q*32 + n of column j exist; the scatter
            // writes column j of the 16 pair rows of block q.
            unsafe {
                let pairs = load32(column.add(q * KSTEP), n, 1.0);
                let dst = strip.as_mut_ptr().add(q * BLOCK + 2 * j).cast::<i32>();
                _mm512_i32scatter_epi32::<4>(dst, rows, pairs);
            }
        }
    }
}

/// Any strides, element by element.
///
/// # Safety
/// As [`rhs_strip`].
unsafe fn rhs_any(b: View, t: usize, width: usize, k: usize, strip: &mut [u16]) {
    for p in 0..k {
        let row = (p / KSTEP) * BLOCK + ((p % KSTEP) / 2) * KSTEP;
        for j in 0..width {
            // SAFETY: (p, 16 t + j) lies inside the view.
            let x = unsafe { b.at(p, t * STRIP + j) };
            strip[row + j * 2 + p % 2] = to_bf16(x);
        }
    }
}
