//! DDIM inversion and sampling loops that keep the whole trajectory.

use burn::tensor::{backend::Backend, Tensor};

use crate::error::{Result, ScheduleError};
use crate::predictor::NoisePredictor;
use crate::scheduler::{Direction, Scheduler};

/// Optional progress callback: called after each step with
/// `(index of the finished step, number of steps)`.
pub type Progress<'a> = Option<&'a mut dyn FnMut(usize, usize)>;

/// The states visited by a scheduler run.
#[derive(Debug, Clone)]
pub struct Trajectory<B: Backend> {
    /// The timestep of each step, in the order visited (length N).
    pub timesteps: Vec<usize>,
    /// The latents: index 0 is the start, index `i + 1` the result of step `i` (length N + 1).
    pub latents: Vec<Tensor<B, 4>>,
    /// The model output used at each step (length N).
    pub eps: Vec<Tensor<B, 4>>,
}

impl<B: Backend> Trajectory<B> {
    /// Number of steps taken.
    pub fn len(&self) -> usize {
        self.timesteps.len()
    }

    /// Whether no step was taken.
    pub fn is_empty(&self) -> bool {
        self.timesteps.is_empty()
    }

    /// The starting latent.
    pub fn start(&self) -> &Tensor<B, 4> {
        &self.latents[0]
    }

    /// The final latent.
    pub fn end(&self) -> &Tensor<B, 4> {
        &self.latents[self.latents.len() - 1]
    }

    /// The latents stacked on a new leading axis: `[N + 1, batch, c, h, w]`.
    pub fn stacked_latents(&self) -> Tensor<B, 5> {
        Tensor::stack(self.latents.clone(), 0)
    }

    /// The model outputs stacked on a new leading axis (`None` when empty).
    pub fn stacked_eps(&self) -> Option<Tensor<B, 5>> {
        (!self.eps.is_empty()).then(|| Tensor::stack(self.eps.clone(), 0))
    }
}

/// Runs `scheduler` over `timesteps` from `start`: at each timestep the
/// predictor is evaluated on the (scaled) latent and the scheduler advances.
pub fn run<S, B, P>(
    scheduler: &S,
    predictor: &mut P,
    start: Tensor<B, 4>,
    timesteps: &[usize],
    mut progress: Progress<'_>,
) -> Result<Trajectory<B>>
where
    S: Scheduler,
    B: Backend,
    P: NoisePredictor<B> + ?Sized,
{
    let total = timesteps.len();
    let mut latents = Vec::with_capacity(total + 1);
    let mut eps = Vec::with_capacity(total);
    latents.push(start);
    for (step, &timestep) in timesteps.iter().enumerate() {
        let latent = latents[step].clone();
        let input = scheduler.scale_model_input(latent.clone(), timestep);
        let output =
            predictor
                .predict(input, timestep)
                .map_err(|source| ScheduleError::Predictor {
                    step,
                    timestep,
                    source,
                })?;
        let next = scheduler.advance(output.clone(), timestep, latent)?;
        eps.push(output);
        latents.push(next.prev_sample);
        if let Some(callback) = progress.as_deref_mut() {
            callback(step, total);
        }
    }
    Ok(Trajectory {
        timesteps: timesteps.to_vec(),
        latents,
        eps,
    })
}

fn expect_direction<S: Scheduler>(
    scheduler: &S,
    want: Direction,
    what: &'static str,
) -> Result<()> {
    if scheduler.direction() == want {
        Ok(())
    } else {
        Err(ScheduleError::arg(
            "scheduler",
            format!(
                "{what} needs a {want:?} scheduler, got a {:?} one",
                scheduler.direction()
            ),
        ))
    }
}

/// DDIM inversion: sets `num_steps` timesteps on the (noising) `scheduler`,
/// typically a [`DdimInverseScheduler`](crate::DdimInverseScheduler), and runs
/// it from `z0`. `latents[0]` is `z0`, `latents[N]` the inverted noise.
pub fn invert<S, B, P>(
    scheduler: &mut S,
    predictor: &mut P,
    z0: Tensor<B, 4>,
    num_steps: usize,
    progress: Progress<'_>,
) -> Result<Trajectory<B>>
where
    S: Scheduler,
    B: Backend,
    P: NoisePredictor<B> + ?Sized,
{
    expect_direction(scheduler, Direction::Noising, "invert")?;
    scheduler.set_timesteps(num_steps)?;
    let timesteps = scheduler.timesteps().to_vec();
    run(scheduler, predictor, z0, &timesteps, progress)
}

/// DDIM sampling: sets `num_steps` timesteps on the (denoising) `scheduler`
/// and runs all of them from `z_t`. `latents[0]` is `z_t`.
pub fn sample<S, B, P>(
    scheduler: &mut S,
    predictor: &mut P,
    z_t: Tensor<B, 4>,
    num_steps: usize,
    progress: Progress<'_>,
) -> Result<Trajectory<B>>
where
    S: Scheduler,
    B: Backend,
    P: NoisePredictor<B> + ?Sized,
{
    sample_from(scheduler, predictor, z_t, num_steps, 0, progress)
}

/// DDIM sampling from an intermediate step: sets `num_steps` timesteps and
/// runs `timesteps[start_step..]` from `latent`, which must be at the noise
/// level of `timesteps[start_step]` (see [`start_step_for_strength`]).
pub fn sample_from<S, B, P>(
    scheduler: &mut S,
    predictor: &mut P,
    latent: Tensor<B, 4>,
    num_steps: usize,
    start_step: usize,
    progress: Progress<'_>,
) -> Result<Trajectory<B>>
where
    S: Scheduler,
    B: Backend,
    P: NoisePredictor<B> + ?Sized,
{
    expect_direction(scheduler, Direction::Denoising, "sample")?;
    scheduler.set_timesteps(num_steps)?;
    let timesteps = scheduler.timesteps().to_vec();
    if start_step > timesteps.len() {
        return Err(ScheduleError::arg(
            "start_step",
            format!("{start_step} is beyond the {} steps", timesteps.len()),
        ));
    }
    run(
        scheduler,
        predictor,
        latent,
        &timesteps[start_step..],
        progress,
    )
}

/// The first step an image-to-image run of `strength` (0..=1) starts at, as
/// diffusers' img2img pipelines compute it:
/// `num_steps - min(floor(num_steps * strength), num_steps)`.
pub fn start_step_for_strength(num_steps: usize, strength: f64) -> usize {
    let init = ((num_steps as f64 * strength.clamp(0.0, 1.0)) as usize).min(num_steps);
    num_steps - init
}
