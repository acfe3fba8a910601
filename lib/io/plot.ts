/**
 * Line charts for schedules, losses and benchmark curves, as SVG and PNG: the one plotting
 * stack of ld3 (training pictures, the schedule matrix, the HTML reports and the notebooks).
 *
 * A chart is first described as plain data ({@linkcode linePlot}, {@linkcode lambdaPlot},
 * {@linkcode combineCharts}): series, labels, sizes. {@linkcode chartSvg} then lays it out with
 * Observable Plot (over a headless linkedom document) as a standalone SVG document with a title,
 * labelled axes, ticks, grid lines and a legend; {@linkcode chartPng} rasterises that SVG with
 * resvg in DejaVu Sans (`svg.ts`). The charting packages load on the first chart drawn.
 *
 * Series stay apart in colour (Okabe–Ito), marker shape and, on request, dash and hollow
 * markers, so curves that lie on top of each other (LD3's t1 and t2 grids) both show.
 *
 * @example
 * ```ts
 * import { chartPng, linePlot } from "./plot.ts";
 * const chart = linePlot([{ name: "edm", x: [4, 6, 8], y: [3, 2, 1] }], {
 *   title: "FID vs NFE",
 *   xLabel: "NFE (network evaluations)",
 *   yLabel: "FID",
 * });
 * const png = await chartPng(chart);
 * if (png[1] !== 0x50) throw new Error("not a PNG");
 * ```
 *
 * @module
 */
import {
  escapeXml,
  FONT_STACK,
  type HeadlessDocument,
  headlessDocument,
  loadPlot,
  svgToPng,
  textWidth,
} from "./svg.ts";
import type { PlotModule } from "../deps.ts";

/** A marker shape (Observable Plot's symbol names). */
export type MarkerSymbol =
  | "circle"
  | "square"
  | "triangle"
  | "diamond"
  | "times"
  | "star"
  | "wye"
  | "cross";

/** One curve of a {@linkcode linePlot}; non-finite `y` values leave a gap. */
export interface Series {
  /** Legend label. */
  name: string;
  /** x values of the points. */
  x: ArrayLike<number>;
  /** y values, one per x. */
  y: ArrayLike<number>;
  /** Line and marker colour (CSS). @default {the palette's colour of the series index} */
  color?: string;
  /** SVG dash pattern, e.g. `"6 4"`. @default {solid} */
  dash?: string;
  /** Marker shape, or `"none"`. @default {the marker of the series index} */
  marker?: MarkerSymbol | "none";
  /** White-filled markers (drawn over a filled one, both show). @default {false} */
  hollow?: boolean;
  /** Line width in pixels. @default {2} */
  width?: number;
  /** Drawing layer: higher is drawn later, on top (the legend keeps series order). @default {0} */
  zorder?: number;
}

/** Options of {@linkcode linePlot}. */
export interface LinePlotOptions {
  /** Title above the axes. @default {""} */
  title?: string;
  /** Label under the x axis, with its unit. @default {""} */
  xLabel?: string;
  /** Label left of the y axis, with its unit. @default {""} */
  yLabel?: string;
  /** Logarithmic y axis (non-positive values are dropped). @default {false} */
  logY?: boolean;
  /** Chart width in pixels, legend included. @default {640} */
  width?: number;
  /** Chart height in pixels, title included. @default {400} */
  height?: number;
  /** Draw a marker at every data point. @default {true} */
  markers?: boolean;
  /**
   * Use the data's x values as x ticks (for few, meaningful x values such as NFEs or step
   * indices; beyond 16 values the axis picks its own). @default {false}
   */
  xTicksAtData?: boolean;
}

/** A line chart described as data: what {@linkcode chartSvg} draws. */
export interface LineChart extends Required<LinePlotOptions> {
  /** Discriminant: a single line chart. */
  kind: "line";
  /** The curves, in legend order. */
  series: readonly Series[];
}

/** Charts side by side in rows of `columns`, under an optional title. */
export interface Figure {
  /** Discriminant: several charts. */
  kind: "figure";
  /** The charts, row by row. */
  panels: readonly LineChart[];
  /** Charts per row. */
  columns: number;
  /** Title above all panels. @default {""} */
  title: string;
}

/** Anything {@linkcode chartSvg} and {@linkcode chartPng} draw. */
export type Chart = LineChart | Figure;

/**
 * The old name of {@linkcode Chart}.
 * @deprecated Use {@linkcode Chart}.
 */
export type PlotScene = Chart;

/** A colour-blind-friendly palette (Okabe–Ito, plus grey and a dark blue). */
export const PALETTE: readonly string[] = [
  "#0072B2",
  "#D55E00",
  "#009E73",
  "#CC79A7",
  "#E69F00",
  "#56B4E9",
  "#000000",
  "#777777",
  "#28288C",
];

/** Marker shapes by series index. */
export const MARKERS: readonly MarkerSymbol[] = [
  "circle",
  "square",
  "triangle",
  "diamond",
  "times",
  "star",
  "wye",
  "cross",
];

/** Font sizes in pixels. */
const FONT = { tick: 12, label: 13, legend: 12, title: 15, figureTitle: 17 };
/** Height of a title line above a chart. */
const TITLE_HEIGHT = 28;
/** Vertical pitch of legend entries. */
const LEGEND_ROW = 20;
/** Legend swatch: line from 0 to 28 px, marker at 14, text from 36. */
const SWATCH = { line: 28, text: 36 };

/**
 * Describes a line chart of several series (drawn by {@linkcode chartSvg} / {@linkcode chartPng}).
 *
 * @throws {RangeError} When a series has mismatched `x`/`y` lengths or the size is too small.
 */
export function linePlot(series: readonly Series[], options: LinePlotOptions = {}): LineChart {
  const width = options.width ?? 640;
  const height = options.height ?? 400;
  if (!(Number.isInteger(width) && width >= 240 && Number.isInteger(height) && height >= 160)) {
    throw new RangeError(`Plot size must be at least 240×160 pixels: got ${width}×${height}`);
  }
  for (const s of series) {
    if (s.x.length !== s.y.length) {
      throw new RangeError(
        `Series "${s.name}" needs as many x as y values: got ${s.x.length} and ${s.y.length}`,
      );
    }
  }
  return {
    kind: "line",
    series: [...series],
    title: options.title ?? "",
    xLabel: options.xLabel ?? "",
    yLabel: options.yLabel ?? "",
    logY: options.logY ?? false,
    width,
    height,
    markers: options.markers ?? true,
    xTicksAtData: options.xTicksAtData ?? false,
  };
}

/** A named grid for {@linkcode lambdaPlot}: λ at each grid point, T first. */
export interface LambdaGrid {
  /** Legend label, e.g. the skip type or `ld3`. */
  name: string;
  /** λ at each of the N+1 grid points, T first. */
  lambdas: ArrayLike<number>;
  /** Drawing style of this grid's curve (colour, dash, marker…). */
  style?: Omit<Series, "name" | "x" | "y">;
}

/** The y-axis label of λ plots. */
export const LAMBDA_LABEL = "half-log-SNR λ(tᵢ) = log(αᵢ/σᵢ)";

/**
 * λ of each grid point against the step index, one line per schedule: the picture that shows
 * where each schedule spends its steps (flat stretches = steps crowded in λ).
 */
export function lambdaPlot(grids: readonly LambdaGrid[], options: LinePlotOptions = {}): LineChart {
  return linePlot(
    grids.map((g) => ({
      ...g.style,
      name: g.name,
      x: Array.from({ length: g.lambdas.length }, (_, i) => i),
      y: g.lambdas,
    })),
    {
      xLabel: "step index i (0 = start, t = T)",
      yLabel: LAMBDA_LABEL,
      xTicksAtData: true,
      ...options,
    },
  );
}

/** Places charts side by side in rows of `columns`, under an optional figure title. */
export function combineCharts(
  charts: readonly LineChart[],
  columns: number = charts.length,
  title = "",
): Figure {
  if (charts.length === 0) throw new RangeError("combineCharts needs at least one chart: got 0");
  if (!(Number.isInteger(columns) && columns >= 1)) {
    throw new RangeError(`Columns must be a positive integer: got ${columns}`);
  }
  return { kind: "figure", panels: [...charts], columns: Math.min(columns, charts.length), title };
}

/**
 * The old name of {@linkcode combineCharts}.
 * @deprecated Use {@linkcode combineCharts}.
 */
export const combineScenes: typeof combineCharts = combineCharts;

/** Width and height of a chart's drawing, figure title included. */
export function chartSize(chart: Chart): { width: number; height: number } {
  if (chart.kind === "line") return { width: chart.width, height: chart.height };
  const cellW = Math.max(...chart.panels.map((p) => p.width));
  const cellH = Math.max(...chart.panels.map((p) => p.height));
  const rows = Math.ceil(chart.panels.length / chart.columns);
  return {
    width: cellW * chart.columns,
    height: cellH * rows + (chart.title ? TITLE_HEIGHT + 6 : 0),
  };
}

/** The style of series `k`: its own, else the palette's colour and marker of its index. */
function seriesStyle(s: Series, k: number, markers: boolean) {
  const marker = markers ? (s.marker ?? MARKERS[k % MARKERS.length]) : "none";
  return {
    color: s.color ?? PALETTE[k % PALETTE.length],
    dash: s.dash,
    marker,
    hollow: s.hollow ?? false,
    width: s.width ?? 2,
  };
}

type Style = ReturnType<typeof seriesStyle>;

/** The line of one series (split at non-finite points). */
function lineMark(Plot: PlotModule, points: [number, number][], style: Style) {
  return Plot.line(points, {
    x: "0",
    y: "1",
    stroke: style.color,
    strokeWidth: style.width,
    strokeDasharray: style.dash,
    strokeLinejoin: "round",
  });
}

/** The markers of one series (none for `marker: "none"`). */
function dotMarks(Plot: PlotModule, points: [number, number][], style: Style) {
  if (style.marker === "none") return [];
  return [
    Plot.dot(points, {
      x: "0",
      y: "1",
      symbol: style.marker,
      r: style.hollow ? 5 : 3.6,
      stroke: style.color,
      strokeWidth: style.hollow ? 1.6 : 1,
      fill: style.hollow ? "none" : style.color,
    }),
  ];
}

/** Points of a series in axis space: non-finite (and, on a log axis, non-positive) y → NaN. */
function seriesPoints(s: Series, logY: boolean): [number, number][] {
  return Array.from({ length: s.y.length }, (_, i) => {
    const x = s.x[i];
    const y = s.y[i];
    const ok = Number.isFinite(x) && Number.isFinite(y) && (!logY || y > 0);
    return [x, ok ? y : Number.NaN];
  });
}

/** x ticks at the data's x values, or undefined to let the axis choose. */
function dataTicks(chart: LineChart): number[] | undefined {
  if (!chart.xTicksAtData) return undefined;
  const xs = new Set<number>();
  for (const s of chart.series) for (const x of Array.from(s.x)) if (Number.isFinite(x)) xs.add(x);
  return xs.size <= 16 ? [...xs].sort((a, b) => a - b) : undefined;
}

/** Short label of a tick value: 0.3 not 0.30000000000000004, 1e-5 for tiny values. */
export function formatTick(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(0).replace("e+", "e").replace("-", "−");
  return String(Number(v.toPrecision(4))).replace("-", "−");
}

/** Legend width: swatch plus the longest name. */
function legendWidth(chart: LineChart): number {
  if (chart.series.length === 0) return 0;
  const text = Math.max(...chart.series.map((s) => textWidth(s.name, FONT.legend)));
  return Math.ceil(SWATCH.text + text + 16);
}

/** The axes of one chart, drawn by Observable Plot: an `<svg>` element's markup. */
function axesSvg(
  Plot: PlotModule,
  document: HeadlessDocument,
  chart: LineChart,
  size: { width: number; height: number },
): string {
  const styles = chart.series.map((s, k) => seriesStyle(s, k, chart.markers));
  const order = chart.series.map((_, k) => k);
  // A stable sort: equal layers keep series order.
  order.sort((a, b) => (chart.series[a].zorder ?? 0) - (chart.series[b].zorder ?? 0));
  const marks = order.flatMap((k) => {
    const points = seriesPoints(chart.series[k], chart.logY);
    return [lineMark(Plot, points, styles[k]), ...dotMarks(Plot, points, styles[k])];
  });
  const hasData = chart.series.some((s) => seriesPoints(s, chart.logY).some((p) => !isNaN(p[1])));
  const svg = Plot.plot({
    document: document as never,
    width: size.width,
    height: size.height,
    marginLeft: 82,
    marginRight: 12,
    marginTop: 10,
    marginBottom: 48,
    style: { fontFamily: FONT_STACK, fontSize: `${FONT.tick}px`, background: "white" },
    x: {
      label: chart.xLabel || null,
      labelAnchor: "center",
      labelArrow: "none",
      labelOffset: 40,
      ticks: dataTicks(chart),
      tickFormat: formatTick,
      grid: true,
      ...(hasData ? {} : { domain: [0, 1] }),
    },
    y: {
      type: chart.logY ? "log" : "linear",
      label: chart.yLabel || null,
      labelAnchor: "center",
      labelArrow: "none",
      labelOffset: 68,
      nice: true,
      grid: true,
      tickFormat: formatTick,
      ...(hasData ? {} : { domain: chart.logY ? [1, 10] : [0, 1] }),
    },
    marks: [...marks, Plot.frame({ stroke: "#333", strokeWidth: 1 })],
  }) as unknown as PlotSvg;
  for (const text of svg.querySelectorAll("g[aria-label$='label'] text")) {
    text.setAttribute("font-size", String(FONT.label));
  }
  return svg.outerHTML;
}

/** The legend of one chart: each series' line, marker and name, drawn by Observable Plot. */
function legendSvg(
  Plot: PlotModule,
  document: HeadlessDocument,
  chart: LineChart,
  width: number,
): string {
  const styles = chart.series.map((s, k) => seriesStyle(s, k, chart.markers));
  const marks = chart.series.flatMap((s, k) => {
    const y = 10 + k * LEGEND_ROW;
    return [
      lineMark(Plot, [[2, y], [SWATCH.line, y]], styles[k]),
      ...dotMarks(Plot, [[SWATCH.line / 2 + 1, y]], styles[k]),
      Plot.text([[SWATCH.text, y]], {
        x: "0",
        y: "1",
        text: () => s.name,
        textAnchor: "start",
        fontSize: FONT.legend,
        fill: "#222",
      }),
    ];
  });
  const svg = Plot.plot({
    document: document as never,
    width,
    height: 20 + chart.series.length * LEGEND_ROW,
    margin: 0,
    x: { type: "identity", axis: null },
    y: { type: "identity", axis: null },
    style: { fontFamily: FONT_STACK, fontSize: `${FONT.legend}px`, background: "transparent" },
    marks,
  }) as unknown as PlotSvg;
  return svg.outerHTML;
}

/** The part of the `<svg>` element Observable Plot returns that is used here. */
interface PlotSvg {
  outerHTML: string;
  querySelectorAll(selector: string): Iterable<{ setAttribute(name: string, value: string): void }>;
}

/** Puts an `<svg …>` element's markup at (x, y) inside a parent SVG. */
function placed(markup: string, x: number, y: number): string {
  return markup.replace(/^<svg\b/, `<svg x="${x}" y="${y}"`);
}

/** One chart at (x, y): title, axes and legend. */
function panelMarkup(
  Plot: PlotModule,
  document: HeadlessDocument,
  chart: LineChart,
  x: number,
  y: number,
): string {
  const legend = legendWidth(chart);
  const top = chart.title ? TITLE_HEIGHT : 4;
  const plotWidth = chart.width - legend;
  if (plotWidth < 160 || chart.height - top < 120) {
    throw new RangeError(
      `Plot size ${chart.width}×${chart.height} leaves no room for the axes beside the legend`,
    );
  }
  const parts: string[] = [];
  if (chart.title) {
    parts.push(
      `<text x="${x + 82 + (plotWidth - 94) / 2}" y="${y + 19}" text-anchor="middle" ` +
        `font-size="${FONT.title}" fill="#111">${escapeXml(chart.title)}</text>`,
    );
  }
  const axes = axesSvg(Plot, document, chart, { width: plotWidth, height: chart.height - top });
  parts.push(placed(axes, x, y + top));
  if (legend > 0) {
    parts.push(placed(legendSvg(Plot, document, chart, legend), x + plotWidth, y + top + 4));
  }
  return parts.join("\n");
}

/**
 * Draws a chart or figure as a standalone SVG document (text in DejaVu Sans, falling back to
 * the viewer's sans-serif).
 *
 * @throws {RangeError} When a panel is too small for its axes and legend.
 */
export async function chartSvg(chart: Chart): Promise<string> {
  const Plot = await loadPlot();
  const document = await headlessDocument();
  const { width, height } = chartSize(chart);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="${escapeXml(FONT_STACK)}">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  if (chart.kind === "line") {
    parts.push(panelMarkup(Plot, document, chart, 0, 0));
  } else {
    const cellW = Math.max(...chart.panels.map((p) => p.width));
    const cellH = Math.max(...chart.panels.map((p) => p.height));
    const top = chart.title ? TITLE_HEIGHT + 6 : 0;
    if (chart.title) {
      parts.push(
        `<text x="${width / 2}" y="22" text-anchor="middle" font-size="${FONT.figureTitle}" ` +
          `fill="#111">${escapeXml(chart.title)}</text>`,
      );
    }
    chart.panels.forEach((p, k) => {
      const x = (k % chart.columns) * cellW;
      const y = top + Math.floor(k / chart.columns) * cellH;
      parts.push(panelMarkup(Plot, document, p, x, y));
    });
  }
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

/** Options of {@linkcode chartPng}. */
export interface ChartPngOptions {
  /** Pixels per chart pixel. @default {2} */
  scale?: number;
}

/** Draws a chart or figure as PNG bytes ({@linkcode chartSvg} rasterised by resvg). */
export async function chartPng(chart: Chart, options: ChartPngOptions = {}): Promise<Uint8Array> {
  return await svgToPng(await chartSvg(chart), { scale: options.scale ?? 2 });
}

/**
 * The old name of {@linkcode chartSvg}.
 * @deprecated Use {@linkcode chartSvg}.
 */
export const sceneToSvg: typeof chartSvg = chartSvg;

/**
 * The old name of {@linkcode chartPng}.
 * @deprecated Use {@linkcode chartPng}.
 */
export const plotToPng: typeof chartPng = chartPng;
