import assert from "node:assert/strict";
import { Image } from "imagescript";
import {
  checkPictureShape,
  encodePng,
  gridRaster,
  imageShapeOf,
  imagesToPngGrid,
  imageToPng,
  pictureSize,
  rasterToRgba,
  toRaster,
  upscaleRaster,
} from "../../lib/io/image.ts";

Deno.test("toRaster() maps the data range to 0..255 with clipping", () => {
  const r = toRaster(new Float32Array([-1, 1, 0, -5, 5, NaN]), [1, 2, 3]);
  assert.equal(r.width, 3);
  assert.equal(r.height, 2);
  assert.deepEqual([...r.pixels], [0, 255, 128, 0, 255, 0]);
  const unit = toRaster([0, 0.5, 1, 0.25], [1, 2, 2], { dataRange: [0, 1] });
  assert.deepEqual([...unit.pixels], [0, 128, 255, 64]);
  // RGB is interleaved from channel-first planes.
  const rgb = toRaster([1, -1, -1, 1, -1, -1], [3, 1, 2]);
  assert.deepEqual([...rgb.pixels], [255, 0, 0, 0, 255, 0]);
  assert.throws(
    () => toRaster([0, 0], [2, 1]),
    /must be \[C, H, W\] of positive sizes: got \[2,1\]/,
  );
});

Deno.test("toRaster() and gridRaster() draw other channel counts as a gray strip", () => {
  // Two channels of a 2×2 image: channel 0 dark (-1), channel 1 light (1), side by side.
  const two = toRaster([-1, -1, -1, -1, 1, 1, 1, 1], [2, 2, 2]);
  assert.deepEqual([two.width, two.height, two.channels], [4, 2, 1]);
  assert.deepEqual([...two.pixels], [0, 0, 255, 255, 0, 0, 255, 255]);
  // Four channels (a Stable Diffusion latent): channel c is the tile at columns c·W…
  const four = Float32Array.from({ length: 4 * 1 * 2 }, (_, i) => Math.floor(i / 2) / 2 - 1);
  assert.deepEqual([...toRaster(four, [4, 1, 2]).pixels], [0, 0, 64, 64, 128, 128, 191, 191]);
  const grid = gridRaster(new Float32Array(3 * 2 * 2 * 2), [3, 2, 2, 2], { nrow: 2, padding: 1 });
  // Tiles 4 wide (2 channels × 2), two per row, padding 1.
  assert.deepEqual([grid.width, grid.height, grid.channels], [2 * 5 + 1, 2 * 3 + 1, 1]);
  assert.equal(pictureSize([4, 64, 64]).width, 256);
});

Deno.test("checkPictureShape() refuses what cannot be drawn, naming the option", () => {
  assert.deepEqual(checkPictureShape([2, 8, 8]), [2, 8, 8]);
  assert.deepEqual(checkPictureShape([784]), [1, 28, 28]);
  assert.throws(
    () => checkPictureShape([4, 2, 8, 8], "save_png"),
    /^RangeError: save_png: samples of shape \[4,2,8,8\] cannot be drawn as pictures/,
  );
  assert.throws(() => checkPictureShape([10], "out"), /out: samples of shape \[10\]/);
});

Deno.test("gridRaster() places images with padding like make_grid", () => {
  // Five 2x2 images of constant value b/4 - 1 on a 3-per-row grid with padding 1.
  const batch = new Float32Array(5 * 4);
  for (let b = 0; b < 5; b++) batch.fill(b / 2 - 1, b * 4, b * 4 + 4);
  const g = gridRaster(batch, [5, 1, 2, 2], { nrow: 3, padding: 1, padValue: 7 });
  assert.equal(g.width, 3 * 3 + 1);
  assert.equal(g.height, 2 * 3 + 1);
  const at = (x: number, y: number) => g.pixels[y * g.width + x];
  assert.equal(at(0, 0), 7);
  assert.equal(at(1, 1), 0); // image 0 at (1, 1)
  assert.equal(at(5, 2), 64); // image 1 at (4, 1): value -0.5
  assert.equal(at(7, 1), 128); // image 2 at (7, 1): value 0
  assert.equal(at(1, 4), 191); // image 3 at (1, 4): value 0.5
  assert.equal(at(4, 5), 255); // image 4 at (4, 4): value 1
  assert.equal(at(8, 5), 7); // empty sixth cell stays padding
});

Deno.test("encodePng() output decodes to the same pixels with imagescript", async () => {
  const pixels = Uint8Array.from({ length: 5 * 3 }, (_, i) => i * 17);
  const gray = await Image.decode(encodePng({ width: 5, height: 3, channels: 1, pixels }));
  assert.equal(gray.width, 5);
  assert.equal(gray.height, 3);
  for (let y = 0; y < 3; y++) {
    for (let x = 0; x < 5; x++) {
      const [r, g, b, a] = Image.colorToRGBA(gray.getPixelAt(x + 1, y + 1));
      assert.deepEqual([r, g, b, a], [
        pixels[y * 5 + x],
        pixels[y * 5 + x],
        pixels[y * 5 + x],
        255,
      ]);
    }
  }
  const rgbPixels = Uint8Array.from({ length: 2 * 2 * 3 }, (_, i) => 255 - i * 20);
  const rgb = await Image.decode(
    encodePng({ width: 2, height: 2, channels: 3, pixels: rgbPixels }),
  );
  const [r, g, b] = Image.colorToRGBA(rgb.getPixelAt(2, 2));
  assert.deepEqual([r, g, b], [rgbPixels[9], rgbPixels[10], rgbPixels[11]]);
});

Deno.test("imagesToPngGrid() and imageToPng() are deterministic PNGs", async () => {
  const batch = Float32Array.from({ length: 3 * 1 * 4 * 4 }, (_, i) => Math.sin(i));
  const a = imagesToPngGrid(batch, [3, 1, 4, 4], { nrow: 2 });
  assert.deepEqual(imagesToPngGrid(batch, [3, 1, 4, 4], { nrow: 2 }), a);
  const decoded = await Image.decode(a);
  assert.equal(decoded.width, 2 * 6 + 2);
  assert.equal(decoded.height, 2 * 6 + 2);
  const one = await Image.decode(imageToPng(batch.subarray(0, 16), [1, 4, 4]));
  assert.equal(one.width, 4);
  const [v] = Image.colorToRGBA(one.getPixelAt(2, 1));
  assert.equal(v, Math.floor((Math.sin(1) + 1) * 127.5 + 0.5));
});

Deno.test("imageShapeOf() makes a channel-first shape", () => {
  assert.deepEqual(imageShapeOf([784]), [1, 28, 28]);
  assert.deepEqual(imageShapeOf([28, 28]), [1, 28, 28]);
  assert.deepEqual(imageShapeOf([3, 32, 32]), [3, 32, 32]);
  assert.deepEqual(imageShapeOf([10]), [10]);
});

Deno.test("upscaleRaster() repeats pixels; rasterToRgba() makes gray and RGB opaque RGBA", () => {
  const gray = { width: 2, height: 1, channels: 1 as const, pixels: Uint8Array.of(10, 200) };
  const big = upscaleRaster(gray, 2);
  assert.deepEqual([big.width, big.height], [4, 2]);
  assert.deepEqual([...big.pixels], [10, 10, 200, 200, 10, 10, 200, 200]);
  assert.throws(() => upscaleRaster(gray, 0), /positive integer: got 0/);

  const rgba = new Uint8ClampedArray(8);
  rasterToRgba(gray, rgba);
  assert.deepEqual([...rgba], [10, 10, 10, 255, 200, 200, 200, 255]);
  const rgb = { width: 1, height: 1, channels: 3 as const, pixels: Uint8Array.of(1, 2, 3) };
  const one = new Uint8ClampedArray(4);
  rasterToRgba(rgb, one);
  assert.deepEqual([...one], [1, 2, 3, 255]);
  assert.throws(() => rasterToRgba(rgb, new Uint8ClampedArray(3)), /needs 4/);
});
