/**
 * `deno task bench`: the overhead of `generate` over the bare network, per config
 * (`lib/pipelines/overhead_bench.ts` does the measuring; this prints the tables).
 *
 * ```sh
 * deno task bench [--steps 10] [--solver_name uni_pc] [--skip_type edm] [--total_samples 64]
 *                 [--repeats 5] [config.yml ...]
 * ```
 *
 * @module
 */
import {
  benchGenerateOverhead,
  OVERHEAD_BATCH,
  OVERHEAD_BENCH_OPTIONS,
  type OverheadResult,
} from "../lib/pipelines/overhead_bench.ts";
import { resolveOptions } from "../lib/options.ts";
import { defineTask, runCli } from "./_cli.ts";

const f = (v: number) => v.toFixed(3);

/** The `generate / bare` table, one row per config. */
function ratioTable(results: readonly OverheadResult[]): string[] {
  return [
    "| model | NFE | generate ms/sample | bare ORT ms/sample (NFE × fwd + dec) | " +
    "generate / bare | overhead |",
    "| --- | --- | --- | --- | --- | --- |",
    ...results.map((r) => {
      const overhead = (r.ratio - 1) * 100;
      return `| ${r.name} | ${r.nfe} | ${f(r.med.generate)} ` +
        `[${r.spread.generate.map(f).join("–")}] | ${f(r.med.bare)} ` +
        `[${r.spread.bare.map(f).join("–")}] | ${r.ratio.toFixed(2)} | ` +
        `${overhead.toFixed(1)}% ${overhead <= 5 ? "(≤ 5% target met)" : "(above 5% target)"} |`;
    }),
  ];
}

/** The breakdown table: where generate's time goes, per sample. */
function breakdownTable(results: readonly OverheadResult[]): string[] {
  return [
    "| model | noise | solve (solver + adapter + ORT) | of which combines | of which adapter | " +
    "decode | .npz encode | atomic write | solve / (NFE × bare fwd) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...results.map(({ name, med: m }) =>
      `| ${name} | ${f(m.noise)} | ${f(m.solve)} | ${f(m.combines)} | ${f(m.adapter)} | ` +
      `${f(m.decode)} | ${f(m.encode)} | ${f(m.write)} | ${(m.solve / m.forward).toFixed(2)} |`
    ),
  ];
}

/** The `bench` task. */
export const BENCH = defineTask({
  name: "bench",
  summary: "Time generate against the bare ONNX Runtime calls it makes (solver and I/O " +
    "overhead, target ≤ 5 %)",
  details: [
    "Interleaved repetition by repetition, per config (default configs/gmm-mnist.yml); prints",
    "the medians, the overhead and its breakdown (docs/performance.md).",
  ],
  positionals: { usage: "[config.yml ...]", min: 0, max: Infinity },
  options: OVERHEAD_BENCH_OPTIONS,
  async run(v, positionals) {
    const configs = positionals.length > 0 ? positionals : ["configs/gmm-mnist.yml"];
    const shown = resolveOptions(OVERHEAD_BENCH_OPTIONS, v);
    console.log(
      `generate overhead, batch ${OVERHEAD_BATCH}, ${shown.solverName} ${shown.skipType}, ` +
        `${shown.steps} steps, ${shown.totalSamples} samples, median of ${shown.repeats} ` +
        `interleaved runs (min–max in brackets)`,
    );
    const results = [];
    for (const path of configs) results.push(await benchGenerateOverhead(path, v));
    console.log(["", ...ratioTable(results)].join("\n"));
    console.log(
      "\nBreakdown, ms/sample (medians, measured apart; they overlap inside generate, where the " +
        "file writes of one batch run beside the next batch's solve):\n",
    );
    console.log(breakdownTable(results).join("\n"));
  },
});

if (import.meta.main) await runCli(BENCH);
