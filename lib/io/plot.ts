/**
 * Small, dependency-free line plots for schedules and benchmark curves, as PNG and SVG.
 *
 * A plot is first laid out as a {@linkcode PlotScene}: a list of drawing primitives (polylines,
 * markers, rectangles, text) in pixel coordinates. The same scene is then either rasterized
 * into an RGB {@linkcode Raster} (encoded with `encodePng` from `image.ts`) or written as SVG,
 * so the two outputs always agree. Text in the raster uses a built-in 5×7 pixel font (upper
 * case, digits, a few symbols and λ), which keeps PNG output byte-for-byte deterministic.
 *
 * @example
 * ```ts
 * import { linePlot, plotToPng } from "./plot.ts";
 * const scene = linePlot([{ name: "edm", x: [4, 6, 8], y: [3, 2, 1] }], { title: "FID" });
 * const png = plotToPng(scene);
 * if (png[1] !== 0x50) throw new Error("not a PNG");
 * ```
 *
 * @module
 */
import { encodePng, type Raster } from "./image.ts";

/** An RGB colour, 0–255 per channel. */
export type Rgb = readonly [number, number, number];

/** A polyline (two or more points) of a given stroke width. */
export interface PolylinePrimitive {
  kind: "polyline";
  points: readonly (readonly [number, number])[];
  color: Rgb;
  width: number;
}

/** A filled square marker centred on a point. */
export interface MarkerPrimitive {
  kind: "marker";
  x: number;
  y: number;
  size: number;
  color: Rgb;
}

/** A filled axis-aligned rectangle. */
export interface RectPrimitive {
  kind: "rect";
  x: number;
  y: number;
  width: number;
  height: number;
  color: Rgb;
}

/** One line of text; `y` is the top of the 7-pixel glyph box. */
export interface TextPrimitive {
  kind: "text";
  x: number;
  y: number;
  text: string;
  color: Rgb;
  /** Horizontal alignment relative to `x`. */
  anchor: "start" | "middle" | "end";
}

/** Any drawing primitive of a {@linkcode PlotScene}. */
export type Primitive = PolylinePrimitive | MarkerPrimitive | RectPrimitive | TextPrimitive;

/** A laid-out picture: size, background and primitives in drawing order. */
export interface PlotScene {
  width: number;
  height: number;
  background: Rgb;
  primitives: Primitive[];
}

/** One curve of a {@linkcode linePlot}; non-finite `y` values leave a gap. */
export interface Series {
  /** Legend label. */
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  /** Line colour. @default {a colour of the built-in palette, by series index} */
  color?: Rgb;
}

/** Options of {@linkcode linePlot}. */
export interface LinePlotOptions {
  /** Title above the axes. @default {""} */
  title?: string;
  /** Label under the x axis. @default {""} */
  xLabel?: string;
  /** Label above the y axis. @default {""} */
  yLabel?: string;
  /** Logarithmic y axis (non-positive values are dropped). @default {false} */
  logY?: boolean;
  /** Picture width in pixels. @default {520} */
  width?: number;
  /** Picture height in pixels. @default {340} */
  height?: number;
  /** Draw a marker at every data point. @default {true} */
  markers?: boolean;
  /** Use the data's x values as x ticks (for few, meaningful x values such as NFEs). @default {false} */
  xTicksAtData?: boolean;
}

/** A colour-blind-friendly palette (Okabe–Ito, plus grey and a dark blue). */
export const PALETTE: readonly Rgb[] = [
  [0, 114, 178],
  [213, 94, 0],
  [0, 158, 115],
  [204, 121, 167],
  [230, 159, 0],
  [86, 180, 233],
  [0, 0, 0],
  [120, 120, 120],
  [40, 40, 140],
];

const BLACK: Rgb = [0, 0, 0];
const GRID: Rgb = [225, 225, 225];
const WHITE: Rgb = [255, 255, 255];
/** Advance of one character of the built-in font, in pixels. */
const CHAR_W = 6;
/** Height of one glyph, in pixels. */
const CHAR_H = 7;

/** Pixel width of `text` in the built-in font. */
export function textWidth(text: string): number {
  return Math.max(0, [...text].length * CHAR_W - 1);
}

/**
 * About `count` "nice" tick values (1, 2 or 5 times a power of ten) covering `[lo, hi]`.
 *
 * @example
 * ```ts
 * import { niceTicks } from "./plot.ts";
 * console.log(niceTicks(0, 1, 5)); // [0, 0.2, 0.4, 0.6, 0.8, 1]
 * ```
 */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) {
    throw new RangeError(`Tick range must be finite: got [${lo}, ${hi}]`);
  }
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  const first = Math.ceil(lo / step - 1e-9);
  for (let k = first; k * step <= hi + step * 1e-9; k++) {
    // Round away binary noise such as 0.30000000000000004.
    out.push(Number((k * step).toPrecision(12)));
  }
  return out;
}

/** Ticks of a log10 axis spanning `[lo, hi]` (in log10 units): decades, plus 2× and 5× when few. */
function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  const dense = hi - lo <= 2.5;
  for (let k = Math.floor(lo); k <= Math.ceil(hi); k++) {
    for (const m of dense ? [1, 2, 5] : [1]) {
      const v = k + Math.log10(m);
      if (v >= lo - 1e-9 && v <= hi + 1e-9) out.push(v);
    }
  }
  return out;
}

/** Short label of a tick value. */
export function formatTick(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(0).replace("e+", "e");
  return String(Number(v.toPrecision(4)));
}

/** Finite range of numbers, padded when degenerate. */
function extent(values: number[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (Number.isFinite(v)) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  if (!Number.isFinite(lo)) return [0, 1];
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    return [lo - pad, hi + pad];
  }
  return [lo, hi];
}

/** Where a line chart's data land: the axes box in pixels and the data ranges it spans. */
interface PlotFrame {
  left: number;
  right: number;
  top: number;
  bottom: number;
  /** Data x range. */
  x0: number;
  x1: number;
  /** Data y range, in log10 units on a log axis. */
  y0: number;
  y1: number;
  logY: boolean;
  /** Every x value of every series (ticks at data use them). */
  xs: number[];
  /** A y value in axis units: log10 on a log axis (NaN for non-positive values). */
  fy: (v: number) => number;
  /** Pixel column of a data x. */
  px: (v: number) => number;
  /** Pixel row of an axis-unit y. */
  py: (v: number) => number;
}

/**
 * Lays out a line chart of several series with axes, ticks, grid lines and a legend.
 *
 * @throws {RangeError} When a series has mismatched `x`/`y` lengths or the size is too small.
 */
export function linePlot(series: readonly Series[], options: LinePlotOptions = {}): PlotScene {
  const width = options.width ?? 520;
  const height = options.height ?? 340;
  if (!(Number.isInteger(width) && width >= 120 && Number.isInteger(height) && height >= 100)) {
    throw new RangeError(`Plot size must be at least 120×100 pixels: got ${width}×${height}`);
  }
  for (const s of series) {
    if (s.x.length !== s.y.length) {
      throw new RangeError(
        `Series "${s.name}" needs as many x as y values: got ${s.x.length} and ${s.y.length}`,
      );
    }
  }
  const frame = plotFrame(series, options, width, height);
  const prims: Primitive[] = [];
  drawTicks(prims, frame, options);
  series.forEach((s, k) => drawSeries(prims, frame, s, k, options.markers ?? true));
  drawLabels(prims, frame, options, height);
  return { width, height, background: WHITE, primitives: prims };
}

/** The data ranges (padded, or whole half-decades on a log axis) and the axes box. */
function plotFrame(
  series: readonly Series[],
  options: LinePlotOptions,
  width: number,
  height: number,
): PlotFrame {
  const logY = options.logY ?? false;
  const fy = (v: number) => logY ? (v > 0 ? Math.log10(v) : NaN) : v;
  const xs = series.flatMap((s) => Array.from(s.x));
  const ys = series.flatMap((s) => Array.from(s.y, fy));
  const [x0, x1] = extent(xs);
  let [y0, y1] = extent(ys);
  if (!logY) {
    const pad = 0.05 * (y1 - y0);
    [y0, y1] = [y0 - pad, y1 + pad];
  } else {
    [y0, y1] = [Math.floor(y0 * 2) / 2, Math.ceil(y1 * 2) / 2];
    if (y0 === y1) y1 = y0 + 0.5;
  }
  // The legend takes a column right of the axes, as wide as the longest name.
  const legendWidth = series.length > 0
    ? Math.max(...series.map((s) => textWidth(s.name))) + 26
    : 0;
  const left = 52;
  const right = width - 12 - legendWidth;
  const top = options.title ? 30 : 14;
  const bottom = height - (options.xLabel ? 34 : 22);
  if (right - left < 40 || bottom - top < 40) {
    throw new RangeError(`Plot size ${width}×${height} leaves no room for the axes`);
  }
  return {
    left,
    right,
    top,
    bottom,
    x0,
    x1,
    y0,
    y1,
    logY,
    xs,
    fy,
    px: (v) => left + ((v - x0) / (x1 - x0)) * (right - left),
    py: (v) => bottom - ((v - y0) / (y1 - y0)) * (bottom - top),
  };
}

/** Grid lines and tick labels of both axes, then the axis lines. */
function drawTicks(prims: Primitive[], f: PlotFrame, options: LinePlotOptions): void {
  const { left, right, top, bottom } = f;
  const xTicks = options.xTicksAtData
    ? [...new Set(f.xs.filter(Number.isFinite))].sort((a, b) => a - b)
    : niceTicks(f.x0, f.x1, 6);
  for (const t of xTicks) {
    const X = Math.round(f.px(t));
    prims.push({ kind: "polyline", points: [[X, top], [X, bottom]], color: GRID, width: 1 });
    prims.push({
      kind: "text",
      x: X,
      y: bottom + 5,
      text: formatTick(t),
      color: BLACK,
      anchor: "middle",
    });
  }
  const yTicks = f.logY ? logTicks(f.y0, f.y1) : niceTicks(f.y0, f.y1, 5);
  for (const t of yTicks) {
    const Y = Math.round(f.py(t));
    prims.push({ kind: "polyline", points: [[left, Y], [right, Y]], color: GRID, width: 1 });
    prims.push({
      kind: "text",
      x: left - 4,
      y: Y - 3,
      text: f.logY ? formatTick(10 ** t) : formatTick(t),
      color: BLACK,
      anchor: "end",
    });
  }
  prims.push({
    kind: "polyline",
    points: [[left, top], [left, bottom], [right, bottom]],
    color: BLACK,
    width: 1,
  });
}

/** Series `k`: its curve, split at non-finite values, its markers and its legend entry. */
function drawSeries(
  prims: Primitive[],
  f: PlotFrame,
  s: Series,
  k: number,
  markers: boolean,
): void {
  const color = s.color ?? PALETTE[k % PALETTE.length];
  let run: [number, number][] = [];
  const flush = () => {
    if (run.length >= 2) prims.push({ kind: "polyline", points: run, color, width: 2 });
    run = [];
  };
  for (let i = 0; i < s.x.length; i++) {
    const yv = f.fy(s.y[i]);
    if (!Number.isFinite(yv) || !Number.isFinite(s.x[i])) {
      flush();
      continue;
    }
    const p: [number, number] = [f.px(s.x[i]), f.py(yv)];
    run.push(p);
    if (markers) prims.push({ kind: "marker", x: p[0], y: p[1], size: 5, color });
  }
  flush();
  const ly = f.top + 4 + k * 12;
  const lx = f.right + 10;
  prims.push({ kind: "polyline", points: [[lx, ly + 3], [lx + 12, ly + 3]], color, width: 2 });
  prims.push({ kind: "text", x: lx + 16, y: ly, text: s.name, color: BLACK, anchor: "start" });
}

/** The title above the axes, the x label under them and the y label above the y axis. */
function drawLabels(
  prims: Primitive[],
  f: PlotFrame,
  options: LinePlotOptions,
  height: number,
): void {
  const centre = (f.left + f.right) / 2;
  const label = (text: string, x: number, y: number, anchor: TextPrimitive["anchor"]) =>
    prims.push({ kind: "text", x, y, text, color: BLACK, anchor });
  if (options.title) label(options.title, centre, 10, "middle");
  if (options.xLabel) label(options.xLabel, centre, height - 12, "middle");
  if (options.yLabel) label(options.yLabel, 4, f.top - 12, "start");
}

/** A named grid for {@linkcode lambdaPlot}: λ at each grid point, T first. */
export interface LambdaGrid {
  name: string;
  lambdas: ArrayLike<number>;
}

/**
 * λ of each grid point against the step index, one line per schedule: the picture that shows
 * where each schedule spends its steps (flat stretches = steps crowded in λ).
 */
export function lambdaPlot(grids: readonly LambdaGrid[], options: LinePlotOptions = {}): PlotScene {
  return linePlot(
    grids.map((g) => ({
      name: g.name,
      x: Array.from({ length: g.lambdas.length }, (_, i) => i),
      y: g.lambdas,
    })),
    { xLabel: "step index i", yLabel: "λ(t_i)", xTicksAtData: true, ...options },
  );
}

/** Places scenes side by side in rows of `columns`. */
export function combineScenes(scenes: readonly PlotScene[], columns = scenes.length): PlotScene {
  if (scenes.length === 0) throw new RangeError("combineScenes needs at least one scene: got 0");
  if (!(Number.isInteger(columns) && columns >= 1)) {
    throw new RangeError(`Columns must be a positive integer: got ${columns}`);
  }
  const cellW = Math.max(...scenes.map((s) => s.width));
  const cellH = Math.max(...scenes.map((s) => s.height));
  const rows = Math.ceil(scenes.length / columns);
  const prims: Primitive[] = [];
  scenes.forEach((s, k) => {
    const dx = (k % columns) * cellW;
    const dy = Math.floor(k / columns) * cellH;
    for (const p of s.primitives) prims.push(translate(p, dx, dy));
  });
  return {
    width: cellW * Math.min(columns, scenes.length),
    height: cellH * rows,
    background: scenes[0].background,
    primitives: prims,
  };
}

function translate(p: Primitive, dx: number, dy: number): Primitive {
  switch (p.kind) {
    case "polyline":
      return { ...p, points: p.points.map(([x, y]) => [x + dx, y + dy] as const) };
    default:
      return { ...p, x: p.x + dx, y: p.y + dy };
  }
}

//----------------------------------------------------------------------------
// SVG

function hex(c: Rgb): string {
  return "#" + c.map((v) => v.toString(16).padStart(2, "0")).join("");
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}

const f2 = (v: number) => String(Math.round(v * 100) / 100);

/** The scene as a standalone SVG document. */
export function sceneToSvg(scene: PlotScene): string {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${scene.width}" height="${scene.height}" ` +
    `viewBox="0 0 ${scene.width} ${scene.height}" font-family="monospace" font-size="9">`,
    `<rect width="100%" height="100%" fill="${hex(scene.background)}"/>`,
  ];
  for (const p of scene.primitives) {
    switch (p.kind) {
      case "polyline":
        out.push(
          `<polyline fill="none" stroke="${hex(p.color)}" stroke-width="${p.width}" points="${
            p.points.map(([x, y]) => `${f2(x)},${f2(y)}`).join(" ")
          }"/>`,
        );
        break;
      case "marker":
        out.push(
          `<rect x="${f2(p.x - p.size / 2)}" y="${f2(p.y - p.size / 2)}" width="${p.size}" ` +
            `height="${p.size}" fill="${hex(p.color)}"/>`,
        );
        break;
      case "rect":
        out.push(
          `<rect x="${f2(p.x)}" y="${f2(p.y)}" width="${f2(p.width)}" height="${f2(p.height)}" ` +
            `fill="${hex(p.color)}"/>`,
        );
        break;
      case "text": {
        const anchor = p.anchor === "start" ? "start" : p.anchor === "middle" ? "middle" : "end";
        out.push(
          `<text x="${f2(p.x)}" y="${f2(p.y + CHAR_H)}" text-anchor="${anchor}" fill="${
            hex(p.color)
          }">${escapeXml(p.text)}</text>`,
        );
        break;
      }
    }
  }
  out.push("</svg>");
  return out.join("\n") + "\n";
}

//----------------------------------------------------------------------------
// Raster

/**
 * 5×7 glyphs, one string of 7 rows of 5 bits (`#` on) per character. Lower-case letters are
 * drawn with the upper-case glyphs; anything unknown becomes a hollow box.
 */
const GLYPH_ROWS: Record<string, string> = {
  "A": ".###.|#...#|#...#|#####|#...#|#...#|#...#",
  "B": "####.|#...#|#...#|####.|#...#|#...#|####.",
  "C": ".###.|#...#|#....|#....|#....|#...#|.###.",
  "D": "####.|#...#|#...#|#...#|#...#|#...#|####.",
  "E": "#####|#....|#....|####.|#....|#....|#####",
  "F": "#####|#....|#....|####.|#....|#....|#....",
  "G": ".###.|#...#|#....|#.###|#...#|#...#|.####",
  "H": "#...#|#...#|#...#|#####|#...#|#...#|#...#",
  "I": ".###.|..#..|..#..|..#..|..#..|..#..|.###.",
  "J": "..###|...#.|...#.|...#.|...#.|#..#.|.##..",
  "K": "#...#|#..#.|#.#..|##...|#.#..|#..#.|#...#",
  "L": "#....|#....|#....|#....|#....|#....|#####",
  "M": "#...#|##.##|#.#.#|#.#.#|#...#|#...#|#...#",
  "N": "#...#|##..#|#.#.#|#..##|#...#|#...#|#...#",
  "O": ".###.|#...#|#...#|#...#|#...#|#...#|.###.",
  "P": "####.|#...#|#...#|####.|#....|#....|#....",
  "Q": ".###.|#...#|#...#|#...#|#.#.#|#..#.|.##.#",
  "R": "####.|#...#|#...#|####.|#.#..|#..#.|#...#",
  "S": ".####|#....|#....|.###.|....#|....#|####.",
  "T": "#####|..#..|..#..|..#..|..#..|..#..|..#..",
  "U": "#...#|#...#|#...#|#...#|#...#|#...#|.###.",
  "V": "#...#|#...#|#...#|#...#|#...#|.#.#.|..#..",
  "W": "#...#|#...#|#...#|#.#.#|#.#.#|#.#.#|.#.#.",
  "X": "#...#|#...#|.#.#.|..#..|.#.#.|#...#|#...#",
  "Y": "#...#|#...#|.#.#.|..#..|..#..|..#..|..#..",
  "Z": "#####|....#|...#.|..#..|.#...|#....|#####",
  "0": ".###.|#...#|#..##|#.#.#|##..#|#...#|.###.",
  "1": "..#..|.##..|..#..|..#..|..#..|..#..|.###.",
  "2": ".###.|#...#|....#|...#.|..#..|.#...|#####",
  "3": "#####|...#.|..#..|...#.|....#|#...#|.###.",
  "4": "...#.|..##.|.#.#.|#..#.|#####|...#.|...#.",
  "5": "#####|#....|####.|....#|....#|#...#|.###.",
  "6": "..##.|.#...|#....|####.|#...#|#...#|.###.",
  "7": "#####|....#|...#.|..#..|.#...|.#...|.#...",
  "8": ".###.|#...#|#...#|.###.|#...#|#...#|.###.",
  "9": ".###.|#...#|#...#|.####|....#|...#.|.##..",
  " ": ".....|.....|.....|.....|.....|.....|.....",
  ".": ".....|.....|.....|.....|.....|.##..|.##..",
  ",": ".....|.....|.....|.....|.##..|..#..|.#...",
  ":": ".....|.##..|.##..|.....|.##..|.##..|.....",
  "-": ".....|.....|.....|#####|.....|.....|.....",
  "+": ".....|..#..|..#..|#####|..#..|..#..|.....",
  "_": ".....|.....|.....|.....|.....|.....|#####",
  "=": ".....|.....|#####|.....|#####|.....|.....",
  "/": ".....|....#|...#.|..#..|.#...|#....|.....",
  "(": "...#.|..#..|.#...|.#...|.#...|..#..|...#.",
  ")": ".#...|..#..|...#.|...#.|...#.|..#..|.#...",
  "[": ".###.|.#...|.#...|.#...|.#...|.#...|.###.",
  "]": ".###.|...#.|...#.|...#.|...#.|...#.|.###.",
  "%": "##...|##..#|...#.|..#..|.#...|#..##|...##",
  "*": ".....|..#..|#.#.#|.###.|#.#.#|..#..|.....",
  "'": ".##..|..#..|.#...|.....|.....|.....|.....",
  "<": "...#.|..#..|.#...|#....|.#...|..#..|...#.",
  ">": ".#...|..#..|...#.|....#|...#.|..#..|.#...",
  "#": ".#.#.|.#.#.|#####|.#.#.|#####|.#.#.|.#.#.",
  "±": "..#..|..#..|#####|..#..|..#..|.....|#####",
  "·": ".....|.....|.....|..#..|.....|.....|.....",
  "×": ".....|#...#|.#.#.|..#..|.#.#.|#...#|.....",
  "−": ".....|.....|.....|#####|.....|.....|.....",
  "λ": "#....|.#...|.#...|..#..|.#.#.|#...#|#...#",
  "σ": ".....|.####|#..#.|#...#|#...#|.###.|.....",
  "?": ".###.|#...#|....#|...#.|..#..|.....|..#..",
};

const BOX = "#####|#...#|#...#|#...#|#...#|#...#|#####";

function glyph(ch: string): string[] {
  const upper = ch.length === 1 && ch >= "a" && ch <= "z" ? ch.toUpperCase() : ch;
  return (GLYPH_ROWS[upper] ?? BOX).split("|");
}

/** A writable RGB canvas. */
class Canvas {
  readonly pixels: Uint8Array;
  constructor(readonly width: number, readonly height: number, background: Rgb) {
    this.pixels = new Uint8Array(width * height * 3);
    for (let i = 0; i < width * height; i++) this.pixels.set(background, i * 3);
  }
  set(x: number, y: number, c: Rgb): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    this.pixels.set(c, (y * this.width + x) * 3);
  }
  fillRect(x: number, y: number, w: number, h: number, c: Rgb): void {
    const x0 = Math.round(x);
    const y0 = Math.round(y);
    for (let j = 0; j < Math.round(h); j++) {
      for (let i = 0; i < Math.round(w); i++) this.set(x0 + i, y0 + j, c);
    }
  }
  /** A line segment stamped with a square pen of side `width` (DDA in the longer axis). */
  line(ax: number, ay: number, bx: number, by: number, width: number, c: Rgb): void {
    const steps = Math.max(1, Math.ceil(Math.max(Math.abs(bx - ax), Math.abs(by - ay))));
    const lo = -Math.floor((width - 1) / 2);
    for (let s = 0; s <= steps; s++) {
      const x = Math.round(ax + ((bx - ax) * s) / steps);
      const y = Math.round(ay + ((by - ay) * s) / steps);
      for (let j = 0; j < width; j++) {
        for (let i = 0; i < width; i++) this.set(x + lo + i, y + lo + j, c);
      }
    }
  }
  text(x: number, y: number, text: string, anchor: TextPrimitive["anchor"], c: Rgb): void {
    const w = textWidth(text);
    let cx = Math.round(anchor === "start" ? x : anchor === "middle" ? x - w / 2 : x - w);
    const cy = Math.round(y);
    for (const ch of text) {
      const rows = glyph(ch);
      for (let r = 0; r < CHAR_H; r++) {
        for (let q = 0; q < 5; q++) if (rows[r][q] === "#") this.set(cx + q, cy + r, c);
      }
      cx += CHAR_W;
    }
  }
}

/** Draws the scene into an 8-bit RGB raster (`channels: 3`). */
export function rasterizeScene(scene: PlotScene): Raster {
  const canvas = new Canvas(scene.width, scene.height, scene.background);
  for (const p of scene.primitives) {
    switch (p.kind) {
      case "polyline":
        for (let i = 1; i < p.points.length; i++) {
          const [ax, ay] = p.points[i - 1];
          const [bx, by] = p.points[i];
          canvas.line(ax, ay, bx, by, p.width, p.color);
        }
        break;
      case "marker":
        canvas.fillRect(p.x - p.size / 2, p.y - p.size / 2, p.size, p.size, p.color);
        break;
      case "rect":
        canvas.fillRect(p.x, p.y, p.width, p.height, p.color);
        break;
      case "text":
        canvas.text(p.x, p.y, p.text, p.anchor, p.color);
        break;
    }
  }
  return { width: scene.width, height: scene.height, channels: 3, pixels: canvas.pixels };
}

/** The scene as PNG bytes. */
export function plotToPng(scene: PlotScene): Uint8Array {
  return encodePng(rasterizeScene(scene));
}
