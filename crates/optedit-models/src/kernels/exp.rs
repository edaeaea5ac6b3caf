//! Vectorised `exp` for softmax rows.
//!
//! Cephes' single-precision `expf` (range reduction by `ln 2` in two parts
//! and a degree-5 polynomial, relative error about 1e-7), written without
//! branches so that the compiler vectorises the loop, and compiled three
//! times: for AVX-512, for AVX2 + FMA, and for the baseline target, chosen
//! at run time. A NaN input stays NaN (the clamps are comparisons, not
//! `max`/`min`, which would drop it).

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` split so that `n * LN2_HI` is exact for the `n` that occur.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Adding and subtracting `1.5 * 2^23` rounds to the nearest integer.
const ROUND: f32 = 12_582_912.0;
/// Inputs are clamped to the range where `exp` is a normal `f32` and the
/// exponent `n` at most 127.
const LOW: f32 = -87.336_55;
const HIGH: f32 = 88.376_26;
const LANES: usize = 16;

/// `exp(x)` of one element, inlined into the vectorised loops.
#[inline(always)]
pub(super) fn exp1(x: f32) -> f32 {
    let x = if x < LOW { LOW } else { x };
    let x = if x > HIGH { HIGH } else { x };
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5.000_000_1e-1;
    let y = p * r * r + r + 1.0;
    // The low bits of `t` hold `n`; `2^n` is `n + 127` in the exponent field
    // (integer arithmetic on the bits, no float-to-int conversion, which
    // would not vectorise).
    let two_n = t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23;
    y * f32::from_bits(two_n)
}

/// `xs[i] = exp(xs[i] - shift)`; returns the sum of the new values.
#[inline(always)]
fn exp_sum_body(xs: &mut [f32], shift: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = xs.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (x, a) in chunk.iter_mut().zip(acc.iter_mut()) {
            *x = exp1(*x - shift);
            *a += *x;
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for x in chunks.into_remainder() {
        *x = exp1(*x - shift);
        sum += *x;
    }
    sum
}

/// Largest element (NaN elements are never chosen; `-inf` for none).
#[inline(always)]
fn max_body(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (&x, a) in chunk.iter().zip(acc.iter_mut()) {
            *a = if x > *a { x } else { *a };
        }
    }
    let rest = chunks.remainder().iter();
    acc.iter()
        .chain(rest)
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

/// Defines `pub(crate) fn $name` running `$body` compiled for AVX-512, for
/// AVX2 + FMA or for the baseline target, whichever the CPU has.
macro_rules! dispatch {
    ($name:ident, $body:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        #[doc = concat!("Run-time dispatch of `", stringify!($body), "`.")]
        pub(crate) fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the feature.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has the features.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

pub(super) use dispatch;

dispatch!(exp_sum, exp_sum_body, (xs: &mut [f32], shift: f32) -> f32);
dispatch!(max, max_body, (xs: &[f32]) -> f32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm_to_a_few_ulp() {
        let mut worst = 0.0f32;
        let inputs: Vec<f32> = (-8800..=8800).map(|i| i as f32 * 0.01 + 0.003).collect();
        let mut xs = inputs.clone();
        exp_sum(&mut xs, 0.0);
        for (&x, &y) in inputs.iter().zip(&xs) {
            let want = x.exp();
            if want > f32::MIN_POSITIVE {
                worst = worst.max(((y - want) / want).abs());
            }
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
    }

    #[test]
    fn sums_shifts_and_keeps_nan_and_limits() {
        let mut xs: Vec<f32> = (0..37).map(|i| i as f32 * 0.25).collect();
        let want: f32 = xs.iter().map(|x| (x - 3.0).exp()).sum();
        let sum = exp_sum(&mut xs, 3.0);
        assert!((sum - want).abs() < 1e-5 * want, "{sum} vs {want}");
        assert!((xs[12] - 1.0).abs() < 1e-7);
        let mut odd = vec![f32::NAN, -1000.0, f32::NEG_INFINITY, 0.0];
        exp_sum(&mut odd, 0.0);
        assert!(odd[0].is_nan());
        assert!(odd[1] < 1e-37 && odd[2] < 1e-37 && odd[1] >= 0.0);
        assert_eq!(odd[3], 1.0);
        assert_eq!(max(&[1.0, f32::NAN, 7.5, -3.0]), 7.5);
        let long: Vec<f32> = (0..50).map(|i| ((i * 37) % 50) as f32).collect();
        assert_eq!(max(&long), 49.0);
        assert_eq!(max(&[]), f32::NEG_INFINITY);
    }
}
