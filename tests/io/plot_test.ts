import assert from "node:assert/strict";
import { Image } from "imagescript";
import {
  combineScenes,
  formatTick,
  lambdaPlot,
  linePlot,
  niceTicks,
  PALETTE,
  plotToPng,
  rasterizeScene,
  sceneToSvg,
  textWidth,
} from "../../lib/io/plot.ts";

Deno.test("niceTicks() covers the range with 1-2-5 steps", () => {
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(4, 10, 3), [4, 6, 8, 10]);
  assert.deepEqual(niceTicks(-4.4, 6.2, 10), [-4, -2, 0, 2, 4, 6]);
  assert.deepEqual(niceTicks(3, 3), [3]);
  assert.throws(() => niceTicks(0, Infinity), RangeError);
});

Deno.test("formatTick() keeps labels short", () => {
  assert.equal(formatTick(0.30000000000000004), "0.3");
  assert.equal(formatTick(1e-5), "1e-5");
  assert.equal(formatTick(0), "0");
});

Deno.test("linePlot() draws each series in its colour where its points are", () => {
  const scene = linePlot(
    [{ name: "a", x: [0, 1, 2], y: [0, 1, 2] }, { name: "b", x: [0, 1, 2], y: [2, NaN, 0] }],
    { width: 300, height: 200, title: "t", xLabel: "x" },
  );
  const raster = rasterizeScene(scene);
  assert.equal(raster.width, 300);
  assert.equal(raster.height, 200);
  assert.equal(raster.channels, 3);
  // Every marker of series "a" is painted in palette colour 0 at its centre.
  const markers = scene.primitives.filter((p) => p.kind === "marker");
  assert.equal(markers.length, 5, "NaN points get no marker");
  for (const m of markers.slice(0, 3)) {
    if (m.kind !== "marker") continue;
    const i: number = (Math.round(m.y) * raster.width + Math.round(m.x)) * 3;
    assert.deepEqual([...raster.pixels.subarray(i, i + 3)], [...PALETTE[0]]);
  }
  // The NaN splits series "b" into two single points: no polyline for it except its legend.
  const bLines = scene.primitives.filter((p) =>
    p.kind === "polyline" && p.color === PALETTE[1] && p.width === 2
  );
  assert.equal(bLines.length, 1);
  // Higher y is drawn higher up.
  const [m0, m2] = [markers[0], markers[2]];
  assert.ok(m0.kind === "marker" && m2.kind === "marker" && m2.y < m0.y);
});

Deno.test("plotToPng() writes a PNG of the scene's size", async () => {
  const scene = combineScenes([
    lambdaPlot([{ name: "logSNR", lambdas: [-4.4, 0, 6.2] }]),
    linePlot([{ name: "edm", x: [4, 6], y: [10, 1] }], { logY: true }),
  ]);
  const image = await Image.decode(plotToPng(scene));
  assert.equal(image.width, scene.width);
  assert.equal(image.height, scene.height);
  assert.equal(scene.width, 2 * 520);
});

Deno.test("sceneToSvg() holds every primitive and escapes text", () => {
  const scene = linePlot([{ name: "a<b", x: [0, 1], y: [1, 2] }], { title: "dpm_solver++" });
  const svg = sceneToSvg(scene);
  assert.match(svg, /^<svg xmlns/);
  assert.match(svg, /a&lt;b/);
  assert.match(svg, /DPM_SOLVER\+\+|dpm_solver\+\+/);
  assert.equal(
    (svg.match(/<polyline/g) ?? []).length,
    scene.primitives.filter((p) => p.kind === "polyline").length,
  );
});

Deno.test("linePlot() rejects mismatched series and tiny sizes", () => {
  assert.throws(() => linePlot([{ name: "a", x: [0, 1], y: [1] }]), /Series "a"/);
  assert.throws(() => linePlot([], { width: 50 }), RangeError);
  assert.equal(textWidth("abc"), 17);
});
