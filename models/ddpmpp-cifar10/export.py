"""Exports EDM's DDPM++ CIFAR-10 network (arch.py) with seeded random weights to ONNX.

    /usr/bin/python3 models/ddpmpp-cifar10/export.py            # full size: out/model.onnx (~223 MB)
    /usr/bin/python3 models/ddpmpp-cifar10/export.py --width 8 --out tests/fixtures/realsize/ddpmpp_twin.onnx

Inputs x [B,3,32,32] and sigma [B] (float32, dynamic batch), output `denoised` (D(x; σ), EDM
preconditioning inside the graph), opset 17: the layout of configs/mnist-edm.yml. Prints the
parameter count and the graph's op types.
"""

import argparse
import collections
import os
import sys

import onnx
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import arch  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=int, default=128, help="base channel count (128 = DDPM++)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(HERE, "out", "model.onnx"))
    args = ap.parse_args()
    net = arch.build(args.width, args.seed)
    params = sum(p.numel() for p in net.parameters())
    print(f"parameters: {params} ({params / 1e6:.2f} M)")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    x, sigma = arch.example_inputs(2)
    torch.onnx.export(
        net, (x, sigma), args.out, opset_version=17,
        input_names=["x", "sigma"], output_names=["denoised"],
        dynamic_axes={"x": {0: "batch"}, "sigma": {0: "batch"}, "denoised": {0: "batch"}},
    )
    ops = collections.Counter(n.op_type for n in onnx.load(args.out, load_external_data=False).graph.node)
    print("op types:", " ".join(f"{k}×{v}" for k, v in sorted(ops.items())))
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
