#!/usr/bin/env python3
"""Train and export the bundled MNIST classifier whose penultimate layer is the FID feature.

A small CNN (conv-BN-ReLU blocks, two 2x poolings, a 128-d fully connected layer
after ReLU, then 10 logits) trained with light augmentation (random rotation,
scale and translation). The exported ONNX graph takes `image` [B,1,28,28] in
[-1, 1] (the diffusion model's data range) and returns `features` [B,128]
(penultimate activations, after ReLU) and `logits` [B,10].

Runs on PyTorch 1.13 (CPU) and 2.x (CUDA). See README.md in this folder.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# The shared ONNX export helpers live one folder up (models/onnx_export.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from onnx_export import onnx_export, verify_onnx  # noqa: E402

FEATURE_DIM = 128


class Classifier(nn.Module):
    def __init__(self, feature_dim=FEATURE_DIM, dropout=0.3):
        super().__init__()

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.body = nn.Sequential(
            *block(1, 32), *block(32, 32), nn.MaxPool2d(2),  # 28 -> 14
            *block(32, 64), *block(64, 64), nn.MaxPool2d(2),  # 14 -> 7
            *block(64, 128),
        )
        self.fc = nn.Linear(128 * 7 * 7, feature_dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feature_dim, 10)

    def forward(self, image):
        h = self.body(image)
        features = F.relu(self.fc(torch.flatten(h, 1)))
        logits = self.head(self.dropout(features))
        return features, logits


def augment(x, gen_device):
    """Random rotation (+-10 deg), scale (0.9-1.1) and translation (+-2 px) via one affine warp.
    Background is -1 (black), matching the data range."""
    b = x.shape[0]
    ang = (torch.rand(b, device=gen_device) * 2 - 1) * math.radians(10)
    sc = 1 + (torch.rand(b, device=gen_device) * 2 - 1) * 0.1
    tr = (torch.rand(b, 2, device=gen_device) * 2 - 1) * (2.0 / 14.0)  # normalized coords: 1 = 14 px
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos, -sin, tr[:, 0]], 1), torch.stack([sin, cos, tr[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


@torch.no_grad()
def evaluate(model, x, y, batch=2000):
    model.eval()
    correct = 0
    for i in range(0, len(x), batch):
        _, logits = model(x[i:i + batch])
        correct += int((logits.argmax(1) == y[i:i + batch]).sum())
    return correct / len(x)


def parse_args(argv):
    ap = argparse.ArgumentParser(description="Train/export the bundled MNIST feature classifier")
    ap.add_argument("--data", default=".gpu/mnist.npz", help="npz from tools/pack_mnist.py")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--minutes", type=float, default=1.5, help="time cap on training (wall clock)")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-weights", action="store_true", help="also write weights.pt")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    t_start = time.time()
    os.makedirs(args.out, exist_ok=True)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda requested but torch.cuda.is_available() is False")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    where = (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda"
             else f", threads {torch.get_num_threads()}")
    print(f"torch {torch.__version__}, device {device}{where}")

    d = np.load(args.data)

    def prep(x):
        return torch.from_numpy(x).float().div_(127.5).sub_(1).unsqueeze(1).to(device)

    x_train, y_train = prep(d["x_train"]), torch.from_numpy(d["y_train"].astype(np.int64)).to(device)
    x_test, y_test = prep(d["x_test"]), torch.from_numpy(d["y_test"].astype(np.int64)).to(device)

    model = Classifier().to(device)
    params = sum(p.numel() for p in model.parameters())
    print(f"params {params:,}")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = len(x_train) // args.batch
    total = args.epochs * steps_per_epoch
    warmup = max(1, steps_per_epoch // 2)
    budget = args.minutes * 60
    use_amp = device.type == "cuda"
    step = 0
    epochs_done = 0
    t0 = time.time()
    timed_out = False
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(x_train), device=device)
        loss_sum = torch.zeros((), device=device)
        for i in range(steps_per_epoch):
            lr = args.lr * min((step + 1) / warmup, 0.5 * (1 + math.cos(math.pi * step / total)))
            for g in opt.param_groups:
                g["lr"] = lr
            idx = perm[i * args.batch:(i + 1) * args.batch]
            xb = augment(x_train[idx], device)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
                _, logits = model(xb)
            loss = F.cross_entropy(logits.float(), y_train[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach()
            step += 1
            if time.time() - t0 > budget:
                timed_out = True
                break
        acc = evaluate(model, x_test, y_test)
        epochs_done = epoch + 1
        print(f"epoch {epoch + 1} step {step} loss {float(loss_sum) / max(1, i + 1):.4f} "
              f"test acc {acc:.4f} elapsed {time.time() - t0:.0f}s", flush=True)
        if timed_out:
            print("time budget reached")
            break
    train_seconds = time.time() - t0
    test_acc = evaluate(model, x_test, y_test)
    print(f"final test accuracy {test_acc:.4f} after {step} steps, {train_seconds:.1f}s")

    model = model.float().cpu().eval()
    onnx_path = os.path.join(args.out, "model.onnx")
    gen = torch.Generator().manual_seed(7)
    export_info = {}
    try:
        onnx_export(model, (torch.rand(3, 1, 28, 28, generator=gen) * 2 - 1,), onnx_path, ["image"],
                    ["features", "logits"], {"image": {0: "batch"}, "features": {0: "batch"}, "logits": {0: "batch"}})
        vx = x_test[:16].cpu()
        export_info = verify_onnx(onnx_path, model, (vx,), ["image"], ["features", "logits"])
        export_info["onnx_bytes"] = os.path.getsize(onnx_path)
    except Exception as e:
        export_info = {"error": f"{type(e).__name__}: {e}"}
        print(f"ONNX export failed: {export_info['error']}", file=sys.stderr)
    if args.save_weights or "error" in export_info:
        torch.save(model.state_dict(), os.path.join(args.out, "weights.pt"))

    log = {
        "model": "mnist-features",
        "params": params,
        "feature_dim": FEATURE_DIM,
        "input": "image [B,1,28,28] float32 in [-1,1]",
        "outputs": {"features": f"[B,{FEATURE_DIM}] penultimate activations after ReLU", "logits": "[B,10]"},
        "test_accuracy": test_acc,
        "training": {"epochs": epochs_done, "epochs_planned": args.epochs, "steps": step, "batch": args.batch,
                     "lr": args.lr, "weight_decay": args.weight_decay, "train_seconds": round(train_seconds, 1),
                     "timed_out": timed_out, "bf16_autocast": use_amp,
                     "augmentation": "rotation +-10 deg, scale 0.9-1.1, translation +-2 px; label smoothing 0.05"},
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "torch": torch.__version__,
        "export": export_info,
        "total_seconds": round(time.time() - t_start, 1),
    }
    with open(os.path.join(args.out, "train_log.json"), "w") as f:
        json.dump(log, f, indent=2)
    print(f"wrote {sorted(os.listdir(args.out))} to {args.out} in {log['total_seconds']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
