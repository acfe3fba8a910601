"""Build lpips-tiny.onnx: a small network with the shape of LPIPS, as a test stand-in.

It is NOT a perceptual metric: its weights are random (seeded), not trained. It has what
matters to ld3's LPIPS loader and its gradient: the same inputs and output as an exported
LPIPS (`in0`, `in1` float32 [B, 3, H, W] in [-1, 1] -> `distance` [B, 1, 1, 1]) and the same
operations (input scaling layer, conv + ReLU stages with max pooling, channel-unit
normalisation of features, non-negative 1x1 "lin" weights, spatial mean, sum over layers).

Run with Debian's python3-torch (deterministic):
    /usr/bin/python3 models/lpips-tiny/build.py
Writes models/lpips-tiny/lpips-tiny.onnx (opset 17, dynamic batch, height and width) and
tests/fixtures/lpips_tiny.json (PyTorch autograd gradients of it, for tests/metrics/lpips_test.ts).
"""
import json
import os

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "..", "tests", "fixtures", "lpips_tiny.json")

# Channels of the three feature stages (VGG-16 LPIPS uses 64, 128, 256, 512, 512).
CHANNELS = (16, 32, 32)
# Added inside the square root of the channel norm. A feature whose channels are all (near) 0
# after the ReLU would otherwise jump to a unit vector under a tiny change of the input; with
# 1e-2 the normalised feature turns smoothly below a norm of about 0.1, so finite differences
# of this float32 stand-in are usable. (LPIPS adds 1e-10 outside the root; its 64+ channels
# are almost never all 0.)
NORM_EPS = 1e-2


def normalize(f):
    """Unit-normalise each spatial position's feature vector over channels."""
    return f / torch.sqrt(torch.sum(f * f, dim=1, keepdim=True) + NORM_EPS)


class TinyLpips(nn.Module):
    def __init__(self):
        super().__init__()
        # LPIPS's ScalingLayer: (x - shift) / scale with ImageNet-derived constants.
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None])
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450])[None, :, None, None])
        stages = []
        cin = 3
        for k, c in enumerate(CHANNELS):
            layers = [nn.MaxPool2d(2, 2)] if k > 0 else []
            layers += [nn.Conv2d(cin, c, 3, padding=1), nn.ReLU()]
            stages.append(nn.Sequential(*layers))
            cin = c
        self.stages = nn.ModuleList(stages)
        # Non-negative per-channel weights, as LPIPS's learned 1x1 convolutions (no bias).
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS)
        with torch.no_grad():
            for lin in self.lins:
                lin.weight.abs_()

    def features(self, x):
        h = (x - self.shift) / self.scale
        out = []
        for stage in self.stages:
            h = stage(h)
            out.append(h)
        return out

    def forward(self, in0, in1):
        total = 0
        for f0, f1, lin in zip(self.features(in0), self.features(in1), self.lins):
            diff = (normalize(f0) - normalize(f1)) ** 2
            total = total + lin(diff).mean(dim=(2, 3), keepdim=True)
        return total


def export(net, x0, x1, path):
    axes = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(
        net,
        (x0, x1),
        path,
        input_names=["in0", "in1"],
        output_names=["distance"],
        opset_version=17,
        dynamic_axes={"in0": axes, "in1": axes, "distance": {0: "batch"}},
    )
    with torch.no_grad():
        print("distance of random pairs:", net(x0, x1).flatten().tolist())
        print("distance of identical:", net(x0, x0).flatten().tolist())
    print("wrote", path)


def grad_case(net, in0, in1, channels):
    """Distances and d(sum of distances)/d in0 by autograd, for images of `channels` channels
    repeated to the model's 3 (the repeat is part of the graph here, so its adjoint is too)."""
    a = in0.clone().requires_grad_(True)
    reps = (1, 3 // channels, 1, 1)
    distance = net(a.repeat(*reps), in1.repeat(*reps)).flatten()
    distance.sum().backward()
    return {
        "shape": list(in0.shape),
        "in0": in0.flatten().tolist(),
        "in1": in1.flatten().tolist(),
        "distance": distance.detach().tolist(),
        "grad_in0": a.grad.flatten().tolist(),
    }


def write_fixture(net):
    """PyTorch's gradients of the exported network, for tests/metrics/lpips_test.ts."""
    g = torch.Generator().manual_seed(7)
    cases = []
    for shape in ([2, 1, 16, 16], [2, 3, 12, 12]):
        in0 = torch.rand(shape, generator=g) * 2 - 1
        in1 = torch.rand(shape, generator=g) * 2 - 1
        cases.append(grad_case(net, in0, in1, shape[1]))
    with open(FIXTURE, "w") as f:
        json.dump({"model": "models/lpips-tiny/lpips-tiny.onnx", "cases": cases}, f)
        f.write("\n")
    print("wrote", os.path.normpath(FIXTURE))


def main():
    torch.manual_seed(20250101)
    net = TinyLpips().eval()
    x0 = torch.rand(2, 3, 28, 28) * 2 - 1
    x1 = torch.rand(2, 3, 28, 28) * 2 - 1
    export(net, x0, x1, os.path.join(HERE, "lpips-tiny.onnx"))
    write_fixture(net)


if __name__ == "__main__":
    main()
