"""Writes the full-size SD 2.1 and SDXL configs (no weights) the benches and
`edit_stages` build random-weight models from: the released
hyperparameters of stabilityai/stable-diffusion-2-1 and
stabilityai/stable-diffusion-xl-base-1.0, written through diffusers 0.42.1
and transformers 5.24.0 themselves (every default key included) on the meta
device, so nothing is allocated. Also prints each model's parameter count.

    python benches/configs/make_configs.py
"""

import json
import pathlib

import torch
from diffusers import AutoencoderKL, DDIMScheduler, EulerDiscreteScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

HERE = pathlib.Path(__file__).resolve().parent

VAE = dict(
    block_out_channels=[128, 256, 512, 512],
    down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4,
    latent_channels=4,
    layers_per_block=2,
    norm_num_groups=32,
    in_channels=3,
    out_channels=3,
    act_fn="silu",
)
BETAS = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
             num_train_timesteps=1000, steps_offset=1, clip_sample=False,
             set_alpha_to_one=False)

SD21 = {
    "unet": (UNet2DConditionModel, dict(
        sample_size=96,
        block_out_channels=[320, 640, 1280, 1280],
        down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
        up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
        attention_head_dim=[5, 10, 20, 20],
        cross_attention_dim=1024,
        use_linear_projection=True,
        upcast_attention=True,
        layers_per_block=2,
    )),
    "vae": (AutoencoderKL, dict(VAE, sample_size=768)),
    "text_encoder": (CLIPTextModel, dict(
        hidden_size=1024, intermediate_size=4096, num_attention_heads=16,
        num_hidden_layers=23, projection_dim=512, hidden_act="gelu",
        max_position_embeddings=77, vocab_size=49408, pad_token_id=1,
        bos_token_id=0, eos_token_id=2,
    )),
    "scheduler": (DDIMScheduler, dict(BETAS, prediction_type="v_prediction")),
}

SDXL = {
    "unet": (UNet2DConditionModel, dict(
        sample_size=128,
        block_out_channels=[320, 640, 1280],
        down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        attention_head_dim=[5, 10, 20],
        transformer_layers_per_block=[1, 2, 10],
        cross_attention_dim=2048,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=2816,
        layers_per_block=2,
    )),
    "vae": (AutoencoderKL, dict(VAE, sample_size=1024, scaling_factor=0.13025, force_upcast=True)),
    "text_encoder": (CLIPTextModel, dict(
        hidden_size=768, intermediate_size=3072, num_attention_heads=12,
        num_hidden_layers=12, projection_dim=768, hidden_act="quick_gelu",
        max_position_embeddings=77, vocab_size=49408, pad_token_id=1,
        bos_token_id=0, eos_token_id=2,
    )),
    "text_encoder_2": (CLIPTextModelWithProjection, dict(
        hidden_size=1280, intermediate_size=5120, num_attention_heads=20,
        num_hidden_layers=32, projection_dim=1280, hidden_act="gelu",
        max_position_embeddings=77, vocab_size=49408, pad_token_id=1,
        bos_token_id=0, eos_token_id=2,
    )),
    "scheduler": (EulerDiscreteScheduler, dict(
        {k: v for k, v in BETAS.items() if k not in ("clip_sample", "set_alpha_to_one")},
        prediction_type="epsilon", timestep_spacing="leading", interpolation_type="linear")),
}


def write(name, parts, pipeline_class, extra_index):
    root = HERE / name
    index = {"_class_name": pipeline_class, **extra_index}
    for folder, (cls, kwargs) in parts.items():
        out = root / folder
        out.mkdir(parents=True, exist_ok=True)
        if cls in (DDIMScheduler, EulerDiscreteScheduler):
            cls(**kwargs).save_config(out)
            if cls is EulerDiscreteScheduler:
                # The released SDXL file carries these DDIM keys too.
                path = out / "scheduler_config.json"
                config = json.loads(path.read_text())
                config.update(clip_sample=False, set_alpha_to_one=False, skip_prk_steps=True)
                path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        elif cls in (CLIPTextModel, CLIPTextModelWithProjection):
            config = CLIPTextConfig(**kwargs)
            config.architectures = [cls.__name__]
            config.save_pretrained(out)
            with torch.device("meta"):
                model = cls(config)
            print(f"{name}/{folder}: {sum(p.numel() for p in model.parameters()):,} parameters")
        else:
            with torch.device("meta"):
                model = cls(**kwargs)
            model.save_config(out)
            print(f"{name}/{folder}: {sum(p.numel() for p in model.parameters()):,} parameters")
        index[folder] = ["diffusers" if folder in ("unet", "vae", "scheduler") else "transformers",
                         cls.__name__]
    (root / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")


if __name__ == "__main__":
    write("sd21", SD21, "StableDiffusionPipeline", {})
    write("sdxl", SDXL, "StableDiffusionXLPipeline", {"force_zeros_for_empty_prompt": True})
