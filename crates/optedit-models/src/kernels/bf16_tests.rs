//! The bf16 products against an f64 reference on bf16-rounded operands, on
//! every bf16 unit this CPU has (both AMX and AVX512-BF16 where it has AMX),
//! called directly so that no test changes the process-wide dtype.

use super::bf16::{bf16_unit, pack_right, product_packed, to_bf16, Bf16Unit};
use super::product::Strides;

/// One product on `unit`: the right operand packed, then multiplied.
///
/// # Safety
/// The pointers must address the whole views their strides describe.
#[allow(clippy::too_many_arguments)]
unsafe fn product(
    unit: Bf16Unit,
    (rows, cols, k): (usize, usize, usize),
    dst: (*mut f32, Strides),
    accumulate: bool,
    lhs: (*const f32, Strides),
    rhs: (*const f32, Strides),
    beta: f32,
    parallel: bool,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        let rhs = pack_right(rhs, (k, cols), parallel);
        product_packed(unit, rows, dst, accumulate, lhs, &rhs, beta, parallel)
    }
}

/// The units to test: AMX machines have AVX512-BF16 too.
fn units() -> Vec<Bf16Unit> {
    let avx512 = std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bf16");
    let mut units = Vec::new();
    if bf16_unit() == Some(Bf16Unit::Amx) {
        units.push(Bf16Unit::Amx);
    }
    if avx512 {
        units.push(Bf16Unit::Avx512);
    }
    units
}

fn bf16_value(x: f32) -> f64 {
    f32::from_bits((to_bf16(x) as u32) << 16) as f64
}

/// The f64 dot product of `k` terms `x(p) y(p)`, each operand rounded to
/// bf16 first, and the sum of the terms' magnitudes (the tolerance's
/// scale).
fn rounded_dot(k: usize, x: impl Fn(usize) -> f32, y: impl Fn(usize) -> f32) -> (f64, f64) {
    (0..k)
        .map(|p| bf16_value(x(p)) * bf16_value(y(p)))
        .fold((0.0, 0.0), |(sum, size), t| (sum + t, size + t.abs()))
}

/// A deterministic spread of values with many bits below bf16's precision.
fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32 - 0.5) * 3.0
        })
        .collect()
}

#[test]
fn rounding_is_to_nearest_even() {
    for x in values(10_000, 3) {
        assert_eq!(to_bf16(x), half::bf16::from_f32(x).to_bits(), "{x}");
    }
    // Ties: 1 + 2^-8 lies halfway between 1 and 1 + 2^-7; even is 1.
    assert_eq!(to_bf16(1.0 + 2f32.powi(-8)), to_bf16(1.0));
    assert_eq!(
        to_bf16(1.0 + 3.0 * 2f32.powi(-8)),
        to_bf16(1.0 + 2f32.powi(-6))
    );
    assert_eq!(to_bf16(f32::INFINITY), 0x7f80);
    assert_eq!(to_bf16(f32::MAX), 0x7f80, "rounds up to infinity");
    let nan = f32::from_bits((to_bf16(f32::NAN) as u32) << 16);
    assert!(nan.is_nan());
}

/// `(rows, cols, k, lhs transposed, rhs transposed, accumulate, parallel)`.
type Case = (usize, usize, usize, bool, bool, bool, bool);

/// Even cases use beta 1 (the AMX kernel then stores whole 32 x 32 blocks
/// of a row-major output in place, loading them first when accumulating).
const CASES: [Case; 10] = [
    (1, 1, 1, false, false, false, false),
    (16, 16, 32, false, false, false, false),
    (37, 45, 70, false, false, false, true),
    (33, 17, 65, true, false, true, false),
    (70, 129, 300, false, true, false, true),
    (300, 40, 9, true, true, true, true),
    (5, 260, 1, false, false, true, true),
    (64, 64, 0, false, false, false, false),
    (64, 96, 600, false, false, true, true),
    (96, 64, 33, false, true, true, false),
];

#[test]
fn products_match_the_rounded_reference() {
    let units = units();
    assert!(
        !units.is_empty() || bf16_unit().is_none(),
        "bf16_unit says {:?} but no unit is testable",
        bf16_unit()
    );
    for unit in units {
        for (c, &(m, n, k, lt, rt, acc, par)) in CASES.iter().enumerate() {
            let a = values(m * k, 10 + c as u32);
            let b = values(k * n, 20 + c as u32);
            let init = values(m * n, 30 + c as u32);
            // (column stride, row stride) of row-major or transposed storage.
            let a_strides = if lt { (m as isize, 1) } else { (1, k as isize) };
            let b_strides = if rt { (k as isize, 1) } else { (1, n as isize) };
            let at = |i: usize, p: usize| a[i * a_strides.1 as usize + p * a_strides.0 as usize];
            let bt = |p: usize, j: usize| b[p * b_strides.1 as usize + j * b_strides.0 as usize];
            // Output column-major for transposed-left cases, to cover strides.
            let d_strides = if lt { (m as isize, 1) } else { (1, n as isize) };
            let mut dst = init.clone();
            let beta = if c % 2 == 0 { 1.0f32 } else { 0.75 };
            // SAFETY: every view covers its whole buffer.
            unsafe {
                product(
                    unit,
                    (m, n, k),
                    (dst.as_mut_ptr(), d_strides),
                    acc,
                    (a.as_ptr(), a_strides),
                    (b.as_ptr(), b_strides),
                    beta,
                    par,
                );
            }
            for i in 0..m {
                for j in 0..n {
                    // beta scales the left operand before rounding.
                    let (sum, size) = rounded_dot(k, |p| beta * at(i, p), |p| bt(p, j));
                    let at_d = i * d_strides.1 as usize + j * d_strides.0 as usize;
                    let base = if acc { init[at_d] as f64 } else { 0.0 };
                    let want = base + sum;
                    let got = dst[at_d] as f64;
                    let tol = 1e-6 * (size + base.abs()) + 1e-6;
                    assert!(
                        (got - want).abs() <= tol,
                        "{unit} case {c} ({m}x{n}x{k}) at ({i},{j}): {got} vs {want}"
                    );
                }
            }
        }
    }
}

/// The products really round: an f32 reference differs by far more than
/// the tolerance above, so the test would catch an f32 fallback.
#[test]
fn products_are_not_f32() {
    let Some(unit) = units().first().copied() else {
        return;
    };
    let a = [1.0f32 + 2f32.powi(-12); 32];
    let b = [1.0f32; 32];
    let mut dst = [0f32; 1];
    // SAFETY: 1 x 32 times 32 x 1.
    unsafe {
        product(
            unit,
            (1, 1, 32),
            (dst.as_mut_ptr(), (1, 1)),
            false,
            (a.as_ptr(), (1, 32)),
            (b.as_ptr(), (1, 1)),
            1.0,
            false,
        );
    }
    assert_eq!(dst[0], 32.0, "1 + 2^-12 rounds to 1 in bf16");
}

/// Views whose rows and columns both have gaps take the element-by-element
/// packing.
#[test]
fn spaced_views_match_the_rounded_reference() {
    let (m, n, k) = (20, 18, 40);
    let a = values(2 * m * k, 41);
    let b = values(3 * k * n, 42);
    // (column stride, row stride): every other column of `a`, every third
    // column of `b`.
    let (sa, sb) = ((2isize, 2 * k as isize), (3isize, 3 * n as isize));
    for unit in units() {
        let mut dst = vec![0f32; m * n];
        // SAFETY: the strided views stay inside a and b.
        unsafe {
            product(
                unit,
                (m, n, k),
                (dst.as_mut_ptr(), (1, n as isize)),
                false,
                (a.as_ptr(), sa),
                (b.as_ptr(), sb),
                1.0,
                false,
            );
        }
        for i in 0..m {
            for j in 0..n {
                let (sum, size) = rounded_dot(
                    k,
                    |p| a[i * sa.1 as usize + p * sa.0 as usize],
                    |p| b[p * sb.1 as usize + j * sb.0 as usize],
                );
                let got = dst[i * n + j] as f64;
                assert!(
                    (got - sum).abs() <= 1e-6 * size + 1e-6,
                    "{unit} ({i},{j}): {got} vs {sum}"
                );
            }
        }
    }
}

/// A left operand packed once serves several products, with a right
/// operand packed or (when the dtype changed in between) left as an f32
/// view, which the product then packs itself.
#[test]
fn a_prepared_left_serves_many_products() {
    use super::product::{product_prepared, Left, Right};
    // The left transposed (columns contiguous), as the convolution's
    // input gradient uses its weight; k crosses a step boundary.
    let (m, n, k) = (40, 50, 45);
    let a = values(m * k, 51);
    let a_strides = (m as isize, 1isize);
    for unit in units() {
        // SAFETY: the view covers `a`, which outlives `left`.
        let left = Left::Packed(unit, unsafe {
            super::bf16::pack_left((a.as_ptr(), a_strides), (m, k), 1.0, true)
        });
        for (seed, packed) in [(52, true), (53, false)] {
            let b = values(k * n, seed);
            let b_strides = (1isize, n as isize);
            // SAFETY: the view covers `b`, alive until the product returns.
            let right = if packed {
                Right::Packed(unit, unsafe {
                    pack_right((b.as_ptr(), b_strides), (k, n), false)
                })
            } else {
                Right::View((k, n), b.as_ptr(), b_strides)
            };
            let mut dst = vec![0f32; m * n];
            // SAFETY: `dst` is `m x n` row-major.
            unsafe {
                product_prepared(
                    (dst.as_mut_ptr(), (1, n as isize)),
                    false,
                    &left,
                    &right,
                    gemm::Parallelism::Rayon(0),
                );
            }
            for i in 0..m {
                for j in 0..n {
                    let (sum, size) = rounded_dot(k, |p| a[i + p * m], |p| b[p * n + j]);
                    let got = dst[i * n + j] as f64;
                    assert!(
                        (got - sum).abs() <= 1e-6 * size + 1e-6,
                        "{unit} right packed {packed} ({i},{j}): {got} vs {sum}"
                    );
                }
            }
        }
    }
}
