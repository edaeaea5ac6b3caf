"""PyTorch CPU baseline for benches/benches/norm.rs: GroupNorm(32, C) forward
and forward+backward (w.r.t. input and affine parameters) at the same shapes,
2 threads, median of 20 runs after 3 warm-ups."""
import torch

from timing import median_ms

torch.set_num_threads(2)


for shape in [(16, 64, 32, 32), (2, 320, 64, 64)]:
    norm = torch.nn.GroupNorm(32, shape[1])
    x = torch.randn(shape)

    def forward():
        with torch.no_grad():
            norm(x)

    def forward_backward():
        xg = x.clone().requires_grad_(True)
        norm(xg).sum().backward()

    print(f"{'x'.join(map(str, shape))}: forward {median_ms(forward):.2f} ms, "
          f"forward+backward {median_ms(forward_backward):.2f} ms (torch {torch.__version__})")
