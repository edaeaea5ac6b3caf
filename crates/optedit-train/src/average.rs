//! Weight averaging of trained modules: the uniform mean of several
//! checkpoints of one run (checkpoint averaging; Izmailov et al.,
//! arXiv 1803.05407, and the post-hoc averages of Karras et al.,
//! arXiv 2312.02696). Diffusion models are sampled from averaged weights
//! because single SGD iterates carry the noise of their last mini-batches
//! (Ho et al., arXiv 2006.11239, use an exponential moving average).
//!
//! Both operations walk the float parameters of two modules of the same
//! type in the same order ([`ModuleVisitor`], [`ModuleMapper`]), so they work
//! for any burn module.

use std::collections::VecDeque;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use crate::error::{Result, TrainError};

/// Collects the float parameters of a module, flattened.
struct Collect<B: Backend> {
    tensors: VecDeque<Tensor<B, 1>>,
}

impl<B: Backend> ModuleVisitor<B> for Collect<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let t = param.val();
        let n = t.shape().num_elements();
        self.tensors.push_back(t.reshape([n]));
    }
}

/// Moves every float parameter `weight` of the way towards the collected one.
struct Lerp<B: Backend> {
    sources: VecDeque<Tensor<B, 1>>,
    weight: f64,
    /// The first parameter whose source was missing or of another size.
    mismatch: Option<String>,
    index: usize,
}

impl<B: Backend> ModuleMapper<B> for Lerp<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let index = self.index;
        self.index += 1;
        let shape = tensor.shape();
        let tensor = match self.sources.pop_front() {
            Some(s) if s.shape().num_elements() == shape.num_elements() => {
                let s: Tensor<B, D> = s.reshape(shape);
                tensor.clone() + (s - tensor).mul_scalar(self.weight)
            }
            other => {
                self.mismatch.get_or_insert_with(|| match other {
                    Some(s) => format!(
                        "parameter {index} has {} values here and {} in the other module",
                        shape.num_elements(),
                        s.shape().num_elements()
                    ),
                    None => format!("parameter {index} is missing from the other module"),
                });
                tensor
            }
        };
        Param::from_mapped_value(id, tensor, mapper)
    }
}

/// `target + weight * (source - target)` for every float parameter:
/// `weight` 1 copies `source`, 0 keeps `target`. An exponential moving
/// average with decay `d` is `lerp(ema, &model, 1 - d)`.
///
/// Fails when the two modules' parameters differ in number or size (modules
/// of the same type built from different configs).
pub fn lerp<B: Backend, M: Module<B>>(target: M, source: &M, weight: f64) -> Result<M> {
    if !(0.0..=1.0).contains(&weight) {
        return Err(TrainError::InvalidArgument {
            argument: "weight".into(),
            message: format!("{weight} is not in [0, 1]"),
        });
    }
    let mut collect = Collect {
        tensors: VecDeque::new(),
    };
    source.visit(&mut collect);
    let mut lerp = Lerp {
        sources: collect.tensors,
        weight,
        mismatch: None,
        index: 0,
    };
    let out = target.map(&mut lerp);
    if let Some(message) = lerp.mismatch {
        return Err(TrainError::InvalidArgument {
            argument: "modules".into(),
            message,
        });
    }
    if !lerp.sources.is_empty() {
        return Err(TrainError::InvalidArgument {
            argument: "modules".into(),
            message: format!(
                "the other module has {} more parameters",
                lerp.sources.len()
            ),
        });
    }
    Ok(out)
}

/// The uniform mean of `models`' float parameters (a running mean: the
/// k-th model is blended in with weight `1 / k`); the other state (ids,
/// int and bool tensors) is the first model's. Fails on an empty list or
/// modules whose parameters differ in number or size.
pub fn average<B: Backend, M: Module<B>>(models: impl IntoIterator<Item = M>) -> Result<M> {
    let mut models = models.into_iter();
    let mut mean = models.next().ok_or_else(|| TrainError::InvalidArgument {
        argument: "models".into(),
        message: "nothing to average".into(),
    })?;
    for (k, m) in models.enumerate() {
        mean = lerp(mean, &m, 1.0 / (k + 2) as f64)?;
    }
    Ok(mean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::TensorData;

    type B = Flex;

    fn linear(values: f32, bias: f32) -> Linear<B> {
        let device = Default::default();
        let mut l = LinearConfig::new(2, 3).init::<B>(&device);
        l.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![values; 6], [2, 3]),
            &device,
        ));
        l.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![bias; 3], [3]),
            &device,
        )));
        l
    }

    fn values(t: Tensor<B, 2>) -> Vec<f32> {
        t.into_data().to_vec().unwrap()
    }

    #[test]
    fn average_is_the_mean_of_every_parameter() {
        let mean = average([linear(1.0, -3.0), linear(2.0, 0.0), linear(6.0, 6.0)]).unwrap();
        for v in values(mean.weight.val()) {
            assert!((v - 3.0).abs() < 1e-6, "{v}");
        }
        let b: Vec<f32> = mean.bias.unwrap().val().into_data().to_vec().unwrap();
        for v in b {
            assert!((v - 1.0).abs() < 1e-6, "{v}");
        }
    }

    #[test]
    fn lerp_moves_part_of_the_way() {
        let l = lerp(linear(1.0, 0.0), &linear(5.0, 1.0), 0.25).unwrap();
        assert!(values(l.weight.val())
            .iter()
            .all(|&v| (v - 2.0).abs() < 1e-6));
        let keep = lerp(linear(1.0, 0.0), &linear(5.0, 1.0), 0.0).unwrap();
        assert!(values(keep.weight.val()).iter().all(|&v| v == 1.0));
    }

    #[test]
    fn mismatched_modules_and_bad_weights_are_refused() {
        let device = Default::default();
        let other = LinearConfig::new(2, 4).init::<B>(&device);
        let err = lerp(linear(1.0, 0.0), &other, 0.5).unwrap_err();
        assert!(err.to_string().contains("6 values here and 8"), "{err}");
        let no_bias = LinearConfig::new(2, 3).with_bias(false).init::<B>(&device);
        let err = lerp(linear(1.0, 0.0), &no_bias, 0.5).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
        assert!(lerp(linear(1.0, 0.0), &linear(1.0, 0.0), 1.5).is_err());
        assert!(average(Vec::<Linear<B>>::new()).is_err());
    }
}
