//! The process-wide convolution algorithm switch (its own test binary, so
//! that flipping it cannot touch other tests).

use burn::backend::Flex;
use burn::nn::conv::Conv2dConfig;
use burn::nn::PaddingConfig2d;
use burn::tensor::{Distribution, Tensor};
use optedit_models::blocks::conv::{
    conv_algorithm, im2col_forward, set_conv_algorithm, Conv2dExt, ConvAlgorithm,
};

#[test]
fn the_switch_routes_apply() {
    let device = Default::default();
    let conv = Conv2dConfig::new([2, 3], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init::<Flex>(&device);
    let x = Tensor::<Flex, 4>::random([1, 2, 5, 5], Distribution::Normal(0.0, 1.0), &device);
    set_conv_algorithm(ConvAlgorithm::Native);
    assert_eq!(conv_algorithm(), ConvAlgorithm::Native);
    let native = conv.apply(x.clone());
    let direct = conv.forward(x.clone());
    assert_eq!(
        native.to_data(),
        direct.to_data(),
        "Native is burn's conv2d"
    );
    set_conv_algorithm(ConvAlgorithm::Im2col);
    assert_eq!(conv_algorithm(), ConvAlgorithm::Im2col);
    let routed = conv.apply(x.clone());
    assert_eq!(
        routed.to_data(),
        im2col_forward(&conv, x).to_data(),
        "Im2col routes to im2col_forward"
    );
    let err = (native - routed).abs().max().into_scalar();
    assert!(err < 1e-5, "{err}");
}
