//! The noise predictor of the edit: UNet plus ControlNet residuals with
//! classifier-free guidance, as diffusers' `StableDiffusionControlNetPipeline`
//! computes it (`[uncond; cond]` batch, ControlNets on both halves).

use burn::tensor::{backend::Backend, Tensor};
use optedit_models::{ControlResiduals, UNet2DConditionModel};

use crate::condition::{repeat_batch, ControlCondition};
use crate::error::{EditError, Result};

/// Predicts the model output of a latent under one condition.
#[derive(Debug, Clone)]
pub struct Denoiser<'a, B: Backend> {
    unet: &'a UNet2DConditionModel<B>,
    cond: Tensor<B, 3>,
    uncond: Tensor<B, 3>,
    guidance_scale: f64,
    controls: Vec<ControlCondition<'a, B>>,
}

impl<'a, B: Backend> Denoiser<'a, B> {
    /// A denoiser; with `guidance_scale == 1` only the conditional branch runs.
    pub fn new(
        unet: &'a UNet2DConditionModel<B>,
        cond: Tensor<B, 3>,
        uncond: Tensor<B, 3>,
        guidance_scale: f64,
        controls: Vec<ControlCondition<'a, B>>,
    ) -> Self {
        Self {
            unet,
            cond,
            uncond,
            guidance_scale,
            controls,
        }
    }

    /// The UNet.
    pub fn unet(&self) -> &'a UNet2DConditionModel<B> {
        self.unet
    }

    /// Model output for `latent` `[b, c, h, w]` at `timestep`, during
    /// denoising step `step` of `total` (which decides the active ControlNets).
    pub fn predict(
        &self,
        latent: Tensor<B, 4>,
        timestep: usize,
        step: usize,
        total: usize,
    ) -> Result<Tensor<B, 4>> {
        let b = latent.dims()[0];
        let guided = self.guidance_scale != 1.0;
        let (x, ctx) = if guided {
            (
                Tensor::cat(vec![latent.clone(), latent], 0),
                Tensor::cat(
                    vec![repeat_batch(&self.uncond, b), repeat_batch(&self.cond, b)],
                    0,
                ),
            )
        } else {
            (latent, repeat_batch(&self.cond, b))
        };
        let n = x.dims()[0];
        let device = x.device();
        let t = Tensor::<B, 1>::from_data([timestep as f32].as_slice(), &device);
        let mut residuals: Option<ControlResiduals<B>> = None;
        for (i, c) in self.controls.iter().enumerate() {
            if !c.active(step, total) {
                continue;
            }
            let [ib, ..] = c.image.dims();
            let image = match ib {
                1 => c.image.clone().repeat_dim(0, n),
                m if m == n => c.image.clone(),
                m => {
                    return Err(EditError::input(
                        format!("controls[{i}].image"),
                        format!("batch {m}, expected 1 or {n}"),
                    ))
                }
            };
            let r = c
                .model
                .forward(x.clone(), t.clone(), ctx.clone(), image, c.scale)?;
            residuals = Some(match residuals {
                Some(acc) => acc.add(r),
                None => r,
            });
        }
        let out = self
            .unet
            .forward_with_residuals(x, t, ctx, residuals.as_ref())?;
        if guided {
            let mut halves = out.chunk(2, 0);
            let c = halves.pop().expect("two halves");
            let u = halves.pop().expect("two halves");
            Ok(u.clone() + (c - u).mul_scalar(self.guidance_scale))
        } else {
            Ok(out)
        }
    }
}
