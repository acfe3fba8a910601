/**
 * `report.html` of a finished LD3 run, opened in headless Chromium: it loads without a console
 * error, and the charts (schedule, losses), pictures (schedule GIF, samples), tables and
 * options are all on the rendered page.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runLd3Training } from "../../../lib/pipelines/train/run.ts";
import { writeRunReport } from "../../../lib/pipelines/train/html_report.ts";
import { generateDataset } from "../../../lib/pipelines/generate.ts";
import { findChromium, openPage, PAGE_FACTS, type PageFacts } from "../../_chromium.ts";

const CONFIG = "configs/gmm-mnist.yml";
const CHROMIUM = findChromium();
if (!CHROMIUM) console.log("report.html browser check skipped: no chromium installed");

Deno.test("report.html of a run holds every part and renders in a browser without errors", async () => {
  const root = await Deno.makeTempDir({ prefix: "ld3_report_test_" });
  try {
    const teacher = await generateDataset(CONFIG, {
      dataDir: root,
      totalSamples: 8,
      samplingBatchSize: 8,
      steps: 20,
      solverName: "uni_pc",
      skipType: "edm",
      progress: false,
    });
    const run = await runLd3Training({
      config: CONFIG,
      dataDir: teacher.dir,
      logPath: join(root, "runs"),
      solverName: "ipndm",
      steps: 4,
      lossType: "L2",
      numTrain: 4,
      numValid: 4,
      trainingRoundsV1: 1,
      trainingRoundsV2: 1,
      progress: false,
      previewCount: 2,
    });
    const path = join(run.runDir, "report.html");
    const html = await Deno.readTextFile(path);
    // Self-contained: no script, nothing loaded from beside the file or the network.
    assert.ok(html.startsWith("<!doctype html>"));
    assert.doesNotMatch(html, /<script|src="(?!data:)|href="(?!#)/);
    assert.ok(html.includes("data:image/gif;base64,") && html.includes("data:image/png;base64,"));
    assert.ok(html.includes("LD3 step grid t1") && html.includes("best validation"));
    // It can be rewritten from the folder alone, to the same page.
    assert.equal(await writeRunReport(run.runDir), path);
    assert.equal(await Deno.readTextFile(path), html);

    if (!CHROMIUM) return;
    const page = await openPage<PageFacts>(CHROMIUM, path, PAGE_FACTS);
    assert.deepEqual(page.consoleErrors, []);
    assert.deepEqual(page.exceptions, []);
    const facts = page.value;
    assert.match(facts.title, /^LD3 run ipndm-N4-/);
    assert.deepEqual(facts.headings, [
      "Result",
      "Learned schedule",
      "Training",
      "Samples",
      "Options",
    ]);
    // The schedule plot and the loss curves, drawn with axes, ticks and legends.
    assert.equal(facts.charts, 2);
    assert.equal(facts.drawnCharts, 2);
    assert.ok(facts.chartTexts.every((n) => n > 20), `${facts.chartTexts}`);
    // The schedule GIF and samples.png, decoded by the browser.
    assert.deepEqual(facts.imageTypes, ["data:image/gif;", "data:image/png;"]);
    assert.equal(facts.decodedImages, 2);
    // Losses, the grid and the options.
    assert.equal(facts.tables, 3);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
