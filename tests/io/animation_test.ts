/**
 * `imagesGif()`: encoded GIFs decoded back with imagescript, checking frames, size, delays
 * and pixels.
 */
import assert from "node:assert/strict";
import { imagescript } from "../../lib/deps.ts";
import { type AnimationFrame, defaultGifScale, imagesGif } from "../../lib/io/animation.ts";
import { captionWidth, labelColumn } from "../../lib/io/labelled_grid.ts";

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
    caption: k === 2 ? "final sample, a longer caption" : `NFE ${k + 1}/3`,
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
  // Grid: 2 columns of 4 px + 3 × 1 px padding = 11 px, times 3 = 33 px square, under a 26 px
  // caption strip. Every frame is as wide as the longest caption.
  const width = captionWidth("final sample, a longer caption");
  const strip = 26;
  for (const f of decoded) {
    assert.equal(f.width, width);
    assert.equal(f.height, strip + 33);
  }
  assert.deepEqual(decoded.map((f) => f.duration), [120, 120, 1000]);
  decoded.forEach((f, k) => {
    values[k].forEach((v, b) => {
      const x = (1 + (b % 2) * 5 + 2) * 3;
      const y = strip + (1 + Math.floor(b / 2) * 5 + 2) * 3;
      const [r, g, bl, a] = pixel(f, x, y, 1);
      assert.ok(Math.abs(r - byteOf(v)) <= 1, `frame ${k} tile ${b}: ${r} vs ${byteOf(v)}`);
      assert.equal(g, r);
      assert.equal(bl, r);
      assert.equal(a, 255);
    });
    // Padding between tiles is padValue; the strip is white with dark text.
    assert.ok(Math.abs(pixel(f, 5 * 3 + 1, strip + 4, 1)[0] - 40) <= 1);
    assert.deepEqual(pixel(f, width - 2, 1, 1), [255, 255, 255, 255]);
    let darkest = 255;
    for (let y = 0; y < strip; y++) {
      for (let x = 0; x < width; x++) darkest = Math.min(darkest, pixel(f, x, y, 1)[0]);
    }
    assert.ok(darkest < 80, `caption text drawn (darkest ${darkest})`);
  });
});

Deno.test("imagesGif() draws a label left of each row", async () => {
  const bytes = await imagesGif([{ images: flatTiles([1, 1, -1, -1]) }], [4, 1, 4, 4], {
    nrow: 2,
    scale: 10,
    rowLabels: ["LD3", "EDM"],
  });
  const [f] = frameList(await imagescript.GIF.decode(bytes));
  const left = labelColumn({ rowLabels: ["LD3", "EDM"] });
  // 2 columns of 4 px + 3 × 2 px padding = 14 px, times 10; no caption strip.
  assert.equal(f.width, left + 140);
  assert.equal(f.height, 140);
  assert.deepEqual(pixel(f, left + 40, 40, 1), [255, 255, 255, 255]);
  assert.deepEqual(pixel(f, left + 40, 100, 1), [0, 0, 0, 255]);
  // Some dark text in the label column beside each row.
  for (const [top, bottom] of [[20, 60], [80, 120]]) {
    let darkest = 255;
    for (let y = top; y < bottom; y++) {
      for (let x = 0; x < left; x++) darkest = Math.min(darkest, pixel(f, x, y, 1)[0]);
    }
    assert.ok(darkest < 80, `label beside rows ${top}–${bottom} (darkest ${darkest})`);
  }
  await assert.rejects(
    imagesGif([{ images: flatTiles([1, 1]) }], [2, 1, 4, 4], { rowLabels: ["a", "b"] }),
    { name: "RangeError", message: "rowLabels has 2 labels: the grid has 1 rows" },
  );
});

Deno.test("imagesGif() without captions has no strip and scales MNIST-sized tiles 3x", async () => {
  assert.equal(defaultGifScale(28, 28), 3);
  assert.equal(defaultGifScale(4, 4), 21);
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
    scale: 20,
    lastFrameMs: 125,
  });
  const decoded = frameList(await imagescript.GIF.decode(bytes));
  assert.equal(decoded.length, 1);
  assert.equal(decoded[0].duration, 130);
  // The 2 × 1 tiles, 20 times enlarged, under the 26 px caption strip.
  assert.equal(decoded[0].width, Math.max(80, captionWidth("rgb")));
  assert.equal(decoded[0].height, 26 + 40);
  assert.deepEqual(pixel(decoded[0], 20, 26 + 20, 1), [255, 0, 0, 255]);
  assert.deepEqual(pixel(decoded[0], 60, 26 + 20, 1), [0, 0, 255, 255]);
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
