#!/usr/bin/env python3
"""Train and export the bundled MNIST diffusion model (EDM preconditioning, x0-prediction).

The network is a small UNet (GroupNorm, SiLU, a sinusoidal noise embedding,
self-attention at 7x7, two downsamplings 28 -> 14 -> 7) wrapped in the EDM
preconditioning of Karras et al. (2022), so the exported ONNX graph maps
(x [B,1,28,28], sigma [B]) -> denoised [B,1,28,28] directly, in the [-1, 1] data range.

Training follows EDM: log-normal sigma (P_mean -1.2, P_std 1.2 unless --p-mean/--p-std), loss weight
(sigma^2 + sigma_data^2) / (sigma * sigma_data)^2, Adam, an EMA of the weights
(the EMA is what gets exported). Training runs until the --minutes budget is
spent, then the script exports and checks the ONNX file, draws an 8x8 sample
grid with 18-step Heun (35 NFE) and optionally scores seeded samples with the
bundled classifier (--classifier).

Runs on PyTorch 1.13 (CPU) and 2.x (CUDA). See README.md in this folder.

Re-export from a saved checkpoint without training:
  /usr/bin/python3 models/mnist-edm/train.py --export-only --ckpt ema.pt --out DIR
"""

import argparse
import json
import math
import os
import struct
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# The shared ONNX export helpers live one folder up (models/onnx_export.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from onnx_export import onnx_export, verify_onnx  # noqa: E402

SIGMA_DATA = 0.5
P_MEAN = -1.2
P_STD = 1.2
SIGMA_MIN = 0.002
SIGMA_MAX = 80.0
RHO = 7.0

DEFAULT_CONFIG = {
    "channels": [48, 96, 96],  # per resolution 28, 14, 7
    "num_res_blocks": 1,  # per resolution in the encoder (decoder has one more); int or list
    "emb_dim": 128,
    "attn_heads": 4,
    "dropout": 0.05,
}


# ----------------------------------------------------------------------------- model


class NoiseEmbedding(nn.Module):
    """Sinusoidal embedding of c_noise = ln(sigma) / 4 followed by a two-layer MLP.

    The frequencies are fixed (a geometric series), so the exported graph only
    needs Mul, Sin, Cos and Concat.
    """

    def __init__(self, dim, num_freqs=32, max_period=1000.0):
        super().__init__()
        freqs = torch.exp(-math.log(max_period) * torch.arange(num_freqs, dtype=torch.float32) / num_freqs)
        # c_noise spans roughly [-1.6, 1.1]; scale so the fastest frequency still varies smoothly.
        self.register_buffer("freqs", freqs * 100.0)
        self.mlp = nn.Sequential(nn.Linear(2 * num_freqs, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, c_noise):
        args = c_noise[:, None] * self.freqs[None, :]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=1))


def group_norm(ch):
    return nn.GroupNorm(math.gcd(32, ch), ch, eps=1e-6)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv twice, with the noise embedding as a per-channel scale and shift."""

    def __init__(self, cin, cout, emb_dim, dropout):
        super().__init__()
        self.norm1 = group_norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = group_norm(cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return (h + self.skip(x)) * (1 / math.sqrt(2))


class Attention(nn.Module):
    """Multi-head self-attention over the pixels of a feature map, written with plain
    matmul/softmax so the classic ONNX exporter emits MatMul and Softmax."""

    def __init__(self, ch, heads):
        super().__init__()
        self.heads = heads
        self.norm = group_norm(ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x):
        b, c, h, w = x.shape
        d = c // self.heads
        qkv = self.qkv(self.norm(x)).reshape(b * self.heads, 3 * d, h * w)
        q, k, v = qkv[:, :d], qkv[:, d:2 * d], qkv[:, 2 * d:]
        attn = torch.softmax(torch.bmm(q.transpose(1, 2), k) * (1 / math.sqrt(d)), dim=-1)  # [bh, hw, hw]
        out = torch.bmm(v, attn.transpose(1, 2)).reshape(b, c, h, w)
        return (x + self.proj(out)) * (1 / math.sqrt(2))


class UNet(nn.Module):
    """Raw network F_theta(c_in * x, c_noise) of the EDM formulation."""

    def __init__(self, channels, num_res_blocks, emb_dim, attn_heads, dropout):
        super().__init__()
        self.embed = NoiseEmbedding(emb_dim)
        self.stem = nn.Conv2d(1, channels[0], 3, padding=1)
        nlev = len(channels)
        nrb = list(num_res_blocks) if isinstance(num_res_blocks, (list, tuple)) else [num_res_blocks] * nlev
        self.enc = nn.ModuleList()
        skip_ch = [channels[0]]
        ch = channels[0]
        for lev, cout in enumerate(channels):
            for _ in range(nrb[lev]):
                attn = Attention(cout, attn_heads) if lev == nlev - 1 else None
                self.enc.append(nn.ModuleList([ResBlock(ch, cout, emb_dim, dropout)] + ([attn] if attn else [])))
                ch = cout
                skip_ch.append(ch)
            if lev < nlev - 1:
                self.enc.append(nn.ModuleList([nn.Conv2d(ch, ch, 3, stride=2, padding=1)]))
                skip_ch.append(ch)
        # One ResBlock + attention in the middle: the 7x7 level already has attention in every
        # encoder/decoder block, and this keeps the fp32 ONNX file under 10 MB.
        self.mid = ResBlock(ch, ch, emb_dim, dropout)
        self.mid_attn = Attention(ch, attn_heads)
        self.dec = nn.ModuleList()
        for lev in reversed(range(nlev)):
            cout = channels[lev]
            for _ in range(nrb[lev] + 1):
                attn = Attention(cout, attn_heads) if lev == nlev - 1 else None
                self.dec.append(nn.ModuleList(
                    [ResBlock(ch + skip_ch.pop(), cout, emb_dim, dropout)] + ([attn] if attn else [])))
                ch = cout
            if lev > 0:
                self.dec.append(nn.ModuleList([nn.Conv2d(ch, ch, 3, padding=1)]))  # after 2x nearest upsampling
        self.out_norm = group_norm(ch)
        self.out_conv = nn.Conv2d(ch, 1, 3, padding=1)
        nn.init.zeros_(self.out_conv.weight)
        nn.init.zeros_(self.out_conv.bias)

    def forward(self, x, c_noise):
        emb = self.embed(c_noise)
        h = self.stem(x)
        skips = [h]
        for blocks in self.enc:
            if isinstance(blocks[0], ResBlock):
                h = blocks[0](h, emb)
                for extra in blocks[1:]:
                    h = extra(h)
            else:
                h = blocks[0](h)
            skips.append(h)
        h = self.mid_attn(self.mid(h, emb))
        for blocks in self.dec:
            if isinstance(blocks[0], ResBlock):
                h = blocks[0](torch.cat([h, skips.pop()], dim=1), emb)
                for extra in blocks[1:]:
                    h = extra(h)
            else:
                h = blocks[0](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.out_conv(F.silu(self.out_norm(h)))


class EDMDenoiser(nn.Module):
    """D(x; sigma) = c_skip x + c_out F(c_in x, c_noise): the exported x0-predictor."""

    def __init__(self, **config):
        super().__init__()
        self.net = UNet(**config)

    def forward(self, x, sigma):
        sigma = sigma.to(torch.float32).reshape(-1)
        s = sigma[:, None, None, None]
        var = s * s + SIGMA_DATA ** 2
        c_skip = SIGMA_DATA ** 2 / var
        c_out = s * SIGMA_DATA / torch.sqrt(var)
        c_in = 1 / torch.sqrt(var)
        c_noise = torch.log(sigma) / 4
        f = self.net((c_in * x).to(x.dtype), c_noise)
        return c_skip * x + c_out * f.to(torch.float32)


# ----------------------------------------------------------------------------- sampling


def edm_sigmas(steps, sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX, rho=RHO):
    """EDM (Karras) rho-schedule from sigma_max down to sigma_min, with a final 0 appended."""
    i = np.arange(steps, dtype=np.float64)
    s = (sigma_max ** (1 / rho) + i / (steps - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return np.concatenate([s, [0.0]])


@torch.no_grad()
def heun_sample(model, noise, steps=18):
    """Deterministic second-order Heun sampler of EDM (2*steps - 1 network evaluations)."""
    sig = edm_sigmas(steps)
    x = noise.to(torch.float32) * float(sig[0])
    for i in range(steps):
        t, t_next = float(sig[i]), float(sig[i + 1])
        sigma_t = torch.full((x.shape[0],), t, device=x.device)
        d = (x - model(x, sigma_t)) / t
        x_next = x + (t_next - t) * d
        if t_next > 0:
            sigma_n = torch.full((x.shape[0],), t_next, device=x.device)
            d2 = (x_next - model(x_next, sigma_n)) / t_next
            x_next = x + (t_next - t) * 0.5 * (d + d2)
        x = x_next
    return x


def sample_batches(model, n, seed, device, batch=1000, steps=18):
    """n seeded samples (noise drawn on the CPU so the seed gives the same noise on any device)."""
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, 1, 28, 28, generator=gen)
    outs = []
    for i in range(0, n, batch):
        outs.append(heun_sample(model, noise[i:i + batch].to(device), steps).cpu())
    return torch.cat(outs)


# ----------------------------------------------------------------------------- images


def write_png_gray(path, img):
    """Write a uint8 [H, W] array as an 8-bit grayscale PNG (no imaging library needed)."""
    img = np.ascontiguousarray(img, dtype=np.uint8)
    h, w = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(tag, data):
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def image_grid(x, nrow=8, pad=2, scale=2):
    """[N,1,28,28] in [-1,1] -> uint8 grid with a grey frame, each pixel scaled up."""
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()[:, 0]
    n, h, w = x.shape
    ncol = int(math.ceil(n / nrow))
    grid = np.full((ncol * (h + pad) + pad, nrow * (w + pad) + pad), 96, dtype=np.uint8)  # grey frame
    for k in range(n):
        r, c = divmod(k, nrow)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = x[k]
    return np.kron(grid, np.ones((scale, scale), dtype=np.uint8))


def plot_loss(path, steps, losses, title):
    """Loss curve as PNG: matplotlib when installed, else a minimal raster plot drawn with numpy."""
    steps = np.asarray(steps, dtype=np.float64)
    losses = np.asarray(losses, dtype=np.float64)
    if len(steps) < 2:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
        ax.plot(steps, losses, lw=0.8, alpha=0.4, label="per log interval")
        k = max(1, len(losses) // 50)
        if k > 1:
            smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
            ax.plot(steps[k - 1:], smooth, lw=1.5, label=f"moving mean ({k})")
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("EDM loss")
        ax.set_title(title)
        ax.legend()
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return True
    except ImportError:
        pass
    # Fallback: white canvas, grey frame, black log-scale polyline; no axis labels.
    w, h, m = 600, 300, 20
    img = np.full((h, w), 255, dtype=np.uint8)
    img[m, m:w - m] = img[h - m, m:w - m] = img[m:h - m, m] = img[m:h - m + 1, w - m] = 160
    y = np.log(np.maximum(losses, 1e-12))
    lo, hi = float(y.min()), float(y.max())
    px = m + (steps - steps.min()) / max(steps.max() - steps.min(), 1e-9) * (w - 2 * m)
    py = h - m - (y - lo) / max(hi - lo, 1e-9) * (h - 2 * m)
    for i in range(len(px) - 1):
        n = int(max(abs(px[i + 1] - px[i]), abs(py[i + 1] - py[i]), 1)) + 1
        xs = np.linspace(px[i], px[i + 1], n).round().astype(int)
        ys = np.linspace(py[i], py[i + 1], n).round().astype(int)
        img[np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)] = 0
    write_png_gray(path, img)
    return True


# ----------------------------------------------------------------------------- export


CONFIG_METADATA_KEY = "ld3.mnist_edm.config"


def add_config_metadata(path, config):
    """Record the architecture in the ONNX file, so that --init can rebuild the network from it."""
    import onnx

    m = onnx.load(path)
    del m.metadata_props[:]
    entry = m.metadata_props.add()
    entry.key, entry.value = CONFIG_METADATA_KEY, json.dumps(config)
    onnx.save(m, path)


def load_onnx_weights(path, flag_config):
    """The architecture and fp32 weights of an exported model.onnx, as (config, state_dict).

    The exporter keeps most parameter names; a few (GroupNorm affine parameters, the frequency
    buffer) become anonymous initializers, which appear in the graph in the same order as the
    parameters they replaced. Those are matched in order, by size, and everything must be used
    exactly once: a file of another architecture fails here instead of training garbage. The
    architecture comes from the file's metadata (exports since it was added) or the flags.
    """
    import onnx
    from onnx import numpy_helper

    m = onnx.load(path)
    meta = {p.key: p.value for p in m.metadata_props}
    config = json.loads(meta[CONFIG_METADATA_KEY]) if CONFIG_METADATA_KEY in meta else flag_config
    reference = EDMDenoiser(**config).state_dict()
    inits = [(i.name, numpy_helper.to_array(i)) for i in m.graph.initializer]
    by_name = {name: array for name, array in inits}
    state, unnamed = {}, [(n, a) for n, a in inits if n not in reference]
    for key, tensor in reference.items():
        array = by_name.get(key)
        if array is None:
            if not unnamed:
                raise ValueError(f"{path}: no initializer left for {key}")
            name, array = unnamed.pop(0)
        if array.size != tensor.numel():
            raise ValueError(f"{path}: {key} needs {tuple(tensor.shape)}, got {array.shape}")
        state[key] = torch.from_numpy(array.copy()).reshape(tensor.shape).to(tensor.dtype)
    if unnamed:
        raise ValueError(f"{path}: {len(unnamed)} initializers left over (another architecture?)")
    return config, state


# ----------------------------------------------------------------------------- training helpers


def load_mnist(path):
    d = np.load(path)
    return {k: d[k] for k in ("x_train", "y_train", "x_test", "y_test")}


def count_params(model):
    return sum(p.numel() for p in model.parameters())


class EMA:
    """Exponential moving average of the parameters, with a warm-up so early steps are not
    dominated by the random initialisation: decay_t = min(decay, (1 + t) / (10 + t))."""

    def __init__(self, model, decay):
        self.decay = decay
        self.params = [p.detach().clone().float() for p in model.parameters()]
        self.buffers = [b.detach().clone() for b in model.buffers()]

    @torch.no_grad()
    def update(self, model, step):
        d = min(self.decay, (1 + step) / (10 + step))
        src = [p.detach().float() for p in model.parameters()]
        if hasattr(torch, "_foreach_mul_"):
            torch._foreach_mul_(self.params, d)
            torch._foreach_add_(self.params, src, alpha=1 - d)
        else:
            for e, p in zip(self.params, src):
                e.mul_(d).add_(p, alpha=1 - d)

    def copy_to(self, model):
        with torch.no_grad():
            for e, p in zip(self.params, model.parameters()):
                p.copy_(e)
            for e, b in zip(self.buffers, model.buffers()):
                b.copy_(e)


def set_threads(n):
    if n and n > 0:
        torch.set_num_threads(n)


def frechet_distance(a, b):
    """Frechet distance between Gaussians fitted to two feature sets [N, D] (float64)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr sqrt(s1 s2) = sum sqrt(eig(sqrt(s1) s2 sqrt(s1))): symmetric eigendecompositions only.
    w, v = np.linalg.eigh(s1)
    r1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    ev = np.linalg.eigvalsh(r1 @ s2 @ r1)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(ev, 0, None)).sum())


def quick_eval(samples, x_test, classifier_path, threads):
    """Score samples with the bundled classifier ONNX (onnxruntime, CPU): the fraction whose top
    class probability is >= 0.9, the class histogram, and a Frechet distance of its penultimate
    features against the MNIST test set. Informational only: the project's own eval code is the
    reference for reported numbers."""
    try:
        import onnxruntime as ort
    except ImportError:
        print("check: onnxruntime not importable, classifier check skipped")
        return {"skipped": "onnxruntime not importable"}
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    sess = ort.InferenceSession(classifier_path, so, providers=["CPUExecutionProvider"])

    def run(x):
        feats, logits = [], []
        for i in range(0, len(x), 1000):
            f, lg = sess.run(["features", "logits"], {"image": x[i:i + 1000].astype(np.float32)})
            feats.append(f)
            logits.append(lg)
        return np.concatenate(feats).astype(np.float64), np.concatenate(logits).astype(np.float64)

    fs, ls = run(samples.clamp(-1, 1).numpy())
    ft, _ = run(x_test)
    p = np.exp(ls - ls.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    conf = p.max(1)
    hist = np.bincount(p.argmax(1), minlength=10)

    res = {
        "num_samples": int(len(samples)),
        "frac_top_prob_ge_0_9": float((conf >= 0.9).mean()),
        "frac_top_prob_ge_0_9_first_1000": float((conf[:1000] >= 0.9).mean()),
        "class_histogram": hist.tolist(),
        "fid_vs_test_features": frechet_distance(fs, ft),
    }
    print(f"check: {res}")
    return res


# ----------------------------------------------------------------------------- main


def parse_nrb(text):
    vals = [int(v) for v in str(text).split(",")]
    return vals[0] if len(vals) == 1 else vals


def parse_args(argv):
    ap = argparse.ArgumentParser(description="Train/export the bundled MNIST EDM diffusion model")
    ap.add_argument("--data", default=".gpu/mnist.npz", help="npz from tools/pack_mnist.py")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--minutes", type=float, default=6.0, help="training time budget (wall clock)")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0 = no limit)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--warmup", type=int, default=500, help="linear learning-rate warm-up steps")
    ap.add_argument("--decay-frac", type=float, default=0.25,
                    help="last fraction of the time budget over which the lr decays linearly to 5%%")
    ap.add_argument("--ema", type=float, default=0.999, help="EMA decay per step")
    ap.add_argument("--p-mean", type=float, default=P_MEAN,
                    help="mean of log sigma during training (EDM: -1.2); higher trains more at high noise")
    ap.add_argument("--p-std", type=float, default=P_STD, help="std of log sigma during training (EDM: 1.2)")
    ap.add_argument("--channels", default=",".join(str(c) for c in DEFAULT_CONFIG["channels"]))
    ap.add_argument("--num-res-blocks", default=str(DEFAULT_CONFIG["num_res_blocks"]),
                    help="encoder ResBlocks per level: one int, or one per level like 2,2,1")
    ap.add_argument("--emb-dim", type=int, default=DEFAULT_CONFIG["emb_dim"])
    ap.add_argument("--dropout", type=float, default=DEFAULT_CONFIG["dropout"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--no-amp", action="store_true", help="disable bf16 autocast on CUDA")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--sample-seed", type=int, default=1234, help="seed of the 8x8 sample grid")
    ap.add_argument("--grid-steps", type=int, default=18, help="Heun steps of the grid (18 = 35 NFE)")
    ap.add_argument("--classifier", default="", help="features/logits ONNX for a quick sample check")
    ap.add_argument("--classifier-wait", type=float, default=120.0,
                    help="seconds to wait for --classifier to appear (it may be training in parallel)")
    ap.add_argument("--check-samples", type=int, default=1000, help="samples for the classifier check")
    ap.add_argument("--check-seed", type=int, default=0)
    ap.add_argument("--export-only", action="store_true", help="skip training; load --ckpt and export")
    ap.add_argument("--ckpt", default="", help="ema.pt to load with --export-only")
    ap.add_argument("--init", default="",
                    help="ema.pt or model.onnx to start training from (continues an earlier run; "
                         "Adam starts fresh)")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    t_start = time.time()
    os.makedirs(args.out, exist_ok=True)
    set_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda requested but torch.cuda.is_available() is False")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    use_amp = device.type == "cuda" and not args.no_amp
    where = (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda"
             else f", threads {torch.get_num_threads()}")
    print(f"torch {torch.__version__}, device {device}{where}")

    if args.export_only:
        ck = torch.load(args.ckpt, map_location="cpu")
        config = ck["config"]
        model = EDMDenoiser(**config)
        model.load_state_dict(ck["state_dict"])
        info = {"mode": "export-only", "ckpt": args.ckpt}
        loss_rows = []
    else:
        config = dict(DEFAULT_CONFIG)
        config.update(channels=[int(c) for c in args.channels.split(",")],
                      num_res_blocks=parse_nrb(args.num_res_blocks), emb_dim=args.emb_dim, dropout=args.dropout)
        data = load_mnist(args.data)
        x_all = torch.from_numpy(data["x_train"]).float().div_(127.5).sub_(1).unsqueeze(1).to(device)
        if args.init:
            # Continue from an earlier run's EMA weights (ema.pt or the exported model.onnx); its
            # architecture wins over the flags.
            if args.init.endswith(".onnx"):
                config, init_state = load_onnx_weights(args.init, config)
            else:
                init = torch.load(args.init, map_location="cpu")
                config, init_state = init["config"], init["state_dict"]
        model = EDMDenoiser(**config).to(device)
        if args.init:
            model.load_state_dict(init_state)
            print(f"initialised from {args.init}")
        print(f"params {count_params(model):,} config {config}")
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        # Default (foreach) Adam: the fused kernel would save little here and is one more thing
        # that must behave the same on torch 1.13 and 2.x.
        opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.99), eps=1e-8)
        ema = EMA(model, args.ema)
        budget = args.minutes * 60.0
        loss_rows = []
        acc = torch.zeros((), device=device)
        acc_n = 0
        step = 0
        model.train()
        t0 = time.time()
        last_print = t0
        while True:
            elapsed = time.time() - t0
            if elapsed >= budget or (args.max_steps and step >= args.max_steps):
                break
            frac = elapsed / budget
            lr = args.lr * min(1.0, (step + 1) / args.warmup)
            if frac > 1 - args.decay_frac:
                lr *= max(0.05, (1 - frac) / args.decay_frac)
            for g in opt.param_groups:
                g["lr"] = lr
            idx = torch.randint(0, x_all.shape[0], (args.batch,), device=device)
            y = x_all[idx]
            sigma = torch.exp(torch.randn(args.batch, device=device) * args.p_std + args.p_mean)
            xn = y + torch.randn_like(y) * sigma[:, None, None, None]
            if device.type == "cuda":
                xn = xn.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
                den = model(xn, sigma)
            weight = (sigma ** 2 + SIGMA_DATA ** 2) / (sigma * SIGMA_DATA) ** 2
            loss = (weight[:, None, None, None] * (den.float() - y) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            ema.update(model, step)
            acc += loss.detach()
            acc_n += 1
            step += 1
            if step % args.log_every == 0:
                mean_loss = float(acc.item()) / acc_n  # one sync per log interval
                loss_rows.append((step, mean_loss))
                acc.zero_()
                acc_n = 0
                now = time.time()
                if now - last_print > 10 or step == args.log_every:
                    print(f"step {step} loss {mean_loss:.4f} lr {lr:.2e} "
                          f"{step / (now - t0):.1f} it/s elapsed {now - t0:.0f}s", flush=True)
                    last_print = now
        if device.type == "cuda":
            torch.cuda.synchronize()
        train_seconds = time.time() - t0
        print(f"trained {step} steps in {train_seconds:.1f}s ({step / max(train_seconds, 1e-9):.1f} it/s)")
        del x_all
        model = EDMDenoiser(**config)
        ema.copy_to(model)
        info = {"mode": "train", "steps": step, "train_seconds": round(train_seconds, 1),
                "steps_per_second": round(step / max(train_seconds, 1e-9), 2),
                "minutes_budget": args.minutes, "batch": args.batch, "lr": args.lr, "ema_decay": args.ema,
                "warmup": args.warmup, "decay_frac": args.decay_frac, "bf16_autocast": use_amp,
                "init": args.init or None,
                "final_loss": loss_rows[-1][1] if loss_rows else None,
                "final_loss_mean_last_10": float(np.mean([r[1] for r in loss_rows[-10:]])) if loss_rows else None}
        torch.save({"config": config, "state_dict": model.state_dict()}, os.path.join(args.out, "ema.pt"))
        with open(os.path.join(args.out, "loss.csv"), "w") as f:
            f.write("step,loss\n")
            for s, lv in loss_rows:
                f.write(f"{s},{lv:.6f}\n")
        try:
            plot_loss(os.path.join(args.out, "loss.png"), [r[0] for r in loss_rows], [r[1] for r in loss_rows],
                      f"MNIST EDM UNet, {count_params(model) / 1e6:.2f}M params, batch {args.batch}")
        except Exception as e:  # the plot is a convenience; loss.csv has the numbers
            print(f"loss plot failed: {type(e).__name__}: {e}", file=sys.stderr)

    # Export the fp32 EMA model on the CPU (identical graph on any device).
    model = model.float().cpu().eval()
    onnx_path = os.path.join(args.out, "model.onnx")
    gen = torch.Generator().manual_seed(7)
    ex_x = torch.randn(3, 1, 28, 28, generator=gen)
    ex_s = torch.exp(torch.randn(3, generator=gen) * 1.5)
    export_info = {}
    try:
        onnx_export(model, (ex_x, ex_s), onnx_path, ["x", "sigma"], ["denoised"],
                    {"x": {0: "batch"}, "sigma": {0: "batch"}, "denoised": {0: "batch"}})
        vx = torch.randn(5, 1, 28, 28, generator=gen) * 2
        vs = torch.tensor([0.002, 0.1, 1.0, 10.0, 80.0])
        add_config_metadata(onnx_path, config)
        export_info = verify_onnx(onnx_path, model, (vx, vs), ["x", "sigma"], ["denoised"])
        export_info["onnx_bytes"] = os.path.getsize(onnx_path)
    except Exception as e:  # keep ema.pt and the rest; re-export later with --export-only
        export_info = {"error": f"{type(e).__name__}: {e}"}
        print(f"ONNX export failed: {export_info['error']}", file=sys.stderr)

    # Sample grid (and optional classifier check) with the fp32 EMA model on the training device.
    model = model.to(device)
    ts = time.time()
    grid = sample_batches(model, 64, args.sample_seed, device, batch=64, steps=args.grid_steps)
    write_png_gray(os.path.join(args.out, "samples.png"), image_grid(grid))
    sample_seconds = time.time() - ts
    print(f"samples.png: 64 samples, {args.grid_steps}-step Heun ({2 * args.grid_steps - 1} NFE), "
          f"seed {args.sample_seed}, {sample_seconds:.1f}s")

    check = None
    if args.classifier and args.check_samples > 0:
        # The classifier may still be training in parallel; its train_log.json is written last,
        # so stop waiting once that exists even if its export failed.
        done_marker = os.path.join(os.path.dirname(args.classifier), "train_log.json")
        deadline = time.time() + args.classifier_wait
        while not os.path.exists(args.classifier) and not os.path.exists(done_marker) \
                and time.time() < deadline:
            time.sleep(2)
        if os.path.exists(args.classifier):
            time.sleep(1)  # the writer may still be flushing
            tc = time.time()
            samples = sample_batches(model, args.check_samples, args.check_seed, device, batch=1000,
                                     steps=args.grid_steps)
            data = load_mnist(args.data)
            x_test = (data["x_test"].astype(np.float32) / 127.5 - 1)[:, None]
            try:
                check = quick_eval(samples, x_test, args.classifier, args.threads)
            except Exception as e:  # informational only: never lose the trained model over it
                check = {"error": f"{type(e).__name__}: {e}"}
                print(f"check failed: {check['error']}", file=sys.stderr)
            check["seconds"] = round(time.time() - tc, 1)
        else:
            check = {"skipped": f"{args.classifier} not found"}
            print(f"check: skipped, {args.classifier} not found")

    log = {
        "model": "mnist-edm",
        "params": count_params(model),
        "config": config,
        "precond": {"sigma_data": SIGMA_DATA, "c_noise": "ln(sigma)/4", "prediction": "x0 (denoised)"},
        "training": {"P_mean": args.p_mean, "P_std": args.p_std, **info},
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "torch": torch.__version__,
        "export": export_info,
        "sampler": {"solver": "heun", "steps": args.grid_steps, "nfe": 2 * args.grid_steps - 1,
                    "sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX, "rho": RHO, "grid_seed": args.sample_seed,
                    "grid_seconds": round(sample_seconds, 1)},
        "classifier_check": check,
        "total_seconds": round(time.time() - t_start, 1),
    }
    with open(os.path.join(args.out, "train_log.json"), "w") as f:
        json.dump(log, f, indent=2)
    print(f"wrote {sorted(os.listdir(args.out))} to {args.out} in {log['total_seconds']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
