/**
 * `report.html` of an LD3 run folder: everything the run wrote, in one self-contained page a
 * browser opens — the validation losses of LD3 and the baselines, the learned schedule
 * (`schedule.svg` inline, and the grid as a table), the loss curves drawn from `log.jsonl`, the
 * schedule's evolution (`schedule.gif`), the samples (`samples.png`) and every option of
 * `config.yml`. It reads only the folder, so it can be rewritten for any finished run.
 *
 * @module
 */
import { basename, join } from "node:path";
import { parseYaml } from "../../deps.ts";
import { writeTextFileAtomic } from "../../io/atomic.ts";
import { pathExists } from "../../io/fs.ts";
import type { GridFile } from "../../io/grid_file.ts";
import {
  type HtmlCell,
  htmlPage,
  type HtmlSection,
  htmlTable,
  imageFigure,
  optionsTable,
  paragraph,
  svgFigure,
} from "../../io/html.ts";
import { chartSvg } from "../../io/plot.ts";
import type { Ld3Event } from "../../ld3/trainer.ts";
import { lossPlot } from "./report.ts";

/** The parts of `summary.json` the report shows. */
interface RunSummary {
  bestValidLoss: number;
  /**
   * Each grid's loss from the original latents (`ld3` and the baselines), and, in runs since the
   * honest summary: the start grid's (`start`, named by `startGrid`), the learned grid's from its
   * relaxed latents (`ld3Relaxed`), which latents the log tracked and the warnings.
   */
  evaluation: Record<string, number | string | string[]>;
  lossType: string;
  trainSeconds: number;
  steps: number;
  stopReason: string;
  improvements: number;
}

/** Names of the evaluated grids, as the pictures spell them. */
const GRID_NAMES: Record<string, string> = {
  ld3: "LD3 (learned)",
  logSNR: "logSNR",
  edm: "EDM (ρ = 7)",
  time_uniform: "time uniform",
  time_quadratic: "time quadratic",
  dmn: "DMN",
};

/** Evaluation entries that are not a grid's loss from the original latents. */
const NOT_A_GRID = new Set(["start", "startGrid", "ld3Relaxed", "tracked", "warnings"]);

/** The verdict line: how much closer (or farther) LD3 is than the best baseline. */
function verdict(ld3: number, baselines: [string, number][]): string {
  if (baselines.length === 0) return "";
  const [bestName, bestLoss] = baselines.reduce((a, b) => (b[1] < a[1] ? b : a));
  const name = GRID_NAMES[bestName] ?? bestName;
  const ratio = bestLoss / ld3;
  return ratio >= 1
    ? `LD3 is ${ratio.toFixed(2)}× closer to the teacher than the best baseline (${name}).`
    : `LD3 is ${(1 / ratio).toFixed(2)}× farther from the teacher than ${name}.`;
}

/**
 * The validation losses of LD3, its start and the baselines from the original latents, the
 * lowest in bold; the relaxed-latent loss and the trainer's best validation loss named apart; the
 * warnings of a learned grid worse than its start or a baseline.
 */
function resultSection(summary: RunSummary): HtmlSection {
  const e = summary.evaluation;
  const entries = Object.entries(e).filter((x): x is [string, number] =>
    !NOT_A_GRID.has(x[0]) && typeof x[1] === "number"
  );
  if (typeof e.start === "number" && typeof e.startGrid === "string") {
    entries.push([`start (${e.startGrid})`, e.start]);
  }
  const best = Math.min(...entries.map(([, v]) => v));
  const ld3 = e.ld3 as number;
  const rows: HtmlCell[][] = entries.map(([name, loss]) => [
    GRID_NAMES[name] ?? name,
    loss === best ? { bold: loss } : loss,
    Number.isFinite(ld3) && ld3 > 0 ? `${(loss / ld3).toFixed(2)}×` : "—",
  ]);
  const tracked = e.tracked === "relaxed" ? "relaxed" : "original";
  const notes = [
    `${summary.lossType} loss to the teacher on the validation samples, from their original ` +
    `latents (lower is better). ${verdict(ld3, entries.filter(([name]) => name !== "ld3"))}`,
    `The trainer's best validation loss ${summary.bestValidLoss.toPrecision(4)} is measured ` +
    `from the ${tracked} latents` +
    (typeof e.ld3Relaxed === "number"
      ? `; from its relaxed latents the learned grid scores ${e.ld3Relaxed.toPrecision(4)}.`
      : "."),
  ];
  const warnings = Array.isArray(e.warnings) ? e.warnings : [];
  if (warnings.length > 0) {
    notes.push(`Warning: the learned grid is worse than ${warnings.join("; ")}.`);
  }
  return {
    title: "Result",
    body: notes.map((n) => paragraph(n)).join("") +
      htmlTable(["grid", `validation ${summary.lossType} loss`, "relative to LD3"], rows),
  };
}

/** The schedule plot and the learned grid as a table. */
function scheduleSection(svg: string | undefined, grid: GridFile | undefined): HtmlSection {
  const parts: string[] = [];
  if (svg) {
    parts.push(svgFigure(
      svg,
      "Half-log-SNR λ of every grid point against the step index. LD3's step grid t1 (solid, " +
        "filled dots) and evaluation grid t2 (dashed, hollow squares) against the hand-made " +
        "grids with as many steps; a steep segment is a big step.",
    ));
  }
  if (grid) {
    const rows = grid.t1.map((t, i) => [
      i,
      t,
      grid.sigma1[i],
      grid.lambda1[i],
      grid.t2[i],
      grid.sigma2[i],
    ]);
    parts.push(htmlTable(["i", "t1", "σ1", "λ1", "t2", "σ2"], rows, {
      caption: `The learned grid (${grid.steps} steps, ${grid.solver ?? "solver"}): times t, ` +
        "EDM-equivalent σ and λ = log(α/σ); grid.json holds the same values in full precision.",
    }));
  }
  return { title: "Learned schedule", body: parts.join("\n") };
}

/** The trainer's events of `log.jsonl` (other lines, such as improvements, left out). */
async function readEvents(path: string): Promise<Ld3Event[]> {
  if (!await pathExists(path)) return [];
  const types = new Set(["round", "step", "validation", "reload", "relax_valid", "stop"]);
  return (await Deno.readTextFile(path)).split("\n").filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l)).filter((e) => types.has(e.type));
}

async function readOptional(path: string): Promise<Uint8Array | undefined> {
  return await pathExists(path) ? await Deno.readFile(path) : undefined;
}

/**
 * Writes `report.html` into a finished run folder (atomically) and returns its path. Parts
 * whose files are missing (no `samples.png` for a model without pictures) are left out.
 *
 * @throws {Error} When the folder has no `summary.json` (the run has not finished).
 */
export async function writeRunReport(runDir: string): Promise<string> {
  const summary = JSON.parse(
    await Deno.readTextFile(join(runDir, "summary.json")),
  ) as RunSummary;
  const config = parseYaml(await Deno.readTextFile(join(runDir, "config.yml"))) as Record<
    string,
    unknown
  >;
  const grid = await pathExists(join(runDir, "grid.json"))
    ? JSON.parse(await Deno.readTextFile(join(runDir, "grid.json"))) as GridFile
    : undefined;
  const scheduleSvg = await pathExists(join(runDir, "schedule.svg"))
    ? await Deno.readTextFile(join(runDir, "schedule.svg"))
    : undefined;
  const events = await readEvents(join(runDir, "log.jsonl"));
  const gif = await readOptional(join(runDir, "schedule.gif"));
  const samples = await readOptional(join(runDir, "samples.png"));

  const training: string[] = [];
  if (events.some((e) => e.type === "step")) {
    const svg = await chartSvg(lossPlot(events, { lossType: summary.lossType }));
    training.push(svgFigure(
      svg,
      "Loss against the training step: each step's training batch, each validation, and the " +
        "best validation loss so far (the grid kept).",
    ));
  }
  if (gif) {
    training.push(imageFigure(
      gif,
      "image/gif",
      `The schedule after each of the ${summary.improvements} improvements (animated).`,
    ));
  }
  const sections: HtmlSection[] = [
    resultSection(summary),
    scheduleSection(scheduleSvg, grid),
    { title: "Training", body: training.join("\n") || paragraph("No training steps logged.") },
  ];
  if (samples) {
    sections.push({
      title: "Samples",
      body: imageFigure(
        samples,
        "image/png",
        "Validation samples from the same latents: the teacher, the LD3 student and the " +
          "baseline students.",
      ),
    });
  }
  sections.push({ title: "Options", body: optionsTable(config) });
  const model = (config.model as { name?: string } | undefined)?.name ?? "model";
  const subtitle = `${model}: ${grid?.solver ?? ""} ${grid?.steps ?? "?"} steps` +
    `${grid?.nfe !== undefined ? ` (NFE ${grid.nfe})` : ""}, ${summary.lossType} loss; ` +
    `${summary.steps} training steps in ${summary.trainSeconds.toFixed(1)} s, stopped by ` +
    `${summary.stopReason === "lr2_floor" ? "the θ2 learning-rate floor" : "the round limit"}.`;
  const path = join(runDir, "report.html");
  await writeTextFileAtomic(
    path,
    htmlPage(`LD3 run ${basename(runDir)}`, sections, { subtitle }),
  );
  return path;
}
