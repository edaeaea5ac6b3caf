//! DDIM inversion and sampling loops that keep the whole trajectory.

use burn::tensor::{backend::Backend, Tensor};

use crate::error::{Result, ScheduleError};
use crate::predictor::NoisePredictor;
use crate::scheduler::{Direction, Scheduler};

/// Optional progress callback: called after each step with
/// `(index of the finished step, number of steps)`.
pub type Progress<'a> = Option<&'a mut dyn FnMut(usize, usize)>;

/// Latents along a schedule, indexed by step: the one trajectory type of
/// optedit, for sampling, inversion and the editor's stages alike.
///
/// `timesteps` is the whole schedule the run followed, in the order its
/// steps are taken (descending for denoising, ascending for inversion);
/// `latents[i]` is the input of step `start + i` (at the noise level of
/// `timesteps[start + i]`) and the last latent the result of the last step.
/// A complete trajectory spans the steps `start..N`: `N - start + 1`
/// latents. `eps` holds the model output of each step taken when the run
/// kept them ([`run`], [`invert`], [`sample`]); runs that do not keep them
/// (the editor's stages) leave it empty.
///
/// The editor's DDIM inversion is handed back in *denoising* order
/// (`timesteps` the denoising schedule, `latents[0]` the noisiest), so the
/// inversion and the edit index their latents alike.
#[derive(Debug, Clone)]
pub struct Trajectory<B: Backend> {
    /// The whole schedule, `N` timesteps, in the order the steps are taken.
    pub timesteps: Vec<usize>,
    /// The first step covered (0 unless the run started part-way, as
    /// image-to-image runs of a strength below 1 do).
    pub start: usize,
    /// The latents: `latents[i]` is the input of step `start + i`.
    pub latents: Vec<Tensor<B, 4>>,
    /// The model output of each step taken, when kept (else empty).
    pub eps: Vec<Tensor<B, 4>>,
}

impl<B: Backend> Trajectory<B> {
    /// Number of steps taken (`latents.len() - 1`).
    pub fn len(&self) -> usize {
        self.latents.len().saturating_sub(1)
    }

    /// Whether no step was taken.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The timesteps of the steps taken (`timesteps[start..]`).
    pub fn visited_timesteps(&self) -> &[usize] {
        &self.timesteps[self.start.min(self.timesteps.len())..]
    }

    /// The latent at the input of step `step` (`start <= step <= N`).
    ///
    /// # Panics
    /// If `step` is outside the trajectory.
    pub fn at(&self, step: usize) -> &Tensor<B, 4> {
        assert!(
            step >= self.start && step - self.start < self.latents.len(),
            "step {step} outside the trajectory (steps {}..={})",
            self.start,
            self.start + self.latents.len() - 1
        );
        &self.latents[step - self.start]
    }

    /// The latent at the input of step `step`, `None` outside the
    /// trajectory.
    pub fn get(&self, step: usize) -> Option<&Tensor<B, 4>> {
        step.checked_sub(self.start)
            .and_then(|i| self.latents.get(i))
    }

    /// The first latent (the input of step `start`).
    pub fn first(&self) -> &Tensor<B, 4> {
        &self.latents[0]
    }

    /// The last latent (the result of the last step).
    pub fn last(&self) -> &Tensor<B, 4> {
        self.latents
            .last()
            .expect("a trajectory has at least one latent")
    }

    /// Number of steps `N` of the whole schedule.
    pub fn num_steps(&self) -> usize {
        self.timesteps.len()
    }

    /// Whether the trajectory spans the steps `start..N`.
    pub fn is_complete(&self) -> bool {
        self.latents.len() + self.start == self.timesteps.len() + 1
    }

    /// The latents stacked on a new leading axis: `[len + 1, batch, c, h, w]`.
    pub fn stacked_latents(&self) -> Tensor<B, 5> {
        Tensor::stack(self.latents.clone(), 0)
    }

    /// The model outputs stacked on a new leading axis (`None` when not
    /// kept).
    pub fn stacked_eps(&self) -> Option<Tensor<B, 5>> {
        (!self.eps.is_empty()).then(|| Tensor::stack(self.eps.clone(), 0))
    }
}

/// Runs `scheduler` over `timesteps` from `start`: at each timestep the
/// predictor is evaluated on the (scaled) latent and the scheduler advances.
/// The trajectory's schedule is `timesteps` (its `start` is 0).
pub fn run<S, B, P>(
    scheduler: &S,
    predictor: &mut P,
    start: Tensor<B, 4>,
    timesteps: &[usize],
    progress: Progress<'_>,
) -> Result<Trajectory<B>>
where
    S: Scheduler,
    B: Backend,
    P: NoisePredictor<B> + ?Sized,
{
    run_from(scheduler, predictor, start, timesteps, 0, progress)
}

/// [`run`] over the steps `first..` of the schedule `timesteps`.
fn run_from<S, B, P>(
    scheduler: &S,
    predictor: &mut P,
    start: Tensor<B, 4>,
    timesteps: &[usize],
    first: usize,
    mut progress: Progress<'_>,
) -> Result<Trajectory<B>>
where
    S: Scheduler,
    B: Backend,
    P: NoisePredictor<B> + ?Sized,
{
    let total = timesteps.len() - first;
    let mut latents = Vec::with_capacity(total + 1);
    let mut eps = Vec::with_capacity(total);
    latents.push(start);
    for (step, &timestep) in timesteps[first..].iter().enumerate() {
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
        start: first,
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
/// runs `timesteps[start_step..]` from `latent` (the trajectory's `start`
/// is `start_step`), which must be at the noise
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
    run_from(
        scheduler, predictor, latent, &timesteps, start_step, progress,
    )
}

/// The first step an image-to-image run of `strength` (0..=1) starts at, as
/// diffusers' img2img pipelines compute it:
/// `num_steps - min(floor(num_steps * strength), num_steps)`.
pub fn start_step_for_strength(num_steps: usize, strength: f64) -> usize {
    let init = ((num_steps as f64 * strength.clamp(0.0, 1.0)) as usize).min(num_steps);
    num_steps - init
}
