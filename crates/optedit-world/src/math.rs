//! Plain-arithmetic helpers: random draws, trigonometry and signed distances.
//!
//! Everything here uses only IEEE-754 `+ - * /`, `sqrt` and `floor` (all
//! correctly rounded, so identical on every platform) and never the
//! platform's `libm` (`sin`, `cos`, `powf`), nor `rand`'s distribution code
//! (whose output may change between `rand` releases). A seed therefore gives
//! the same scene, bit for bit, everywhere.

use rand_chacha::rand_core::RngCore;

/// A 2-D point or vector in pixels (x across, y down).
pub(crate) type Vec2 = (f32, f32);

/// Uniform in `[0, 1)` with 24 random bits.
pub(crate) fn unit(rng: &mut impl RngCore) -> f32 {
    (rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Uniform in `[lo, hi)`.
pub(crate) fn uniform(rng: &mut impl RngCore, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * unit(rng)
}

/// Uniform integer in `0..n` (`n > 0`); the modulo bias is below `n / 2^64`.
pub(crate) fn below(rng: &mut impl RngCore, n: u32) -> u32 {
    (rng.next_u64() % u64::from(n)) as u32
}

/// Taylor coefficients of `cos` (`(-1)^k / (2k)!`), `k = 0..=8`.
const COS: [f64; 9] = [
    1.0,
    -1.0 / 2.0,
    1.0 / 24.0,
    -1.0 / 720.0,
    1.0 / 40_320.0,
    -1.0 / 3_628_800.0,
    1.0 / 479_001_600.0,
    -1.0 / 87_178_291_200.0,
    1.0 / 20_922_789_888_000.0,
];

/// Taylor coefficients of `sin` (`(-1)^k / (2k+1)!`), `k = 0..=8`.
const SIN: [f64; 9] = [
    1.0,
    -1.0 / 6.0,
    1.0 / 120.0,
    -1.0 / 5_040.0,
    1.0 / 362_880.0,
    -1.0 / 39_916_800.0,
    1.0 / 6_227_020_800.0,
    -1.0 / 1_307_674_368_000.0,
    1.0 / 355_687_428_096_000.0,
];

/// Evaluates `sum c[k] x2^k` by Horner.
fn horner(c: &[f64; 9], x2: f64) -> f64 {
    c.iter().rev().fold(0.0, |acc, &k| acc * x2 + k)
}

/// `cos(x)` for `x` in `[0, pi/2]` (error < 1e-12).
fn cos_poly(x: f64) -> f64 {
    horner(&COS, x * x)
}

/// `sin(x)` for `x` in `[0, pi/2]` (error < 1e-12).
fn sin_poly(x: f64) -> f64 {
    horner(&SIN, x * x) * x
}

/// `cos(2 pi t)`: `t` is in turns (1 turn = 360 degrees).
pub(crate) fn cos_turns(t: f64) -> f64 {
    let r = (t - t.floor()) * 4.0; // [0, 4)
    let q = r.floor();
    let x = (r - q) * std::f64::consts::FRAC_PI_2;
    match q as i32 {
        0 => cos_poly(x),
        1 => -sin_poly(x),
        2 => -cos_poly(x),
        _ => sin_poly(x),
    }
}

/// `sin(2 pi t)`: `t` is in turns.
pub(crate) fn sin_turns(t: f64) -> f64 {
    cos_turns(t - 0.25)
}

/// The unit vector at `degrees` (0 = +x, 90 = +y, i.e. down).
pub(crate) fn direction(degrees: f32) -> Vec2 {
    let t = f64::from(degrees) / 360.0;
    (cos_turns(t) as f32, sin_turns(t) as f32)
}

fn dot(a: Vec2, b: Vec2) -> f32 {
    a.0 * b.0 + a.1 * b.1
}

/// Distance from `p` to the segment `a`-`b`.
pub(crate) fn segment_distance(p: Vec2, a: Vec2, b: Vec2) -> f32 {
    let pa = (p.0 - a.0, p.1 - a.1);
    let ba = (b.0 - a.0, b.1 - a.1);
    let len2 = dot(ba, ba);
    let h = if len2 > 0.0 {
        (dot(pa, ba) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let d = (pa.0 - ba.0 * h, pa.1 - ba.1 * h);
    dot(d, d).sqrt()
}

/// Distance from `p` to the point `c`.
pub(crate) fn point_distance(p: Vec2, c: Vec2) -> f32 {
    let d = (p.0 - c.0, p.1 - c.1);
    dot(d, d).sqrt()
}

/// Exact signed distance to a simple polygon (negative inside), any winding.
pub(crate) fn polygon_sd(p: Vec2, v: &[Vec2]) -> f32 {
    let n = v.len();
    let mut d2 = f32::INFINITY;
    let mut inside = false;
    let mut j = n - 1;
    for i in 0..n {
        let (vi, vj) = (v[i], v[j]);
        let e = (vj.0 - vi.0, vj.1 - vi.1);
        let w = (p.0 - vi.0, p.1 - vi.1);
        let h = (dot(w, e) / dot(e, e)).clamp(0.0, 1.0);
        let b = (w.0 - e.0 * h, w.1 - e.1 * h);
        d2 = d2.min(dot(b, b));
        // Even-odd crossing test of a ray towards +x.
        if (vi.1 > p.1) != (vj.1 > p.1) {
            let x = vi.0 + (p.1 - vi.1) / (vj.1 - vi.1) * (vj.0 - vi.0);
            if p.0 < x {
                inside = !inside;
            }
        }
        j = i;
    }
    let d = d2.sqrt();
    if inside {
        -d
    } else {
        d
    }
}

/// Polygon area by the shoelace formula (absolute value).
pub(crate) fn polygon_area(v: &[Vec2]) -> f32 {
    let n = v.len();
    let mut twice = 0.0;
    for i in 0..n {
        let (a, b) = (v[i], v[(i + 1) % n]);
        twice += a.0 * b.1 - b.0 * a.1;
    }
    (twice * 0.5).abs()
}

/// Anti-aliased coverage of a pixel whose centre is at signed distance `sd`
/// from an edge: a 1-pixel-wide linear ramp, 0 from `sd >= 0.5` on.
pub(crate) fn coverage(sd: f32) -> f32 {
    (0.5 - sd).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trig_matches_std() {
        for i in -720..=720 {
            let deg = i as f64 * 0.5 + 0.123;
            let t = deg / 360.0;
            let r = deg.to_radians();
            assert!((cos_turns(t) - r.cos()).abs() < 1e-10, "cos {deg}");
            assert!((sin_turns(t) - r.sin()).abs() < 1e-10, "sin {deg}");
        }
    }

    #[test]
    fn polygon_distance_of_a_square() {
        let sq = [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)];
        assert!((polygon_sd((5.0, 5.0), &sq) + 5.0).abs() < 1e-5);
        assert!((polygon_sd((13.0, 5.0), &sq) - 3.0).abs() < 1e-5);
        assert!((polygon_sd((13.0, 14.0), &sq) - 5.0).abs() < 1e-5);
        assert!((polygon_area(&sq) - 100.0).abs() < 1e-5);
    }

    #[test]
    fn draws_are_in_range() {
        use rand_chacha::rand_core::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..1000 {
            let u = uniform(&mut rng, 2.0, 3.0);
            assert!((2.0..3.0).contains(&u));
            assert!(below(&mut rng, 5) < 5);
        }
    }
}
