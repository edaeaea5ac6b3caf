//! Uncertainty of the summary numbers: 95% intervals on rates (Wilson
//! score) and on means (percentile bootstrap over cases).
//!
//! - **Rates** (edit accuracy, per kind and per attribute, kept
//!   attributes) of one run are binomial counts: [`wilson`] gives the Wilson
//!   score interval, which unlike the normal approximation stays inside
//!   [0, 1] and keeps its coverage near 0% and 100%, where the calibration
//!   rows live.
//! - **Means** (background PSNR and SSIM) and rates pooled over several
//!   seeds are not binomial: [`bootstrap_mean`] resamples *cases* (each
//!   case with all of its values, e.g. one per seed) with replacement and
//!   takes the 2.5% and 97.5% percentiles of the pooled mean over
//!   [`BOOTSTRAP_RESAMPLES`] resamples. The generator is ChaCha8 seeded with
//!   [`BOOTSTRAP_SEED`], so a table made twice from the same records is the
//!   same, byte for byte.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The standard normal quantile of 0.975: a two-sided 95% interval.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// Resamples of [`bootstrap_mean`].
pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// Seed of [`bootstrap_mean`]'s generator.
pub const BOOTSTRAP_SEED: u64 = 0x6f70_7465_6469_7422;

/// A two-sided 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

impl Interval {
    /// Whether `v` lies in the interval (ends included).
    pub fn contains(&self, v: f64) -> bool {
        self.low <= v && v <= self.high
    }
}

/// The 95% Wilson score interval of `correct` successes in `total` trials
/// (`None` without trials, or with more successes than trials):
/// `(p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)` with `p =
/// correct / total` and `z` = [`Z_95`], clamped to [0, 1].
pub fn wilson(correct: usize, total: usize) -> Option<Interval> {
    if total == 0 || correct > total {
        return None;
    }
    let n = total as f64;
    let p = correct as f64 / n;
    let z2 = Z_95 * Z_95;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = Z_95 / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // At 0 and n successes one end is exactly 0 or 1; rounding must not
    // leave it a hair inside or outside.
    let low = if correct == 0 { 0.0 } else { centre - half };
    let high = if correct == total { 1.0 } else { centre + half };
    Some(Interval {
        low: low.clamp(0.0, 1.0),
        high: high.clamp(0.0, 1.0),
    })
}

/// A uniform index below `n` (`n > 0`), without modulo bias.
fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    let n = n as u64;
    // The largest multiple of n that fits: draws at or above it are redrawn.
    let limit = u64::MAX - u64::MAX % n;
    loop {
        let v = rng.next_u64();
        if v < limit {
            return (v % n) as usize;
        }
    }
}

/// The `p` quantile of sorted values, interpolating linearly between order
/// statistics (position `p (len - 1)`, as numpy's default).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let h = p * (sorted.len() - 1) as f64;
    let (i, frac) = (h.floor() as usize, h - h.floor());
    match sorted.get(i + 1) {
        Some(next) => sorted[i] + frac * (next - sorted[i]),
        None => sorted[i],
    }
}

/// The 95% percentile-bootstrap interval of the pooled mean of `clusters`
/// (one cluster per case: its values, e.g. one per seed; a single run gives
/// clusters of one value). Cases are resampled with replacement,
/// [`BOOTSTRAP_RESAMPLES`] times, with ChaCha8 seeded by
/// [`BOOTSTRAP_SEED`]; each resample's statistic is the mean of all values
/// of the cases drawn. Empty clusters (a case without a value, e.g. one
/// whose every edit failed) are left out; `None` when no value is left.
pub fn bootstrap_mean<C: AsRef<[f64]>>(clusters: &[C]) -> Option<Interval> {
    bootstrap_mean_with(clusters, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED)
}

/// [`bootstrap_mean`] with another number of resamples and seed (`None`
/// also when `resamples` is 0).
pub fn bootstrap_mean_with<C: AsRef<[f64]>>(
    clusters: &[C],
    resamples: usize,
    seed: u64,
) -> Option<Interval> {
    let sums: Vec<(f64, usize)> = clusters
        .iter()
        .map(|c| (c.as_ref().iter().sum::<f64>(), c.as_ref().len()))
        .filter(|&(_, n)| n > 0)
        .collect();
    if sums.is_empty() || resamples == 0 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut stats: Vec<f64> = (0..resamples)
        .map(|_| {
            let (mut sum, mut count) = (0.0, 0usize);
            for _ in 0..sums.len() {
                let (s, n) = sums[below(&mut rng, sums.len())];
                sum += s;
                count += n;
            }
            sum / count as f64
        })
        .collect();
    stats.sort_by(f64::total_cmp);
    Some(Interval {
        low: quantile(&stats, 0.025),
        high: quantile(&stats, 0.975),
    })
}

/// The pooled mean of `clusters`' values (`None` without values).
pub fn pooled_mean<C: AsRef<[f64]>>(clusters: &[C]) -> Option<f64> {
    crate::metrics::mean(clusters.iter().flat_map(|c| c.as_ref().iter().copied()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(i: Interval, low: f64, high: f64) -> bool {
        (i.low - low).abs() < 1e-6 && (i.high - high).abs() < 1e-6
    }

    #[test]
    fn wilson_matches_hand_computed_values() {
        // 0 of n: [0, z²/(n + z²)] = [0, 3.841459/13.841459].
        let i = wilson(0, 10).unwrap();
        assert_eq!(i.low, 0.0);
        assert!((i.high - 0.277_532_8).abs() < 1e-6, "{i:?}");
        // n of n: [n/(n + z²), 1] = [10/13.841459, 1].
        let i = wilson(10, 10).unwrap();
        assert!((i.low - 0.722_467_2).abs() < 1e-6 && i.high == 1.0, "{i:?}");
        // 5 of 10: centre 1/2, half width z/(1 + z²/10) sqrt(0.025 + z²/400).
        assert!(close(wilson(5, 10).unwrap(), 0.236_593_1, 0.763_406_9));
        // 87 of 100: centre (0.87 + z²/200)/(1 + z²/100) = 0.856312,
        // half width 0.066116.
        assert!(close(wilson(87, 100).unwrap(), 0.790_196_5, 0.922_428_3));
        // One trial.
        assert!(close(wilson(1, 1).unwrap(), 0.206_549_3, 1.0));
        assert_eq!(wilson(0, 0), None);
        assert_eq!(wilson(3, 2), None);
        // Symmetric in successes and failures.
        let (a, b) = (wilson(13, 40).unwrap(), wilson(27, 40).unwrap());
        assert!((a.low - (1.0 - b.high)).abs() < 1e-12);
        assert!((a.high - (1.0 - b.low)).abs() < 1e-12);
    }

    #[test]
    fn bootstrap_is_deterministic_and_covers_the_mean() {
        let values: Vec<[f64; 1]> = (0..60)
            .map(|i| [20.0 + ((i * 37) % 23) as f64 * 0.5])
            .collect();
        let mean = pooled_mean(&values).unwrap();
        let a = bootstrap_mean(&values).unwrap();
        assert_eq!(Some(a), bootstrap_mean(&values));
        assert!(a.low < mean && mean < a.high, "{a:?} vs {mean}");
        // About two standard errors of the mean on each side (sample sd
        // 3.3, 60 cases: se 0.43), within bootstrap noise.
        let width = a.high - a.low;
        assert!(width > 1.2 && width < 2.2, "{a:?}");
        // Another seed: another, similar interval.
        let b = bootstrap_mean_with(&values, BOOTSTRAP_RESAMPLES, 1).unwrap();
        assert_ne!(a, b);
        assert!((a.low - b.low).abs() < 0.3 && (a.high - b.high).abs() < 0.3);
        // Equal values: a point; no values: nothing.
        let flat = vec![vec![3.0, 3.0]; 5];
        assert_eq!(
            bootstrap_mean(&flat),
            Some(Interval {
                low: 3.0,
                high: 3.0
            })
        );
        assert_eq!(bootstrap_mean::<Vec<f64>>(&[]), None);
        assert_eq!(bootstrap_mean(&[Vec::<f64>::new()]), None);
        assert_eq!(bootstrap_mean_with(&values, 0, 0), None);
    }

    #[test]
    fn bootstrap_resamples_cases_not_values() {
        // Two cases: one with three values of 0, one with one value of 1.
        // A resample holds each case 0, 1 or 2 times: pooled means 0 (both
        // draws the first case), 1/4 (one each) or 1 (the second twice),
        // with probabilities 1/4, 1/2, 1/4: the 2.5% and 97.5% percentiles
        // are 0 and 1. Resampling values instead would give 16 distinct
        // means.
        let clusters = vec![vec![0.0, 0.0, 0.0], vec![1.0]];
        assert_eq!(pooled_mean(&clusters), Some(0.25));
        let i = bootstrap_mean(&clusters).unwrap();
        assert_eq!((i.low, i.high), (0.0, 1.0));
        // Empty clusters are left out, not counted as cases.
        let with_empty = vec![vec![2.0], vec![], vec![2.0]];
        assert_eq!(
            bootstrap_mean(&with_empty),
            Some(Interval {
                low: 2.0,
                high: 2.0
            })
        );
    }

    #[test]
    fn quantiles_interpolate_between_order_statistics() {
        let s = [0.0, 10.0, 20.0, 30.0, 40.0];
        assert_eq!(quantile(&s, 0.0), 0.0);
        assert_eq!(quantile(&s, 1.0), 40.0);
        assert_eq!(quantile(&s, 0.5), 20.0);
        assert!((quantile(&s, 0.025) - 1.0).abs() < 1e-12);
        assert_eq!(quantile(&[7.0], 0.975), 7.0);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut seen = [0usize; 3];
        for _ in 0..3000 {
            seen[below(&mut rng, 3)] += 1;
        }
        assert!(seen.iter().all(|&n| (900..1100).contains(&n)), "{seen:?}");
    }
}
