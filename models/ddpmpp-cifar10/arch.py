"""EDM's DDPM++ CIFAR-10 network (the "SongUNet" configuration of Karras et al. 2022, Table 7 and
Appendix F.2), written from the papers' descriptions: Song et al. 2021 (DDPM++: the NCSN++ code
base's DDPM-style UNet with BigGAN-type residual blocks) and Karras et al. 2022 (EDM
preconditioning), for ld3's real-size measurements (issue 13).

The configuration (EDM, CIFAR-10 32×32, unconditional DDPM++ "VP" architecture):

- base width 128, channel multipliers 2/2/2 over resolutions 32/16/8, 4 residual blocks per level;
- self-attention (one head) at 16×16, and in the middle of the 8×8 level;
- noise embedding: positional (sinusoidal) features of c_noise, 128-d, then a two-layer MLP to
  512 with SiLU after each layer; each residual block adds a per-channel shift from it;
- GroupNorm with min(32, C/4) groups, eps 1e-6; residual and attention outputs scaled by √½;
- down/up-sampling blocks are residual blocks that resample with a [1, 1] filter (2×2 average
  pooling / nearest upsampling) before their 3×3 convolution, with a resampling 1×1 skip;
- the decoder concatenates the encoder's outputs (one per block) and ends with GroupNorm, SiLU and
  a 3×3 convolution;
- EDM preconditioning, σ_data = 0.5: D(x; σ) = c_skip x + c_out F(c_in x; ¼ ln σ).

About 55.7 M parameters at full width. `width` scales every channel count (the test twin uses 8).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def group_norm(channels):
    return nn.GroupNorm(min(32, channels // 4), channels, eps=1e-6)


class Block(nn.Module):
    """Residual block with an additive noise-embedding shift, optional resampling and attention."""

    def __init__(self, cin, cout, emb, resample=None, attention=False):
        super().__init__()
        self.resample = resample
        self.norm0 = group_norm(cin)
        self.conv0 = nn.Conv2d(cin, cout, 3, padding=1)
        self.affine = nn.Linear(emb, cout)
        self.norm1 = group_norm(cout)
        self.conv1 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if (cin != cout or resample) else None
        self.attention = attention
        if attention:
            self.norm2 = group_norm(cout)
            self.qkv = nn.Conv2d(cout, 3 * cout, 1)
            self.proj = nn.Conv2d(cout, cout, 1)

    def _resample(self, x):
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x

    def forward(self, x, emb):
        h = self.conv0(self._resample(F.silu(self.norm0(x))))
        h = F.silu(self.norm1(h + self.affine(emb)[:, :, None, None]))
        h = self.conv1(h)
        s = x if self.skip is None else self.skip(self._resample(x))
        x = (h + s) * math.sqrt(0.5)
        if self.attention:
            n, c, hh, ww = x.shape
            q, k, v = self.qkv(self.norm2(x)).reshape(n, c, 3, hh * ww).unbind(2)
            w = torch.softmax(torch.einsum("ncq,nck->nqk", q, k / math.sqrt(c)), dim=2)
            a = torch.einsum("nqk,nck->ncq", w, v).reshape(n, c, hh, ww)
            x = (self.proj(a) + x) * math.sqrt(0.5)
        return x


def positional_features(c_noise, channels, max_positions=10000):
    half = channels // 2
    freqs = (1.0 / max_positions) ** (torch.arange(half, dtype=torch.float32) / (half - 1))
    angles = c_noise[:, None] * freqs[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class DDPMpp(nn.Module):
    """F(x; c_noise): the raw DDPM++ UNet."""

    def __init__(self, width=128, mult=(2, 2, 2), blocks=4, attn_res=(16,), res=32, channels=3):
        super().__init__()
        emb = 4 * width
        self.noise_channels = width
        self.map0 = nn.Linear(width, emb)
        self.map1 = nn.Linear(emb, emb)
        self.enc = nn.ModuleList()
        skips = []
        cout = width
        self.conv_in = nn.Conv2d(channels, cout, 3, padding=1)
        skips.append(cout)
        for level, m in enumerate(mult):
            r = res >> level
            if level > 0:
                self.enc.append(Block(cout, cout, emb, resample="down"))
                skips.append(cout)
            for _ in range(blocks):
                cin, cout = cout, width * m
                self.enc.append(Block(cin, cout, emb, attention=r in attn_res))
                skips.append(cout)
        self.dec = nn.ModuleList()
        for level in reversed(range(len(mult))):
            r = res >> level
            if level == len(mult) - 1:
                self.dec.append(Block(cout, cout, emb, attention=True))
                self.dec.append(Block(cout, cout, emb))
            else:
                self.dec.append(Block(cout, cout, emb, resample="up"))
            for i in range(blocks + 1):
                cin, cout = cout + skips.pop(), width * mult[level]
                self.dec.append(Block(cin, cout, emb, attention=(i == blocks and r in attn_res)))
        self.norm_out = group_norm(cout)
        self.conv_out = nn.Conv2d(cout, channels, 3, padding=1)

    def forward(self, x, c_noise):
        emb = F.silu(self.map0(positional_features(c_noise, self.noise_channels)))
        emb = F.silu(self.map1(emb))
        x = self.conv_in(x)
        skips = [x]
        for block in self.enc:
            x = block(x, emb)
            skips.append(x)
        for block in self.dec:
            if x.shape[1] != block.conv0.in_channels:
                x = torch.cat([x, skips.pop()], dim=1)
            x = block(x, emb)
        return self.conv_out(F.silu(self.norm_out(x)))


class EDMPrecond(nn.Module):
    """D(x; σ) = c_skip x + c_out F(c_in x; ¼ ln σ), σ_data = 0.5; inputs x [B,3,32,32], sigma [B]."""

    def __init__(self, sigma_data=0.5, **kwargs):
        super().__init__()
        self.sigma_data = sigma_data
        self.net = DDPMpp(**kwargs)

    def forward(self, x, sigma):
        sd = self.sigma_data
        s = sigma[:, None, None, None]
        c_skip = sd**2 / (s**2 + sd**2)
        c_out = s * sd / torch.sqrt(s**2 + sd**2)
        c_in = 1 / torch.sqrt(s**2 + sd**2)
        return c_skip * x + c_out * self.net(c_in * x, torch.log(sigma) / 4)


def build(width=128, seed=0):
    """The network with seeded random weights (PyTorch's default initialisation, every bias and
    norm scale randomised too so that every path carries signal)."""
    torch.manual_seed(seed)
    net = EDMPrecond(width=width).eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias") or p.dim() == 1:
                p.copy_(torch.randn_like(p) * 0.1 + (1.0 if "norm" in name and name.endswith("weight") else 0.0))
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def example_inputs(batch=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, 32, 32, generator=g) * 2.0
    sigma = torch.tensor([0.7, 3.5, 0.05, 20.0][:batch] + [1.0] * max(0, batch - 4))
    return x, sigma
