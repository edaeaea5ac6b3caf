//! The committed demo model (`models/optedit-demo`, docs/demo-model.md)
//! against the parts of issue 7's bar that it meets: DDIM inversion and
//! reconstruction of held-out world scenes at 28 dB or more, and an
//! evaluation classifier that names the attributes of held-out renders.
//! (The bar on the samples' own attribute accuracy is measured by
//! `optedit eval quality`; the model does not meet it yet.)

use std::path::PathBuf;

use burn::backend::{Autodiff, Flex};
use optedit_edit::SdPipeline;
use optedit_eval::quality::reconstruction_quality;
use optedit_eval::{AttributeClassifier, QualityOptions, Quiet};
use optedit_train::stages::classifier::held_out_accuracy;

fn demo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/optedit-demo")
}

#[test]
fn the_demo_model_inverts_and_reconstructs_held_out_scenes_above_28_db() {
    let device = Default::default();
    let pipeline = SdPipeline::<Autodiff<Flex>>::load(&demo_dir(), &device).expect("demo model");
    let options = QualityOptions {
        count: 4,
        steps: 25,
        grid: 0,
        ..QualityOptions::default()
    };
    let (q, _) = reconstruction_quality(&pipeline, &options, &mut Quiet).expect("reconstruction");
    assert!(q.vae_psnr_mean >= 28.0, "VAE round trip: {q:?}");
    assert!(q.psnr_mean >= 28.0, "inversion + reconstruction: {q:?}");
}

#[test]
fn the_demo_classifier_names_held_out_attributes() {
    let device = Default::default();
    let path = demo_dir().join("classifier/model.safetensors");
    let model = AttributeClassifier::<Flex>::load(&path, &device).expect("classifier");
    let acc = held_out_accuracy(&model, 128, 7, &device);
    for (name, value) in [
        ("shape", acc.shape),
        ("colour", acc.colour),
        ("pose", acc.pose),
    ] {
        assert!(
            value >= 0.9,
            "{name} accuracy {value} on held-out regions: {acc:?}"
        );
    }
}
