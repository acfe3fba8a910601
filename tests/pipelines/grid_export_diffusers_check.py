"""Runs ld3's diffusers exports through diffusers itself (see grid_export_diffusers_test.ts).

Reads a JSON list of cases on stdin. Each case names a scheduler, the config of the pipeline it
stands in for ("base"), the export's usage lines and text, and what set_timesteps must produce.
The from_config keyword arguments and the set_timesteps argument are taken from the export's own
snippet, so the snippet is what gets checked. Prints one line per case; exits 1 on a mismatch.
"""

import json
import sys

import numpy as np
import torch
import diffusers


def snippet_kwargs(usage):
    """The keyword arguments of the snippet's from_config call."""
    line = next(l for l in usage if ".from_config(" in l)
    inner = line[line.index("pipe.scheduler.config") + len("pipe.scheduler.config"):]
    inner = inner[: inner.rindex(")")].lstrip(", ")
    return eval("dict(" + inner + ")", {"__builtins__": {"dict": dict}})


def call_kwargs(text):
    """The set_timesteps argument the export prints, e.g. sigmas=[...] or timesteps=[...]."""
    return eval("dict(" + text + ")", {"__builtins__": {"dict": dict}, "torch": torch, "np": np})


def check(case):
    cls = getattr(diffusers, case["scheduler"])
    base = cls(**case["base"])
    scheduler = cls.from_config(base.config, **snippet_kwargs(case["usage"]))
    scheduler.set_timesteps(**call_kwargs(case["text"]))
    sigmas = scheduler.sigmas.double().numpy()
    timesteps = scheduler.timesteps.double().numpy()
    want = case["expect"]
    problems = []
    if len(sigmas) != len(want["sigmas"]):
        problems.append(f"{len(sigmas)} sigmas, want {len(want['sigmas'])}")
    elif not np.allclose(sigmas, want["sigmas"], rtol=want["rtol"], atol=1e-12):
        problems.append(f"sigmas {sigmas.tolist()} != {want['sigmas']}")
    if len(timesteps) != len(want["timesteps"]):
        problems.append(f"{len(timesteps)} timesteps, want {len(want['timesteps'])}")
    elif not np.allclose(timesteps, want["timesteps"], rtol=0, atol=want["timesteps_atol"]):
        problems.append(f"timesteps {timesteps.tolist()} != {want['timesteps']}")
    return problems


def main():
    failed = False
    for case in json.load(sys.stdin):
        problems = check(case)
        failed = failed or bool(problems)
        print(f"{case['name']}: {'; '.join(problems) if problems else 'ok'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
