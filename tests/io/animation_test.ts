/**
 * `imagesGif()`: encoded GIFs decoded back with imagescript, checking frames, size, delays
 * and pixels.
 */
import assert from "node:assert/strict";
import { imagescript } from "../../lib/deps.ts";
import { type AnimationFrame, defaultGifScale, imagesGif } from "../../lib/io/animation.ts";

type Decoded = InstanceType<typeof imagescript.GIF>;

function frameList(gif: Decoded): InstanceType<typeof imagescript.Frame>[] {
  // GIF extends Array but cannot be mapped (its constructor takes a frame list), so index it.
  return Array.from({ length: gif.length }, (_, k) => gif[k]);
}

/** RGBA of the unscaled pixel (x, y), read at the centre of its `scale × scale` block. */
function pixel(f: InstanceType<typeof imagescript.Frame>, x: number, y: number, scale: number) {
  const px = Math.floor((x + 0.5) * scale);
  const py = Math.floor((y + 0.5) * scale);
  const o = (py * f.width + px) * 4;
  return Array.from(f.bitmap.subarray(o, o + 4));
}

/** The byte a value of [-1, 1] maps to (as `gridRaster` does). */
function byteOf(v: number): number {
  return Math.floor((v + 1) * 127.5 + 0.5);
}

/** A batch of `count` grayscale 4×4 tiles, tile `b` filled with `values[b]`. */
function flatTiles(values: readonly number[]): Float32Array {
  const out = new Float32Array(values.length * 16);
  values.forEach((v, b) => out.fill(v, b * 16, (b + 1) * 16));
  return out;
}

Deno.test("imagesGif() frames: count, size with scale and caption strip, delays, pixels", async () => {
  const values = [[-1, 0, 0.5], [-0.5, 0.25, 1], [0.9, -0.9, 0]];
  const frames: AnimationFrame[] = values.map((v, k) => ({
    images: flatTiles(v),
    caption: `NFE ${k + 1}/3`,
  }));
  const bytes = await imagesGif(frames, [3, 1, 4, 4], {
    nrow: 2,
    padding: 1,
    padValue: 40,
    scale: 3,
    frameMs: 120,
    lastFrameMs: 1000,
  });
  const gif = await imagescript.GIF.decode(bytes);
  const decoded = frameList(gif);
  assert.equal(decoded.length, 3);
  // Grid: 2 columns of 4 px + 3 × 1 px padding = 11 px wide, 2 rows = 11 px high. The caption
  // "NFE 1/3" (7 glyphs of 6 px, less the last gap, plus 2 px margins) is 45 px: it sets the
  // width. The strip is 7 px glyphs + 2 × 2 px margins = 11 px high.
  const width = 45;
  const strip = 11;
  for (const f of decoded) {
    assert.equal(f.width, width * 3);
    assert.equal(f.height, (strip + 11) * 3);
  }
  assert.deepEqual(decoded.map((f) => f.duration), [120, 120, 1000]);
  // The grid is centred under the strip: tiles start at x = 17 + 1.
  const x0 = Math.floor((width - 11) / 2);
  decoded.forEach((f, k) => {
    values[k].forEach((v, b) => {
      const x = x0 + 1 + (b % 2) * 5 + 2;
      const y = strip + 1 + Math.floor(b / 2) * 5 + 1;
      const [r, g, bl, a] = pixel(f, x, y, 3);
      assert.ok(Math.abs(r - byteOf(v)) <= 1, `frame ${k} tile ${b}: ${r} vs ${byteOf(v)}`);
      assert.equal(g, r);
      assert.equal(bl, r);
      assert.equal(a, 255);
    });
    // Padding between tiles and the strip's background are padValue; the text is white.
    assert.ok(Math.abs(pixel(f, x0 + 5, strip + 2, 3)[0] - 40) <= 1);
    assert.ok(Math.abs(pixel(f, width - 1, 0, 3)[0] - 40) <= 1);
    let brightest = 0;
    for (let y = 0; y < strip; y++) {
      for (let x = 0; x < width; x++) brightest = Math.max(brightest, pixel(f, x, y, 3)[0]);
    }
    assert.equal(brightest, 255);
  });
});

Deno.test("imagesGif() without captions has no strip and scales MNIST-sized tiles 3x", async () => {
  assert.equal(defaultGifScale(28, 28), 3);
  assert.equal(defaultGifScale(4, 4), 4);
  assert.equal(defaultGifScale(256, 256), 1);
  const tiles = new Float32Array(2 * 28 * 28).fill(-1);
  tiles.fill(1, 28 * 28); // second tile white
  const bytes = await imagesGif([{ images: tiles }, { images: tiles }], [2, 1, 28, 28]);
  const decoded = frameList(await imagescript.GIF.decode(bytes));
  assert.equal(decoded.length, 2);
  // Default layout: 2 px padding, so 2 · 30 + 2 = 62 × 32 px, times 3.
  assert.equal(decoded[0].width, 62 * 3);
  assert.equal(decoded[0].height, 32 * 3);
  // Default delays: 200 ms, the last frame held 1500 ms.
  assert.deepEqual(decoded.map((f) => f.duration), [200, 1500]);
  assert.deepEqual(pixel(decoded[1], 2 + 10, 2 + 10, 3), [0, 0, 0, 255]);
  assert.deepEqual(pixel(decoded[1], 32 + 10, 2 + 10, 3), [255, 255, 255, 255]);
});

Deno.test("imagesGif() keeps RGB colours and rounds delays to GIF's 10 ms", async () => {
  // Two 2×2 RGB tiles: red and blue.
  const images = new Float32Array(2 * 3 * 4).fill(-1);
  images.fill(1, 0, 4); // tile 0, channel R
  images.fill(1, 12 + 8, 12 + 12); // tile 1, channel B
  const bytes = await imagesGif([{ images, caption: "rgb" }], [2, 3, 2, 2], {
    padding: 0,
    scale: 2,
    lastFrameMs: 125,
  });
  const decoded = frameList(await imagescript.GIF.decode(bytes));
  assert.equal(decoded.length, 1);
  assert.equal(decoded[0].duration, 130);
  // Caption "rgb": 17 px + 4 px margins = 21 px wide; the 4 px grid starts at x = 8.
  assert.equal(decoded[0].width, 21 * 2);
  assert.equal(decoded[0].height, (11 + 2) * 2);
  assert.deepEqual(pixel(decoded[0], 8, 11, 2), [255, 0, 0, 255]);
  assert.deepEqual(pixel(decoded[0], 11, 12, 2), [0, 0, 255, 255]);
});

Deno.test("imagesGif() rejects bad input, naming the field", async () => {
  const ok = [{ images: new Float32Array(16) }];
  const shape = [1, 1, 4, 4];
  await assert.rejects(imagesGif([], shape), {
    name: "RangeError",
    message: "frames must hold at least one frame: got 0",
  });
  await assert.rejects(imagesGif([...ok, { images: new Float32Array(15) }], shape), {
    name: "RangeError",
    message: "frames[1].images has 15 values: shape [1,1,4,4] needs 16",
  });
  await assert.rejects(imagesGif(ok, [1, 1, 0, 4]), {
    name: "RangeError",
    message: "shape must be [B, C, H, W] of positive sizes: got [1,1,0,4]",
  });
  await assert.rejects(imagesGif(ok, [16]), { name: "RangeError", message: /^shape must be/ });
  await assert.rejects(imagesGif(ok, shape, { scale: 1.5 }), {
    name: "RangeError",
    message: "scale must be an integer in [1, 64]: got 1.5",
  });
  await assert.rejects(imagesGif(ok, shape, { frameMs: 5 }), {
    name: "RangeError",
    message: /^frameMs must be an integer in \[10, \d+\]: got 5$/,
  });
  await assert.rejects(imagesGif(ok, shape, { lastFrameMs: -1 }), {
    name: "RangeError",
    message: /^lastFrameMs must be .*: got -1$/,
  });
  await assert.rejects(imagesGif(ok, shape, { padValue: 300 }), {
    name: "RangeError",
    message: "padValue must be an integer in [0, 255]: got 300",
  });
  await assert.rejects(imagesGif(ok, shape, { nrow: 0 }), { name: "RangeError", message: /nrow/ });
  const badCaption = [{ images: new Float32Array(16), caption: 3 as unknown as string }];
  await assert.rejects(imagesGif(badCaption, shape), {
    name: "TypeError",
    message: "frames[0].caption must be a string: got number",
  });
});
