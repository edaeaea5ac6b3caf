"""PyTorch CUDA baseline for benches/benches/unet.rs built with
`--features cuda`: the tiny fixture UNet forward (batch 2, 16x16), the SD 1.5
UNet forward (batch 2, 64x64, context 77x768) and its forward+backward with
respect to the latent (batch 1), float32 with TF32 off (as burn computes),
random weights from tests/fixtures/sd15-configs. Median of 20 runs after 5
warm-ups, each synchronised. Writes JSON naming the device.

    python3 benches/torch/unet_cuda.py --out torch_cuda.json [--latent 64] [--tf32]

Needs torch with CUDA and diffusers (benches/gpu-bench.sh installs a carried
diffusers wheel when the machine lacks it).
"""
import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def median_s(fn, runs=20, warmup=5):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def inputs(unet, batch, latent, dev):
    g = torch.Generator(device="cpu").manual_seed(0)
    c = unet.config
    x = torch.randn(batch, c.in_channels, latent, latent, generator=g).to(dev)
    ctx = torch.randn(batch, 77, c.cross_attention_dim, generator=g).to(dev)
    t = torch.full((batch,), 500.0, device=dev)
    return x, t, ctx


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--latent", type=int, default=64)
    ap.add_argument("--tf32", action="store_true", help="allow TF32 matmuls and convolutions")
    ap.add_argument("--device", default="cuda", help="cpu for a dry run of the script")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    dev = torch.device(a.device)
    result = {
        "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "tf32": a.tf32,
        "latent": a.latent,
    }

    tiny = UNet2DConditionModel.from_pretrained(FIXTURES / "tiny-sd" / "unet").to(dev).eval()
    x, t, ctx = inputs(tiny, 2, 16, dev)
    with torch.no_grad():
        result["tiny_unet_forward_b2_16x16_s"] = median_s(lambda: tiny(x, t, ctx))
    del tiny

    config = UNet2DConditionModel.load_config(FIXTURES / "sd15-configs" / "unet")
    unet = UNet2DConditionModel.from_config(config).to(dev).eval()
    x, t, ctx = inputs(unet, 2, a.latent, dev)
    with torch.no_grad():
        result[f"sd15_forward_b2_{a.latent}x{a.latent}_s"] = median_s(lambda: unet(x, t, ctx))
    unet.requires_grad_(False)
    x, t, ctx = inputs(unet, 1, a.latent, dev)

    def forward_backward():
        z = x.clone().requires_grad_(True)
        out = unet(z, t, ctx).sample
        out.pow(2).mean().backward()
        return z.grad

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    key = f"sd15_forward_backward_b1_{a.latent}x{a.latent}_s"
    result[key] = median_s(forward_backward, runs=10)
    if dev.type == "cuda":
        result["sd15_forward_backward_peak_bytes"] = torch.cuda.max_memory_allocated()
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
