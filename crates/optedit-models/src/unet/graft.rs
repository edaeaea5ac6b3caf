//! Grafting cross-attention onto a trained UNet's plain up levels.
//!
//! diffusers' `UNet2DConditionModel` lists its down and up block types
//! independently, so an `UpBlock2D` level can become a `CrossAttnUpBlock2D`
//! one (a `Transformer2DModel` after each resnet) while the encoder, and the
//! ControlNets copied from it, stay as they are. A grafted transformer starts
//! with a zero output projection: its residual path adds nothing, so the
//! model's predictions are unchanged until training moves it (the same
//! zero-initialisation as ControlNet's zero convolutions, Zhang et al.,
//! arXiv 2302.05543).

use std::path::Path;

use burn::module::Module;
use burn::tensor::backend::Backend;

use super::model::UNet2DConditionModel;
use crate::blocks::transformer::Transformer2DModel;
use crate::blocks::zeroed;
use crate::error::Result;

impl<B: Backend> UNet2DConditionModel<B> {
    /// Gives every up level without cross-attention (`UpBlock2D`) one
    /// transformer per resnet, with the level's heads and transformer depth
    /// from the config, and records it as `CrossAttnUpBlock2D` in
    /// [`config`](Self::config). The new transformers' output projections
    /// are zero (and trainable), so the output does not change. Returns the
    /// number of levels grafted alongside the model.
    pub fn with_up_cross_attention(mut self) -> Result<(Self, usize)> {
        let path = Path::new("<up cross-attention graft>");
        let spec = self.config.down_path(path)?;
        let device = self.devices()[0].clone();
        let levels = self.up_blocks.len();
        let mut grafted = 0;
        for (i, block) in self.up_blocks.iter_mut().enumerate() {
            if !block.attentions.is_empty() {
                continue;
            }
            // Up level i mirrors down level `levels - 1 - i`.
            let level = levels - 1 - i;
            let transformer = spec.transformer(
                spec.block_out_channels[level],
                spec.heads[level],
                spec.transformer_layers[level],
            );
            block.attentions = (0..block.resnets.len())
                .map(|_| zero_output(transformer.init(&device)))
                .collect();
            self.config.up_block_types[i] = "CrossAttnUpBlock2D".into();
            grafted += 1;
        }
        self.config.validate(path)?;
        Ok((self, grafted))
    }
}

/// The transformer with its output projection zeroed.
fn zero_output<B: Backend>(mut t: Transformer2DModel<B>) -> Transformer2DModel<B> {
    t.proj_out.weight = zeroed(t.proj_out.weight);
    t.proj_out.bias = t.proj_out.bias.map(zeroed);
    t
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, Flex};
    use burn::module::Module;
    use burn::tensor::{Distribution, Tensor};

    use crate::UNet2DConditionModel;

    type A = Autodiff<Flex>;

    #[test]
    fn grafted_up_attention_keeps_the_output_and_trains() {
        let device = Default::default();
        let text = std::fs::read_to_string(
            optedit_fixtures::fixtures_dir().join("tiny-sd/unet/config.json"),
        )
        .unwrap();
        let mut config: crate::UNet2DConditionConfig = serde_json::from_str(&text).unwrap();
        // The public fixture, like SD 1.5, has a plain lowest up level; a
        // fixture whose up levels all attend gets one, so that there is
        // something to graft.
        if config.up_block_types.iter().all(|t| t != "UpBlock2D") {
            config.up_block_types[0] = "UpBlock2D".into();
        }
        let plain: Vec<usize> = (0..config.up_block_types.len())
            .filter(|&i| config.up_block_types[i] == "UpBlock2D")
            .collect();
        assert!(!plain.is_empty());
        let model = UNet2DConditionModel::<A>::from_config(config.clone(), &device).unwrap();
        // The smallest latent every level takes.
        let size = 1 << (config.block_out_channels.len() - 1);
        let x = Tensor::<A, 4>::random(
            [2, config.in_channels, size, size],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let t = Tensor::<A, 1>::from_floats([10.0, 700.0], &device);
        let ctx = Tensor::<A, 3>::random(
            [2, 5, config.cross_attention_dim],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let before = model.forward(x.clone(), t.clone(), ctx.clone()).unwrap();
        let (model, grafted) = model.with_up_cross_attention().unwrap();
        assert_eq!(grafted, plain.len());
        assert!(model
            .config
            .up_block_types
            .iter()
            .all(|t| t == "CrossAttnUpBlock2D"));
        assert_eq!(model.config.down_block_types, config.down_block_types);
        let block = &model.up_blocks[plain[0]];
        assert_eq!(block.attentions.len(), block.resnets.len());
        // The new level is built as a model from the new config would be.
        let fresh = UNet2DConditionModel::<A>::from_config(model.config.clone(), &device).unwrap();
        assert_eq!(fresh.num_params(), model.num_params());
        let after = model.forward(x, t, ctx).unwrap();
        let diff = (after.clone() - before).abs().max().into_scalar();
        assert_eq!(diff, 0.0);
        // The zero projections take gradients (they are what trains first).
        let grads = after.powi_scalar(2).sum().backward();
        let g = block.attentions[0]
            .proj_out
            .weight
            .grad(&grads)
            .expect("the grafted projection is trainable");
        assert!(g.abs().max().into_scalar() > 0.0);
        // A second graft finds nothing to do.
        let (_, again) = model.with_up_cross_attention().unwrap();
        assert_eq!(again, 0);
    }
}
