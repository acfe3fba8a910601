/**
 * The notebooks: their display helpers, their committed form (clean, Deno kernel, declared
 * expectations), their code (type-checked), and their execution under Jupyter with the Deno
 * kernel (every notebook, no error cell, the outputs it declares).
 *
 * Execution needs Debian's `jupyter-nbconvert` and the kernel from `deno jupyter --install`;
 * without them those tests are ignored (CI installs both, see `.ci/run`).
 */
import assert from "node:assert/strict";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Buffer } from "node:buffer";
import { inflateSync } from "node:zlib";
import {
  DISPLAY,
  escapeXml,
  formatNumber,
  gif,
  htmlTable,
  imageGrid,
  lineChartSvg,
  markdownTable,
  png,
  table,
  upscaleRaster,
} from "../notebooks/_display.ts";
import type { Raster } from "../lib/io/image.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const NOTEBOOK_DIR = join(ROOT, "notebooks");

// ---------------------------------------------------------------------------------------------
// Notebook files

interface Output {
  output_type: string;
  data?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
  traceback?: string[];
}

interface Cell {
  cell_type: string;
  source: string | string[];
  outputs?: Output[];
  execution_count?: number | null;
  metadata?: { execution?: unknown };
}

interface Notebook {
  cells: Cell[];
  metadata: {
    kernelspec?: { name?: string };
    ld3?: { expect?: Record<string, number>; timeout_s?: number };
  };
}

function notebookPaths(): string[] {
  const names = [...Deno.readDirSync(NOTEBOOK_DIR)]
    .filter((e) => e.isFile && e.name.endsWith(".ipynb"))
    .map((e) => e.name)
    .sort();
  return names.map((n) => join(NOTEBOOK_DIR, n));
}

function readNotebook(path: string): Notebook {
  return JSON.parse(Deno.readTextFileSync(path));
}

function source(cell: Cell): string {
  return Array.isArray(cell.source) ? cell.source.join("") : cell.source;
}

const NOTEBOOKS = notebookPaths();

/** MIME type → number of outputs carrying it, over all code cells. */
function countOutputs(nb: Notebook): Map<string, number> {
  const counts = new Map<string, number>();
  for (const cell of nb.cells) {
    for (const output of cell.outputs ?? []) {
      for (const mime of Object.keys(output.data ?? {})) {
        counts.set(mime, (counts.get(mime) ?? 0) + 1);
      }
    }
  }
  return counts;
}

function errorCells(nb: Notebook): string[] {
  const errors: string[] = [];
  nb.cells.forEach((cell, i) => {
    for (const output of cell.outputs ?? []) {
      if (output.output_type === "error") {
        errors.push(`cell ${i}: ${output.ename}: ${output.evalue}\n${source(cell)}`);
      }
    }
  });
  return errors;
}

Deno.test("notebooks: the quickstart exists", () => {
  assert.ok(
    NOTEBOOKS.some((p) => p.endsWith("quickstart.ipynb")),
    `notebooks/quickstart.ipynb is missing (found ${NOTEBOOKS.join(", ")})`,
  );
});

for (const path of NOTEBOOKS) {
  const name = path.slice(NOTEBOOK_DIR.length + 1);

  Deno.test(`notebooks/${name}: committed clean, for the Deno kernel, with expectations`, () => {
    const nb = readNotebook(path);
    assert.equal(nb.metadata.kernelspec?.name, "deno", "metadata.kernelspec.name must be deno");
    const expect = nb.metadata.ld3?.expect;
    assert.ok(
      expect && Object.keys(expect).length > 0,
      'metadata.ld3.expect must list the outputs the notebook shows, e.g. {"image/png": 3}',
    );
    for (const [mime, count] of Object.entries(expect)) {
      assert.ok(Number.isInteger(count) && count >= 1, `expect["${mime}"] = ${count}`);
    }
    nb.cells.forEach((cell, i) => {
      if (cell.cell_type !== "code") return;
      assert.deepEqual(
        cell.outputs,
        [],
        `cell ${i} has outputs: run tools/run-notebooks.sh --clear before committing`,
      );
      assert.equal(cell.execution_count ?? null, null, `cell ${i} has an execution count`);
      assert.equal(cell.metadata?.execution, undefined, `cell ${i} has execution timestamps`);
    });
  });

  Deno.test(`notebooks/${name}: its code type-checks`, async () => {
    // Code cells joined into one module, relative imports made absolute (the kernel resolves
    // them from the notebook's folder); a cell's trailing display expression is legal TS.
    const nb = readNotebook(path);
    const code = nb.cells
      .filter((c) => c.cell_type === "code")
      .map((c) => source(c))
      .join("\n\n")
      .replace(
        /(from\s+|import\s*\(\s*)"(\.\.?\/[^"]+)"/g,
        (_, prefix: string, spec: string) =>
          `${prefix}"${pathToFileURL(resolve(NOTEBOOK_DIR, spec)).href}"`,
      );
    const dir = await Deno.makeTempDir({ prefix: "ld3-nbcheck-" });
    try {
      const file = join(dir, `${name.replace(/\.ipynb$/, "")}.ts`);
      await Deno.writeTextFile(file, code + "\nexport {};\n");
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["check", "--quiet", "--config", join(ROOT, "deno.json"), file],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, `deno check of the notebook's code failed:\n${text}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Execution under Jupyter

function run(cmd: string, args: string[]): { code: number; stdout: string } | undefined {
  try {
    const out = new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).outputSync();
    return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
  } catch {
    return undefined; // not installed
  }
}

/** Debian's nbconvert first: another python3 on PATH may lack the Jupyter packages. */
function findNbconvert(): string | undefined {
  const candidates = [Deno.env.get("JUPYTER_NBCONVERT"), "/usr/bin/jupyter-nbconvert"];
  for (const c of candidates) {
    if (c && run(c, ["--version"])?.code === 0) return c;
  }
  return run("jupyter-nbconvert", ["--version"])?.code === 0 ? "jupyter-nbconvert" : undefined;
}

function hasDenoKernel(nbconvert: string): boolean {
  const kernelspec = nbconvert.startsWith("/")
    ? join(dirname(nbconvert), "jupyter-kernelspec")
    : "jupyter-kernelspec";
  const out = run(kernelspec, ["list", "--json"]);
  if (!out || out.code !== 0) return false;
  try {
    return "deno" in JSON.parse(out.stdout).kernelspecs;
  } catch {
    return false;
  }
}

const NBCONVERT = findNbconvert();
const HAS_KERNEL = NBCONVERT !== undefined && hasDenoKernel(NBCONVERT);
if (!HAS_KERNEL) {
  console.warn(
    NBCONVERT === undefined
      ? "notebooks_test: ignoring notebook execution: jupyter-nbconvert is not installed " +
        "(apt-get install jupyter-nbconvert python3-nbclient jupyter-client python3-ipykernel)"
      : "notebooks_test: ignoring notebook execution: no Jupyter kernel named deno " +
        "(run `deno jupyter --install`)",
  );
}

for (const path of NOTEBOOKS) {
  const name = path.slice(NOTEBOOK_DIR.length + 1);
  Deno.test({
    name: `notebooks/${name}: executes under Jupyter without errors and shows its outputs`,
    ignore: !HAS_KERNEL,
    async fn() {
      const committed = readNotebook(path);
      const timeout = committed.metadata.ld3?.timeout_s ?? 300;
      const dir = await Deno.makeTempDir({ prefix: "ld3-nbexec-" });
      try {
        const out = await new Deno.Command(NBCONVERT as string, {
          args: [
            "--to",
            "notebook",
            "--execute",
            path,
            `--ExecutePreprocessor.timeout=${timeout}`,
            // Keep going past an error cell so the test can report every failing cell.
            "--allow-errors",
            "--output-dir",
            dir,
            "--output",
            "executed",
          ],
          cwd: ROOT,
          stdout: "piped",
          stderr: "piped",
        }).output();
        const log = new TextDecoder().decode(out.stderr);
        assert.equal(out.code, 0, `nbconvert failed on ${name}:\n${log}`);
        const executed = readNotebook(join(dir, "executed.ipynb"));
        const errors = errorCells(executed);
        assert.deepEqual(errors, [], `${name} has error cells:\n${errors.join("\n\n")}`);
        const counts = countOutputs(executed);
        for (const [mime, min] of Object.entries(committed.metadata.ld3?.expect ?? {})) {
          const found = counts.get(mime) ?? 0;
          assert.ok(
            found >= min,
            `${name}: expected at least ${min} ${mime} outputs, found ${found}`,
          );
        }
        // Every inline PNG must be a real PNG file.
        for (const cell of executed.cells) {
          for (const output of cell.outputs ?? []) {
            const data = output.data?.["image/png"];
            if (data === undefined) continue;
            const bytes = Buffer.from(Array.isArray(data) ? data.join("") : String(data), "base64");
            assert.deepEqual([...bytes.subarray(1, 4)], [0x50, 0x4e, 0x47], "PNG signature");
          }
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Display helpers

/** Decodes an 8-bit grayscale, non-interlaced PNG written by lib/io/image.ts (filter 0 rows). */
function decodeGrayPng(bytes: Uint8Array): Raster {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 8;
  let width = 0;
  let height = 0;
  const idat: Uint8Array[] = [];
  while (offset < bytes.length) {
    const length = view.getUint32(offset);
    const type = new TextDecoder().decode(bytes.subarray(offset + 4, offset + 8));
    const body = bytes.subarray(offset + 8, offset + 8 + length);
    if (type === "IHDR") {
      width = view.getUint32(offset + 8);
      height = view.getUint32(offset + 12);
      assert.equal(body[9], 0, "grayscale PNG");
    }
    if (type === "IDAT") idat.push(body);
    offset += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const pixels = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const row = raw.subarray(y * (width + 1), (y + 1) * (width + 1));
    assert.equal(row[0], 0, "filter type 0");
    pixels.set(row.subarray(1), y * width);
  }
  return { width, height, channels: 1, pixels };
}

Deno.test("_display: upscaleRaster repeats each pixel factor × factor times", () => {
  const raster: Raster = {
    width: 2,
    height: 1,
    channels: 3,
    pixels: new Uint8Array([1, 2, 3, 4, 5, 6]),
  };
  const up = upscaleRaster(raster, 2);
  assert.equal(up.width, 4);
  assert.equal(up.height, 2);
  const row = [1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6];
  assert.deepEqual([...up.pixels], [...row, ...row]);
  assert.deepEqual(upscaleRaster(raster, 1).pixels, raster.pixels);
  assert.throws(() => upscaleRaster(raster, 0), RangeError);
  assert.throws(() => upscaleRaster(raster, 1.5), /factor must be a positive integer: got 1.5/);
});

Deno.test("_display: imageGrid is an inline PNG of the upscaled grid", () => {
  // Two 1×2×2 images: the first black, the second white; grid with padding 1 of gray 128.
  const images = new Float32Array([-1, -1, -1, -1, 1, 1, 1, 1]);
  const item = imageGrid(images, [2, 1, 2, 2], { nrow: 2, padding: 1, padValue: 128, scale: 2 });
  const bundle = item[DISPLAY]();
  assert.equal(DISPLAY, Symbol.for("Jupyter.display"));
  assert.match(bundle["text/plain"], /2 images/);
  const raster = decodeGrayPng(Buffer.from(bundle["image/png"], "base64"));
  // make_grid layout: 2·(2+1)+1 = 7 wide, 2+2 = 4 high, then ×2.
  assert.equal(raster.width, 14);
  assert.equal(raster.height, 8);
  const at = (x: number, y: number) => raster.pixels[y * raster.width + x];
  assert.equal(at(0, 0), 128); // padding
  assert.equal(at(2, 2), 0); // first image (black), from original pixel (1, 1)
  assert.equal(at(3, 3), 0);
  assert.equal(at(8, 2), 255); // second image (white), from original pixel (4, 1)
  assert.equal(at(6, 2), 128); // padding between the images
});

Deno.test("_display: png keeps the bytes exactly", () => {
  const bytes = new Uint8Array([137, 80, 78, 71, 0, 255, 7]);
  const bundle = png(bytes, { alt: "x" })[DISPLAY]();
  assert.deepEqual([...Buffer.from(bundle["image/png"], "base64")], [...bytes]);
  assert.equal(bundle["text/plain"], "<x: 7 bytes>");
});

Deno.test("_display: gif keeps the bytes exactly", () => {
  const bytes = new TextEncoder().encode("GIF89a\x01\x00");
  const bundle = gif(bytes)[DISPLAY]();
  assert.deepEqual([...Buffer.from(bundle["image/gif"], "base64")], [...bytes]);
  assert.equal(bundle["text/plain"], `<GIF animation: ${bytes.length} bytes>`);
});

Deno.test("_display: tables in Markdown and escaped HTML", () => {
  const headers = ["schedule", "NFE", "a|b"];
  const rows = [["edm", 6, 0.123456], ["<x>", 10, 1e-7]];
  assert.equal(
    markdownTable(headers, rows),
    "| schedule | NFE | a\\|b |\n| --- | --- | --- |\n| edm | 6 | 0.1235 |\n| <x> | 10 | 1e-7 |",
  );
  const html = htmlTable(headers, rows);
  assert.match(html, /<th>a\|b<\/th>/);
  assert.match(html, /<td>&#60;x&#62;<\/td>/);
  assert.ok(!html.includes("<x>"));
  const bundle = table(headers, rows)[DISPLAY]();
  assert.deepEqual(Object.keys(bundle).sort(), ["text/html", "text/markdown", "text/plain"]);
  assert.throws(() => markdownTable(headers, [["edm", 6]]), /row 0 has 2 cells, the header has 3/);
  assert.equal(formatNumber(80), "80");
  assert.equal(formatNumber(66.66666), "66.67");
  assert.equal(formatNumber(Number.NaN), "NaN");
  assert.equal(escapeXml(`a&"'`), "a&#38;&#34;&#39;");
});

Deno.test("_display: lineChartSvg draws one line per series with the library's plotting", async () => {
  const svg = await lineChartSvg(
    [{ name: "up", y: [0, 1, 2] }, { name: "<down>", x: [0, 1, 2], y: [2, 1, 0] }],
    { width: 400, height: 240, title: "t", xLabel: "k", yLabel: "λ" },
  );
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg" width="400" height="240"'));
  assert.ok(svg.trimEnd().endsWith("</svg>"));
  // Two curves and two legend swatches, each a line group in its series' colour.
  const lines = [...svg.matchAll(/<g\b[^>]*aria-label="line"[^>]*><path d="([^"]+)"/g)].map((m) =>
    m[1].slice(1).split("L").map((p) => p.split(",").map(Number))
  );
  assert.equal(lines.length, 4);
  assert.equal(lines[0].length, 3);
  // The rising series goes up (SVG y decreases), the falling one mirrors it.
  assert.ok(lines[0][0][1] > lines[0][2][1]);
  assert.deepEqual(lines[1].map((p) => p[1]), lines[0].map((p) => p[1]).reverse());
  assert.deepEqual(lines[1].map((p) => p[0]), lines[0].map((p) => p[0]));
  assert.match(svg, /&#60;down&#62;|&lt;down&gt;/);
  for (const text of [">t<", ">k<", ">λ<"]) assert.ok(svg.includes(text), text);
  await assert.rejects(lineChartSvg([]), /at least one series/);
  await assert.rejects(
    lineChartSvg([{ name: "a", y: [1, Number.NaN] }]),
    /point 1 is not plottable/,
  );
  await assert.rejects(lineChartSvg([{ name: "a", y: [1, 0] }], { logY: true }), /not plottable/);
  await assert.rejects(lineChartSvg([{ name: "a", x: [1], y: [1, 2] }]), /1 x values and 2 y/);
  // A constant series still gives finite coordinates.
  assert.doesNotMatch(await lineChartSvg([{ name: "flat", y: [5, 5] }]), /NaN|Infinity/);
});
