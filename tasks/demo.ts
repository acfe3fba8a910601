/**
 * `deno task demo`: the main job on the bundled model, end to end — teacher samples, LD3 for one
 * solver at one NFE, and the learned grid against the EDM and logSNR grids
 * (lib/pipelines/demo.ts).
 *
 * ```sh
 * deno task demo                                   # bundled model, iPNDM at NFE 6, runs/demo
 * deno task demo --config configs/gmm-mnist.yml --solver_name uni_pc --steps 4 \
 *   --out runs/demo-unipc
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
import { DEMO_OPTIONS, formatDemoReport, runDemo } from "../lib/pipelines/demo.ts";
import { defineTask, FEATURES_OPTIONS, QUIET_OPTION, runCli } from "./_cli.ts";

/** The `demo` task. */
export const DEMO = defineTask({
  name: "demo",
  summary: "The whole job on a bundled model: teacher, LD3 training, and the learned grid " +
    "against the EDM and logSNR grids (L2 to the teacher, FID, pictures)",
  options: DEMO_OPTIONS,
  taskOptions: { ...FEATURES_OPTIONS, ...QUIET_OPTION },
  async run(v) {
    const result = await runDemo({
      ...v,
      features: v.features !== undefined ? { path: v.features } : undefined,
      progress: !v.quiet,
    });
    console.log(formatDemoReport(result));
  },
});

if (import.meta.main) await runCli(DEMO);
