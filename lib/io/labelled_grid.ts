/**
 * Picture grids a reader can read: a batch of images enlarged so that each is big enough to
 * see (nearest neighbour, so pixels stay sharp), with a label left of each row (teacher, LD3,
 * EDM, …) and a caption above, in DejaVu Sans.
 *
 * The grid itself is the raster of `gridRaster` (`image.ts`), enlarged; the labels are SVG text
 * around it, rasterised by resvg (`svg.ts`). A grid without labels or caption is encoded
 * directly, without the SVG step.
 *
 * @example
 * ```ts
 * import { labelledGridPng } from "./labelled_grid.ts";
 * const images = new Float32Array(4 * 1 * 8 * 8).map((_, i) => Math.sin(i));
 * const png = await labelledGridPng(images, [4, 1, 8, 8], {
 *   nrow: 2,
 *   rowLabels: ["teacher", "LD3"],
 *   caption: "NFE 4",
 * });
 * if (png[1] !== 0x50) throw new Error("not a PNG");
 * ```
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { checkIntegerIn } from "../_check.ts";
import { encodePng, type GridOptions, gridRaster, type Raster, upscaleRaster } from "./image.ts";
import { escapeXml, FONT_STACK, type RgbaImage, svgToPng, svgToRgba, textWidth } from "./svg.ts";

/** The smallest side, in pixels, that {@linkcode defaultImageScale} enlarges an image to. */
export const MIN_IMAGE_SIDE = 84;

/**
 * The default enlargement of `height × width` images: the smallest integer that makes the
 * longer side at least {@linkcode MIN_IMAGE_SIDE} px (3 for 28 px MNIST digits, 1 from 84 px).
 *
 * @example
 * ```ts
 * import { defaultImageScale } from "./labelled_grid.ts";
 * console.log(defaultImageScale(28, 28), defaultImageScale(256, 256)); // 3 1
 * ```
 */
export function defaultImageScale(height: number, width: number): number {
  return Math.max(1, Math.ceil(MIN_IMAGE_SIDE / Math.max(height, width)));
}

/** Options of {@linkcode labelledGridSvg} and the functions built on it. */
export interface LabelledGridOptions extends GridOptions {
  /** Gray level (0–255) of the padding: white gutters between images. @default {255} */
  padValue?: number;
  /** Integer enlargement of every image pixel. @default {defaultImageScale(H, W)} */
  scale?: number;
  /** One label per grid row, drawn left of it. @default {none} */
  rowLabels?: readonly string[];
  /** A line of text above the grid. @default {none} */
  caption?: string;
  /**
   * Reserve room for a caption even when `caption` is empty (frames of one GIF keep one
   * size). @default {false}
   */
  captionStrip?: boolean;
  /** Width of the label column, in pixels. @default {as wide as the longest label} */
  labelWidth?: number;
  /** Smallest width of the picture (frames of one GIF keep one size). @default {0} */
  minWidth?: number;
}

/** Text size of labels and captions, in pixels. */
const FONT_SIZE = 15;
/** Height of the caption strip. */
const CAPTION_HEIGHT = 26;

/** The enlarged grid and where rows sit in it. */
interface GridLayout {
  grid: Raster;
  scale: number;
  rows: number;
  /** Centre of grid row r, in grid pixels. */
  rowCentre: (r: number) => number;
}

function layoutGrid(
  images: ArrayLike<number>,
  shape: readonly number[],
  options: LabelledGridOptions,
): GridLayout {
  // gridRaster checks the shape and data first.
  const raster = gridRaster(images, shape, { ...options, padValue: options.padValue ?? 255 });
  const scale = options.scale ?? defaultImageScale(shape[2], shape[3]);
  checkIntegerIn("scale", scale, 1, 64);
  const grid = upscaleRaster(raster, scale);
  const nrow = options.nrow ?? 8;
  const padding = options.padding ?? 2;
  const rows = Math.max(Math.ceil(shape[0] / nrow), 1);
  if (options.rowLabels !== undefined && options.rowLabels.length > rows) {
    throw new RangeError(
      `rowLabels has ${options.rowLabels.length} labels: the grid has ${rows} rows`,
    );
  }
  const height = shape[2];
  return {
    grid,
    scale,
    rows,
    rowCentre: (r) => (padding + r * (height + padding) + height / 2) * scale,
  };
}

/** Width of the label column: as wide as the longest row label (0 without labels). */
export function labelColumn(options: LabelledGridOptions): number {
  if (options.labelWidth !== undefined) return options.labelWidth;
  const labels = options.rowLabels ?? [];
  if (labels.length === 0) return 0;
  return Math.ceil(Math.max(...labels.map((l) => textWidth(l, FONT_SIZE))) + 20);
}

/** Width a caption needs, margins included. */
export function captionWidth(caption: string): number {
  return caption ? Math.ceil(textWidth(caption, FONT_SIZE)) + 16 : 0;
}

/** The PNG of a raster as a `data:` URL. */
export function pngDataUrl(png: Uint8Array): string {
  return `data:image/png;base64,${Buffer.from(png).toString("base64")}`;
}

/**
 * A batch `[B, C, H, W]` (values in [-1, 1] unless `dataRange` says otherwise) as an SVG
 * document: the enlarged grid, a label left of each row and a caption above.
 *
 * @throws {RangeError} When the shape does not match the data, an option is out of range, or
 * there are more row labels than rows.
 */
export function labelledGridSvg(
  images: ArrayLike<number>,
  shape: readonly number[],
  options: LabelledGridOptions = {},
): string {
  const layout = layoutGrid(images, shape, options);
  const { grid } = layout;
  const left = labelColumn(options);
  const captioned = options.captionStrip || Boolean(options.caption);
  const top = captioned ? CAPTION_HEIGHT : 0;
  const width = Math.max(
    left + grid.width,
    options.minWidth ?? 0,
    captionWidth(options.caption ?? ""),
  );
  const height = top + grid.height;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" ` +
    `width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `font-family="${escapeXml(FONT_STACK)}" font-size="${FONT_SIZE}">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  if (options.caption) {
    parts.push(`<text x="8" y="${top - 8}" fill="#111">${escapeXml(options.caption)}</text>`);
  }
  (options.rowLabels ?? []).forEach((label, r) => {
    const y = top + layout.rowCentre(r) + FONT_SIZE * 0.36;
    parts.push(
      `<text x="${left - 10}" y="${y.toFixed(1)}" text-anchor="end" fill="#111">${
        escapeXml(label)
      }</text>`,
    );
  });
  parts.push(
    `<image x="${left}" y="${top}" width="${grid.width}" height="${grid.height}" ` +
      `image-rendering="optimizeSpeed" style="image-rendering:pixelated" ` +
      `xlink:href="${pngDataUrl(encodePng(grid))}"/>`,
    "</svg>",
  );
  return parts.join("\n") + "\n";
}

/**
 * A batch as PNG bytes: enlarged, with row labels and caption when given (text rasterised in
 * DejaVu Sans), else the enlarged grid alone.
 */
export async function labelledGridPng(
  images: ArrayLike<number>,
  shape: readonly number[],
  options: LabelledGridOptions = {},
): Promise<Uint8Array> {
  const labelled = (options.rowLabels?.length ?? 0) > 0 || options.caption ||
    options.captionStrip;
  if (!labelled) return encodePng(layoutGrid(images, shape, options).grid);
  return await svgToPng(labelledGridSvg(images, shape, options));
}

/** A batch as RGBA pixels (a GIF frame): {@linkcode labelledGridSvg} rasterised. */
export async function labelledGridRgba(
  images: ArrayLike<number>,
  shape: readonly number[],
  options: LabelledGridOptions = {},
): Promise<RgbaImage> {
  return await svgToRgba(labelledGridSvg(images, shape, options));
}
