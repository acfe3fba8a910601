"""Build a small UNet with attention, export it to ONNX (opset 17, dynamic batch) and write
vector-Jacobian products from PyTorch autograd as test fixtures.

Run with Debian's python3-torch: /usr/bin/python3 models/vjp-unet/make_fixture.py
Writes tests/fixtures/vjp/unet.onnx and tests/fixtures/vjp/unet_vjp.json.
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "vjp")


def noise_embedding(c_noise, dim):
    """Sinusoidal embedding of the (log-)noise level, as in DDPM++/EDM."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    angles = c_noise[:, None] * freqs[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb, cout)
        self.norm2 = nn.GroupNorm(8, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (h + self.skip(x)) / math.sqrt(2)


class Attention(nn.Module):
    def __init__(self, c, heads=2):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(8, c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj = nn.Conv2d(c, c, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n * self.heads, 3, c // self.heads, h * w).unbind(1)
        a = torch.softmax(torch.matmul(q.transpose(1, 2), k) / math.sqrt(c // self.heads), dim=-1)
        out = torch.matmul(v, a.transpose(1, 2)).reshape(n, c, h, w)
        return x + self.proj(out)


class TinyUNet(nn.Module):
    """EDM-preconditioned denoiser D(x, sigma) around a two-level UNet."""

    def __init__(self, sigma_data=0.5):
        super().__init__()
        self.sigma_data = sigma_data
        self.map1 = nn.Linear(16, 64)
        self.map2 = nn.Linear(64, 64)
        self.conv_in = nn.Conv2d(1, 32, 3, padding=1)
        self.enc = ResBlock(32, 32, 64)
        self.down = nn.Conv2d(32, 64, 3, stride=2, padding=1)
        self.mid = ResBlock(64, 64, 64)
        self.attn = Attention(64)
        self.up = nn.Conv2d(64, 32, 3, padding=1)
        self.dec = ResBlock(64, 32, 64)
        self.norm_out = nn.GroupNorm(8, 32)
        self.conv_out = nn.Conv2d(32, 1, 3, padding=1)

    def forward(self, x, sigma):
        sd = self.sigma_data
        c_skip = sd**2 / (sigma**2 + sd**2)
        c_out = sigma * sd / torch.sqrt(sigma**2 + sd**2)
        c_in = 1 / torch.sqrt(sigma**2 + sd**2)
        c_noise = torch.log(sigma) / 4
        emb = F.silu(self.map1(noise_embedding(c_noise, 16)))
        emb = F.silu(self.map2(emb))
        h0 = self.enc(self.conv_in(x * c_in[:, None, None, None]), emb)
        h1 = self.attn(self.mid(self.down(h0), emb))
        u = self.up(F.interpolate(h1, scale_factor=2.0, mode="nearest"))
        h = self.dec(torch.cat([u, h0], dim=1), emb)
        f = self.conv_out(F.silu(self.norm_out(h)))
        return c_skip[:, None, None, None] * x + c_out[:, None, None, None] * f


def main():
    torch.manual_seed(0)
    net = TinyUNet().eval()
    # random, not-too-small weights so that every path matters
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(1.5)
    print("params", sum(p.numel() for p in net.parameters()))
    os.makedirs(OUT, exist_ok=True)
    x = torch.randn(2, 1, 16, 16)
    sigma = torch.tensor([0.7, 2.5])
    torch.onnx.export(
        net, (x, sigma), os.path.join(OUT, "unet.onnx"), opset_version=17,
        input_names=["x", "sigma"], output_names=["denoised"],
        dynamic_axes={"x": {0: "batch"}, "sigma": {0: "batch"}, "denoised": {0: "batch"}},
    )
    xg = x.clone().requires_grad_(True)
    sg = sigma.clone().requires_grad_(True)
    out = net(xg, sg)
    cot = torch.randn_like(out)
    gx, gs = torch.autograd.grad(out, (xg, sg), cot)
    flat = lambda t: [round(float(v), 8) for v in t.detach().reshape(-1)]
    fixture = {
        "x": flat(x), "x_shape": list(x.shape), "sigma": flat(sigma),
        "cotangent": flat(cot), "denoised": flat(out), "grad_x": flat(gx), "grad_sigma": flat(gs),
    }
    with open(os.path.join(OUT, "unet_vjp.json"), "w") as f:
        json.dump(fixture, f)


if __name__ == "__main__":
    main()
