//! Inference timesteps, computed as diffusers' `set_timesteps` does with numpy
//! (float64 arithmetic, round-half-to-even).

use crate::config::{SchedulerConfig, TimestepSpacing};
use crate::error::{Result, ScheduleError};

/// Errors unless `1 <= num_inference_steps <= num_train_timesteps`.
pub(crate) fn check_step_count(config: &SchedulerConfig, num_inference_steps: usize) -> Result<()> {
    let max = config.num_train_timesteps;
    if num_inference_steps == 0 || num_inference_steps > max {
        return Err(ScheduleError::InvalidStepCount {
            got: num_inference_steps,
            max,
        });
    }
    Ok(())
}

/// `np.round(np.arange(T, 0, -T / n))` (the first `n` values), as numpy fills
/// a float range: `start + i * ((start + step) - start)`.
///
/// For some `n` numpy's `arange` yields one extra element (`-1` after the
/// `- 1` shift) because of float rounding in its length; diffusers keeps it,
/// which makes the last DDIM step index `alphas_cumprod[-1]`. That element is
/// not produced here.
fn trailing_descending(t: usize, n: usize) -> Vec<i64> {
    let start = t as f64;
    let ratio = start / n as f64;
    let delta = (start - ratio) - start;
    (0..n)
        .map(|i| (start + i as f64 * delta).round_ties_even() as i64 - 1)
        .collect()
}

/// `np.linspace(0, T - 1, n).round()` in descending order.
fn linspace_descending(t: usize, n: usize) -> Vec<i64> {
    let stop = (t - 1) as f64;
    let mut values: Vec<f64> = if n == 1 {
        vec![0.0]
    } else {
        let step = stop / (n - 1) as f64;
        (0..n).map(|i| i as f64 * step).collect()
    };
    if n > 1 {
        values[n - 1] = stop;
    }
    values
        .into_iter()
        .rev()
        .map(|v| v.round_ties_even() as i64)
        .collect()
}

/// `(np.arange(0, n) * (T // n)) + steps_offset`, ascending.
fn leading_ascending(config: &SchedulerConfig, n: usize) -> Vec<i64> {
    let ratio = (config.num_train_timesteps / n) as i64;
    (0..n as i64)
        .map(|i| i * ratio + config.steps_offset as i64)
        .collect()
}

fn into_checked(config: &SchedulerConfig, values: Vec<i64>) -> Result<Vec<usize>> {
    let t = config.num_train_timesteps;
    values
        .into_iter()
        .map(|v| {
            usize::try_from(v)
                .ok()
                .filter(|&u| u < t)
                .ok_or(ScheduleError::TimestepOutOfRange {
                    timestep: v,
                    num_train_timesteps: t,
                })
        })
        .collect()
}

/// `DDIMScheduler.set_timesteps`: descending timesteps for `spacing`.
///
/// Errors for a step count outside `1..=num_train_timesteps`, and when a
/// timestep falls outside `0..num_train_timesteps` (a large `steps_offset`),
/// where diffusers would fail or index from the end later.
pub fn ddim_timesteps(config: &SchedulerConfig, num_inference_steps: usize) -> Result<Vec<usize>> {
    check_step_count(config, num_inference_steps)?;
    let t = config.num_train_timesteps;
    let n = num_inference_steps;
    let values = match config.timestep_spacing {
        TimestepSpacing::Leading => leading_ascending(config, n).into_iter().rev().collect(),
        TimestepSpacing::Trailing => trailing_descending(t, n),
        TimestepSpacing::Linspace => linspace_descending(t, n),
    };
    into_checked(config, values)
}

/// `DDIMInverseScheduler.set_timesteps`: ascending timesteps. diffusers
/// supports `leading` (with `steps_offset`) and `trailing` only; `linspace`
/// is an [`ScheduleError::Unsupported`] error.
pub fn inverse_timesteps(
    config: &SchedulerConfig,
    num_inference_steps: usize,
) -> Result<Vec<usize>> {
    check_step_count(config, num_inference_steps)?;
    let t = config.num_train_timesteps;
    let n = num_inference_steps;
    let values = match config.timestep_spacing {
        TimestepSpacing::Leading => leading_ascending(config, n),
        TimestepSpacing::Trailing => trailing_descending(t, n).into_iter().rev().collect(),
        TimestepSpacing::Linspace => {
            return Err(ScheduleError::Unsupported {
                origin: "DDIMInverseScheduler (leading or trailing only)".into(),
                field: "timestep_spacing",
                value: "linspace".into(),
            })
        }
    };
    into_checked(config, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(spacing: TimestepSpacing, offset: usize) -> SchedulerConfig {
        SchedulerConfig {
            timestep_spacing: spacing,
            steps_offset: offset,
            ..SchedulerConfig::default()
        }
    }

    // Reference values printed by numpy with diffusers' expressions.
    #[test]
    fn trailing_matches_numpy() {
        let c = config(TimestepSpacing::Trailing, 0);
        assert_eq!(ddim_timesteps(&c, 3).unwrap(), [999, 666, 332]);
        assert_eq!(
            ddim_timesteps(&c, 10).unwrap(),
            [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
        );
        // numpy yields 62 values for n = 61 (the last is -1); the first 61 agree.
        let t = ddim_timesteps(&c, 61).unwrap();
        assert_eq!(t.len(), 61);
        assert_eq!(&t[59..], [32, 15]);
        assert_eq!(inverse_timesteps(&c, 3).unwrap(), [332, 666, 999]);
    }

    #[test]
    fn linspace_matches_numpy() {
        let c = config(TimestepSpacing::Linspace, 0);
        assert_eq!(
            ddim_timesteps(&c, 10).unwrap(),
            [999, 888, 777, 666, 555, 444, 333, 222, 111, 0]
        );
        assert_eq!(
            ddim_timesteps(&c, 7).unwrap(),
            [999, 832, 666, 500, 333, 166, 0]
        );
        assert_eq!(ddim_timesteps(&c, 1).unwrap(), [0]);
        assert!(matches!(
            inverse_timesteps(&c, 10),
            Err(ScheduleError::Unsupported {
                field: "timestep_spacing",
                ..
            })
        ));
    }

    #[test]
    fn leading_with_offset() {
        let c = config(TimestepSpacing::Leading, 1);
        assert_eq!(ddim_timesteps(&c, 4).unwrap(), [751, 501, 251, 1]);
        assert_eq!(inverse_timesteps(&c, 4).unwrap(), [1, 251, 501, 751]);
        assert!(matches!(
            ddim_timesteps(&c, 1000),
            Err(ScheduleError::TimestepOutOfRange { timestep: 1000, .. })
        ));
        assert!(matches!(
            ddim_timesteps(&c, 0),
            Err(ScheduleError::InvalidStepCount { got: 0, .. })
        ));
    }
}
