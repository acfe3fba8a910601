"""A CIFAR-10-sized DDPM++-like UNet with random weights, for GPU cost measurements.

Used by tools/gpu-check.sh. Two commands:

  python3 tools/gpu_unet.py export --out DIR [--small]
      builds the network (EDM preconditioning inside: inputs x [B,3,32,32] and sigma [B],
      output the denoised image), exports DIR/unet.onnx (opset 17, dynamic batch) and writes
      DIR/unet.yml, an ld3 model config for it.
  python3 tools/gpu_unet.py time --device cuda --batch 128 --nfe 10 --json FILE [--small]
      times, in PyTorch eager on the same device, the network's forward (no grad) and its
      forward + VJP with respect to the input x (weights frozen, as in an LD3 step), with
      CUDA events after warm-up, and writes the medians to FILE.

Random weights give the real compute cost; the seed is fixed so that export and timing build
the same network. --small makes a tiny network for a CPU dry run.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F


def group_norm(channels):
    return nn.GroupNorm(min(32, channels // 4), channels, eps=1e-6)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb):
        super().__init__()
        self.norm0 = group_norm(cin)
        self.conv0 = nn.Conv2d(cin, cout, 3, padding=1)
        self.affine = nn.Linear(emb, cout)
        self.norm1 = group_norm(cout)
        self.conv1 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, emb):
        h = self.conv0(F.silu(self.norm0(x)))
        h = h + self.affine(emb)[:, :, None, None]
        h = self.conv1(F.silu(self.norm1(h)))
        return (h + (x if self.skip is None else self.skip(x))) / math.sqrt(2)


class Attention(nn.Module):
    """Single-head self-attention over the pixels, written with MatMul/Softmax (plain ONNX ops)."""

    def __init__(self, channels):
        super().__init__()
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        b, c, hgt, wid = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, hgt * wid).unbind(1)
        w = torch.softmax(torch.matmul(q.transpose(1, 2), k) / math.sqrt(c), dim=-1)
        h = torch.matmul(v, w.transpose(1, 2)).reshape(b, c, hgt, wid)
        return (x + self.proj(h)) / math.sqrt(2)


class Block(nn.Module):
    def __init__(self, cin, cout, emb, attn):
        super().__init__()
        self.res = ResBlock(cin, cout, emb)
        self.attn = Attention(cout) if attn else None

    def forward(self, x, emb):
        x = self.res(x, emb)
        return x if self.attn is None else self.attn(x)


class UNet(nn.Module):
    """DDPM++-like: 3 levels (32, 16, 8), `blocks` residual blocks each, attention at 16×16."""

    def __init__(self, ch=128, mult=(2, 2, 2), blocks=4, attn_res=(16,), res=32):
        super().__init__()
        emb = 4 * ch
        self.ch = ch
        self.map0 = nn.Linear(ch, emb)
        self.map1 = nn.Linear(emb, emb)
        self.conv_in = nn.Conv2d(3, ch * mult[0], 3, padding=1)
        self.down = nn.ModuleList()
        skips = [ch * mult[0]]
        c = ch * mult[0]
        r = res
        for level, m in enumerate(mult):
            if level > 0:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                r //= 2
                skips.append(c)
            for _ in range(blocks):
                self.down.append(Block(c, ch * m, emb, r in attn_res))
                c = ch * m
                skips.append(c)
        self.mid = nn.ModuleList([Block(c, c, emb, True), Block(c, c, emb, False)])
        self.up = nn.ModuleList()
        for level, m in reversed(list(enumerate(mult))):
            for _ in range(blocks + 1):
                self.up.append(Block(c + skips.pop(), ch * m, emb, r in attn_res))
                c = ch * m
            if level > 0:
                self.up.append(nn.Upsample(scale_factor=2, mode="nearest"))
                r *= 2
        self.norm_out = group_norm(c)
        self.conv_out = nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, x, c_noise):
        half = self.ch // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=x.dtype, device=x.device) / half)
        angle = c_noise[:, None] * 1000 * freqs[None, :]
        emb = F.silu(self.map1(F.silu(self.map0(torch.cat([torch.cos(angle), torch.sin(angle)], 1)))))
        h = self.conv_in(x)
        hs = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, Block) else layer(h)
            hs.append(h)
        for layer in self.mid:
            h = layer(h, emb)
        for layer in self.up:
            h = layer(torch.cat([h, hs.pop()], 1), emb) if isinstance(layer, Block) else layer(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class EDMDenoiser(nn.Module):
    """D(x; σ) = c_skip·x + c_out·F(c_in·x, ¼ ln σ), σ_data = 0.5 (Karras et al. 2022)."""

    def __init__(self, net, sigma_data=0.5):
        super().__init__()
        self.net = net
        self.sigma_data = sigma_data

    def forward(self, x, sigma):
        s = sigma.reshape(-1, 1, 1, 1)
        sd2 = self.sigma_data**2
        c_skip = sd2 / (s * s + sd2)
        c_out = s * self.sigma_data / torch.sqrt(s * s + sd2)
        c_in = 1 / torch.sqrt(s * s + sd2)
        return c_skip * x + c_out * self.net(c_in * x, torch.log(sigma) / 4)


def build(small):
    torch.manual_seed(0)
    net = UNet(ch=16, mult=(1, 2), blocks=1) if small else UNet()
    return EDMDenoiser(net).eval()


CONFIG = """# Random-weight DDPM++-like UNet for GPU cost measurements (tools/gpu_unet.py); not a real model.
name: {name}
model:
  path: unet.onnx
  inputs: {{ x: x, t: sigma }}
  output: denoised
  prediction: x0
  time_input: sigma
  time_shape: batch
schedule: {{ kind: ve, sigma_max: 80, sigma_min: 0.002 }}
shape: [3, 32, 32]
data_range: [-1, 1]
device: cpu
batch_size: {batch}
"""


def export(args):
    os.makedirs(args.out, exist_ok=True)
    model = build(args.small)
    params = sum(p.numel() for p in model.parameters())
    x = torch.randn(2, 3, 32, 32)
    sigma = torch.tensor([1.0, 2.0])
    path = os.path.join(args.out, "unet.onnx")
    kwargs = dict(
        input_names=["x", "sigma"],
        output_names=["denoised"],
        dynamic_axes={"x": {0: "batch"}, "sigma": {0: "batch"}, "denoised": {0: "batch"}},
        opset_version=17,
    )
    if int(torch.__version__.split(".")[0]) >= 2:
        kwargs["dynamo"] = False  # the TorchScript exporter: plain opset-17 ops, one file
    t0 = time.time()
    exporter = "torchscript"
    with torch.no_grad():
        try:
            torch.onnx.export(model, (x, sigma), path, **kwargs)
        except Exception as e:  # a torch without the TorchScript exporter: the dynamo one
            if "dynamo" not in kwargs:
                raise
            print(f"TorchScript export failed ({e}); trying dynamo=True", file=sys.stderr)
            batch = torch.export.Dim("batch", min=1, max=4096)
            torch.onnx.export(model, (x, sigma), path, input_names=["x", "sigma"],
                              output_names=["denoised"], opset_version=18, dynamo=True,
                              dynamic_shapes=({0: batch}, {0: batch}), external_data=False)
            exporter = "dynamo"
    with open(os.path.join(args.out, "unet.yml"), "w") as f:
        f.write(CONFIG.format(name="unet-small" if args.small else "ddpmpp-random", batch=args.batch))
    info = {"params": params, "onnx_bytes": os.path.getsize(path), "export_s": time.time() - t0,
            "torch": torch.__version__, "exporter": exporter}
    print(json.dumps(info))
    with open(os.path.join(args.out, "export.json"), "w") as f:
        json.dump(info, f)


def timed(fn, device, repeats, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1000)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_eager(args):
    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("torch.cuda.is_available() is False")
    model = build(args.small).to(device)
    for p in model.parameters():
        p.requires_grad_(False)  # LD3 differentiates through a frozen network
    gen = torch.Generator(device="cpu").manual_seed(1)
    x = torch.randn(args.batch, 3, 32, 32, generator=gen).to(device)
    sigma = torch.full((args.batch,), 2.0, device=device)
    cot = torch.randn(args.batch, 3, 32, 32, generator=gen).to(device)

    def forward():
        with torch.no_grad():
            model(x, sigma)

    def sample():
        # NFE network calls of an Euler-like loop; the solver arithmetic is negligible.
        with torch.no_grad():
            y = x * 80
            for s in torch.linspace(80, 0.5, args.nfe).tolist():
                d = model(y, torch.full_like(sigma, s))
                y = y + (d - y) * 0.1

    def forward_backward():
        xi = x.detach().requires_grad_(True)
        out = model(xi, sigma)
        (g,) = torch.autograd.grad(out, xi, cot)
        return g

    fwd = timed(forward, device, args.repeats, args.warmup)
    fb = timed(forward_backward, device, args.repeats, args.warmup)
    smp = timed(sample, device, max(3, args.repeats // 3), 1)
    result = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "torch": torch.__version__,
        "batch": args.batch,
        "nfe": args.nfe,
        "forward_s": fwd,
        "forward_backward_s": fb,
        "sample_s": smp,
        "images_per_s": args.batch / smp,
        "cudnn_tf32": bool(torch.backends.cudnn.allow_tf32) if device == "cuda" else None,
        "matmul_tf32": bool(torch.backends.cuda.matmul.allow_tf32) if device == "cuda" else None,
    }
    print(json.dumps(result))
    with open(args.json, "w") as f:
        json.dump(result, f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("--out", required=True)
    e.add_argument("--batch", type=int, default=128)
    e.add_argument("--small", action="store_true")
    t = sub.add_parser("time")
    t.add_argument("--device", default="cuda")
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--nfe", type=int, default=10)
    t.add_argument("--repeats", type=int, default=10)
    t.add_argument("--warmup", type=int, default=3)
    t.add_argument("--json", required=True)
    t.add_argument("--small", action="store_true")
    args = parser.parse_args()
    export(args) if args.cmd == "export" else time_eager(args)


if __name__ == "__main__":
    main()
