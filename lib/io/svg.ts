/**
 * SVG documents to pixels, with real type: the lazily loaded half of the plotting stack.
 *
 * Charts (`plot.ts`) and labelled picture grids (`labelled_grid.ts`) are SVG documents. This
 * module turns them into PNG files or RGBA pixels with resvg, which draws all text in DejaVu
 * Sans from the `dejavu-fonts-ttf` package (the fonts of the machine are never read, so a PNG
 * looks the same everywhere). It also holds the loaders of Observable Plot and linkedom: the
 * packages are fetched and loaded on the first picture, never by code that draws none.
 *
 * @example
 * ```ts
 * import { svgToPng } from "./svg.ts";
 * const png = await svgToPng(
 *   `<svg xmlns="http://www.w3.org/2000/svg" width="60" height="20">` +
 *     `<text x="2" y="15" font-size="12">λ = 1.5</text></svg>`,
 * );
 * if (png[1] !== 0x50) throw new Error("not a PNG");
 * ```
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import {
  FONT_PACKAGE,
  LINKEDOM_PACKAGE,
  type LinkedomModule,
  PLOT_PACKAGE,
  type PlotModule,
  RESVG_PACKAGE,
  type ResvgModule,
} from "../deps.ts";

/** The font family every picture names first (and the one resvg draws all text in). */
export const FONT_FAMILY = "DejaVu Sans";
/** The `font-family` value of every picture: DejaVu Sans, then the viewer's sans-serif. */
export const FONT_STACK = `'${FONT_FAMILY}', 'Bitstream Vera Sans', Verdana, sans-serif`;

let plotModule: Promise<PlotModule> | undefined;
let linkedomModule: Promise<LinkedomModule> | undefined;
let resvgModule: Promise<ResvgModule> | undefined;
let fontFile: Promise<string> | undefined;

/** Observable Plot, imported on first use. */
export function loadPlot(): Promise<PlotModule> {
  return plotModule ??= import(PLOT_PACKAGE) as Promise<PlotModule>;
}

/** A DOM document without a browser (linkedom's), for Observable Plot's `document` option. */
export type HeadlessDocument = { readonly [key: string]: unknown };

/** A fresh headless `document` (linkedom) for Observable Plot to draw into. */
export async function headlessDocument(): Promise<HeadlessDocument> {
  linkedomModule ??= import(LINKEDOM_PACKAGE) as Promise<LinkedomModule>;
  const { parseHTML } = await linkedomModule;
  const window = parseHTML("<!doctype html><html><head></head><body></body></html>");
  return (window as unknown as { document: HeadlessDocument }).document;
}

/**
 * The path of a file inside a pinned npm package (`npm:name@x.y.z`), fetching the package into
 * `node_modules` or Deno's npm cache first when it is not there yet.
 */
async function packageFile(specifier: string, path: string): Promise<string> {
  // Importing package.json makes Deno fetch and register the package; afterwards its files
  // resolve to local paths.
  await import(`${specifier}/package.json`, { with: { type: "json" } });
  const url = import.meta.resolve(`${specifier}/${path}`);
  if (!url.startsWith("file:")) {
    throw new Error(`Cannot find ${path} of ${specifier}: it resolves to ${url}`);
  }
  return fileURLToPath(url);
}

/** The DejaVu Sans TrueType file of {@linkcode FONT_PACKAGE}. */
export function fontPath(): Promise<string> {
  fontFile ??= packageFile(FONT_PACKAGE, "ttf/DejaVuSans.ttf").catch((e) => {
    fontFile = undefined;
    throw e;
  });
  return fontFile;
}

/** Options of {@linkcode svgToPng} and {@linkcode svgToRgba}. */
export interface RasterizeOptions {
  /** Pixels per SVG unit (2 for sharp charts on high-density screens). @default {1} */
  scale?: number;
  /** Fill behind the picture (a CSS colour). @default {"white"} */
  background?: string;
}

/** An RGBA picture, 4 bytes per pixel, row-major, not premultiplied. */
export interface RgbaImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `width × height × 4` bytes. */
  rgba: Uint8Array;
}

async function render(svg: string, options: RasterizeOptions) {
  const scale = options.scale ?? 1;
  if (!(Number.isFinite(scale) && scale > 0 && scale <= 16)) {
    throw new RangeError(`scale must be a number in (0, 16]: got ${scale}`);
  }
  resvgModule ??= import(RESVG_PACKAGE) as Promise<ResvgModule>;
  const [{ Resvg }, font] = await Promise.all([resvgModule, fontPath()]);
  const resvg = new Resvg(svg, {
    font: {
      loadSystemFonts: false,
      fontFiles: [font],
      defaultFontFamily: FONT_FAMILY,
      sansSerifFamily: FONT_FAMILY,
      serifFamily: FONT_FAMILY,
      monospaceFamily: FONT_FAMILY,
    },
    fitTo: scale === 1 ? { mode: "original" } : { mode: "zoom", value: scale },
    background: options.background ?? "white",
    logLevel: "off",
  });
  return resvg.render();
}

/**
 * Rasterises an SVG document to PNG bytes (text in DejaVu Sans).
 *
 * @throws {RangeError} When `scale` is not in (0, 16].
 * @throws {Error} When the SVG does not parse.
 */
export async function svgToPng(svg: string, options: RasterizeOptions = {}): Promise<Uint8Array> {
  return new Uint8Array((await render(svg, options)).asPng());
}

/** Rasterises an SVG document to RGBA pixels (for GIF frames). */
export async function svgToRgba(svg: string, options: RasterizeOptions = {}): Promise<RgbaImage> {
  const image = await render(svg, options);
  return { width: image.width, height: image.height, rgba: new Uint8Array(image.pixels) };
}

/** Escapes text for SVG/HTML content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Advance widths of DejaVu Sans, in em, for the characters whose width differs most. */
const NARROW = new Set([..."iIjlt.,:;!|'()[]f1 "]);
const WIDE = new Set([..."mwMW%@"]);

/**
 * About how wide `text` is in DejaVu Sans at `fontSize` pixels: enough to leave room for a
 * legend or a row label (it errs on the wide side).
 */
export function textWidth(text: string, fontSize: number): number {
  let em = 0;
  for (const ch of text) {
    if (NARROW.has(ch)) em += 0.36;
    else if (WIDE.has(ch)) em += 0.95;
    else if (ch >= "A" && ch <= "Z") em += 0.72;
    else em += 0.63;
  }
  return em * fontSize;
}
