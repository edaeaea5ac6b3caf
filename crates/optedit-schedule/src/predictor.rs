//! The noise-predictor abstraction: anything that maps `(latents, timestep)`
//! to a model output (a UNet, a closure, a guided wrapper).

use burn::tensor::{backend::Backend, Tensor};

use crate::error::PredictorError;

/// A model predicting the noise (or v, or x0, per the scheduler's
/// `prediction_type`) of `latents` at `timestep`.
///
/// Implemented for closures `FnMut(Tensor<B, 4>, usize) -> Tensor<B, 4>`;
/// wrap fallible closures with [`fallible`].
pub trait NoisePredictor<B: Backend> {
    /// The model output for `latents` (`[batch, channels, height, width]`) at `timestep`.
    fn predict(
        &mut self,
        latents: Tensor<B, 4>,
        timestep: usize,
    ) -> Result<Tensor<B, 4>, PredictorError>;
}

impl<B, F> NoisePredictor<B> for F
where
    B: Backend,
    F: FnMut(Tensor<B, 4>, usize) -> Tensor<B, 4>,
{
    fn predict(
        &mut self,
        latents: Tensor<B, 4>,
        timestep: usize,
    ) -> Result<Tensor<B, 4>, PredictorError> {
        Ok(self(latents, timestep))
    }
}

/// A predictor made from a fallible closure; see [`fallible`].
#[derive(Debug, Clone)]
pub struct Fallible<F>(pub F);

/// Turns `FnMut(Tensor<B, 4>, usize) -> Result<Tensor<B, 4>, E>` into a
/// [`NoisePredictor`] whose errors are boxed.
pub fn fallible<F>(f: F) -> Fallible<F> {
    Fallible(f)
}

impl<B, F, E> NoisePredictor<B> for Fallible<F>
where
    B: Backend,
    F: FnMut(Tensor<B, 4>, usize) -> Result<Tensor<B, 4>, E>,
    E: Into<PredictorError>,
{
    fn predict(
        &mut self,
        latents: Tensor<B, 4>,
        timestep: usize,
    ) -> Result<Tensor<B, 4>, PredictorError> {
        (self.0)(latents, timestep).map_err(Into::into)
    }
}
