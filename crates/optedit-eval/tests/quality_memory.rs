//! `optedit eval quality` generates and reconstructs hundreds of images
//! without a single `backward`; burn 0.21 would keep the graph entries of
//! such forward-only work on an autodiff backend until one runs, so the
//! loops run on the inner backend (`Editor::forward_pipeline`). This checks
//! that repeated rounds on the committed demo model keep no memory,
//! counting live heap bytes with this test binary's own global allocator.

use std::path::PathBuf;

use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
use burn::backend::{Autodiff, Flex};
use optedit_edit::SdPipeline;
use optedit_eval::quality::{reconstruction_quality, sample_quality};
use optedit_eval::{Judge, QualityOptions, Quiet};
use optedit_fixtures::alloc::{growth_over, serial, CountingAllocator};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// What the `optedit` binary runs on.
type AD = Autodiff<Flex, BalancedCheckpointing>;

#[test]
fn repeated_quality_rounds_keep_no_memory() {
    let _serial = serial();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/optedit-demo");
    let device = Default::default();
    let pipeline = SdPipeline::<AD>::load(&dir, &device).expect("demo model");
    let judge = Judge::load(&dir.join("classifier/model.safetensors"), &device).expect("judge");
    let options = QualityOptions {
        count: 1,
        steps: 8,
        grid: 0,
        ..QualityOptions::default()
    };
    // Each measure on its own: a sweep in one would hide the other's leak.
    let samples = || {
        sample_quality(&pipeline, &judge, &options, &mut Quiet).expect("samples");
    };
    let reconstructions = || {
        reconstruction_quality(&pipeline, &options, &mut Quiet).expect("reconstruction");
    };
    for (name, round) in [
        ("samples", &samples as &dyn Fn()),
        ("reconstructions", &reconstructions),
    ] {
        let growth = growth_over(3, round);
        // On the autodiff backend each round would keep megabytes (8 or 16
        // UNet passes, their checkpointed inputs included).
        assert!(
            growth < 512 * 1024,
            "{growth} bytes more after three rounds of {name}"
        );
    }
}
