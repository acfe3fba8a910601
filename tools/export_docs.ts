/**
 * The generated part of `docs/export.md`: the export formats, the schedule kinds each consumer
 * runs, and for each format its conventions and the real output of `exportSchedule` on a small
 * example grid. Written from `EXPORT_TARGETS` (`lib/pipelines/export_targets.ts`) by
 * `deno task docs`, between the file's `export` markers, so the page cannot drift from the code.
 *
 * @module
 */
import { makeGridFile } from "../lib/io/grid_file.ts";
import {
  discreteBetas,
  flowSchedule,
  type NoiseSchedule,
  type ScheduleKind,
  veSchedule,
  vpCosineSchedule,
  vpDiscreteSchedule,
  vpLinearSchedule,
} from "../lib/noise_schedule.ts";
import { markdownCell } from "../lib/options.ts";
import {
  type ConsumerFormat,
  EXPORT_FORMATS,
  EXPORT_TARGETS,
  exportSchedule,
} from "../lib/pipelines/grid_export.ts";
import { toGrid } from "../lib/step_grid.ts";

const BEGIN =
  "<!-- export:begin (written by `deno task docs` from lib/pipelines/export_targets.ts) -->";
const END = "<!-- export:end -->";

const KINDS: readonly ScheduleKind[] = ["ve", "vp_linear", "vp_discrete", "vp_cosine", "flow"];

/** The example grid of each kind: 3 steps, the discrete one on whole training steps. */
const EXAMPLES: Readonly<Record<ScheduleKind, { schedule: NoiseSchedule; t1: number[] }>> = {
  ve: { schedule: veSchedule(), t1: [80, 5, 0.25, 0.002] },
  vp_linear: { schedule: vpLinearSchedule(), t1: [1, 0.5, 0.1, 0.001] },
  vp_discrete: {
    schedule: vpDiscreteSchedule({ betas: discreteBetas("scaled_linear", 1000) }),
    t1: [1, 0.5, 0.1, 0.001],
  },
  vp_cosine: { schedule: vpCosineSchedule(), t1: [0.9946, 0.5, 0.1, 0.001] },
  flow: { schedule: flowSchedule(), t1: [0.999, 0.75, 0.25, 0.001] },
};

/** The kind a format's example uses: the first it runs without a warning, else with one. */
function exampleKind(format: ConsumerFormat): ScheduleKind {
  const support = EXPORT_TARGETS[format].support;
  return KINDS.find((k) => support[k].status === "exact") ??
    KINDS.find((k) => support[k].status === "warned")!;
}

function matrix(): string[] {
  const notes: string[] = [];
  const cell = (format: ConsumerFormat, kind: ScheduleKind): string => {
    const s = EXPORT_TARGETS[format].support[kind];
    if (s.status === "exact") return "exported";
    const note = `${s.status === "warned" ? "warning" : "refused"}: ${s.why}`;
    if (!notes.includes(note)) notes.push(note);
    return `${s.status} (${notes.indexOf(note) + 1})`;
  };
  const rows = EXPORT_FORMATS.map((f) =>
    `| \`${f}\` | ${KINDS.map((k) => cell(f, k)).join(" | ")} |`
  );
  return [
    `| format | ${KINDS.map((k) => `\`${k}\``).join(" | ")} |`,
    `| --- | ${KINDS.map(() => "---").join(" | ")} |`,
    ...rows,
    "",
    ...notes.map((n, i) => `${i + 1}. ${markdownCell(n)}`),
  ];
}

function formatSection(format: ConsumerFormat): string[] {
  const target = EXPORT_TARGETS[format];
  const kind = exampleKind(format);
  const { schedule, t1 } = EXAMPLES[kind];
  const out = exportSchedule(makeGridFile(schedule, toGrid(t1)), format, { schedule });
  return [
    `### \`${format}\``,
    "",
    `${target.consumer}.${target.solver ? ` Its update rule: ld3's \`${target.solver}\`.` : ""}`,
    "",
    ...target.conventions.map((c) => `- ${c}`),
    "",
    `A 3-step \`${kind}\` grid (\`t1 = [${t1.join(", ")}]\`) gives:`,
    "",
    "```text",
    out.text,
    "```",
    "",
    format === "comfyui" ? "```text" : "```python",
    ...out.usage,
    "```",
    ...(out.warnings.length ? ["", ...out.warnings.map((w) => `> warning: ${w}`)] : []),
    "",
  ];
}

/** The generated section of docs/export.md (between the markers). */
export function exportSection(): string {
  return [
    BEGIN,
    "",
    "## The formats",
    "",
    "| format | consumer |",
    "| --- | --- |",
    ...EXPORT_FORMATS.map((f) => `| \`${f}\` | ${markdownCell(EXPORT_TARGETS[f].consumer)} |`),
    "",
    "## Which schedule kinds each format runs",
    "",
    ...matrix(),
    "",
    "## Each format, with an example",
    "",
    ...EXPORT_FORMATS.flatMap(formatSection),
    END,
  ].join("\n");
}

/** docs/export.md with its generated section replaced. */
export function withExportSection(page: string): string {
  const start = page.indexOf(BEGIN);
  const end = page.indexOf(END);
  if (start < 0 || end < start) throw new RangeError("docs/export.md lacks the export markers");
  return page.slice(0, start) + exportSection() + page.slice(end + END.length);
}
