/**
 * Float images to PNG: single images and grids of a batch.
 *
 * Images arrive as float arrays in channel-first layout `[C, H, W]` (batches `[B, C, H, W]`)
 * with values in a data range (ld3 models use [-1, 1]). They are mapped to 8-bit, laid out in
 * a grid like torchvision's `make_grid` (`nrow` images per row, `padding` pixels between), and
 * encoded as an 8-bit grayscale (C = 1) or RGB (C = 3) PNG. Any other channel count (a
 * 2-channel model, Stable Diffusion's 4-channel latents) is drawn as a gray strip: the C
 * channels side by side, each an H × W gray tile, so a sample becomes one H × C·W gray picture
 * and every channel stays visible. The encoder is a few lines over `node:zlib` and is
 * deterministic, so a dataset's PNGs are reproducible byte for byte.
 *
 * @module
 */
import { deflateSync } from "node:zlib";
import { crc32 } from "./npz.ts";

/** An 8-bit image, row-major, channels interleaved (`H × W × channels`). */
export interface Raster {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** 1 (grayscale) or 3 (RGB). */
  channels: 1 | 3;
  /** `height × width × channels` bytes. */
  pixels: Uint8Array;
}

/** Options of {@linkcode toRaster}. */
export interface ToRasterOptions {
  /** The float values that map to 0 and 255. @default {[-1, 1]} */
  dataRange?: readonly [number, number];
}

/** Options of {@linkcode gridRaster} and {@linkcode imagesToPngGrid}. */
export interface GridOptions extends ToRasterOptions {
  /** Images per row. @default {8} */
  nrow?: number;
  /** Pixels between images and around the grid. @default {2} */
  padding?: number;
  /** Gray level (0–255) of the padding. @default {0} */
  padValue?: number;
}

function checkImageShape(shape: readonly number[], batched: boolean): number[] {
  const rank = batched ? 4 : 3;
  if (
    !Array.isArray(shape) || shape.length !== rank ||
    !shape.every((d, i) => Number.isSafeInteger(d) && (d >= 1 || (batched && i === 0 && d >= 0)))
  ) {
    throw new RangeError(
      `Image shape must be [${batched ? "B, " : ""}C, H, W] of positive sizes: got [${shape}]`,
    );
  }
  return [...shape];
}

/** Whether `channels` is drawn as one picture (gray or RGB) rather than a strip of gray tiles. */
function isColorLayout(channels: number): channels is 1 | 3 {
  return channels === 1 || channels === 3;
}

/**
 * Width and channels of the picture of one `[C, H, W]` image: itself for C = 1 or 3, else the
 * gray strip of its C channels side by side (`C·W` wide).
 *
 * @example
 * ```ts
 * console.log(pictureSize([4, 8, 8])); // { width: 32, height: 8, channels: 1 }
 * ```
 */
export function pictureSize(
  [channels, height, width]: readonly number[],
): { width: number; height: number; channels: 1 | 3 } {
  return isColorLayout(channels)
    ? { width, height, channels }
    : { width: channels * width, height, channels: 1 };
}

/**
 * The `[C, H, W]` shape in which samples of `shape` are drawn ({@linkcode imageShapeOf}),
 * checked to be drawable, so that a task refuses before any work what it could not write.
 *
 * @param what Names the samples in the error, e.g. `"save_png"`.
 * @throws {RangeError} When the shape is not an image of any channel count.
 */
export function checkPictureShape(shape: readonly number[], what = "image"): number[] {
  const image = imageShapeOf(shape);
  if (
    image.length !== 3 || !image.every((d) => Number.isSafeInteger(d) && d >= 1)
  ) {
    throw new RangeError(
      `${what}: samples of shape [${shape}] cannot be drawn as pictures (need [C, H, W], [H, W] ` +
        `or a square [D])`,
    );
  }
  return image;
}

/** Maps one float to a byte: clip to the data range, scale, round half up. */
function toByte(v: number, lo: number, scale: number): number {
  const b = Math.floor((v - lo) * scale + 0.5);
  // NaN compares false both ways and becomes 0.
  return b >= 255 ? 255 : b > 0 ? b : 0;
}

/**
 * Converts one channel-first float image `[C, H, W]` to an 8-bit interleaved raster (C other
 * than 1 and 3: the gray strip of its channels, see the module doc).
 *
 * @throws {RangeError} When the shape is not `[C, H, W]` or does not match the data.
 */
export function toRaster(
  data: ArrayLike<number>,
  shape: readonly number[],
  options: ToRasterOptions = {},
): Raster {
  const [channels, height, width] = checkImageShape(shape, false);
  if (data.length !== channels * height * width) {
    throw new RangeError(
      `Image data has ${data.length} values but shape [${shape}] needs ${
        channels * height * width
      }`,
    );
  }
  return rasterAt(data, 0, [channels, height, width], options);
}

/** The raster of the image stored at `offset` in `data` (no checks). */
function rasterAt(
  data: ArrayLike<number>,
  offset: number,
  [channels, height, width]: number[],
  options: ToRasterOptions,
): Raster {
  const [lo, hi] = options.dataRange ?? [-1, 1];
  const scale = 255 / (hi - lo);
  const pixels = new Uint8Array(channels * height * width);
  const plane = height * width;
  if (!isColorLayout(channels)) {
    // Gray strip: channel c is the tile at columns c·W … (c + 1)·W − 1.
    const stripWidth = channels * width;
    for (let c = 0; c < channels; c++) {
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          pixels[y * stripWidth + c * width + x] = toByte(
            data[offset + c * plane + y * width + x],
            lo,
            scale,
          );
        }
      }
    }
    return { width: stripWidth, height, channels: 1, pixels };
  }
  for (let c = 0; c < channels; c++) {
    for (let p = 0; p < plane; p++) {
      pixels[p * channels + c] = toByte(data[offset + c * plane + p], lo, scale);
    }
  }
  return { width, height, channels, pixels };
}

/**
 * Lays a batch `[B, C, H, W]` out as one raster: `nrow` images per row, `padding` pixels of
 * `padValue` around and between them.
 */
export function gridRaster(
  data: ArrayLike<number>,
  shape: readonly number[],
  options: GridOptions = {},
): Raster {
  const [batch, channels, height, imageWidth] = checkImageShape(shape, true);
  const picture = pictureSize([channels, height, imageWidth]);
  const width = picture.width;
  const nrow = options.nrow ?? 8;
  const padding = options.padding ?? 2;
  if (!Number.isInteger(nrow) || nrow < 1) throw new RangeError(`nrow must be >= 1: got ${nrow}`);
  if (!Number.isInteger(padding) || padding < 0) {
    throw new RangeError(`padding must be >= 0: got ${padding}`);
  }
  const size = channels * height * imageWidth;
  if (data.length !== batch * size) {
    throw new RangeError(
      `Batch data has ${data.length} values, shape [${shape}] needs ${batch * size}`,
    );
  }
  const cols = Math.min(nrow, Math.max(batch, 1));
  const rows = Math.max(Math.ceil(batch / nrow), 1);
  const gridWidth = cols * (width + padding) + padding;
  const gridHeight = rows * (height + padding) + padding;
  const depth = picture.channels;
  const pixels = new Uint8Array(gridWidth * gridHeight * depth).fill(options.padValue ?? 0);
  for (let b = 0; b < batch; b++) {
    const tile = rasterAt(data, b * size, [channels, height, imageWidth], options);
    const x0 = padding + (b % nrow) * (width + padding);
    const y0 = padding + Math.floor(b / nrow) * (height + padding);
    for (let y = 0; y < height; y++) {
      const row = tile.pixels.subarray(y * width * depth, (y + 1) * width * depth);
      pixels.set(row, ((y0 + y) * gridWidth + x0) * depth);
    }
  }
  return { width: gridWidth, height: gridHeight, channels: depth, pixels };
}

function pngChunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, body.length);
  const typeBytes = new TextEncoder().encode(type);
  out.set(typeBytes, 4);
  out.set(body, 8);
  view.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}

/**
 * Encodes an 8-bit raster as PNG (color type 0 grayscale or 2 RGB, no interlace, filter 0).
 *
 * @example
 * ```ts
 * const png = encodePng({ width: 1, height: 1, channels: 1, pixels: new Uint8Array([128]) });
 * console.log(png[1] === 0x50); // true ("\x89PNG")
 * ```
 */
export function encodePng(raster: Raster): Uint8Array {
  const { width, height, channels, pixels } = raster;
  if (pixels.length !== width * height * channels) {
    throw new RangeError(
      `Raster has ${pixels.length} bytes but ${width}x${height}x${channels} needs ${
        width * height * channels
      }`,
    );
  }
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header[8] = 8; // bit depth
  header[9] = channels === 1 ? 0 : 2;
  // Each scanline starts with filter type 0 (none).
  const stride = width * channels;
  const raw = new Uint8Array(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    raw.set(pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  }
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", header),
    pngChunk("IDAT", new Uint8Array(deflateSync(raw, { level: 6 }))),
    pngChunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Encodes one float image `[C, H, W]` as PNG. */
export function imageToPng(
  data: ArrayLike<number>,
  shape: readonly number[],
  options: ToRasterOptions = {},
): Uint8Array {
  return encodePng(toRaster(data, shape, options));
}

/**
 * Encodes a batch of float images `[B, C, H, W]` as one PNG grid.
 *
 * @example
 * ```ts
 * const batch = new Float32Array(4 * 1 * 2 * 2).fill(0.5);
 * const png = imagesToPngGrid(batch, [4, 1, 2, 2], { nrow: 2, padding: 1 });
 * console.log(png.length > 0); // true
 * ```
 */
export function imagesToPngGrid(
  data: ArrayLike<number>,
  shape: readonly number[],
  options: GridOptions = {},
): Uint8Array {
  return encodePng(gridRaster(data, shape, options));
}

/**
 * The `[C, H, W]` image shape of a model output shape: `[H, W]` becomes `[1, H, W]`, a
 * flat `[D]` with D a perfect square becomes `[1, √D, √D]`; anything else is returned as is.
 */
export function imageShapeOf(shape: readonly number[]): number[] {
  if (shape.length === 2) return [1, shape[0], shape[1]];
  if (shape.length === 1) {
    const side = Math.round(Math.sqrt(shape[0]));
    if (side * side === shape[0]) return [1, side, side];
  }
  return [...shape];
}

/**
 * Enlarges a raster by an integer factor with nearest-neighbour sampling, so that 28×28
 * digits stay sharp in a notebook or GIF instead of being blurred by the viewer.
 *
 * @throws {RangeError} When `factor` is not a positive integer.
 */
export function upscaleRaster(raster: Raster, factor: number): Raster {
  if (!Number.isInteger(factor) || factor < 1) {
    throw new RangeError(`Upscale factor must be a positive integer: got ${factor}`);
  }
  const { width, height, channels, pixels } = raster;
  const w = width * factor;
  const h = height * factor;
  const out = new Uint8Array(w * h * channels);
  for (let y = 0; y < h; y++) {
    const src = Math.floor(y / factor) * width;
    for (let x = 0; x < w; x++) {
      const from = (src + Math.floor(x / factor)) * channels;
      const to = (y * w + x) * channels;
      for (let c = 0; c < channels; c++) out[to + c] = pixels[from + c];
    }
  }
  return { width: w, height: h, channels, pixels: out };
}

/**
 * Copies a gray or RGB raster into an opaque RGBA bitmap of the same size (e.g. an imagescript
 * GIF frame's `bitmap`).
 *
 * @throws {RangeError} When the bitmap does not hold `4 · width · height` bytes.
 */
export function rasterToRgba(raster: Raster, rgba: Uint8ClampedArray | Uint8Array): void {
  const n = raster.width * raster.height;
  if (rgba.length !== 4 * n) {
    throw new RangeError(
      `RGBA bitmap has ${rgba.length} bytes: a ${raster.width}×${raster.height} raster needs ${
        4 * n
      }`,
    );
  }
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < 3; c++) {
      rgba[4 * p + c] = raster.pixels[raster.channels === 3 ? 3 * p + c : p];
    }
    rgba[4 * p + 3] = 255;
  }
}
