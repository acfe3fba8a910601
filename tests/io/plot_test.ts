/**
 * Charts: the data description, the SVG Observable Plot lays out (title, labels, ticks, legend,
 * one line per series) and the PNG resvg draws from it.
 */
import assert from "node:assert/strict";
import { Image } from "imagescript";
import {
  chartPng,
  chartSize,
  chartSvg,
  combineCharts,
  formatTick,
  lambdaPlot,
  linePlot,
  PALETTE,
} from "../../lib/io/plot.ts";
import { svgToPng, svgToRgba, textWidth } from "../../lib/io/svg.ts";

/** Text of every `<text>` element of an SVG document, entities decoded. */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<text\b[^>]*>([\s\S]*?)<\/text>/g)].map((m) =>
    m[1].replace(/<[^>]+>/g, "").replace(/&#(\d+);/g, (_, c) => String.fromCharCode(Number(c)))
      .replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&")
  );
}

Deno.test("formatTick() keeps labels short, with a real minus sign", () => {
  assert.equal(formatTick(0.30000000000000004), "0.3");
  assert.equal(formatTick(1e-5), "1e−5");
  assert.equal(formatTick(-2), "−2");
  assert.equal(formatTick(0), "0");
});

Deno.test("linePlot() describes the chart; it rejects mismatched series and tiny sizes", () => {
  const chart = linePlot([{ name: "a", x: [0, 1], y: [1, 2] }], { title: "T", logY: true });
  assert.equal(chart.kind, "line");
  assert.equal(chart.title, "T");
  assert.equal(chart.logY, true);
  assert.deepEqual(chartSize(chart), { width: 640, height: 400 });
  assert.throws(() => linePlot([{ name: "a", x: [0, 1], y: [1] }]), /Series "a"/);
  assert.throws(() => linePlot([], { width: 50 }), RangeError);
});

Deno.test("chartSvg() has a title, labelled axes, enough ticks and a legend entry per series", async () => {
  const chart = lambdaPlot(
    [
      { name: "LD3 step grid t1", lambdas: [-4.4, -1, 2, 6.2] },
      { name: "LD3 eval grid t2", lambdas: [-4.4, -1, 2, 6.2], style: { dash: "7 4" } },
      { name: "a<b", lambdas: [-4.4, 0, 3, 6.2] },
    ],
    { title: "uni_pc, 3 steps" },
  );
  const svg = await chartSvg(chart);
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="640" height="400"/);
  const words = texts(svg);
  assert.ok(words.includes("uni_pc, 3 steps"));
  assert.ok(words.some((t) => t.startsWith("step index i")));
  assert.ok(words.some((t) => t.startsWith("half-log-SNR λ(tᵢ)")));
  // The λ axis from −4.4 to 6.2 gets a tick label for every whole number.
  for (const tick of ["−4", "−2", "0", "2", "4", "6"]) assert.ok(words.includes(tick), tick);
  // x ticks at the step indices.
  for (const tick of ["0", "1", "2", "3"]) assert.ok(words.includes(tick), tick);
  for (const name of ["LD3 step grid t1", "LD3 eval grid t2", "a<b"]) {
    assert.ok(words.includes(name), name);
  }
  assert.ok(svg.includes("a&#60;b") || svg.includes("a&lt;b"), "legend text is escaped");
  // Three curves and three legend swatches, the second dashed in both, in its own colour.
  const lines = svg.match(/<g\b[^>]*aria-label="line"[^>]*>/g) ?? [];
  assert.equal(lines.filter((l) => l.includes(PALETTE[1])).length, 2);
  assert.ok(lines.filter((l) => l.includes(PALETTE[1])).every((l) => l.includes("7 4")));
  assert.ok(svg.includes("DejaVu Sans"));
});

Deno.test("chartPng() draws every series' colour at twice the chart's size", async () => {
  const chart = combineCharts(
    [
      linePlot([{ name: "edm", x: [4, 6, 8], y: [30, 10, 3] }], { logY: true, width: 400 }),
      linePlot([{ name: "ld3", x: [4, 6, 8], y: [20, 5, 1] }], { logY: true, width: 400 }),
    ],
    2,
    "two panels",
  );
  const { width, height } = chartSize(chart);
  assert.equal(width, 800);
  const image = await Image.decode(await chartPng(chart));
  assert.equal(image.width, 2 * width);
  assert.equal(image.height, 2 * height);
  const seen = new Set<string>();
  for (let i = 0; i < image.bitmap.length; i += 4) {
    const [r, g, b] = image.bitmap.subarray(i, i + 3);
    seen.add("#" + [r, g, b].map((v) => v.toString(16).padStart(2, "0")).join("").toUpperCase());
  }
  assert.ok(seen.has(PALETTE[0]), "first series' colour");
  assert.ok(seen.has(PALETTE[0]) && [...seen].length > 20, "antialiased text and lines");
  assert.throws(() => combineCharts([]), RangeError);
});

Deno.test("svgToPng() draws text in DejaVu Sans; svgToRgba() gives the pixels", async () => {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="80" height="24">` +
    `<text x="4" y="18" font-size="16" fill="black">λ σ θ₁</text></svg>`;
  const image = await Image.decode(await svgToPng(svg, { scale: 2 }));
  assert.equal(image.width, 160);
  const { width, height, rgba } = await svgToRgba(svg);
  assert.deepEqual([width, height], [80, 24]);
  let dark = 0;
  for (let i = 0; i < rgba.length; i += 4) if (rgba[i] < 100) dark++;
  assert.ok(dark > 40, `glyphs drawn: ${dark} dark pixels`);
  assert.ok(textWidth("mmm", 10) > textWidth("iii", 10));
  await assert.rejects(svgToPng(svg, { scale: 0 }), RangeError);
});
