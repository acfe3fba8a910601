"""Exports the DiT-XL/2-shape rectified-flow transformer (arch.py) with seeded random weights.

    /usr/bin/python3 models/dit-xl2-flow/export.py    # full size: out/model.onnx + out/model.onnx.data (~2.7 GB)
    /usr/bin/python3 models/dit-xl2-flow/export.py --width 64 --depth 2 --heads 4 \
        --out tests/fixtures/realsize/dit_twin.onnx

Inputs x [B,4,32,32], t [B] (flow time in (0, 1)) and class_labels [B,1000] (one-hot rows),
float32 with a dynamic batch; output `v`, the velocity ε − x0; opset 17. Over 2 GB of weights the
graph keeps them in one external-data file beside it. Prints the parameter count and op types.
"""

import argparse
import collections
import os
import shutil
import sys
import tempfile

import onnx
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import arch  # noqa: E402


def export(net, path):
    x, t, labels = arch.example_inputs(2)
    kwargs = dict(
        opset_version=17, input_names=["x", "t", "class_labels"], output_names=["v"],
        dynamic_axes={k: {0: "batch"} for k in ["x", "t", "class_labels", "v"]},
    )
    big = sum(p.numel() for p in net.parameters()) * 4 > 1.8e9
    if not big:
        torch.onnx.export(net, (x, t, labels), path, **kwargs)
        return
    # torch writes one file per tensor past 2 GB; gather them into one data file beside the graph
    tmp = tempfile.mkdtemp(dir=os.path.dirname(path))
    try:
        torch.onnx.export(net, (x, t, labels), os.path.join(tmp, "model.onnx"), **kwargs)
        model = onnx.load(os.path.join(tmp, "model.onnx"))
        data = os.path.basename(path) + ".data"
        if os.path.exists(path + ".data"):
            os.remove(path + ".data")
        onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data, size_threshold=1024)
    finally:
        shutil.rmtree(tmp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=int, default=1152)
    ap.add_argument("--depth", type=int, default=28)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(HERE, "out", "model.onnx"))
    args = ap.parse_args()
    net = arch.build(args.width, args.depth, args.heads, args.seed)
    params = sum(p.numel() for p in net.parameters())
    print(f"parameters: {params} ({params / 1e6:.2f} M)")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    export(net, args.out)
    ops = collections.Counter(n.op_type for n in onnx.load(args.out, load_external_data=False).graph.node)
    print("op types:", " ".join(f"{k}×{v}" for k, v in sorted(ops.items())))
    size = sum(os.path.getsize(p) for p in [args.out, args.out + ".data"] if os.path.exists(p))
    print(f"wrote {args.out} ({size / 1e6:.1f} MB with its data)")


if __name__ == "__main__":
    main()
