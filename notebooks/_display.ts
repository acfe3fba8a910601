/**
 * Display helpers for the ld3 notebooks (Deno Jupyter kernel).
 *
 * Every helper returns a {@linkcode Displayable}: an object whose `Symbol.for("Jupyter.display")`
 * method gives a Jupyter media bundle. The Deno kernel renders such an object when it is the
 * last expression of a cell, and {@linkcode show} sends any number of them from inside a
 * cell (a loop, for instance). The bundles are plain data, so the helpers also work — and are
 * tested — outside Jupyter, where {@linkcode show} prints the `text/plain` fallback instead.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { imagescript } from "../lib/deps.ts";
import { encodePng, type GridOptions, gridRaster, upscaleRaster } from "../lib/io/image.ts";
import { defaultImageScale } from "../lib/io/labelled_grid.ts";
import {
  type Chart,
  chartSvg,
  linePlot,
  type LinePlotOptions,
  type Series as LibrarySeries,
} from "../lib/io/plot.ts";

// Kept importable from here: the notebooks and their tests use it beside the other helpers.
export { upscaleRaster };

/** The symbol the Deno kernel looks up on a cell's result (`Deno.jupyter.$display`). */
export const DISPLAY: unique symbol = Symbol.for("Jupyter.display") as never;

/** A Jupyter media bundle: MIME type → data (images base64-encoded). */
export type MediaBundle = Record<string, string>;

/** Something the Deno Jupyter kernel can render. */
export interface Displayable {
  /** The media bundle to render. */
  [DISPLAY](): MediaBundle;
}

function displayable(bundle: MediaBundle): Displayable {
  return { [DISPLAY]: () => bundle };
}

/** Escapes text for HTML/XML content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Options of {@linkcode png}. */
export interface PngOptions {
  /** Alternative text, shown by frontends that cannot draw images. @default {"PNG image"} */
  alt?: string;
}

/** A PNG file's bytes as an inline image (`image/png`, base64). */
export function png(bytes: Uint8Array, options: PngOptions = {}): Displayable {
  return displayable({
    "image/png": Buffer.from(bytes).toString("base64"),
    "text/plain": `<${options.alt ?? "PNG image"}: ${bytes.length} bytes>`,
  });
}

/** An animated GIF's bytes as an inline image (`image/gif`, base64), e.g. from `imagesGif`. */
export function gif(bytes: Uint8Array, options: PngOptions = {}): Displayable {
  return displayable({
    "image/gif": Buffer.from(bytes).toString("base64"),
    "text/plain": `<${options.alt ?? "GIF animation"}: ${bytes.length} bytes>`,
  });
}

/** Options of {@linkcode imageGrid}. */
export interface ImageGridOptions extends GridOptions, PngOptions {
  /** Integer enlargement of the grid. @default {each image at least 84 px: 3 for MNIST} */
  scale?: number;
}

/**
 * A batch of float images `[B, C, H, W]` (values in [-1, 1] unless `dataRange` says otherwise)
 * as one inline PNG grid.
 */
export function imageGrid(
  images: ArrayLike<number>,
  shape: readonly number[],
  options: ImageGridOptions = {},
): Displayable {
  const scale = options.scale ?? defaultImageScale(shape[2], shape[3]);
  const raster = upscaleRaster(gridRaster(images, shape, options), scale);
  return png(encodePng(raster), { alt: options.alt ?? `${shape[0]} images` });
}

/** An SVG document as an inline image (`image/svg+xml`). */
export function svg(markup: string, alt = "SVG image"): Displayable {
  return displayable({ "image/svg+xml": markup, "text/plain": `<${alt}>` });
}

/** Markdown text (`text/markdown`, with itself as the plain-text fallback). */
export function markdown(text: string): Displayable {
  return displayable({ "text/markdown": text, "text/plain": text });
}

/** A table cell: numbers are formatted with {@linkcode formatNumber}. */
export type Cell = string | number;

/** Formats a number for a table: integers as is, others with 4 significant digits. */
export function formatNumber(value: number): string {
  if (Number.isInteger(value)) return String(value);
  if (!Number.isFinite(value)) return String(value);
  return Number(value.toPrecision(4)).toString();
}

function cellText(cell: Cell): string {
  return typeof cell === "number" ? formatNumber(cell) : cell;
}

function checkRows(headers: readonly string[], rows: readonly (readonly Cell[])[]): void {
  rows.forEach((row, i) => {
    if (row.length !== headers.length) {
      throw new RangeError(
        `Table row ${i} has ${row.length} cells, the header has ${headers.length}`,
      );
    }
  });
}

/** A GitHub-flavoured Markdown table (pipes in cells are escaped). */
export function markdownTable(
  headers: readonly string[],
  rows: readonly (readonly Cell[])[],
): string {
  checkRows(headers, rows);
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c) => c.replaceAll("|", "\\|")).join(" | ")} |`;
  return [
    line(headers),
    line(headers.map(() => "---")),
    ...rows.map((row) => line(row.map(cellText))),
  ].join("\n");
}

/** An HTML `<table>` (all text escaped). */
export function htmlTable(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  checkRows(headers, rows);
  const tr = (tag: string, cells: readonly string[]) =>
    `<tr>${cells.map((c) => `<${tag}>${escapeXml(c)}</${tag}>`).join("")}</tr>`;
  return `<table><thead>${tr("th", headers)}</thead><tbody>${
    rows.map((row) => tr("td", row.map(cellText))).join("")
  }</tbody></table>`;
}

/** A table, as HTML for notebook frontends and Markdown for plain text. */
export function table(headers: readonly string[], rows: readonly (readonly Cell[])[]): Displayable {
  return displayable({
    "text/html": htmlTable(headers, rows),
    "text/markdown": markdownTable(headers, rows),
    "text/plain": markdownTable(headers, rows),
  });
}

/** One line of a {@linkcode lineChartSvg}: the library's series, with x optional. */
export interface Series extends Omit<LibrarySeries, "x"> {
  /** x values (same length as `y`). @default {0, 1, …, y.length − 1} */
  x?: ArrayLike<number>;
}

/** Options of {@linkcode lineChartSvg}: those of the library's `linePlot`. */
export type LineChartOptions = LinePlotOptions;

/**
 * A line chart as a standalone SVG document, drawn by the library's plotting module (the one
 * behind every picture of ld3: title, labelled axes, ticks, legend, distinct markers).
 *
 * @throws {RangeError} When there is no series, a series has mismatched x/y, a value is not
 * finite, or `logY` meets a non-positive y.
 */
export async function lineChartSvg(
  series: readonly Series[],
  options: LineChartOptions = {},
): Promise<string> {
  if (series.length === 0) throw new RangeError("Line chart needs at least one series");
  const full = series.map((s) => {
    if (s.x && s.x.length !== s.y.length) {
      throw new RangeError(`Series "${s.name}" has ${s.x.length} x values and ${s.y.length} y`);
    }
    const x = s.x ?? Array.from(s.y, (_, i) => i);
    Array.from(s.y).forEach((y, i) => {
      if (!Number.isFinite(x[i]) || !Number.isFinite(y) || (options.logY && y <= 0)) {
        throw new RangeError(`Series "${s.name}" point ${i} is not plottable: (${x[i]}, ${y})`);
      }
    });
    return { ...s, x };
  });
  return await chartSvg(linePlot(full, options));
}

/** A line chart (see {@linkcode lineChartSvg}) as an inline SVG image. */
export async function lineChart(
  series: readonly Series[],
  options: LineChartOptions = {},
): Promise<Displayable> {
  return svg(await lineChartSvg(series, options), options.title || "line chart");
}

/**
 * Any chart of the library (`linePlot`, `lambdaPlot`, `schedulePlot`, `combineCharts`, …) as an
 * inline SVG image.
 */
export async function chart(c: Chart, alt = "chart"): Promise<Displayable> {
  return svg(await chartSvg(c), alt);
}

/** True inside the Deno Jupyter kernel (where `Deno.jupyter.display` works). */
export function inJupyter(): boolean {
  try {
    // Outside `deno jupyter` the namespace getter throws.
    return typeof Deno.jupyter.display === "function";
  } catch {
    return false;
  }
}

/**
 * How long {@linkcode show} waits after its last display message, in milliseconds.
 *
 * The Deno kernel (2.x) writes display messages from another task than the one that reports
 * the cell finished, so a message can reach Jupyter after the cell's "idle" status; headless
 * runners (`jupyter nbconvert --execute`) then drop it. About one output in ten was lost
 * that way without a pause; with 50 ms none was lost in hundreds, on a loaded 2-core machine.
 */
export const DISPLAY_FLUSH_MS = 50;

/**
 * Displays each item in the notebook, in order, as its own output. Outside Jupyter it
 * prints each item's `text/plain` form, so a notebook's code also runs as a script.
 *
 * Prefer `await show(x)` to leaving `x` as a cell's last expression in notebooks that CI
 * executes: the kernel publishes a last expression's value after the cell ends, where the
 * pause of {@linkcode DISPLAY_FLUSH_MS} cannot protect it.
 */
export async function show(...items: Displayable[]): Promise<void> {
  const jupyter = inJupyter();
  for (const item of items) {
    const bundle = item[DISPLAY]();
    if (jupyter) await Deno.jupyter.display(bundle, { raw: true });
    else console.log(bundle["text/plain"] ?? Object.keys(bundle).join(", "));
  }
  if (jupyter && items.length > 0) {
    await new Promise((resolve) => setTimeout(resolve, DISPLAY_FLUSH_MS));
  }
}

/** Waits {@linkcode DISPLAY_FLUSH_MS} so that display messages sent just before reach Jupyter. */
export async function flushDisplays(): Promise<void> {
  if (inJupyter()) await new Promise((resolve) => setTimeout(resolve, DISPLAY_FLUSH_MS));
}

/** An output that is drawn once and then replaced in place, see {@linkcode liveDisplay}. */
export interface LiveDisplay {
  /** The Jupyter `display_id` of the output. */
  readonly id: string;
  /** Shows `item` the first time, then replaces the output with it. */
  update(item: Displayable): Promise<void>;
}

/**
 * An output slot for progress that changes while a cell runs (a loss curve during training).
 *
 * In Jupyter the first {@linkcode LiveDisplay.update} sends `display_data` with a `display_id`
 * and each later one `update_display_data` with the same id (`Deno.jupyter.display`'s
 * `display_id` and `update` options), so the frontend redraws the output in place and a
 * headless run keeps the last state. Outside Jupyter each update prints its `text/plain` form.
 * Updates do not pause; call {@linkcode flushDisplays} after the last one of a cell.
 *
 * @param name Prefix of the display id, which gets a random suffix so that re-running a cell
 * starts a new output instead of redrawing the old one. @default {"ld3-live"}
 */
export function liveDisplay(name = "ld3-live"): LiveDisplay {
  const id = `${name}-${crypto.randomUUID()}`;
  let shown = false;
  return {
    id,
    async update(item: Displayable): Promise<void> {
      const bundle = item[DISPLAY]();
      if (!inJupyter()) {
        console.log(bundle["text/plain"] ?? Object.keys(bundle).join(", "));
        return;
      }
      await Deno.jupyter.display(bundle, { raw: true, display_id: id, update: shown });
      shown = true;
    },
  };
}

/**
 * Enlarges a PNG file by an integer factor with nearest-neighbour sampling (for a small picture
 * made elsewhere; the library's own picture grids are already enlarged).
 *
 * @throws {RangeError} When `factor` is not a positive integer.
 */
export async function upscalePng(bytes: Uint8Array, factor: number): Promise<Uint8Array> {
  if (!Number.isInteger(factor) || factor < 1) {
    throw new RangeError(`Upscale factor must be a positive integer: got ${factor}`);
  }
  if (factor === 1) return bytes;
  const image = await imagescript.Image.decode(bytes);
  image.resize(
    image.width * factor,
    image.height * factor,
    imagescript.Image.RESIZE_NEAREST_NEIGHBOR,
  );
  return await image.encode();
}
