/**
 * `deno task demo`: the main job on the bundled model, end to end — teacher samples, LD3 for one
 * solver at one NFE, and the learned grid against the EDM and logSNR grids (lib/pipelines/demo.ts).
 *
 * ```sh
 * deno task demo                                   # bundled model, iPNDM at NFE 6, runs/demo
 * deno task demo --config configs/gmm-mnist.yml --solver uni_pc --nfe 4 --out runs/demo-unipc
 * deno task demo --quick                           # tiny sizes (seconds), for CI
 * ```
 *
 * Re-running the same command reuses the teacher samples and resumes the training run. The demo
 * trains 1 + 2 rounds from the EDM grid (the spec's `train` defaults are 2 + 5 from logSNR) and
 * measures FID on 500 samples per grid, to fit in 15 minutes on 2 CPU cores (docs/demo.md); the
 * printout's second line names these settings.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { formatDemoReport, runDemo } from "../lib/pipelines/demo.ts";
import type { SolverName } from "../lib/solvers/mod.ts";
import { intOption, runTask } from "./_data_cli.ts";

const USAGE = `Usage: deno task demo [options]
  --config FILE        model config (default configs/mnist-edm.yml if its model exists,
                       else configs/gmm-mnist.yml)
  --out DIR            output folder (default runs/demo)
  --solver NAME        student solver: euler | heun | dpm_solver | dpm_solver++ | uni_pc | ipndm
                       (default ipndm)
  --nfe N              student NFE (default 6)
  --samples N          teacher samples, half train and half validation (default 100)
  --quick              tiny sizes: 8 samples, one round per phase, 16 FID samples (tests, CI)
  --match_prior G      LD3's start grid: a skip type, gits, a grid file, or none for logSNR
                       (default edm)
  --rounds_v1 N        phase-1 training rounds (default 1; deno task train: 2)
  --rounds_v2 N        phase-2 training rounds (default 2; deno task train: 5)
  --lpips_model FILE   train with the LPIPS loss (default L2)
  --features FILE      feature ONNX model for FID (with --fid_ref)
  --fid_ref FILE       FID reference statistics .npz (mu, sigma)
  --fid_samples N      seeded samples per grid for FID (default 500)
  --device D           execution device (default: the config's)
  --quiet              no progress bars`;

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    args: Deno.args,
    strict: true,
    allowPositionals: false,
    options: {
      config: { type: "string" },
      out: { type: "string" },
      solver: { type: "string" },
      nfe: { type: "string" },
      samples: { type: "string" },
      quick: { type: "boolean" },
      match_prior: { type: "string" },
      rounds_v1: { type: "string" },
      rounds_v2: { type: "string" },
      lpips_model: { type: "string" },
      features: { type: "string" },
      fid_ref: { type: "string" },
      fid_samples: { type: "string" },
      device: { type: "string" },
      quiet: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (v.help) {
    console.log(USAGE);
    return;
  }
  const result = await runDemo({
    config: v.config,
    out: v.out,
    solverName: v.solver as SolverName | undefined,
    nfe: intOption("nfe", v.nfe),
    samples: intOption("samples", v.samples),
    quick: v.quick ?? false,
    matchPrior: v.match_prior,
    trainingRoundsV1: intOption("rounds_v1", v.rounds_v1),
    trainingRoundsV2: intOption("rounds_v2", v.rounds_v2),
    lpipsModel: v.lpips_model,
    features: v.features !== undefined ? { path: v.features } : undefined,
    fidRef: v.fid_ref,
    fidSamples: intOption("fid_samples", v.fid_samples),
    device: v.device,
    progress: !v.quiet,
  });
  console.log(formatDemoReport(result));
}

if (import.meta.main) await runTask(main);
