#!/usr/bin/env python3
"""Run the LD3 authors' trainer (github.com/vinhsuhi/LD3, `main.py`) on ld3's bundled MNIST UNet,
on the CPU, from a teacher dataset written by `deno task generate`, to time it beside
`deno task train` on the same network, data and settings (docs/performance.md).

Nothing of the authors' code is part of ld3: pass the path of a checkout of their repository.
This script only adapts the inputs their `main.py` expects:

- the network: models/mnist-edm/train.py's EDMDenoiser with the fp32 weights read back out of the
  ONNX file, wrapped by their own `model_wrapper` (models/edm_uncond.py) into the noise predictor
  their solvers call, on their `NoiseScheduleVE("edm")` (σ from 0.002 to 80, as the config);
- the data: ld3's `samples/<i>.npz` (`z`, `x`) converted to their `latent_<i>.pt` files;
- the CPU: their trainer calls `.cuda()` on its parameters; that becomes a no-op here;
- two packages their trainer imports but does not use with the L2 loss (`lpips`, `imageio`; the
  GIF of their visualisation needs imageio) are stubbed when missing.

Their arguments pass through unchanged, e.g.

  /usr/bin/python3 bench/reference_trainer.py --ld3_repo /tmp/LD3 --threads 1 \
      --data runs/ref/teacher/uni_pc_NFE20_edm -- \
      --solver_name uni_pc --unipc_variant bh1 --order 3 --steps 6 --time_mode lambda \
      --num_train 10 --num_valid 10 --main_train_batch_size 2 --main_valid_batch_size 10 \
      --training_rounds_v1 1 --training_rounds_v2 1 --loss_type L2 --log_path /tmp/ref_logs

It prints the trainer's own "Training time" line (their `main.py` logs it) and the wall-clock of
this whole process.
"""

import argparse
import importlib.util
import os
import sys
import tempfile
import time
import types

START = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "models", "mnist-edm"))
import train as edm  # noqa: E402  (the bundled UNet's own definition)


def stub_missing(name, **attrs):
    try:
        __import__(name)
    except ImportError:
        module = types.ModuleType(name)
        for key, value in attrs.items():
            setattr(module, key, value)
        sys.modules[name] = module


def convert_dataset(data_dir, out_dir, count):
    """ld3's samples/<i>.npz (z, x) as the reference's latent_<i>.pt ({latent, img})."""
    for i in range(count):
        d = np.load(os.path.join(data_dir, "samples", f"{i:06d}.npz"))
        torch.save(
            {"latent": torch.from_numpy(d["z"].copy()), "img": torch.from_numpy(d["x"].copy())},
            os.path.join(out_dir, f"latent_{i:06d}.pt"),
        )


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ld3_repo", required=True, help="checkout of the authors' LD3 repository")
    ap.add_argument("--data", required=True, help="ld3 teacher dataset folder (manifest.json)")
    ap.add_argument("--onnx", default=os.path.join(HERE, "..", "models", "mnist-edm", "model.onnx"))
    ap.add_argument("--weights", help="a .pt of {config, state_dict} to use instead of --onnx "
                    "(for an export whose initializers train.py cannot match back)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ours, theirs = ap.parse_known_args()
    theirs = [a for a in theirs if a != "--"]
    torch.set_num_threads(ours.threads)

    repo = os.path.abspath(ours.ld3_repo)
    sys.path.insert(0, repo)
    stub_missing("lpips")
    stub_missing("imageio", imread=lambda *a, **k: None, mimsave=lambda *a, **k: None)
    torch.Tensor.cuda = lambda self, *a, **k: self  # their trainer moves its parameters to CUDA

    if ours.weights:
        saved = torch.load(ours.weights)
        config, state = saved["config"], saved["state_dict"]
    else:
        config, state = edm.load_onnx_weights(ours.onnx, edm.DEFAULT_CONFIG)
    net = edm.EDMDenoiser(**config)
    net.load_state_dict(state)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)

    # Their EDM loader (models/edm_uncond.py), without importing their models package, whose
    # __init__ also pulls in the latent-diffusion code.
    edm_uncond = load_module(os.path.join(repo, "models", "edm_uncond.py"), "ld3_edm_uncond")
    import noise_schedulers  # noqa: E402  (theirs, from the checkout on sys.path)

    noise_schedule = noise_schedulers.NoiseScheduleVE(schedule="edm")
    # The network runs in float32, as EDM's own networks cast their input (their solvers run in
    # float64).
    wrapped = edm_uncond.model_wrapper(
        lambda x, t, cond=None: net(x.to(torch.float32), t.to(torch.float32)), noise_schedule
    )
    resolution, channels = 28, 1

    def prepare_stuff(args):
        return (wrapped, net, lambda x: x, noise_schedule, resolution, channels, resolution,
                channels)

    work = tempfile.mkdtemp(prefix="ld3_reference_data_")
    count = None
    for i, a in enumerate(theirs):
        if a in ("--num_train", "--num_valid"):
            count = (count or 0) + int(theirs[i + 1])
    convert_dataset(ours.data, work, count or 100)

    sys.argv = ["main.py", "--model", "edm", "--data_dir", work, "--seed", "0", *theirs]
    sys.modules.setdefault("models", types.ModuleType("models"))
    sys.modules["models"].prepare_stuff = prepare_stuff
    reference = load_module(os.path.join(repo, "main.py"), "ld3_reference_main")
    args = reference.parse_arguments()
    for key, value in {
        "win_rate": 0.5, "prior_bound": 0.001, "fix_bound": False, "lr_time_1": 0.005,
        "lr_time_2": 0.1, "min_lr_time_1": 5e-5, "min_lr_time_2": 1e-6, "momentum_time_1": 0.9,
        "weight_decay_time_1": 0.0, "shift_lr_decay": 0.5, "lr_time_decay": 0.8, "patient": 5,
        "lr2_patient": 5, "use_ema": False, "visualize": False, "match_prior": False,
    }.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    reference.main(args)
    print(f"reference trainer process wall-clock {time.perf_counter() - START:.2f} s "
          f"(torch {torch.__version__}, {ours.threads} thread(s))")


if __name__ == "__main__":
    main()
