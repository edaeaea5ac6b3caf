//! The training stages, in the order they run.

pub mod classifier;
pub mod controlnet;
pub mod foreground;
pub mod judge_examples;
pub mod latents;
pub mod text_to_image;
pub mod vae;

/// Options shared by every stage.
#[derive(Debug, Clone)]
pub struct StageOptions {
    /// Total optimiser steps.
    pub steps: usize,
    /// Samples per step.
    pub batch: usize,
    /// Peak learning rate (AdamW; linear warm-up, then cosine decay to 10%).
    pub lr: f64,
    /// Warm-up steps.
    pub warmup: usize,
    /// Base seed of the data and noise draws.
    pub seed: u64,
    /// Checkpoint every this many steps.
    pub checkpoint_every: usize,
    /// Stop this invocation after this step (checkpointed), leaving the rest
    /// of `steps` to a resumed run; the schedule still spans `steps`.
    pub stop_at: Option<usize>,
    /// Wall-clock budget of a fresh run: the steps of the warm-up are timed
    /// and `steps` is lowered (never raised) so the run ends within the
    /// budget; the cosine decay then spans the lowered total, which is
    /// printed (resume such a run with `--steps` set to it).
    pub time_budget: Option<std::time::Duration>,
    /// Floor on the weight of a noised sample's x0 error in the diffusion
    /// stages (UNet, ControlNets). Their min-SNR-5 loss weighs the x0 error
    /// by `min(snr, 5)`, which is below 0.1 in the noisiest quarter of the
    /// schedule, where a sample's composition (and so its caption) is
    /// decided; the floor raises that to `max(min(snr, 5), floor)`.
    /// 0 keeps plain min-SNR-5. The VAE and classifier stages, which add no
    /// noise, refuse any other value ([`StageOptions::validate_without_noise`]).
    pub x0_weight_floor: f64,
    /// Offset noise (Guttenberg, "Diffusion with offset noise", 2023) in
    /// the diffusion stages: the standard deviation of a constant per
    /// sample and channel added to the training noise. Under SD's schedule
    /// the noisy latent shows its image mean above the noise even at the
    /// first sampling step (`optedit-train snr`), so a model learns to read
    /// the background from the noise instead of from the caption; an offset
    /// of about 0.1 hides it. 0 (the default) trains on plain Gaussian
    /// noise; sampling is unchanged either way. The VAE and classifier
    /// stages refuse any other value.
    pub offset_noise: f64,
    /// Multi-resolution (pyramid) noise in the diffusion stages: the
    /// discount `d` in [0, 1) of Gaussian noise drawn at every coarser
    /// scale (blocks of 2, 4, ... latent pixels, constant within a block)
    /// and added with weight `d^level`, the sum rescaled to unit variance.
    /// Offset noise hides only each channel's whole-image mean; this also
    /// hides the block means in which an object's colour shows early under
    /// SD's schedule. 0 (the default): none. The VAE and classifier stages
    /// refuse any other value.
    pub pyramid_noise: f64,
    /// Foreground weighting in the diffusion stages: each latent pixel's
    /// squared error is weighed by `1 + w * coverage`, the coverage being
    /// the part of the pixel's image block within an object or the figure
    /// ([`foreground::ForegroundMaps`]), so that the objects' shapes and
    /// the figure's limbs count for more than the textured background
    /// around them. 0 (the default): the plain loss. The VAE and
    /// classifier stages refuse any other value.
    pub foreground_weight: f64,
    /// Each step's batch is split into this many equal shards whose losses
    /// and gradients are computed on separate threads and summed (data
    /// parallelism on one machine). burn's `Flex` CPU backend keeps about one
    /// core busy on the demo model's shapes, so on a CPU `shards` = number
    /// of cores uses the rest. The batch must be a multiple of it. 1 (the
    /// default) runs the step on the calling thread, and a sharded run draws
    /// different examples than an unsharded one.
    pub shards: usize,
    /// Keep every checkpoint's module record rather than only the last, so
    /// the last few can be averaged ([`text_to_image::load_averaged`],
    /// `export --average-last`). Each record is the module's size (the optimiser's
    /// state, twice that, is still kept only for the last checkpoint).
    pub keep_checkpoints: bool,
}

/// Steps at the start of a run that are not timed for the time budget (a
/// GPU backend compiles and autotunes its kernels during them).
const UNTIMED_STEPS: usize = 5;

impl StageOptions {
    /// Learning rate at `step`.
    pub fn lr_at(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.lr * (step + 1) as f64 / self.warmup as f64;
        }
        let span = (self.steps - self.warmup).max(1) as f64;
        let p = ((step - self.warmup) as f64 / span).min(1.0);
        self.lr * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
    }

    /// [`StageOptions::validate`] for a stage that adds no diffusion noise
    /// (VAE, classifier): also refuses a non-zero `x0_weight_floor`, which
    /// such a stage would otherwise ignore without a word.
    pub fn validate_without_noise(&self) -> crate::Result<()> {
        self.validate()?;
        for (argument, value) in [
            ("x0-weight-floor", self.x0_weight_floor),
            ("offset-noise", self.offset_noise),
            ("pyramid-noise", self.pyramid_noise),
            ("foreground-weight", self.foreground_weight),
        ] {
            if value != 0.0 {
                return Err(crate::TrainError::InvalidArgument {
                    argument: argument.into(),
                    message: "applies to the unet and controlnet stages only".into(),
                });
            }
        }
        Ok(())
    }

    /// The noising of the diffusion stages.
    pub fn noising(&self) -> text_to_image::Noising {
        text_to_image::Noising {
            x0_weight_floor: self.x0_weight_floor,
            offset_noise: self.offset_noise,
            pyramid_noise: self.pyramid_noise,
        }
    }

    /// Checks the options.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |argument: &str, message: &str| {
            Err(crate::TrainError::InvalidArgument {
                argument: argument.into(),
                message: message.into(),
            })
        };
        if !(self.x0_weight_floor.is_finite() && self.x0_weight_floor >= 0.0) {
            return bad("x0-weight-floor", "must be finite and non-negative");
        }
        if !(self.offset_noise.is_finite() && (0.0..=1.0).contains(&self.offset_noise)) {
            return bad("offset-noise", "must be in [0, 1]");
        }
        if !(self.pyramid_noise.is_finite() && (0.0..1.0).contains(&self.pyramid_noise)) {
            return bad("pyramid-noise", "must be in [0, 1)");
        }
        if !(self.foreground_weight.is_finite() && self.foreground_weight >= 0.0) {
            return bad("foreground-weight", "must be finite and non-negative");
        }
        if self.steps == 0 {
            return bad("steps", "must be positive");
        }
        if self.batch == 0 {
            return bad("batch", "must be positive");
        }
        if self.shards == 0 || self.batch % self.shards != 0 {
            return bad("shards", "must be positive and divide the batch");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", "must be a positive number");
        }
        if self.checkpoint_every == 0 {
            return bad("checkpoint_every", "must be positive");
        }
        if self.time_budget.is_some() && self.warmup < UNTIMED_STEPS + 10 {
            return bad(
                "time_budget",
                "needs at least 15 warm-up steps to time (the total is fixed before the decay starts)",
            );
        }
        Ok(())
    }
}

impl StageOptions {
    /// The step this invocation runs up to.
    pub fn end(&self) -> usize {
        self.stop_at.map_or(self.steps, |s| s.min(self.steps))
    }

    /// The total steps that fit into `budget` when the run started
    /// `elapsed` ago and its timed steps took `per_step` each: never more
    /// than `steps`, never fewer than the warm-up plus one.
    pub fn steps_within(
        &self,
        budget: std::time::Duration,
        elapsed: std::time::Duration,
        per_step: std::time::Duration,
    ) -> usize {
        let left = budget.saturating_sub(elapsed).as_secs_f64();
        let more = (left / per_step.as_secs_f64().max(1e-9)).floor() as usize;
        (self.warmup + more).clamp(self.warmup + 1, self.steps.max(self.warmup + 1))
    }

    /// Whether to checkpoint after finishing `step` (0-based).
    pub fn checkpoint_after(&self, step: usize) -> bool {
        let done = step + 1;
        done % self.checkpoint_every == 0 || done == self.end()
    }
}

/// Fails with [`crate::TrainError::Diverged`] on a non-finite loss.
pub(crate) fn check_finite(stage: &str, step: usize, value: f32) -> crate::Result<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(crate::TrainError::Diverged {
            stage: stage.into(),
            step,
            value,
        })
    }
}

/// What one training step produced: the loss to differentiate and the values
/// to log (the loss first).
pub(crate) struct StepLoss<B: burn::tensor::backend::AutodiffBackend> {
    /// Scalar loss `[1]`.
    pub loss: burn::tensor::Tensor<B, 1>,
    /// Logged values, loss first.
    pub values: Vec<f32>,
}

impl<B: burn::tensor::backend::AutodiffBackend> StepLoss<B> {
    /// A step that logs only its loss.
    pub fn single(loss: burn::tensor::Tensor<B, 1>) -> Self {
        use burn::tensor::ElementConversion;
        let value = loss.clone().into_scalar().elem::<f32>();
        Self {
            loss,
            values: vec![value],
        }
    }
}

/// A stage's checkpoint folder, model and AdamW optimiser, seeded and resumed.
pub(crate) struct Run<B, M>
where
    B: burn::tensor::backend::AutodiffBackend,
    M: burn::module::AutodiffModule<B>,
{
    ckpt: crate::checkpoint::Checkpointer,
    model: M,
    optim: burn::optim::adaptor::OptimizerAdaptor<burn::optim::AdamW, M, B>,
    start: usize,
}

impl<B, M> Run<B, M>
where
    B: burn::tensor::backend::AutodiffBackend,
    M: burn::module::AutodiffModule<B>,
{
    /// Seeds the backend from `(seed, stage)`, builds the model with `init`
    /// and resumes from `dir/checkpoints/<name>` when a checkpoint is there.
    pub fn start(
        dir: &std::path::Path,
        name: &str,
        seed: u64,
        stage: u64,
        optim: burn::optim::AdamWConfig,
        init: impl FnOnce() -> crate::Result<M>,
        device: &B::Device,
    ) -> crate::Result<Self> {
        let ckpt = crate::checkpoint::Checkpointer::new(&dir.join("checkpoints").join(name))?;
        // Seeded initialisation: a run is reproducible from its seed.
        B::seed(device, crate::data::mix(&[seed, stage + 100]));
        let model = init()?;
        let (model, optim, start) = ckpt.resume::<B, _, _>(model, optim.init::<B, M>(), device)?;
        Ok(Self {
            ckpt,
            model,
            optim,
            start,
        })
    }

    /// Runs the steps left up to `options.end()`: `step` computes the loss of
    /// one step (or shard, see [`StageOptions::shards`]) of `batch` examples
    /// from the model and that step's RNG; gradients, the optimiser step,
    /// logging, NaN checks and checkpoints are done here.
    pub fn fit(
        mut self,
        name: &str,
        stage: u64,
        columns: &[&str],
        options: &StageOptions,
        step: impl Fn(&M, &mut rand_chacha::ChaCha8Rng, usize) -> crate::Result<StepLoss<B>> + Sync,
    ) -> crate::Result<M> {
        use burn::optim::Optimizer;
        let mut options = options.clone();
        self.ckpt = self.ckpt.keep_models(options.keep_checkpoints);
        if options.time_budget.is_some() && self.start + UNTIMED_STEPS + 10 > options.warmup {
            return Err(crate::TrainError::InvalidArgument {
                argument: "time_budget".into(),
                message: format!(
                    "`{name}` resumes at step {}, too late in its warm-up to time it; the budget fixes the total during the warm-up, so resume with `--steps` instead",
                    self.start
                ),
            });
        }
        let mut log =
            crate::log::TrainLog::open(self.ckpt.dir(), name, self.start, options.steps, columns)?;
        let started = std::time::Instant::now();
        let mut timed_from = None;
        let mut i = self.start;
        while i < options.end() {
            if i == self.start + UNTIMED_STEPS {
                timed_from = Some((i, std::time::Instant::now()));
            }
            let (values, grads) = self.gradients(name, stage, i, &options, &step)?;
            self.model = self.optim.step(options.lr_at(i), self.model, grads);
            log.step(i, &values);
            if let (Some(budget), Some((from, at))) = (options.time_budget, timed_from) {
                if i + 1 == options.warmup {
                    let per_step = at.elapsed() / (i + 1 - from) as u32;
                    options.steps = options.steps_within(budget, started.elapsed(), per_step);
                    log.println(format!(
                        "{name}: {:.3} s/step, so {} steps fit the {} s budget",
                        per_step.as_secs_f64(),
                        options.steps,
                        budget.as_secs()
                    ));
                }
            }
            if options.checkpoint_after(i) {
                self.ckpt.save::<B, _, _>(i + 1, &self.model, &self.optim)?;
            }
            i += 1;
        }
        log.finish();
        Ok(self.model)
    }
}

impl<B, M> Run<B, M>
where
    B: burn::tensor::backend::AutodiffBackend,
    M: burn::module::AutodiffModule<B>,
{
    /// The logged values and the gradients of step `i`: on the calling
    /// thread, or summed over `options.shards` threads, each with its own
    /// autodiff copy of the model (same parameter ids, its own graph) and
    /// its own RNG, its loss divided by the number of shards.
    fn gradients(
        &self,
        name: &str,
        stage: u64,
        i: usize,
        options: &StageOptions,
        step: &(impl Fn(&M, &mut rand_chacha::ChaCha8Rng, usize) -> crate::Result<StepLoss<B>> + Sync),
    ) -> crate::Result<(Vec<f32>, burn::optim::GradientsParams)> {
        use burn::optim::{GradientsAccumulator, GradientsParams};
        if options.shards == 1 {
            let mut rng = crate::data::step_rng(options.seed, stage, i);
            let out = step(&self.model, &mut rng, options.batch)?;
            check_finite(name, i, out.values[0])?;
            let grads = GradientsParams::from_grads(out.loss.backward(), &self.model);
            return Ok((out.values, grads));
        }
        let n = options.shards;
        let per = options.batch / n;
        let shards: Vec<crate::Result<(Vec<f32>, GradientsParams)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .map(|s| {
                    // `valid()` per shard: cloning an inner module would
                    // drop the parameters' `require_grad` flags.
                    let model = M::from_inner(self.model.valid());
                    scope.spawn(move || {
                        let mut rng = crate::data::step_rng(
                            crate::data::mix(&[options.seed, s as u64]),
                            stage,
                            i,
                        );
                        let out = step(&model, &mut rng, per)?;
                        let loss = out.loss.div_scalar(n as f64);
                        Ok((
                            out.values,
                            GradientsParams::from_grads(loss.backward(), &model),
                        ))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let mut values = Vec::new();
        let mut sum = GradientsAccumulator::<M>::new();
        for shard in shards {
            let (v, g) = shard?;
            if values.is_empty() {
                values = vec![0.0; v.len()];
            }
            for (a, b) in values.iter_mut().zip(&v) {
                *a += b / n as f32;
            }
            sum.accumulate(&self.model, g);
        }
        check_finite(name, i, values[0])?;
        Ok((values, sum.grads()))
    }
}

/// The model of the last checkpoint in `dir/checkpoints/<name>` (an error
/// naming the stage to run when there is none).
pub(crate) fn load_checkpoint<B, M>(
    dir: &std::path::Path,
    name: &str,
    model: M,
    device: &B::Device,
) -> crate::Result<M::InnerModule>
where
    B: burn::tensor::backend::AutodiffBackend,
    M: burn::module::AutodiffModule<B>,
{
    let ckpt = crate::checkpoint::Checkpointer::new(&dir.join("checkpoints").join(name))?;
    let optim = burn::optim::AdamWConfig::new().init::<B, M>();
    let (model, _, step) = ckpt.resume::<B, _, _>(model, optim, device)?;
    if step == 0 {
        return Err(crate::TrainError::InvalidArgument {
            argument: "dir".into(),
            message: format!(
                "no `{name}` checkpoint in {}; run that stage first",
                ckpt.dir().display()
            ),
        });
    }
    Ok(model.valid())
}

/// The uniform average ([`crate::average::average`]) of the last `last`
/// module records in `dir/checkpoints/<name>` (kept with
/// [`StageOptions::keep_checkpoints`]); `model` builds the module each record
/// is loaded into. Fails when the folder holds fewer records.
pub(crate) fn load_averaged<B, M>(
    dir: &std::path::Path,
    name: &str,
    last: usize,
    model: impl Fn() -> crate::Result<M>,
    device: &B::Device,
) -> crate::Result<M>
where
    B: burn::tensor::backend::Backend,
    M: burn::module::Module<B>,
{
    let ckpt = crate::checkpoint::Checkpointer::new(&dir.join("checkpoints").join(name))?;
    let records = ckpt.model_records()?;
    if last == 0 || records.len() < last {
        return Err(crate::TrainError::InvalidArgument {
            argument: "average-last".into(),
            message: format!(
                "{last} records asked for, {} kept in {} (train with --keep-checkpoints)",
                records.len(),
                ckpt.dir().display()
            ),
        });
    }
    let models = records[records.len() - last..]
        .iter()
        .map(|(_, path)| crate::checkpoint::load_model(path, model()?, device))
        .collect::<crate::Result<Vec<M>>>()?;
    crate::average::average(models)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Tensor, TensorData};
    use rand::Rng;

    type A = Autodiff<Flex>;

    fn options(shards: usize) -> StageOptions {
        StageOptions {
            steps: 1,
            batch: 4,
            lr: 1e-3,
            warmup: 1,
            seed: 3,
            checkpoint_every: 100,
            stop_at: None,
            time_budget: None,
            x0_weight_floor: 0.0,
            offset_noise: 0.0,
            pyramid_noise: 0.0,
            foreground_weight: 0.0,
            shards,
            keep_checkpoints: false,
        }
    }

    /// A 3 -> 2 linear layer with fixed weights: tests run in parallel and
    /// share the backend's global RNG (`Run::start` seeds it), so a module
    /// drawn from it could differ between two runs of one test.
    fn fixed_linear(device: &burn::backend::flex::FlexDevice) -> Linear<A> {
        use burn::module::Param;
        let mut l = LinearConfig::new(3, 2).init(device);
        let w = [0.3f32, -0.2, 0.5, 0.1, 0.4, -0.6];
        l.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(w.to_vec(), [3, 2]),
            device,
        ));
        l.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![0.05f32, -0.1], [2]),
            device,
        )));
        l
    }

    /// Mean squared output of `batch` rows: with `same` every row is the
    /// same, so the mean loss (and its gradient) does not depend on how the
    /// batch is split; otherwise the rows come from the RNG.
    fn loss(
        model: &Linear<A>,
        rng: &mut rand_chacha::ChaCha8Rng,
        batch: usize,
        same: bool,
    ) -> StepLoss<A> {
        let data: Vec<f32> = (0..batch * 3)
            .map(|i| {
                if same {
                    (i % 3) as f32 - 0.5
                } else {
                    rng.random::<f32>()
                }
            })
            .collect();
        let x = Tensor::<A, 2>::from_data(TensorData::new(data, [batch, 3]), &Default::default());
        StepLoss::single(model.forward(x).powi_scalar(2).mean().reshape([1]))
    }

    fn gradient_values(shards: usize, same: bool) -> (Vec<f32>, Vec<f32>) {
        let dir = tempfile::tempdir().unwrap();
        let device = Default::default();
        let run = Run::<A, Linear<A>>::start(
            dir.path(),
            "test",
            1,
            1,
            burn::optim::AdamWConfig::new(),
            || Ok(fixed_linear(&device)),
            &device,
        )
        .unwrap();
        let step = |m: &Linear<A>, rng: &mut rand_chacha::ChaCha8Rng, batch: usize| {
            Ok(loss(m, rng, batch, same))
        };
        let (values, mut grads) = run
            .gradients("test", 1, 0, &options(shards), &step)
            .unwrap();
        let w = grads
            .remove::<Flex, 2>(run.model.weight.id)
            .expect("a weight gradient");
        (values, w.into_data().to_vec::<f32>().unwrap())
    }

    #[test]
    fn shards_sum_to_the_full_batch_gradient() {
        let (v1, g1) = gradient_values(1, true);
        for shards in [2, 4] {
            let (v, g) = gradient_values(shards, true);
            assert!(
                (v[0] - v1[0]).abs() < 1e-6,
                "{shards} shards: loss {v:?} vs {v1:?}"
            );
            for (a, b) in g.iter().zip(&g1) {
                assert!(
                    (a - b).abs() < 1e-5 * (1.0 + b.abs()),
                    "{shards} shards: {g:?} vs {g1:?}"
                );
            }
        }
        // Shards draw their own examples: random rows differ between splits.
        let (_, r1) = gradient_values(1, false);
        let (_, r2) = gradient_values(2, false);
        assert_ne!(r1, r2);
    }

    #[test]
    fn shards_must_divide_the_batch() {
        let e = StageOptions {
            shards: 3,
            ..options(1)
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.contains("shards"), "{e}");
        assert!(StageOptions {
            shards: 0,
            ..options(1)
        }
        .validate()
        .is_err());
    }

    /// Trains the test module for 3 steps, checkpointing after each.
    fn fit_three(dir: &std::path::Path, keep: bool) -> Linear<Flex> {
        let device = Default::default();
        let run = Run::<A, Linear<A>>::start(
            dir,
            "test",
            1,
            1,
            burn::optim::AdamWConfig::new(),
            || Ok(fixed_linear(&device)),
            &device,
        )
        .unwrap();
        let o = StageOptions {
            steps: 3,
            checkpoint_every: 1,
            keep_checkpoints: keep,
            ..options(1)
        };
        let step = |m: &Linear<A>, rng: &mut rand_chacha::ChaCha8Rng, batch: usize| {
            Ok(loss(m, rng, batch, false))
        };
        burn::module::AutodiffModule::valid(&run.fit("test", 1, &["loss"], &o, step).unwrap())
    }

    #[test]
    fn kept_checkpoints_average_to_the_mean_of_the_iterates() {
        let device = Default::default();
        let dir = tempfile::tempdir().unwrap();
        let last = fit_three(dir.path(), true);
        let ckpt =
            crate::checkpoint::Checkpointer::new(&dir.path().join("checkpoints/test")).unwrap();
        let records = ckpt.model_records().unwrap();
        assert_eq!(records.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3]);
        let weights: Vec<Vec<f32>> = records
            .iter()
            .map(|(_, p)| {
                let m = crate::checkpoint::load_model(
                    p,
                    LinearConfig::new(3, 2).init::<Flex>(&device),
                    &device,
                )
                .unwrap();
                m.weight.val().into_data().to_vec().unwrap()
            })
            .collect();
        // The last record is the returned model; the iterates differ.
        let w3: Vec<f32> = last.weight.val().into_data().to_vec().unwrap();
        assert_eq!(weights[2], w3);
        assert_ne!(weights[1], weights[2]);
        let fresh = || Ok(LinearConfig::new(3, 2).init::<Flex>(&device));
        let mean = load_averaged::<Flex, _>(dir.path(), "test", 2, fresh, &device).unwrap();
        let got: Vec<f32> = mean.weight.val().into_data().to_vec().unwrap();
        for (k, g) in got.iter().enumerate() {
            let want = (weights[1][k] + weights[2][k]) / 2.0;
            assert!((g - want).abs() < 1e-6, "{got:?} vs {weights:?}");
        }
        let e = load_averaged::<Flex, _>(dir.path(), "test", 4, fresh, &device)
            .unwrap_err()
            .to_string();
        assert!(e.contains("4 records asked for, 3 kept"), "{e}");
        // Without keeping, only the last record stays.
        let plain = tempfile::tempdir().unwrap();
        fit_three(plain.path(), false);
        let ckpt =
            crate::checkpoint::Checkpointer::new(&plain.path().join("checkpoints/test")).unwrap();
        assert_eq!(ckpt.model_records().unwrap().len(), 1);
    }
}
