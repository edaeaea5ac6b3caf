"""PyTorch CPU baseline for benches/benches/conv.rs: Conv2d forward and
forward+backward (gradients of input and weight, as in training) at the same
shapes, 2 threads, median of 10 runs after 3 warm-ups."""
import torch

from timing import median_ms

torch.set_num_threads(2)

# (name, input shape, output channels, kernel, stride), as in conv.rs.
CASES = [
    ("demo_16x64x32x32_3x3", (16, 64, 32, 32), 64, 3, 1),
    ("sd_2x320x64x64_3x3", (2, 320, 64, 64), 320, 3, 1),
    ("sd_2x320x64x64_3x3_stride2", (2, 320, 64, 64), 320, 3, 2),
    ("sd_2x640x32x32_3x3", (2, 640, 32, 32), 640, 3, 1),
    ("sd_2x1280x16x16_3x3", (2, 1280, 16, 16), 1280, 3, 1),
    ("sd_2x1280x8x8_3x3", (2, 1280, 8, 8), 1280, 3, 1),
    ("sd_2x960x32x32_1x1", (2, 960, 32, 32), 640, 1, 1),
]

for name, shape, out, kernel, stride in CASES:
    conv = torch.nn.Conv2d(shape[1], out, kernel, stride=stride, padding=kernel // 2)
    x = torch.randn(shape)

    def forward():
        with torch.no_grad():
            conv(x)

    def forward_backward():
        xg = x.clone().requires_grad_(True)
        conv.zero_grad(set_to_none=True)
        conv(xg).sum().backward()

    print(f"{name}: forward {median_ms(forward, runs=10):.2f} ms, "
          f"forward+backward {median_ms(forward_backward, runs=10):.2f} ms (torch {torch.__version__})")
