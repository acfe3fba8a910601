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
 * schedule.gif, samples.png and summary.json (see lib/pipelines/train/run.ts). `--resume`
 * continues it.
 *
 * @module
 */
import { runLd3Training, TRAIN_OPTIONS } from "../lib/pipelines/train/run.ts";
import { defineTask, QUIET_OPTION, runCli } from "./_cli.ts";

/** The `train` task. */
export const TRAIN = defineTask({
  name: "train",
  summary: "Learn a step schedule with LD3 from a teacher dataset; resumable run folder",
  details: [
    "The run folder <log_path>/<solver>-N<steps>-b<bound>-<loss>-lr2<lr2>rv1<r1>-rv2<r2>-seed<seed>/",
    "gets grid.json (for --load_from), config.yml, log.jsonl, checkpoints, schedule.svg and",
    ".png, schedule.gif, samples.png, summary.json and report.html, the whole run in one page",
    "for a browser (docs/training.md).",
  ],
  options: TRAIN_OPTIONS,
  taskOptions: QUIET_OPTION,
  async run(v) {
    const r = await runLd3Training({ ...v, progress: v.quiet ? false : {} });
    const e = r.evaluation;
    console.log(
      `${r.gridPath}: ${r.steps} steps in ${r.trainSeconds.toFixed(1)} s (${r.stopReason}); ` +
        `validation loss LD3 ${e.ld3.toPrecision(4)}, logSNR ${e.logSNR.toPrecision(4)}, ` +
        `EDM ${e.edm.toPrecision(4)}, time_uniform ${e.time_uniform.toPrecision(4)}`,
    );
  },
});

if (import.meta.main) await runCli(TRAIN);
