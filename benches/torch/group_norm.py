"""PyTorch CPU baseline for benches/benches/norm.rs: GroupNorm(32, C) forward
and forward+backward (w.r.t. input and affine parameters) at the same shapes,
2 threads, median of 20 runs after 3 warm-ups."""
import statistics
import time

import torch

torch.set_num_threads(2)


def median_ms(fn, runs=20, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


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
