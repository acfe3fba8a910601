/**
 * Animated GIFs of image batches: one grid per frame, e.g. a sampler's x0-predictions after
 * each network evaluation, so schedules can be compared by watching the images form.
 *
 * Every frame is a batch `[B, C, H, W]` (values in a data range, [-1, 1] by default) laid out
 * like `gridRaster` in `image.ts`, with an optional caption strip above it drawn with the
 * 5×7 font of `plot.ts`. The whole frame is then upscaled by an integer factor (nearest
 * neighbour, so pixels stay sharp) and encoded with imagescript.
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
import {
  type GridOptions,
  gridRaster,
  pictureSize,
  type Raster,
  rasterToRgba,
  upscaleRaster,
} from "./image.ts";
import { type PlotScene, rasterizeScene, type Rgb, textWidth } from "./plot.ts";
import { checkIntegerIn } from "../_check.ts";

/** One frame of {@linkcode imagesGif}: a batch of images and an optional caption. */
export interface AnimationFrame {
  /** `B × C·H·W` values, channel-first, in the data range (one batch of the GIF's shape). */
  images: ArrayLike<number>;
  /** Text in a strip above the grid (5×7 pixel font; lower case is drawn as upper case). */
  caption?: string;
}

/** Options of {@linkcode imagesGif}. */
export interface ImagesGifOptions extends GridOptions {
  /**
   * Integer upscaling of every pixel (caption included).
   * @default {about 80 px per tile: `min(4, max(1, ceil(80 / max(H, W))))`, 3 for 28 px MNIST}
   */
  scale?: number;
  /**
   * Display time of each frame but the last, in ms. GIF stores hundredths of a second, so it
   * is rounded to a multiple of 10. @default {200}
   */
  frameMs?: number;
  /** Display time of the last frame (the result holds before the loop restarts), in ms. @default {1500} */
  lastFrameMs?: number;
}

/** Pixels of padding around the caption text, at scale 1. */
const CAPTION_MARGIN = 2;
/** Height of a glyph of the plot font. */
const GLYPH_HEIGHT = 7;

/** The default upscaling: tiles of about 80 px, at most 4×. */
export function defaultGifScale(height: number, width: number): number {
  return Math.min(4, Math.max(1, Math.ceil(80 / Math.max(height, width))));
}

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
 * `padValue` between), with a caption strip above it when any frame has a caption (frames
 * without one get an empty strip, so all frames are the same size). The strip is as wide as
 * the grid or the longest caption, whichever is wider, and the grid is centred under it.
 * Grayscale (C = 1) and RGB (C = 3) batches are drawn as such; any other channel count as the
 * gray strip of its channels side by side (`image.ts`).
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
  const scale = options.scale ?? defaultGifScale(height, width);
  checkIntegerIn("scale", scale, 1, 64);
  const frameMs = options.frameMs ?? 200;
  checkIntegerIn("frameMs", frameMs, 10, 655350);
  const lastFrameMs = options.lastFrameMs ?? 1500;
  checkIntegerIn("lastFrameMs", lastFrameMs, 10, 655350);
  const padValue = options.padValue ?? 0;
  checkIntegerIn("padValue", padValue, 0, 255);

  const grids = frames.map((f) => gridRaster(f.images, shape, options));
  const gridWidth = grids[0].width;
  const captioned = frames.some((f) => f.caption !== undefined);
  const captionWidth = Math.max(
    0,
    ...frames.map((f) => f.caption ? textWidth(f.caption) + 2 * CAPTION_MARGIN : 0),
  );
  const layout: FrameLayout = {
    width: Math.max(gridWidth, captionWidth),
    stripHeight: captioned ? GLYPH_HEIGHT + 2 * CAPTION_MARGIN : 0,
    background: [padValue, padValue, padValue],
    // Light text on a dark strip, dark text on a light one.
    textColor: padValue < 128 ? [255, 255, 255] : [0, 0, 0],
  };
  const gifFrames = grids.map((grid, k) => {
    const composite = composeFrame(grid, frames[k].caption ?? "", layout);
    const last = k === frames.length - 1;
    const frame = new imagescript.Frame(
      composite.width * scale,
      composite.height * scale,
      gifDelay(last ? lastFrameMs : frameMs),
    );
    rasterToRgba(upscaleRaster(composite, scale), frame.bitmap);
    return frame;
  });
  return await new imagescript.GIF(gifFrames, -1).encode(100);
}

/** Size and colours shared by every frame. */
interface FrameLayout {
  width: number;
  stripHeight: number;
  background: Rgb;
  textColor: Rgb;
}

/** The unscaled RGB frame: caption strip on top, grid centred below. */
function composeFrame(grid: Raster, caption: string, layout: FrameLayout): Raster {
  const { width, stripHeight } = layout;
  const height = stripHeight + grid.height;
  const scene: PlotScene = {
    width,
    height,
    background: layout.background,
    primitives: caption
      ? [{
        kind: "text",
        x: CAPTION_MARGIN,
        y: CAPTION_MARGIN,
        text: caption,
        color: layout.textColor,
        // Left-aligned, so captions that change length between frames do not jitter.
        anchor: "start",
      }]
      : [],
  };
  const out = rasterizeScene(scene);
  const x0 = Math.floor((width - grid.width) / 2);
  for (let y = 0; y < grid.height; y++) {
    for (let x = 0; x < grid.width; x++) {
      const src = (y * grid.width + x) * grid.channels;
      const dst = ((stripHeight + y) * width + x0 + x) * 3;
      for (let c = 0; c < 3; c++) {
        out.pixels[dst + c] = grid.pixels[grid.channels === 3 ? src + c : src];
      }
    }
  }
  return out;
}
