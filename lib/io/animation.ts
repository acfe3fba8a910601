/**
 * Animated GIFs of image batches: one grid per frame, e.g. a sampler's x0-predictions after
 * each network evaluation, so schedules can be compared by watching the images form.
 *
 * Every frame is a batch `[B, C, H, W]` (values in a data range, [-1, 1] by default) laid out
 * like `gridRaster` in `image.ts`, enlarged by an integer factor (nearest neighbour, so pixels
 * stay sharp), with an optional caption above and labels left of the rows, in DejaVu Sans
 * (`labelled_grid.ts`); imagescript encodes the frames.
 *
 * @example
 * ```ts
 * import { imagesGif } from "./animation.ts";
 * const dark = new Float32Array(2 * 4 * 4).fill(-1);
 * const light = new Float32Array(2 * 4 * 4).fill(1);
 * const gif = await imagesGif(
 *   [{ images: dark, caption: "NFE 1/2" }, { images: light, caption: "final" }],
 *   [2, 1, 4, 4],
 *   { scale: 2, frameMs: 100 },
 * );
 * if (String.fromCharCode(...gif.subarray(0, 3)) !== "GIF") throw new Error("not a GIF");
 * ```
 *
 * @module
 */
import { imagescript } from "../deps.ts";
import { type GridOptions, gridRaster, pictureSize, rasterToRgba, upscaleRaster } from "./image.ts";
import { captionWidth, defaultImageScale, labelledGridRgba } from "./labelled_grid.ts";
import { checkIntegerIn } from "../_check.ts";

/** One frame of {@linkcode imagesGif}: a batch of images and an optional caption. */
export interface AnimationFrame {
  /** `B × C·H·W` values, channel-first, in the data range (one batch of the GIF's shape). */
  images: ArrayLike<number>;
  /** Text in a strip above the grid. */
  caption?: string;
}

/** Options of {@linkcode imagesGif}. */
export interface ImagesGifOptions extends GridOptions {
  /** Gray level (0–255) of the padding: white gutters between images. @default {255} */
  padValue?: number;
  /**
   * Integer enlargement of every image pixel.
   * @default {`defaultImageScale(H, W)`: each image at least 84 px, 3 for 28 px MNIST}
   */
  scale?: number;
  /** One label per grid row, drawn left of it in every frame. @default {none} */
  rowLabels?: readonly string[];
  /**
   * Display time of each frame but the last, in ms. GIF stores hundredths of a second, so it
   * is rounded to a multiple of 10. @default {200}
   */
  frameMs?: number;
  /** Display time of the last frame (the result holds before the loop restarts), in ms. @default {1500} */
  lastFrameMs?: number;
}

/**
 * The old default enlargement of GIF tiles, now the one of every picture grid.
 * @deprecated Use `defaultImageScale` (`labelled_grid.ts`).
 */
export const defaultGifScale: typeof defaultImageScale = defaultImageScale;

function checkShape(shape: readonly number[]): void {
  const ok = Array.isArray(shape) && shape.length === 4 &&
    shape.every((d) => Number.isSafeInteger(d) && d >= 1);
  if (!ok) {
    throw new RangeError(`shape must be [B, C, H, W] of positive sizes: got [${shape}]`);
  }
}

function checkFrames(frames: readonly AnimationFrame[], shape: readonly number[]): void {
  if (!Array.isArray(frames) || frames.length === 0) {
    throw new RangeError(`frames must hold at least one frame: got ${frames?.length ?? frames}`);
  }
  const values = shape.reduce((a, b) => a * b, 1);
  frames.forEach((frame, k) => {
    const length = frame?.images?.length;
    if (length !== values) {
      throw new RangeError(
        `frames[${k}].images has ${length} values: shape [${shape}] needs ${values}`,
      );
    }
    if (frame.caption !== undefined && typeof frame.caption !== "string") {
      throw new TypeError(
        `frames[${k}].caption must be a string: got ${typeof frame.caption}`,
      );
    }
  });
}

/** A GIF delay: imagescript truncates to hundredths of a second, so round here instead. */
function gifDelay(ms: number): number {
  return Math.round(ms / 10) * 10;
}

/**
 * Encodes a list of image batches as an animated GIF that loops forever.
 *
 * Each frame is the batch laid out as a grid (`nrow` images per row, `padding` pixels of
 * `padValue` between) and enlarged `scale` times, with a caption strip above it when any frame
 * has a caption (frames without one get an empty strip, so all frames are the same size) and
 * `rowLabels` left of the rows. Frames are as wide as the labelled grid or the longest
 * caption, whichever is wider. Grayscale (C = 1) and RGB (C = 3) batches are drawn as such;
 * any other channel count as the gray strip of its channels side by side (`image.ts`).
 *
 * @param frames The batches, in display order.
 * @param shape `[B, C, H, W]` of every batch.
 * @param options Layout, upscaling and timing.
 * @returns The GIF file's bytes.
 * @throws {RangeError} When there are no frames, a frame does not match `shape`, or an option
 * is out of range.
 * @throws {TypeError} When a caption is not a string.
 */
export async function imagesGif(
  frames: readonly AnimationFrame[],
  shape: readonly number[],
  options: ImagesGifOptions = {},
): Promise<Uint8Array> {
  checkShape(shape);
  checkFrames(frames, shape);
  const { height, width } = pictureSize(shape.slice(1));
  const scale = options.scale ?? defaultImageScale(height, width);
  checkIntegerIn("scale", scale, 1, 64);
  const frameMs = options.frameMs ?? 200;
  checkIntegerIn("frameMs", frameMs, 10, 655350);
  const lastFrameMs = options.lastFrameMs ?? 1500;
  checkIntegerIn("lastFrameMs", lastFrameMs, 10, 655350);
  const padValue = options.padValue ?? 255;
  checkIntegerIn("padValue", padValue, 0, 255);
  options = { ...options, padValue };

  const captioned = frames.some((f) => f.caption !== undefined);
  if (!captioned && !(options.rowLabels?.length)) {
    // Pixels only: no text to draw.
    return await encodeGif(
      frames.map((f) => {
        const raster = upscaleRaster(gridRaster(f.images, shape, options), scale);
        const rgba = new Uint8Array(raster.width * raster.height * 4);
        rasterToRgba(raster, rgba);
        return { width: raster.width, height: raster.height, rgba };
      }),
      frameMs,
      lastFrameMs,
    );
  }
  // One size for every frame: room for the longest caption.
  const minWidth = Math.max(0, ...frames.map((f) => captionWidth(f.caption ?? "")));
  const images = [];
  for (const f of frames) {
    images.push(
      await labelledGridRgba(f.images, shape, {
        ...options,
        scale,
        caption: f.caption,
        captionStrip: captioned,
        minWidth,
      }),
    );
  }
  return await encodeGif(images, frameMs, lastFrameMs);
}

/** Encodes RGBA frames of one size as a GIF that loops forever; the last one holds longer. */
async function encodeGif(
  images: readonly { width: number; height: number; rgba: Uint8Array }[],
  frameMs: number,
  lastFrameMs: number,
): Promise<Uint8Array> {
  const gifFrames = images.map((image, k) => {
    const last = k === images.length - 1;
    const frame = new imagescript.Frame(
      image.width,
      image.height,
      gifDelay(last ? lastFrameMs : frameMs),
    );
    frame.bitmap.set(image.rgba);
    return frame;
  });
  return await new imagescript.GIF(gifFrames, -1).encode(100);
}
