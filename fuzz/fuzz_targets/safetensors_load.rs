//! Arbitrary bytes as the weights file of a small ControlNet-sized UNet
//! config: loading must fail with a typed error (or succeed), never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use optedit_models::UNet2DConditionModel;

const CONFIG: &str = r#"{
  "block_out_channels": [8, 8], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "layers_per_block": 1,
  "cross_attention_dim": 8, "attention_head_dim": 2, "norm_num_groups": 4
}"#;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("config.json"), CONFIG).expect("config");
    std::fs::write(dir.path().join("diffusion_pytorch_model.safetensors"), data).expect("weights");
    let _ = UNet2DConditionModel::<burn::backend::Flex>::load(dir.path(), &Default::default());
});
