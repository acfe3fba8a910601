#!/usr/bin/env python3
"""PyTorch eager timing of one student trajectory of the bundled MNIST UNet, for bench/train_bench.ts.

The network is models/mnist-edm/train.py's EDMDenoiser with the fp32 weights read back out of
the ONNX file (train.py's load_onnx_weights), so PyTorch runs the same weights ld3 runs. The
trajectory is the solver plan bench/train_bench.ts hands over as JSON (the same ops, times and
combination coefficients ld3 executes): network calls in float32, combinations in float64, as
in the LD3 reference trainer. Timed, as medians over --repeats after --warmup calls:

- forward: the trajectory under torch.no_grad() (a validation or an accept-if-better test);
- forward+backward: the trajectory with autograd, then the backward of the batch-mean L2 loss to
  x_T and to the evaluation times (what one LD3 training step differentiates; the reference's
  step adds only its scalar time parameterisation to this).

Prints one JSON object: {"threads": {"1": {"forward_ms": ..., "forward_backward_ms": ...}, ...},
"params": ..., "torch": ...}.

  /usr/bin/python3 bench/torch_trajectory.py PLAN.json --onnx models/mnist-edm/model.onnx \
      --threads 1,2 --repeats 15
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "models", "mnist-edm"))
import train as edm  # noqa: E402  (the bundled UNet's own definition)


def load_network(onnx_path):
    config, state = edm.load_onnx_weights(onnx_path, edm.DEFAULT_CONFIG)
    net = edm.EDMDenoiser(**config)
    net.load_state_dict(state)
    net.eval()  # no dropout
    for p in net.parameters():
        p.requires_grad_(False)
    return net, sum(p.numel() for p in net.parameters())


def trajectory(net, plan, x_t, times, batch):
    """Runs the plan's ops: eval = D(x, t) in float32, combine = sum of coef * register."""
    regs = {0: x_t}
    for op in plan["ops"]:
        if op["kind"] == "eval":
            x = regs[op["input"]]
            sigma = times[op["evalIndex"]].to(torch.float32).expand(batch)
            regs[op["out"]] = net(x.to(torch.float32), sigma).to(torch.float64)
        else:
            acc = None
            for term in op["terms"]:
                v = term["coef"] * regs[term["reg"]]
                acc = v if acc is None else acc + v
            regs[op["out"]] = acc
    return regs[plan["output"]]


def median_ms(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("plan", help="JSON from bench/train_bench.ts: ops, output, times, batch, shape")
    ap.add_argument("--onnx", default=os.path.join(HERE, "..", "models", "mnist-edm", "model.onnx"))
    ap.add_argument("--threads", default="1,2", help="torch CPU thread counts to time")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()

    with open(args.plan) as f:
        plan = json.load(f)
    net, params = load_network(args.onnx)
    batch = plan["batch"]
    shape = [batch] + plan["shape"]
    gen = torch.Generator().manual_seed(0)
    x_t = torch.randn(shape, generator=gen, dtype=torch.float64) * plan["priorScale"]
    teacher = torch.zeros(shape, dtype=torch.float64)
    base_times = torch.tensor(plan["times"], dtype=torch.float64)

    def forward():
        with torch.no_grad():
            trajectory(net, plan, x_t, base_times, batch)

    def forward_backward():
        x = x_t.clone().requires_grad_(True)
        times = base_times.clone().requires_grad_(True)
        out = trajectory(net, plan, x, times, batch)
        loss = ((out - teacher) ** 2).reshape(batch, -1).mean(dim=1).mean()
        loss.backward()

    result = {"params": params, "torch": torch.__version__, "threads": {}}
    for n in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(n)
        result["threads"][str(n)] = {
            "forward_ms": median_ms(forward, args.warmup, args.repeats),
            "forward_backward_ms": median_ms(forward_backward, args.warmup, args.repeats),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
