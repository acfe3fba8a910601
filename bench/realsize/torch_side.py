#!/usr/bin/env python3
"""PyTorch eager side of bench/realsize/bench.ts: the same network (models/<name>/arch.py, the
same seed, so the same weights as the exported ONNX file), the same inputs, cotangent and solver
plan, timed in this process; prints one JSON object.

- forward_ms: D(x, t) for the batch under torch.no_grad(), at 1 thread and at --threads (ORT's
  count), the faster of the two (by forward+backward) kept for the rest (`threads`);
- forward_backward_ms: D(x, t) with autograd, then the gradients of ⟨cotangent, D⟩ with respect
  to x and t (what ld3's network VJP computes);
- trajectory_forward_ms / trajectory_forward_backward_ms: the student trajectory of the plan
  (network calls in float32, combinations in float64), then the backward of the batch-mean L2
  loss to x_T and the evaluation times (one LD3 step's differentiation);
- trajectory_forward_backward_ms is null (with trajectory_error) where it ran out of the memory
  the machine had free (an address-space cap turns that into an error instead of an OOM kill);
- peak_rss_mib: the process's peak resident memory after all of it (VmHWM: unlike ru_maxrss it
  does not inherit the launching process's peak across exec);
- the VJP itself (gx, gt) is written to --io as grad_x.npy / grad_t.npy for the agreement check.

D is the data prediction: the EDM network's output, or x − t·v for the flow transformer.

    /usr/bin/python3 bench/realsize/torch_side.py --model ddpmpp --io DIR --plan DIR/plan.json
"""

import argparse
import json
import resource
import os
import statistics
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FOLDERS = {"ddpmpp": "ddpmpp-cifar10", "dit": "dit-xl2-flow"}


def load(model, width):
    sys.path.insert(0, os.path.join(HERE, "..", "..", "models", FOLDERS[model]))
    import arch

    if model == "ddpmpp":
        net = arch.build(*([width] if width else []))
        return net, lambda x, t, c: net(x, t)
    net = arch.build(*([width, 2, 4] if width else []))
    return net, lambda x, t, c: x - t[:, None, None, None] * net(x, t, c)


def status_kib(field, path="/proc/self/status"):
    with open(path) as f:
        return int(next(line for line in f if line.startswith(field + ":")).split()[1])


def meminfo_kib(field):
    return status_kib(field, "/proc/meminfo")


def median_ms(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def trajectory(denoise, plan, x_t, times, cond, batch):
    regs = {0: x_t}
    for op in plan["ops"]:
        if op["kind"] == "eval":
            t = times[op["evalIndex"]].to(torch.float32).expand(batch)
            regs[op["out"]] = denoise(regs[op["input"]].to(torch.float32), t, cond).to(torch.float64)
        else:
            acc = None
            for term in op["terms"]:
                v = term["coef"] * regs[term["reg"]]
                acc = v if acc is None else acc + v
            regs[op["out"]] = acc
    return regs[plan["output"]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=sorted(FOLDERS), required=True)
    ap.add_argument("--width", type=int, default=0, help="twin width (0: full size)")
    ap.add_argument("--io", required=True, help="folder with x.npy, t.npy, cot.npy [, cond.npy]")
    ap.add_argument("--plan", required=True)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--step_repeats", type=int, default=1)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    net, denoise = load(args.model, args.width)
    read = lambda name: torch.from_numpy(np.load(os.path.join(args.io, name)))
    x, t, cot = read("x.npy"), read("t.npy"), read("cot.npy")
    cond = read("cond.npy") if os.path.exists(os.path.join(args.io, "cond.npy")) else None
    batch = x.shape[0]

    def forward():
        with torch.no_grad():
            return denoise(x, t, cond)

    def forward_backward():
        xg, tg = x.clone().requires_grad_(True), t.clone().requires_grad_(True)
        return torch.autograd.grad(denoise(xg, tg, cond), (xg, tg), cot)

    gx, gt = forward_backward()
    np.save(os.path.join(args.io, "grad_x.npy"), gx.numpy())
    np.save(os.path.join(args.io, "grad_t.npy"), gt.numpy())
    # on a busy machine torch's threads can lose to one thread: time both, keep the faster
    counts = sorted({1, args.threads or torch.get_num_threads()})
    by_threads = {}
    for n in counts:
        torch.set_num_threads(n)
        by_threads[n] = {
            "forward_ms": median_ms(forward, args.warmup, args.repeats),
            "forward_backward_ms": median_ms(forward_backward, args.warmup, args.repeats),
        }
    best = min(counts, key=lambda n: by_threads[n]["forward_backward_ms"])
    torch.set_num_threads(best)
    result = {
        "params": sum(p.numel() for p in net.parameters()),
        "torch": torch.__version__,
        "threads": best,
        "by_threads": {str(n): v for n, v in by_threads.items()},
        **by_threads[best],
    }
    with open(args.plan) as f:
        plan = json.load(f)
    gen = torch.Generator().manual_seed(0)
    x_t = torch.randn([batch] + plan["shape"], generator=gen, dtype=torch.float64) * plan["priorScale"]
    teacher = torch.zeros_like(x_t)
    base_times = torch.tensor(plan["times"], dtype=torch.float64)

    def traj_forward():
        with torch.no_grad():
            trajectory(denoise, plan, x_t, base_times, cond, batch)

    def traj_forward_backward():
        xv, times = x_t.clone().requires_grad_(True), base_times.clone().requires_grad_(True)
        out = trajectory(denoise, plan, xv, times, cond, batch)
        ((out - teacher) ** 2).reshape(batch, -1).mean(dim=1).mean().backward()

    result["trajectory_forward_ms"] = median_ms(traj_forward, 0, args.step_repeats)
    # a cap on the address space below what the machine has free, so that running out of memory
    # is an error reported here rather than the kernel's OOM kill of this process
    limit = status_kib("VmSize") * 1024 + meminfo_kib("MemAvailable") * 1024 - 2**30
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    try:
        result["trajectory_forward_backward_ms"] = median_ms(traj_forward_backward, 0, args.step_repeats)
    except (RuntimeError, MemoryError) as e:
        result["trajectory_forward_backward_ms"] = None
        result["trajectory_error"] = f"{type(e).__name__}: {str(e)[:200]}"
        result["memory_limit_mib"] = limit / 2**20
    result["peak_rss_mib"] = status_kib("VmHWM") / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main()
