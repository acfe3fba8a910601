/**
 * The HTML report helpers, and the headless-browser check the report tests rely on (it must
 * see a console error and a broken picture, or a clean report would prove nothing).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  dataUrl,
  htmlPage,
  htmlTable,
  imageFigure,
  optionsTable,
  svgFigure,
} from "../../lib/io/html.ts";
import { encodePng } from "../../lib/io/image.ts";
import { findChromium, openPage, PAGE_FACTS, type PageFacts } from "../_chromium.ts";

const CHROMIUM = findChromium();
if (!CHROMIUM) console.log("HTML browser checks skipped: no chromium installed");

Deno.test("htmlTable() escapes text, right-aligns numbers and bolds on request", () => {
  const html = htmlTable(["grid", "loss"], [["<LD3>", { bold: 0.0123456 }], ["EDM", 2]]);
  assert.match(html, /<td>&#60;LD3&#62;<\/td><td class="num"><strong>0\.01235<\/strong><\/td>/);
  assert.match(html, /<th class="num">loss<\/th>/);
  assert.throws(() => htmlTable(["a", "b"], [["x"]]), /row 0 has 1 cells, the header has 2/);
});

Deno.test("optionsTable() flattens nested options and joins lists", () => {
  const html = optionsTable({ model: { name: "gmm" }, grid: [80, 1.23456789, 0.002], order: null });
  assert.match(html, /<td>model\.name<\/td><td>gmm<\/td>/);
  assert.match(html, /<td>grid<\/td><td>80, 1\.235, 0\.002<\/td>/);
  assert.match(html, /<td>order<\/td><td>—<\/td>/);
});

Deno.test("htmlPage() is one document with a table of contents and inline pictures", () => {
  const png = encodePng({ width: 1, height: 1, channels: 1, pixels: new Uint8Array([9]) });
  const page = htmlPage("Run <1>", [
    { title: "Schedule", body: svgFigure('<svg xmlns="http://www.w3.org/2000/svg"></svg>', "λ") },
    { title: "Samples", body: imageFigure(png, "image/png", "teacher & LD3") },
  ], { subtitle: "gmm" });
  assert.ok(page.startsWith("<!doctype html>"));
  assert.match(page, /<title>Run &#60;1&#62;<\/title>/);
  assert.match(page, /<a href="#s0-schedule">Schedule<\/a><a href="#s1-samples">Samples<\/a>/);
  assert.match(page, /<svg class="chart" role="img" xmlns=/);
  assert.ok(page.includes(`src="${dataUrl(png, "image/png")}"`));
  assert.ok(page.includes('alt="teacher &#38; LD3"'));
});

Deno.test({
  name: "openPage() sees what a reader's browser shows: pictures, console errors, exceptions",
  ignore: !CHROMIUM,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ld3_html_test_" });
    try {
      const png = encodePng({ width: 2, height: 2, channels: 1, pixels: new Uint8Array(4) });
      const good = join(dir, "good.html");
      await Deno.writeTextFile(
        good,
        htmlPage("ok", [{ title: "A", body: imageFigure(png, "image/png", "p") }]),
      );
      const clean = await openPage<PageFacts>(CHROMIUM!, good, PAGE_FACTS);
      assert.deepEqual(clean.consoleErrors, []);
      assert.deepEqual(clean.exceptions, []);
      assert.equal(clean.value.decodedImages, 1);

      const bad = join(dir, "bad.html");
      await Deno.writeTextFile(
        bad,
        `<!doctype html><html><body><img src="missing.png">` +
          `<script>console.error("boom"); null.x;</script></body></html>`,
      );
      const broken = await openPage<PageFacts>(CHROMIUM!, bad, PAGE_FACTS);
      assert.ok(broken.consoleErrors.some((e) => e.includes("boom")), `${broken.consoleErrors}`);
      assert.ok(broken.consoleErrors.some((e) => e.includes("missing.png")));
      assert.equal(broken.exceptions.length, 1);
      assert.equal(broken.value.images, 1);
      assert.equal(broken.value.decodedImages, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
