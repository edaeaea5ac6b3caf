"""PyTorch CPU baseline for benches/benches/attention.rs: multi-head
scaled_dot_product_attention on [batch, tokens, heads * dim] projections
(split into heads and merged back, as diffusers' AttnProcessor2_0 does),
forward and forward+backward w.r.t. q, k, v; 2 threads, median of 10 runs
after 2 warm-ups."""
import torch
import torch.nn.functional as F

from timing import median_ms

torch.set_num_threads(2)


def heads_attention(q, k, v, heads):
    b, n, inner = q.shape
    split = lambda t: t.view(b, -1, heads, inner // heads).transpose(1, 2)
    out = F.scaled_dot_product_attention(split(q), split(k), split(v))
    return out.transpose(1, 2).reshape(b, n, inner)


SHAPES = [
    ("demo_self_b2_256x256_4x16", 2, 256, 256, 4, 16, True),
    ("sd15_self_b1_1024x1024_8x40", 1, 1024, 1024, 8, 40, True),
    ("sd15_cross_b2_4096x77_8x40", 2, 4096, 77, 8, 40, True),
    ("sd15_self_b2_4096x4096_8x40", 2, 4096, 4096, 8, 40, False),
    ("sd15_self_b1_4096x4096_8x40", 1, 4096, 4096, 8, 40, True),
]

for name, batch, n, m, heads, dim, backward in SHAPES:
    q = torch.randn(batch, n, heads * dim)
    k = torch.randn(batch, m, heads * dim)
    v = torch.randn(batch, m, heads * dim)

    def forward():
        with torch.no_grad():
            heads_attention(q, k, v, heads)

    def forward_backward():
        qs, ks, vs = (t.clone().requires_grad_(True) for t in (q, k, v))
        heads_attention(qs, ks, vs, heads).sum().backward()

    line = f"{name}: forward {median_ms(forward, runs=10, warmup=2):.2f} ms"
    if backward:
        line += f", forward+backward {median_ms(forward_backward, runs=10, warmup=2):.2f} ms"
    print(line + f" (torch {torch.__version__})")
