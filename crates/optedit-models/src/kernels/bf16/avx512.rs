//! The AVX512-BF16 kernel: a 16 x 16 f32 block in sixteen registers,
//! one `vdpbf16ps` per row and column pair.

use std::arch::x86_64::*;
use std::ops::Range;

use super::{Out, Packed, BLOCK, KSTEP, STRIP};

/// One 16 x 16 block of left strip `s` and right strip `t`.
///
/// # Safety
/// The CPU must have AVX512-BF16, and the strips must exist.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn block(packed: &Packed, s: usize, t: usize, acc: &mut [f32; 256]) {
    let mut c = [_mm512_setzero_ps(); STRIP];
    let (a, b) = (packed.lhs(s), packed.rhs(t));
    for q in 0..packed.ksteps {
        for p in 0..KSTEP / 2 {
            // SAFETY: inside the strips' step q.
            unsafe {
                let bv: __m512bh = std::mem::transmute(_mm512_loadu_si512(
                    b.add(q * BLOCK + p * KSTEP) as *const __m512i,
                ));
                for (r, c) in c.iter_mut().enumerate() {
                    let pair =
                        (a.add(q * BLOCK + r * KSTEP + 2 * p) as *const i32).read_unaligned();
                    let av: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair));
                    *c = _mm512_dpbf16_ps(*c, av, bv);
                }
            }
        }
    }
    for (r, c) in c.iter().enumerate() {
        // SAFETY: 16 floats into row r of acc.
        unsafe { _mm512_storeu_ps(acc.as_mut_ptr().add(r * STRIP), *c) };
    }
}

/// Left strips `lrange` times right strips `rrange`, written to `out`.
///
/// # Safety
/// AVX512-BF16 must be available, and the ranges this job's.
pub(crate) unsafe fn job(packed: &Packed, lrange: Range<usize>, rrange: Range<usize>, out: Out) {
    let mut acc = [0f32; 256];
    for s in lrange {
        for t in rrange.clone() {
            // SAFETY: forwarded from the caller.
            unsafe {
                block(packed, s, t, &mut acc);
                out.write(&acc, STRIP, (s * STRIP, t * STRIP), (STRIP, STRIP));
            }
        }
    }
}
