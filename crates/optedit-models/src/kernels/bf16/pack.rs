//! Packing f32 operands into the bf16 layouts of `mod.rs`, 16 or 32
//! elements at a time with `vcvtne2ps2bf16` (round to nearest even), for
//! views whose rows or columns are contiguous; other strides go element by
//! element. Where the layout runs across the view's contiguous direction,
//! sixteen vectors are transposed in registers (four rounds of
//! `vpermt2d`) instead of scattered element by element.
//!
//! Every function writes its whole strip, padding included (zeros), so
//! the buffer needs no zeroing first.

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

/// The index vectors of [`transpose`]'s round `m`: the first for the
/// vectors whose bit `m` is clear, the second for their partners.
const TRANSPOSE: [[[i32; 16]; 2]; 4] = {
    let mut idx = [[[0i32; 16]; 2]; 4];
    let mut m = 0;
    while m < 4 {
        let bit = 1 << m;
        let mut l = 0;
        while l < 16 {
            let (lo, hi) = if l & bit == 0 {
                (l, l | bit)
            } else {
                (16 + (l & !bit), 16 + l)
            };
            idx[m][0][l as usize] = lo;
            idx[m][1][l as usize] = hi;
            l += 1;
        }
        m += 1;
    }
    idx
};

/// Transposes 16 vectors of 16 32-bit lanes: lane `l` of vector `v` goes
/// to lane `v` of vector `l`. Round `m` swaps bit `m` of the vector index
/// with bit `m` of the lane index.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose(v: &mut [__m512i; 16]) {
    for (m, [lo, hi]) in TRANSPOSE.iter().enumerate() {
        // SAFETY: the tables are 16 lanes each.
        let (lo, hi) = unsafe {
            (
                _mm512_loadu_si512(lo.as_ptr().cast()),
                _mm512_loadu_si512(hi.as_ptr().cast()),
            )
        };
        let bit = 1 << m;
        for a in (0..16).filter(|a| a & bit == 0) {
            let (x, y) = (v[a], v[a | bit]);
            v[a] = _mm512_permutex2var_epi32(x, lo, y);
            v[a | bit] = _mm512_permutex2var_epi32(x, hi, y);
        }
    }
}

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

/// Line `p` (of `k`) of a view whose lines start `stride` apart: its first
/// `n` (at most 16) elements times `scale`, zeros after; zeros for `p >=
/// k` (the padding of the last step).
///
/// # Safety
/// Lines below `k` must have `n` readable elements.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn line(
    base: *const f32,
    p: usize,
    stride: isize,
    (k, n): (usize, usize),
    scale: f32,
) -> __m512 {
    if p < k {
        // SAFETY: forwarded from the caller.
        unsafe { load(base.offset(p as isize * stride), n, scale) }
    } else {
        _mm512_setzero_ps()
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
/// (`[step][row][32]`, `k.div_ceil(32)` steps), padding zeroed.
///
/// # Safety
/// The view must address `rows x k` elements; `strip` must be writable
/// for the whole strip.
pub(super) unsafe fn lhs_strip(
    a: View,
    s: usize,
    (rows, k): (usize, usize),
    scale: f32,
    strip: *mut u16,
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
unsafe fn lhs_rows(a: View, s: usize, (height, k): (usize, usize), scale: f32, strip: *mut u16) {
    for r in 0..STRIP {
        let row = a.ptr.wrapping_offset((s * STRIP + r) as isize * a.rs);
        for q in 0..k.div_ceil(KSTEP) {
            let n = KSTEP.min(k - q * KSTEP);
            // SAFETY: elements q*32 .. q*32 + n of row r exist when r <
            // height; the store stays in block q, row r.
            unsafe {
                let v = if r < height {
                    load32(row.add(q * KSTEP), n, scale)
                } else {
                    _mm512_setzero_si512()
                };
                _mm512_storeu_si512(strip.add(q * BLOCK + r * KSTEP).cast(), v);
            }
        }
    }
}

/// Columns contiguous: per step, sixteen column pairs of the strip's rows
/// interleaved (a vector per pair, a lane per row), then transposed to a
/// vector per row.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn lhs_columns(a: View, s: usize, (height, k): (usize, usize), scale: f32, strip: *mut u16) {
    let base = a.ptr.wrapping_offset((s * STRIP) as isize);
    // SAFETY: a valid vector.
    let interleave = unsafe { _mm512_loadu_si512(INTERLEAVE.as_ptr().cast()) };
    let mut v = [_mm512_setzero_si512(); 16];
    for q in 0..k.div_ceil(KSTEP) {
        for (j, pair) in v.iter_mut().enumerate() {
            let p = q * KSTEP + 2 * j;
            // SAFETY: columns p and p + 1 of rows 16 s .. 16 s + height,
            // where they exist.
            let (lo, hi) = unsafe {
                (
                    line(base, p, a.cs, (k, height), scale),
                    line(base, p + 1, a.cs, (k, height), scale),
                )
            };
            *pair = _mm512_permutexvar_epi16(interleave, round32(lo, hi));
        }
        transpose(&mut v);
        for (r, row) in v.iter().enumerate() {
            // SAFETY: row r of block q.
            unsafe { _mm512_storeu_si512(strip.add(q * BLOCK + r * KSTEP).cast(), *row) };
        }
    }
}

/// Any strides, element by element.
///
/// # Safety
/// As [`lhs_strip`].
unsafe fn lhs_any(a: View, s: usize, (height, k): (usize, usize), scale: f32, strip: *mut u16) {
    // SAFETY: the strip is writable (the caller's).
    let strip = unsafe {
        std::ptr::write_bytes(strip, 0, k.div_ceil(KSTEP) * BLOCK);
        std::slice::from_raw_parts_mut(strip, k.div_ceil(KSTEP) * BLOCK)
    };
    for r in 0..height {
        for p in 0..k {
            // SAFETY: (16 s + r, p) lies inside the view.
            let x = unsafe { a.at(s * STRIP + r, p) };
            strip[(p / KSTEP) * BLOCK + r * KSTEP + p % KSTEP] = to_bf16(x * scale);
        }
    }
}

/// Right strip `t` (columns `16 t ..`) of `b` into `strip`
/// (`[step][pair row][column][2]`, `k.div_ceil(32)` steps), padding
/// zeroed.
///
/// # Safety
/// The view must address `k x cols` elements; `strip` must be writable
/// for the whole strip.
pub(super) unsafe fn rhs_strip(b: View, t: usize, k: usize, cols: usize, strip: *mut u16) {
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
unsafe fn rhs_rows(b: View, t: usize, width: usize, k: usize, strip: *mut u16) {
    let base = b.ptr.wrapping_offset((t * STRIP) as isize);
    // SAFETY: a valid vector.
    let interleave = unsafe { _mm512_loadu_si512(INTERLEAVE.as_ptr().cast()) };
    for p in (0..k.div_ceil(KSTEP) * KSTEP).step_by(2) {
        let (q, kk) = (p / KSTEP, p % KSTEP);
        // SAFETY: rows p and p + 1, columns 16 t .. 16 t + width, where
        // they exist.
        let (lo, hi) = unsafe {
            (
                line(base, p, b.rs, (k, width), 1.0),
                line(base, p + 1, b.rs, (k, width), 1.0),
            )
        };
        let pairs = _mm512_permutexvar_epi16(interleave, round32(lo, hi));
        // SAFETY: pair row kk/2 of block q.
        unsafe { _mm512_storeu_si512(strip.add(q * BLOCK + (kk / 2) * KSTEP).cast(), pairs) };
    }
}

/// Columns contiguous: per step, 32 rows of each of the strip's columns
/// are 16 row pairs (a vector per column, a lane per pair), transposed to
/// a vector per pair row.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn rhs_columns(b: View, t: usize, width: usize, k: usize, strip: *mut u16) {
    let mut v = [_mm512_setzero_si512(); 16];
    for q in 0..k.div_ceil(KSTEP) {
        let n = KSTEP.min(k - q * KSTEP);
        for (j, pairs) in v.iter_mut().enumerate() {
            let column = b.ptr.wrapping_offset((t * STRIP + j) as isize * b.cs);
            *pairs = if j < width {
                // SAFETY: rows q*32 .. q*32 + n of column j exist.
                unsafe { load32(column.add(q * KSTEP), n, 1.0) }
            } else {
                _mm512_setzero_si512()
            };
        }
        transpose(&mut v);
        for (p, row) in v.iter().enumerate() {
            // SAFETY: pair row p of block q.
            unsafe { _mm512_storeu_si512(strip.add(q * BLOCK + p * KSTEP).cast(), *row) };
        }
    }
}

/// Any strides, element by element.
///
/// # Safety
/// As [`rhs_strip`].
unsafe fn rhs_any(b: View, t: usize, width: usize, k: usize, strip: *mut u16) {
    // SAFETY: the strip is writable (the caller's).
    let strip = unsafe {
        std::ptr::write_bytes(strip, 0, k.div_ceil(KSTEP) * BLOCK);
        std::slice::from_raw_parts_mut(strip, k.div_ceil(KSTEP) * BLOCK)
    };
    for p in 0..k {
        let row = (p / KSTEP) * BLOCK + ((p % KSTEP) / 2) * KSTEP;
        for j in 0..width {
            // SAFETY: (p, 16 t + j) lies inside the view.
            let x = unsafe { b.at(p, t * STRIP + j) };
            strip[row + j * 2 + p % 2] = to_bf16(x);
        }
    }
}
