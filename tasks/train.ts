/**
 * `deno task train`: learn a step schedule with LD3 (the reference tool's `main.py`).
 *
 * ```sh
 * deno task train --config configs/gmm-mnist.yml --data_dir train_data/uni_pc_NFE20_edm \
 *   --solver_name ipndm --steps 4 --loss_type L2 --log_path logs
 * ```
 *
 * The run folder `<log_path>/<solver>-N<steps>-b<bound>-<loss>-lr2<lr2>rv1<r1>-rv2<r2>-seed<seed>/`
 * gets grid.json (for `--load_from`), config.yml, log.jsonl, checkpoint.json, schedule.png,
 * schedule.gif, samples.png and summary.json (see lib/pipelines/train/run.ts). `--resume` continues it.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type RunLd3Options, runLd3Training } from "../lib/pipelines/train/run.ts";
import type { TimeMode } from "../lib/ld3/parameterization.ts";
import type { LossType } from "../lib/metrics/losses.ts";
import {
  intOption,
  numberOption,
  optionHelp,
  RUN_OPTIONS,
  runTask,
  SOLVER_OPTIONS,
  solverOptions,
} from "./_data_cli.ts";

const USAGE = `Usage: deno task train --config <model.yml> --data_dir <dataset folder> [options]
  --num_train N               training samples (default 50)
  --num_valid N               validation samples (default 50)
  --main_train_batch_size N   training batch (default 2)
  --main_valid_batch_size N   validation batch (default 150)
  --training_rounds_v1 N      phase-1 rounds, θ1 only (default 2)
  --training_rounds_v2 N      phase-2 rounds, θ1 and θ2 (default 5)
  --log_path DIR              root of the run folders (default logs)
  --loss_type L2|L1|LPIPS     distance to the teacher (default LPIPS with --lpips_model, else L2)
  --lpips_model FILE          LPIPS ONNX model (LPIPS loss)
  --prior_bound B             ball radius coefficient: radius B·C·H·W/steps² (default 0.001)
  --fix_bound                 use --prior_bound as the radius itself
  --lr_time_1 LR              RMSprop learning rate of θ1 (default 0.005)
  --lr_time_2 LR              SGD learning rate of θ2, divided by steps (default 0.1)
  --shift_lr LR               latent relaxation step (default 12/steps)
  --shift_lr_decay F          its decay when no validation latent moved (default 0.5)
  --lr_time_decay F           learning-rate decay on patience (default 0.8)
  --patient N                 validations without improvement before reload (default 5)
  --lr2_patient N             stop after lr2 hit its floor N times (default 5)
  --min_lr_time_1 LR          floor of lr1 (default 5e-5)
  --min_lr_time_2 LR          floor of lr2 (default 1e-6)
  --time_mode time|lambda     parameterization (default lambda)
  --win_rate F                θ2 window, fraction of the smallest gap (default 0.5)
  --steps N                   student steps (default 10)
${optionHelp("solver_name", 28)}
  --order N                   solver order
  --unipc_variant bh1|bh2     UniPC variant (default bh1)
  --seed N                    shuffle seed (default 0)
  --no_v1                     skip phase 1
  --match_prior G             start from a skip type, gits, or a grid file
  --resume                    continue the run folder's checkpoint
${optionHelp("device", 28)}
  --quiet                     no progress line`;

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    args: Deno.args,
    strict: true,
    allowPositionals: false,
    options: {
      config: { type: "string" },
      data_dir: { type: "string" },
      num_train: { type: "string" },
      num_valid: { type: "string" },
      main_train_batch_size: { type: "string" },
      main_valid_batch_size: { type: "string" },
      training_rounds_v1: { type: "string" },
      training_rounds_v2: { type: "string" },
      log_path: { type: "string" },
      loss_type: { type: "string" },
      lpips_model: { type: "string" },
      prior_bound: { type: "string" },
      fix_bound: { type: "boolean" },
      lr_time_1: { type: "string" },
      lr_time_2: { type: "string" },
      shift_lr: { type: "string" },
      shift_lr_decay: { type: "string" },
      lr_time_decay: { type: "string" },
      patient: { type: "string" },
      lr2_patient: { type: "string" },
      min_lr_time_1: { type: "string" },
      min_lr_time_2: { type: "string" },
      time_mode: { type: "string" },
      win_rate: { type: "string" },
      ...SOLVER_OPTIONS,
      ...RUN_OPTIONS,
      no_v1: { type: "boolean" },
      match_prior: { type: "string" },
      resume: { type: "boolean" },
      quiet: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (v.help) {
    console.log(USAGE);
    return;
  }
  if (!v.config) throw new TypeError("--config is required (a model YAML file)");
  if (!v.data_dir) throw new TypeError("--data_dir is required (a dataset folder from generate)");
  const options: RunLd3Options = {
    config: v.config,
    dataDir: v.data_dir,
    numTrain: intOption("num_train", v.num_train),
    numValid: intOption("num_valid", v.num_valid),
    trainBatchSize: intOption("main_train_batch_size", v.main_train_batch_size),
    validBatchSize: intOption("main_valid_batch_size", v.main_valid_batch_size),
    trainingRoundsV1: intOption("training_rounds_v1", v.training_rounds_v1),
    trainingRoundsV2: intOption("training_rounds_v2", v.training_rounds_v2),
    logPath: v.log_path,
    lossType: v.loss_type as LossType | undefined,
    lpipsModel: v.lpips_model,
    priorBound: numberOption("prior_bound", v.prior_bound),
    fixBound: v.fix_bound,
    lrTime1: numberOption("lr_time_1", v.lr_time_1),
    lrTime2: numberOption("lr_time_2", v.lr_time_2),
    shiftLr: numberOption("shift_lr", v.shift_lr),
    shiftLrDecay: numberOption("shift_lr_decay", v.shift_lr_decay),
    lrTimeDecay: numberOption("lr_time_decay", v.lr_time_decay),
    patient: intOption("patient", v.patient),
    lr2Patient: intOption("lr2_patient", v.lr2_patient),
    minLrTime1: numberOption("min_lr_time_1", v.min_lr_time_1),
    minLrTime2: numberOption("min_lr_time_2", v.min_lr_time_2),
    timeMode: v.time_mode as TimeMode | undefined,
    winRate: numberOption("win_rate", v.win_rate),
    ...solverOptions(v),
    seed: intOption("seed", v.seed),
    noV1: v.no_v1,
    matchPrior: v.match_prior,
    resume: v.resume,
    device: v.device,
    progress: v.quiet ? false : {},
  };
  const r = await runLd3Training(options);
  const e = r.evaluation;
  console.log(
    `${r.gridPath}: ${r.steps} steps in ${r.trainSeconds.toFixed(1)} s (${r.stopReason}); ` +
      `validation loss LD3 ${e.ld3.toPrecision(4)}, logSNR ${e.logSNR.toPrecision(4)}, ` +
      `EDM ${e.edm.toPrecision(4)}, time_uniform ${e.time_uniform.toPrecision(4)}`,
  );
}

if (import.meta.main) await runTask(main);
