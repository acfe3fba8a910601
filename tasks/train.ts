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
import { type RunLd3Result, runLd3Training, TRAIN_OPTIONS } from "../lib/pipelines/train/run.ts";
import { SUMMARY_BASELINES } from "../lib/pipelines/train/summary.ts";
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
    for (const line of trainReport(r)) console.log(line);
  },
});

/**
 * What the task prints at the end: the learned grid's loss and its rivals', all from the
 * validation samples' original latents; the trainer's best validation loss and which latents it
 * is from, next to the learned grid's loss from its relaxed latents; and a warning line when the
 * learned grid is worse than its start or a baseline.
 */
export function trainReport(r: RunLd3Result): string[] {
  const e = r.evaluation;
  const v = (x: number) => x.toPrecision(4);
  const rivals = [
    `start ${e.startGrid} ${v(e.start)}`,
    ...SUMMARY_BASELINES.map((b) => `${b} ${v(e[b])}`),
  ];
  const lines = [
    `${r.gridPath}: ${r.steps} steps in ${r.trainSeconds.toFixed(1)} s (${r.stopReason})`,
    `loss on the validation samples' original latents: LD3 ${v(e.ld3)}; ${rivals.join(", ")}`,
    `the trainer's validation loss (its log) is from the ${e.tracked} latents, best ` +
    `${v(r.bestValidLoss)}; LD3 from the relaxed latents kept with it: ${v(e.ld3Relaxed)}`,
  ];
  if (e.warnings.length > 0) {
    lines.push(
      `warning: the learned grid is worse on the original latents than ${e.warnings.join("; ")}`,
    );
  }
  return lines;
}

if (import.meta.main) await runCli(TRAIN);
