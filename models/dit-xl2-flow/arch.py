"""A DiT-XL/2-shape diffusion transformer with a rectified-flow (velocity) output, written from
the DiT paper's description (Peebles & Xie 2023, "Scalable Diffusion Models with Transformers":
section 3.2 and Table 1) for ld3's real-size measurements (issue 13).

- input: latents x [B,4,32,32]; "patchify" with patch size 2 (a strided 2×2 convolution) to 256
  tokens of width 1152, plus fixed 2-D sine-cosine position embeddings;
- conditioning vector c = MLP(sinusoidal features of 1000·t) + class embedding; the class enters
  as a one-hot (or any soft) row [B,1000] times an embedding table, so it is differentiable;
- 28 blocks of adaLN-Zero: SiLU(c) → linear → (shift, scale, gate) for the attention and the MLP
  branches around affine-free LayerNorms; multi-head self-attention (16 heads), MLP 4× with tanh
  GELU; each branch's output multiplied by its gate before the residual add;
- final layer: adaLN (shift, scale) LayerNorm, a linear map to 2·2·4 values per token, unpatchify.

Rectified flow: x_t = (1 − t) x0 + t ε, the network predicts the velocity v = ε − x0 (ld3's
`prediction: flow`, `time_input: t`). About 675 M parameters at full size (DiT-XL/2 without the
learned-variance channels). Weights are random; adaLN-Zero's zero initialisation is replaced by
random weights so that every block carries signal.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def sincos_2d(width, grid):
    """Fixed 2-D sine-cosine position embedding [grid², width]."""
    quarter = width // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    pos = torch.arange(grid, dtype=torch.float64)
    yy, xx = torch.meshgrid(pos, pos, indexing="ij")

    def embed(p):
        a = p.reshape(-1)[:, None] * omega[None, :]
        return torch.cat([torch.sin(a), torch.cos(a)], dim=1)

    return torch.cat([embed(yy), embed(xx)], dim=1).to(torch.float32)


def time_features(t, dim=256, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    a = t[:, None] * freqs[None, :]
    return torch.cat([torch.cos(a), torch.sin(a)], dim=1)


class PlainLayerNorm(nn.Module):
    """LayerNorm without learned scale and shift (a fixed unit scale and zero shift as buffers:
    torch 1.13's opset-17 export drops the scale input of an affine-free LayerNorm)."""

    def __init__(self, width, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.register_buffer("one", torch.ones(width))
        self.register_buffer("zero", torch.zeros(width))

    def forward(self, x):
        return F.layer_norm(x, self.one.shape, self.one, self.zero, self.eps)


def modulate(x, shift, scale):
    return x * (1 + scale[:, None, :]) + shift[:, None, :]


class Block(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.norm1 = PlainLayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = PlainLayerNorm(width)
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)
        self.ada = nn.Linear(width, 6 * width)

    def attention(self, x):
        b, n, w = x.shape
        d = w // self.heads
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d).permute(2, 0, 3, 1, 4).unbind(0)
        a = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * d**-0.5, dim=-1)
        return self.proj(torch.matmul(a, v).transpose(1, 2).reshape(b, n, w))

    def forward(self, x, c):
        s1, m1, g1, s2, m2, g2 = self.ada(F.silu(c)).chunk(6, dim=1)
        x = x + g1[:, None, :] * self.attention(modulate(self.norm1(x), s1, m1))
        h = self.fc2(F.gelu(self.fc1(modulate(self.norm2(x), s2, m2)), approximate="tanh"))
        return x + g2[:, None, :] * h


class DiTFlow(nn.Module):
    """v(x, t, class_labels): inputs x [B,4,32,32], t [B] in (0, 1), class_labels [B,classes]."""

    def __init__(self, width=1152, depth=28, heads=16, patch=2, channels=4, res=32, classes=1000):
        super().__init__()
        self.patch, self.channels, self.grid = patch, channels, res // patch
        self.patchify = nn.Conv2d(channels, width, patch, stride=patch)
        self.register_buffer("pos", sincos_2d(width, self.grid)[None])
        self.t0 = nn.Linear(256, width)
        self.t1 = nn.Linear(width, width)
        self.classes = nn.Linear(classes, width, bias=False)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.norm_out = PlainLayerNorm(width)
        self.ada_out = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, patch * patch * channels)

    def forward(self, x, t, class_labels):
        b = x.shape[0]
        h = self.patchify(x).flatten(2).transpose(1, 2) + self.pos
        c = self.t1(F.silu(self.t0(time_features(1000 * t)))) + self.classes(class_labels)
        for block in self.blocks:
            h = block(h, c)
        shift, scale = self.ada_out(F.silu(c)).chunk(2, dim=1)
        h = self.out(modulate(self.norm_out(h), shift, scale))
        p, g = self.patch, self.grid
        h = h.reshape(b, g, g, p, p, self.channels).permute(0, 5, 1, 3, 2, 4)
        return h.reshape(b, self.channels, g * p, g * p)


def build(width=1152, depth=28, heads=16, seed=0):
    """The network with seeded random weights (PyTorch's default initialisation; biases random)."""
    torch.manual_seed(seed)
    net = DiTFlow(width=width, depth=depth, heads=heads).eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn_like(p) * 0.1)
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def example_inputs(batch=2, seed=1, classes=1000):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 4, 32, 32, generator=g)
    t = torch.tensor([0.3, 0.85, 0.02, 0.6][:batch] + [0.5] * max(0, batch - 4))
    labels = torch.zeros(batch, classes)
    labels[torch.arange(batch), torch.arange(batch) * 7 % classes] = 1.0
    return x, t, labels
