//! The attribute classifier, the judge of edits. A small CNN reads an image
//! and a region mask (a fourth input channel) and names the shape and colour
//! of the object in the region and the pose class of the figure, or says
//! that the region holds nothing recognisable (one extra class per head,
//! [`NOTHING_SHAPE`], [`NOTHING_COLOUR`], [`NOTHING_POSE`]). It judges edits
//! and plain samples (the whole image, for scenes with one object), and its
//! pooled features are the space of the class-wise feature distance (the
//! CSFID idea of arXiv 2311.16882, section 5).
//!
//! The region of an edit is the box around the thing's source and target
//! masks ([`judged_box`](crate::region::judged_box)), never the target's
//! outline, so the judge is not shown the answer. Features are averaged over
//! the region (mask-weighted pooling).

use std::borrow::Borrow;
use std::path::Path;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::AvgPool2dConfig;
use burn::nn::{GroupNorm, GroupNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use burn_store::{ModuleStore, SafetensorsStore};
use image::GrayImage;
use optedit_models::blocks::norm::group_norm_silu;
use optedit_models::kernels::conv2d;
use optedit_world::{NUM_COLOURS, NUM_POSES, NUM_SHAPES};

use crate::error::{JudgeError, Result};

/// Width of the pooled feature vector.
pub const FEATURES: usize = 128;

/// Width of the shape head: the world's shapes and "nothing".
pub const SHAPE_CLASSES: usize = NUM_SHAPES + 1;
/// Width of the colour head.
pub const COLOUR_CLASSES: usize = NUM_COLOURS + 1;
/// Width of the pose head.
pub const POSE_CLASSES: usize = NUM_POSES + 1;

/// The shape head's "nothing recognisable" class (one past the shapes).
pub const NOTHING_SHAPE: usize = NUM_SHAPES;
/// The colour head's "nothing recognisable" class.
pub const NOTHING_COLOUR: usize = NUM_COLOURS;
/// The pose head's "nothing recognisable" class.
pub const NOTHING_POSE: usize = NUM_POSES;

/// One conv + norm + SiLU layer.
#[derive(Module, Debug)]
pub struct ConvBlock<B: Backend> {
    conv: Conv2d<B>,
    norm: GroupNorm<B>,
}

impl<B: Backend> ConvBlock<B> {
    fn new(cin: usize, cout: usize, stride: usize, device: &B::Device) -> Self {
        Self {
            conv: Conv2dConfig::new([cin, cout], [3, 3])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
            norm: GroupNormConfig::new(8, cout).init(device),
        }
    }

    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        group_norm_silu(&self.norm, conv2d(&self.conv, x))
    }
}

/// The attribute classifier.
#[derive(Module, Debug)]
pub struct AttributeClassifier<B: Backend> {
    blocks: Vec<ConvBlock<B>>,
    shape: Linear<B>,
    colour: Linear<B>,
    pose: Linear<B>,
}

/// Logits of the three heads and the pooled features. Each head's last
/// class is "nothing recognisable" ([`NOTHING_SHAPE`], [`NOTHING_COLOUR`],
/// [`NOTHING_POSE`]).
#[derive(Debug, Clone)]
pub struct ClassifierOutput<B: Backend> {
    /// `[n, shapes + 1]`.
    pub shape: Tensor<B, 2>,
    /// `[n, colours + 1]`.
    pub colour: Tensor<B, 2>,
    /// `[n, poses + 1]`.
    pub pose: Tensor<B, 2>,
    /// `[n, FEATURES]`.
    pub features: Tensor<B, 2>,
}

impl<B: Backend> AttributeClassifier<B> {
    /// A fresh classifier (random weights).
    pub fn new(device: &B::Device) -> Self {
        let widths = [
            (4, 32, 1),
            (32, 64, 2),
            (64, 64, 1),
            (64, 128, 2),
            (128, 128, 1),
            (128, FEATURES, 2),
        ];
        Self {
            blocks: widths
                .iter()
                .map(|&(i, o, s)| ConvBlock::new(i, o, s, device))
                .collect(),
            shape: LinearConfig::new(FEATURES, SHAPE_CLASSES).init(device),
            colour: LinearConfig::new(FEATURES, COLOUR_CLASSES).init(device),
            pose: LinearConfig::new(FEATURES, POSE_CLASSES).init(device),
        }
    }

    /// `image` `[n, 3, 128, 128]` in `[-1, 1]`, `mask` `[n, 1, 128, 128]` in `[0, 1]`.
    pub fn forward(&self, image: Tensor<B, 4>, mask: Tensor<B, 4>) -> ClassifierOutput<B> {
        let x = Tensor::cat(vec![image, mask.clone().mul_scalar(2.0).sub_scalar(1.0)], 1);
        let mut x = AvgPool2dConfig::new([2, 2])
            .with_strides([2, 2])
            .init()
            .forward(x);
        for b in &self.blocks {
            x = b.forward(x);
        }
        let [n, c, h, w] = x.dims();
        // Mask-weighted average pooling: the features describe the region.
        let [_, _, mh, mw] = mask.dims();
        let (fh, fw) = (mh / h, mw / w);
        let m = AvgPool2dConfig::new([fh, fw])
            .with_strides([fh, fw])
            .init()
            .forward(mask);
        let weight = m.clone().sum_dim(3).sum_dim(2).add_scalar(1e-3);
        let features = (x * m).sum_dim(3).sum_dim(2).div(weight).reshape([n, c]);
        ClassifierOutput {
            shape: self.shape.forward(features.clone()),
            colour: self.colour.forward(features.clone()),
            pose: self.pose.forward(features.clone()),
            features,
        }
    }

    /// Writes the weights to `path` (safetensors, burn names).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut store = SafetensorsStore::from_file(path).overwrite(true);
        store.collect_from(self).map_err(|e| JudgeError::Weights {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Reads weights written by [`save`](Self::save), strictly: every
    /// tensor of the classifier, and no other.
    pub fn load(path: &Path, device: &B::Device) -> Result<Self> {
        let mut model = Self::new(device);
        let mut store = SafetensorsStore::from_file(path);
        let fail = |message: String| JudgeError::Weights {
            path: path.to_path_buf(),
            message,
        };
        let result = store
            .apply_to::<B, _>(&mut model)
            .map_err(|e| fail(e.to_string()))?;
        if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
            return Err(fail(format!(
                "does not match the classifier: {} errors, missing {:?}, unused {:?}",
                result.errors.len(),
                result.missing,
                result.unused
            )));
        }
        Ok(model)
    }
}

/// Region masks of one size as a `[n, 1, h, w]` tensor in `[0, 1]`
/// (value / 255).
///
/// # Panics
/// If `masks` is empty.
pub fn masks_to_tensor<B: Backend, M: Borrow<GrayImage>>(
    masks: &[M],
    device: &B::Device,
) -> Tensor<B, 4> {
    let (w, h) = masks[0].borrow().dimensions();
    let data: Vec<f32> = masks
        .iter()
        .flat_map(|m| m.borrow().as_raw().iter().map(|&v| v as f32 / 255.0))
        .collect();
    Tensor::from_data(
        TensorData::new(data, [masks.len(), 1, h as usize, w as usize]),
        device,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use optedit_cond::image::rgb_batch_to_signed_tensor;

    fn values(t: Tensor<Flex, 2>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().unwrap()
    }

    #[test]
    fn weights_round_trip_and_give_the_same_outputs() {
        let device = Default::default();
        let model = AttributeClassifier::<Flex>::new(&device);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        model.save(&path).unwrap();
        let loaded = AttributeClassifier::<Flex>::load(&path, &device).unwrap();
        let scene = optedit_world::SceneSpec::sample(4).render();
        let image = rgb_batch_to_signed_tensor::<Flex, _>(&[&scene.image], &device);
        let mask = masks_to_tensor::<Flex, _>(&[&scene.object_masks[0]], &device);
        let (a, b) = (
            model.forward(image.clone(), mask.clone()),
            loaded.forward(image, mask),
        );
        assert_eq!(a.shape.dims(), [1, SHAPE_CLASSES]);
        assert_eq!(a.colour.dims(), [1, COLOUR_CLASSES]);
        assert_eq!(a.pose.dims(), [1, POSE_CLASSES]);
        assert_eq!(a.features.dims(), [1, FEATURES]);
        assert_eq!(values(a.shape), values(b.shape));
        assert_eq!(values(a.features), values(b.features));
        // A file of other tensors is refused, naming the file.
        let other = dir.path().join("other.safetensors");
        let e = match AttributeClassifier::<Flex>::load(&other, &device) {
            Err(e) => e,
            Ok(_) => panic!("a missing file loads"),
        };
        assert!(e.to_string().contains("other.safetensors"), "{e}");
    }

    #[test]
    fn masks_are_planes_in_zero_one() {
        let m = GrayImage::from_fn(4, 2, |x, _| image::Luma([if x < 2 { 255 } else { 0 }]));
        let t = masks_to_tensor::<Flex, _>(&[m.clone(), m], &Default::default());
        assert_eq!(t.dims(), [2, 1, 2, 4]);
        let v = t.into_data().to_vec::<f32>().unwrap();
        assert_eq!(&v[..4], &[1.0, 1.0, 0.0, 0.0]);
    }
}
