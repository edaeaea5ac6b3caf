//! Classifier-free guidance (Ho & Salimans 2022): `eps_u + w * (eps_c - eps_u)`.

use burn::tensor::{backend::Backend, Tensor};

use crate::error::PredictorError;
use crate::predictor::NoisePredictor;

/// `eps_uncond + guidance_scale * (eps_cond - eps_uncond)`.
pub fn guide<B: Backend>(
    eps_uncond: Tensor<B, 4>,
    eps_cond: Tensor<B, 4>,
    guidance_scale: f64,
) -> Tensor<B, 4> {
    let delta = eps_cond.sub(eps_uncond.clone());
    eps_uncond.add(delta.mul_scalar(guidance_scale as f32))
}

/// Splits a batch output `[uncond; cond]` (first half unconditional, as
/// diffusers orders it) and applies [`guide`].
pub fn guide_batch<B: Backend>(
    batch_output: Tensor<B, 4>,
    guidance_scale: f64,
) -> Result<Tensor<B, 4>, PredictorError> {
    let rows = batch_output.dims()[0];
    if rows % 2 != 0 || rows == 0 {
        return Err(format!(
            "guided batch output has {rows} rows; expected [uncond; cond] of even size"
        )
        .into());
    }
    let half = rows / 2;
    let uncond = batch_output.clone().narrow(0, 0, half);
    let cond = batch_output.narrow(0, half, half);
    Ok(guide(uncond, cond, guidance_scale))
}

/// Turns a predictor over the doubled batch `[uncond; cond]` into a guided
/// predictor: the latents are duplicated with `Tensor::cat`, the inner
/// predictor evaluates both halves at once (it holds the matching
/// `[uncond; cond]` conditioning), and the halves are combined by [`guide`].
#[derive(Debug, Clone)]
pub struct Cfg<P> {
    /// The predictor over the doubled batch.
    pub inner: P,
    /// The guidance scale `w` (1 gives the conditional prediction).
    pub guidance_scale: f64,
}

impl<P> Cfg<P> {
    /// Wraps `inner` with guidance scale `guidance_scale`.
    pub fn new(inner: P, guidance_scale: f64) -> Self {
        Self {
            inner,
            guidance_scale,
        }
    }
}

impl<B: Backend, P: NoisePredictor<B>> NoisePredictor<B> for Cfg<P> {
    fn predict(
        &mut self,
        latents: Tensor<B, 4>,
        timestep: usize,
    ) -> Result<Tensor<B, 4>, PredictorError> {
        let batch = latents.dims()[0];
        let doubled = Tensor::cat(vec![latents.clone(), latents], 0);
        let out = self.inner.predict(doubled, timestep)?;
        if out.dims()[0] != 2 * batch {
            return Err(format!(
                "guided predictor returned {} rows for a doubled batch of {}",
                out.dims()[0],
                2 * batch
            )
            .into());
        }
        guide_batch(out, self.guidance_scale)
    }
}
